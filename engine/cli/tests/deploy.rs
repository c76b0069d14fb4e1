//! The deployment files in `deploy/` against what they drive: every flag the systemd unit, the
//! Kubernetes StatefulSet and the compose file pass to `vigil run` is one the real binary
//! accepts; the unit's state directory is the one it has systemd create; each StatefulSet pod
//! and compose instance is its own `--instance I/N` with its own state; the image copies files
//! that exist and runs as a non-root user; and Prometheus (`promtool`, installed by .ci/run)
//! accepts both scrape configurations with the shipped rules; the CRM example configuration loads
//! and routes outreach and freezes to two endpoints, and its sample profiles read. The promtool
//! checks say they were skipped when there is no `promtool` on the PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file)
}

/// The unit's `ExecStart` command line, continuation lines joined, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    let joined = unit.replace("\\\n", " ");
    let line = joined
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    line.split_whitespace().map(str::to_owned).collect()
}

/// `vigil run --help`.
fn run_help() -> String {
    let help = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    String::from_utf8(help.stdout).unwrap()
}

/// Asserts every `--flag` or `--flag=value` among `words` is a flag `vigil run` accepts.
fn assert_accepted(words: &[String], file: &str) {
    let help = run_help();
    let flags: Vec<&str> = words
        .iter()
        .filter(|w| w.starts_with("--"))
        .map(|w| w.split('=').next().unwrap())
        .collect();
    assert!(flags.len() >= 5, "{file}: {flags:?}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")),
            "{file} passes {flag}, which `vigil run` does not accept"
        );
    }
}

/// Every YAML document in a deploy file, with merge keys applied.
fn yaml(file: &str) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(deploy(file)).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|document| {
            let mut value = serde_yaml::Value::deserialize(document).unwrap();
            value.apply_merge().unwrap();
            value
        })
        .collect()
}

fn strings(value: &serde_yaml::Value) -> Vec<String> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("not a list: {value:?}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_systemd_unit_passes_only_flags_vigil_run_accepts() {
    let unit = std::fs::read_to_string(deploy("systemd/vigil@.service")).unwrap();
    let words = exec_start(&unit);
    assert_eq!(words[..2], ["/usr/local/bin/vigil", "run"]);
    assert_accepted(&words, "the systemd unit");
    // Checkpoints go where systemd creates the instance's private state directory.
    let state_dir = words
        .iter()
        .skip_while(|w| *w != "--state-dir")
        .nth(1)
        .expect("the unit keeps checkpoints");
    let created = unit
        .lines()
        .find_map(|l| l.strip_prefix("StateDirectory="))
        .expect("the unit has systemd create the state directory");
    assert_eq!(state_dir, &format!("/var/lib/{created}"));
}

