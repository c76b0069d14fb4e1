//! The dashboard and the alert rules against a real Prometheus: the engine runs a scenario with
//! its exporter on, Prometheus (Debian's package, installed by .ci/run) scrapes it every second
//! and evaluates the rules, and every panel expression and every recorded series must return
//! data. Skipped, saying why, when no `prometheus` binary is on the PATH.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_engine::config::Config;
use vigil_engine::pipeline;
use vigil_engine::telemetry::{self, LATENCY_BUCKETS};
use vigil_tests::{fixture, on_path};

fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn dashboards() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../dashboards")
}

/// Kills Prometheus however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn query(prometheus: SocketAddr, expr: &str) -> Value {
    let response: Value = ureq::get(&format!("http://{prometheus}/api/v1/query"))
        .query("query", expr)
        .call()
        .unwrap_or_else(|e| panic!("query {expr}: {e}"))
        .into_json()
        .unwrap();
    assert_eq!(response["status"], "success", "{expr}: {response}");
    response["data"]["result"].clone()
}

fn has_data(result: &Value) -> bool {
    result.as_array().is_some_and(|series| !series.is_empty())
}

fn first_value(result: &Value) -> f64 {
    result[0]["value"][1].as_str().unwrap().parse().unwrap()
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool runs");
    assert!(
        out.status.success(),
        "promtool {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Every `expr` of every panel target, with the `$job` variable set to "all".
fn dashboard_expressions() -> Vec<String> {
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(dashboards().join("vigil-engine.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(dashboard["uid"], "vigil-engine");
    assert!(dashboard["schemaVersion"].as_u64().is_some());
    assert_eq!(dashboard["__inputs"][0]["name"], "DS_PROMETHEUS");
    dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().clone())
        .map(|t| t["expr"].as_str().unwrap().replace("$job", ".*"))
        .collect()
}

/// (recorded series names, alert expressions) from the rules file.
fn rules() -> (Vec<String>, Vec<String>) {
    let file: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(dashboards().join("vigil-rules.yml")).unwrap(),
    )
    .unwrap();
    let (mut records, mut alerts) = (vec![], vec![]);
    for group in file["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let expr = rule["expr"].as_str().unwrap().to_owned();
            match rule["record"].as_str() {
                Some(name) => records.push(name.to_owned()),
                None => alerts.push(expr),
            }
        }
    }
    (records, alerts)
}

#[test]
fn dashboard_and_rules_return_data_from_a_real_prometheus() {
    if on_path("prometheus").is_none() || on_path("promtool").is_none() {
        eprintln!("skipped: no prometheus/promtool on the PATH (.ci/run installs Debian's prometheus package)");
        return;
    }
    let rules_file = dashboards().join("vigil-rules.yml");
    promtool(&["check", "rules", rules_file.to_str().unwrap()]);

    let dir = tempfile::tempdir().unwrap();
    let (engine, prometheus) = (free_address(), free_address());
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {}\nscrape_configs:\n  - job_name: vigil\n    static_configs:\n      - targets: ['{engine}']\n",
            rules_file.display()
        ),
    )
    .unwrap();
    promtool(&["check", "config", config.to_str().unwrap()]);
    let _prometheus = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={prometheus}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus starts"),
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        telemetry::install_exporter(engine).unwrap();
        let source = format!("generate:{}", fixture("metrics.toml").display());
        // The shipped fraud model also runs as its own challenger, so that the shadow series
        // have data.
        let mut config = Config::builtin();
        config.models.fraud_challenger = Some(config.models.fraud_path());
        // A candidate policy alerting on every payment disagrees with the built-in one, so
        // that the policy-shadow series have data.
        let candidate = dir.path().join("candidate.toml");
        vigil_tests::write_policy(&candidate, "alert-all", 1, (0.95, 0.0), "");
        config.policy.shadow = Some(candidate);
        // A webhook sink whose endpoint refuses connections parks every batch at its first
        // failure, so the webhook series have data.
        config.webhook.deadline = Duration::ZERO;
        config.webhook.secret_file = Some(dir.path().join("secret"));
        std::fs::write(dir.path().join("secret"), "s3cret\n").unwrap();
        config.webhook.undeliverable = format!("file:{}", dir.path().join("parked.jsonl").display());
        let refusing = free_address();
        config.sinks = vec![serde_yaml::from_str(&format!(
            "{{sink: 'webhook:http://{refusing}/hooks', decisions: [freeze, alert]}}"
        ))
        .unwrap()];
        let options = vigil_tests::run_options(config, &source, "discard", "discard");
        let summary = pipeline::run(options, std::future::pending()).await.unwrap();
        assert!(summary.dead_letters > 0 && summary.decisions.iter().sum::<u64>() > 0);

        // The exporter itself shows every family, histograms with their buckets.
        let text = ureq::get(&format!("http://{engine}/metrics")).call().unwrap().into_string().unwrap();
        for family in [
            "vigil_events_total{",
            "vigil_decisions_total{",
            "vigil_decision_latency_seconds_bucket{",
            "vigil_stage_seconds_bucket{",
            "vigil_consumer_lag_records{",
            "vigil_consumer_lag_seconds{",
            "vigil_actors_active ",
            "vigil_actor_restarts_total ",
            "vigil_passivations_total ",
            "vigil_budget_exceeded_total ",
            "vigil_dead_letters_total{",
            "vigil_model_info{",
            "role=\"challenger\"",
            "vigil_shadow_events_total{",
            "vigil_model_disagreements_total{",
            "vigil_model_rejections_total ",
            "vigil_policy_info{policy=\"alert-all@1\",role=\"candidate\"} 1",
            "vigil_policy_shadow_events_total{",
            "vigil_policy_disagreements_total{",
            "vigil_feedback_total{verdict=\"false_positive\"} 0",
            "vigil_webhook_requests_total{",
            "vigil_webhook_parked_batches_total{",
            "process_resident_memory_bytes ",
        ] {
            assert!(text.contains(family), "/metrics lacks {family}");
        }
        assert_eq!(
            text.matches("vigil_decision_latency_seconds_bucket{").count(),
            LATENCY_BUCKETS.len() + 1
        );
        assert!(!text.contains("customer_id=") && !text.contains("c-000"));

        // Wait until Prometheus has scraped and evaluated the rules on the run's data.
        let (records, alerts) = rules();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !records.iter().all(|r| has_data(&query(prometheus, r))) {
            assert!(Instant::now() < deadline, "recording rules never produced data");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }

        for expr in dashboard_expressions() {
            assert!(has_data(&query(prometheus, &expr)), "dashboard expression has no data: {expr}");
        }
        for alert in &alerts {
            query(prometheus, alert);
            for name in alert.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')) {
                if name.starts_with("vigil:") {
                    assert!(records.iter().any(|r| r == name), "{alert} uses unknown {name}");
                }
            }
        }
        let quantile = |q: f64| {
            first_value(&query(
                prometheus,
                &format!("histogram_quantile({q}, sum by (le) (rate(vigil_decision_latency_seconds_bucket[1m])))"),
            ))
        };
        let (p50, p99) = (quantile(0.5), quantile(0.99));
        assert!(p50 > 0.0 && p99 >= p50 && p99 < 5.0, "p50 {p50}, p99 {p99}");
    });
}
