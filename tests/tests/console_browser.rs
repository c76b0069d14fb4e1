//! The risk console in a real browser: headless Chromium (Debian's `chromium`, which .ci/run
//! installs) driven over the DevTools protocol against a running engine on a paced scenario.
//! The page signs in with an analyst's token, shows decisions arriving live, drills into a
//! frozen customer and shows that freeze's reasons as bars, and a click on "False positive"
//! writes a verdict under the analyst's name. The screenshot it takes is kept at
//! `target/tmp/console.png`. Skipped, saying why, when no `chromium` is on the PATH.

use std::path::Path;
use std::time::Duration;

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::Value;
use vigil_tests::console::Engine;
use vigil_tests::{on_path, read_lines, test_config};

/// A page expression's value as a string.
fn evaluate(tab: &Tab, expression: &str) -> String {
    let value = tab
        .evaluate(expression, false)
        .unwrap_or_else(|e| panic!("{expression}: {e}"))
        .value
        .unwrap_or(Value::Null);
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_decisions_live_explains_a_freeze_and_records_a_false_positive() {
    let Some(chromium) = on_path("chromium") else {
        eprintln!("skipped: no chromium on the PATH (.ci/run installs Debian's chromium package)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens.txt");
    std::fs::write(&tokens, "ana:t-ana\n").unwrap();
    let mut config = test_config();
    config.console.token_file = Some(tokens);
    let engine = Engine::start(config, "console.toml", dir.path()).await;
    let url = engine.url("/#token=t-ana");
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console.png");

    let shown = screenshot.clone();
    let (customer, decision_id, reasons) = tokio::task::spawn_blocking(move || {
        let options = LaunchOptions::default_builder()
            .path(Some(chromium))
            .sandbox(false)
            .headless(true)
            .window_size(Some((1440, 900)))
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let browser = Browser::new(options).unwrap();
        let tab = browser.new_tab().unwrap();
        tab.set_default_timeout(Duration::from_secs(60));
        tab.navigate_to(&url).unwrap().wait_until_navigated().unwrap();

        // Decisions arrive on the live stream, and the status strip shows the engine.
        tab.wait_for_element("tr.decision[data-live='1']").unwrap();
        tab.wait_for_element("tr.decision[data-kind='freeze']").unwrap();
        let status = tab.find_element("#status").unwrap().get_inner_text().unwrap();
        assert!(status.contains("builtin@1") && status.contains("fraud-gbdt@1"), "{status}");
        // Hold the table still, then drill into the frozen customer.
        tab.find_element("#pause").unwrap().click().unwrap();
        let freeze = "document.querySelector(\"tr.decision[data-kind='freeze']\")";
        let decision_id = evaluate(&tab, &format!("{freeze}.dataset.id"));
        let customer = evaluate(&tab, &format!("{freeze}.querySelector('a.customer').textContent"));
        tab.find_element("tr.decision[data-kind='freeze'] a.customer")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element("#customer .reason").unwrap();
        let panel = tab.find_element("#customer").unwrap().get_inner_text().unwrap();
        let reasons = evaluate(
            &tab,
            "Array.from(document.querySelectorAll('#customer .reason span:first-child')).map(s => s.textContent).join(',')",
        );

        // The analyst finds the freeze a false positive.
        tab.find_element("tr.decision.selected button[data-verdict='false_positive']")
            .unwrap()
            .click()
            .unwrap();
        tab.wait_for_element("tr.decision.selected[data-verdict='false_positive']")
            .unwrap();
        let png = tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap();
        std::fs::write(&shown, png).unwrap();
        // innerText is as shown: the headings are in capitals.
        let lowered = panel.to_lowercase();
        assert!(panel.contains(&customer) && lowered.contains("why: freeze"), "{panel}");
        (customer, decision_id, reasons)
    })
    .await
    .unwrap();

    // The reasons drawn are the freeze's own.
    let (_, decision) = {
        let url = engine.url(&format!(
            "/api/decisions?kind=freeze&customer={customer}&limit=1000"
        ));
        let body: Value = tokio::task::spawn_blocking(move || {
            ureq::get(&url)
                .set("Authorization", "Bearer t-ana")
                .call()
                .unwrap()
                .into_json()
                .unwrap()
        })
        .await
        .unwrap();
        let decision = body["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["decision_id"] == decision_id.as_str())
            .cloned()
            .expect("the freeze clicked is one of the customer's");
        ((), decision)
    };
    let features: Vec<&str> = decision["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["feature"].as_str().unwrap())
        .collect();
    assert_eq!(reasons, features.join(","));

    // The click wrote a verdict under the analyst's name.
    let verdicts: Vec<Value> = read_lines(&dir.path().join("feedback.jsonl"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), 1, "{verdicts:?}");
    assert_eq!(verdicts[0]["decision_id"], decision_id.as_str());
    assert_eq!(verdicts[0]["customer_id"], customer.as_str());
    assert_eq!(verdicts[0]["verdict"], "false_positive");
    assert_eq!(verdicts[0]["analyst"], "ana");
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    eprintln!("screenshot: {}", screenshot.display());
    engine.stop().await;
}
