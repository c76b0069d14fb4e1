//! The deployment files in `deploy/` against what they drive: every flag the systemd unit
//! passes to `vigil run` is one the real binary accepts, its state directory is the one the unit
//! has systemd create, and Prometheus (`promtool`, installed by .ci/run) accepts the scrape
//! configuration with the shipped rules. The promtool check says it was skipped when there is
//! no `promtool` on the PATH.

use std::path::{Path, PathBuf};
use std::process::Command;

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

#[test]
fn the_systemd_unit_passes_only_flags_vigil_run_accepts() {
    let unit = std::fs::read_to_string(deploy("systemd/vigil@.service")).unwrap();
    let words = exec_start(&unit);
    assert_eq!(words[..2], ["/usr/local/bin/vigil", "run"]);

    let help = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&String> = words.iter().filter(|w| w.starts_with("--")).collect();
    assert!(flags.len() >= 6, "{flags:?}");
    for flag in flags {
        assert!(
            help.contains(&format!("{flag} ")),
            "the unit passes {flag}, which `vigil run` does not accept"
        );
    }
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
    let Some(promtool) = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    }) else {
        eprintln!("skipped: no promtool on the PATH (Debian's prometheus package has it)");
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