#[test]
fn prometheus_accepts_the_scrape_configuration_and_its_rules() {
    let Some(promtool) = promtool() else {
        return;
    };
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(deploy("prometheus/prometheus.yml"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    // The rules file was found and read, not just the scrape targets.
    assert!(
        said.contains("vigil-rules.yml") && said.contains("rules found"),
        "{said}"
    );
}

#[test]
fn the_statefulset_makes_each_pod_ordinal_an_instance_of_as_many_as_there_are_replicas() {
    let documents = yaml("kubernetes/vigil.yaml");
    let set = documents
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("a StatefulSet");
    let replicas = set["spec"]["replicas"].as_u64().unwrap();
    let pod = &set["spec"]["template"];
    let container = &pod["spec"]["containers"][0];
    let args = strings(&container["args"]);
    assert_eq!(args[0], "run");
    assert_accepted(&args, "the StatefulSet");
    assert!(
        run_help().contains("[env: VIGIL_INSTANCE=]"),
        "`vigil run` reads its instance from VIGIL_INSTANCE"
    );

    let env = |name: &str| {
        container["env"]
            .as_sequence()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in the container's environment"))
            .clone()
    };
    assert_eq!(
        env("POD_INDEX")["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['apps.kubernetes.io/pod-index']"
    );
    assert_eq!(
        env("VIGIL_INSTANCE")["value"],
        format!("$(POD_INDEX)/{replicas}").as_str()
    );

    // Checkpoints on the pod's own volume, metrics where the scrape annotation looks.
    let state_dir = args
        .iter()
        .find_map(|a| a.strip_prefix("--state-dir="))
        .expect("the pod keeps checkpoints");
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    let claim = set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"].clone();
    let mount = mounts.iter().find(|m| m["name"] == claim).unwrap();
    assert!(state_dir.starts_with(mount["mountPath"].as_str().unwrap()));
    let listen = env("VIGIL_METRICS__LISTEN")["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let port = pod["metadata"]["annotations"]["prometheus.io/port"]
        .as_str()
        .unwrap();
    assert_eq!(listen, format!("0.0.0.0:{port}"));
}

#[test]
fn the_compose_instances_split_the_topic_and_prometheus_scrapes_each() {
    let compose = &yaml("compose/docker-compose.yml")[0];
    let services = compose["services"].as_mapping().unwrap();
    let instances: Vec<(&str, &serde_yaml::Value)> = services
        .iter()
        .filter_map(|(name, service)| {
            let name = name.as_str().unwrap();
            name.strip_prefix("vigil-").map(|_| (name, service))
        })
        .collect();
    assert_eq!(instances.len(), 3);
    let prometheus = std::fs::read_to_string(deploy("compose/prometheus.yml")).unwrap();
    let mut volumes = Vec::new();
    for (i, (name, service)) in instances.iter().enumerate() {
        let command = strings(&service["command"]);
        assert_eq!(command[0], "run");
        assert_accepted(&command, name);
        assert_eq!(
            service["environment"]["VIGIL_INSTANCE"],
            format!("{i}/{}", instances.len()).as_str(),
            "{name}"
        );
        assert!(
            prometheus.contains(&format!("\"{name}:9000\"")),
            "{name} is scraped"
        );
        volumes.push(strings(&service["volumes"]).remove(0));
    }
    volumes.sort();
    volumes.dedup();
    assert_eq!(volumes.len(), 3, "each instance keeps its own state");
}

#[test]
fn the_image_copies_what_exists_and_runs_as_a_non_root_user() {
    let dockerfile = std::fs::read_to_string(deploy("docker/Dockerfile")).unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for line in dockerfile
        .lines()
        .filter(|l| l.starts_with("COPY ") && !l.contains("--from"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        for source in &words[1..words.len() - 1] {
            let found = match source.strip_suffix("*.toml") {
                Some(dir) => std::fs::read_dir(root.join(dir)).unwrap().count() > 0,
                None => root.join(source).exists(),
            };
            assert!(
                found,
                "the Dockerfile copies {source}, which is not in the repository"
            );
        }
    }
    let user = dockerfile
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the image names its user");
    assert!(
        !user.starts_with("0") && !user.starts_with("root"),
        "{user}"
    );
}

#[test]
fn prometheus_accepts_the_compose_configuration_with_the_rules_mounted_beside_it() {
    let Some(promtool) = promtool() else {
        return;
    };
    // As docker-compose.yml mounts them: the configuration with the shipped rules beside it.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        deploy("compose/prometheus.yml"),
        dir.path().join("prometheus.yml"),
    )
    .unwrap();
    std::fs::copy(
        deploy("../dashboards/vigil-rules.yml"),
        dir.path().join("vigil-rules.yml"),
    )
    .unwrap();
    let out = Command::new(promtool)
        .args(["check", "config"])
        .arg(dir.path().join("prometheus.yml"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success() && said.contains("rules found"),
        "{said}"
    );
}

/// promtool from the PATH, or `None` after saying the check was skipped.
fn promtool() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    if found.is_none() {
        eprintln!("skipped: no promtool on the PATH (Debian's prometheus package has it)");
    }
    found
}

#[test]
fn the_crm_example_routes_outreach_and_freezes_to_two_signed_endpoints() {
    use vigil_engine::config::{Config, Layers};
    use vigil_engine::decision::DecisionKind;

    let config = Config::load(&Layers {
        file: Some(deploy("crm/vigil.toml")),
        ..Layers::default()
    })
    .unwrap();
    let routes: Vec<(&str, &[DecisionKind], String)> = config
        .sinks
        .iter()
        .map(|r| {
            let secret = r.webhook(&config.webhook).secret_env;
            (r.sink.as_str(), r.decisions.as_slice(), secret)
        })
        .collect();
    assert_eq!(routes.len(), 2);
    assert!(routes[0].0.starts_with("webhook:https://crm."));
    assert_eq!(
        routes[0].1,
        [DecisionKind::Outreach, DecisionKind::OutreachSuppressed]
    );
    assert!(routes[1].0.starts_with("webhook:https://cases."));
    assert_eq!(routes[1].1, [DecisionKind::Freeze]);
    assert_ne!(routes[0].2, routes[1].2, "each endpoint has its own secret");
    assert_eq!(config.policy.tiers["vip"].freeze_at_least, 0.99);

    let profiles = std::fs::read_to_string(deploy("crm/profiles.jsonl")).unwrap();
    for line in profiles.lines() {
        vigil_engine::profile::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e:?}"));
    }
}
