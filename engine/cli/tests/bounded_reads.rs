//! A hostile producer writes one line of 192 MiB into a JSON Lines file. The engine reads no
//! more of it than the record size limit, so the real `vigil` binary's peak resident memory
//! stays far below the line's size (reading the whole line first took several times it), and
//! the line is dead-lettered as `oversized` with its whole length while the next record is
//! scored.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LINE: usize = 192 << 20;

/// The peak resident memory of process `pid` so far, in MiB.
fn peak_rss_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

#[test]
fn a_192_mib_line_is_read_no_further_than_the_record_limit() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input.jsonl");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    let mut bytes = vec![b'x'; LINE];
    bytes.push(b'\n');
    bytes.extend_from_slice(
        format!(
            r#"{{"schema":1,"event_id":"e-1","customer_id":"c-1","ts":{},"kind":"payment","amount":20.0,"currency":"EUR","country":"FR","merchant":"m-1","mcc":"5411"}}"#,
            now - 60_000
        )
        .as_bytes(),
    );
    std::fs::write(&input, &bytes).unwrap();
    drop(bytes);

    let dead_letters = dir.path().join("dead-letters.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .env("VIGIL_CONSOLE__LISTEN", "127.0.0.1:0")
        .args([
            "run",
            "--quiet",
            "--set",
            "metrics.listen=127.0.0.1:0",
            "--source",
        ])
        .arg(format!("file:{}", input.display()))
        .args(["--sink", "discard", "--dead-letter"])
        .arg(format!("file:{}", dead_letters.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The peak is read while the engine runs; it only ever grows.
    let mut peak = 0;
    while child.try_wait().unwrap().is_none() {
        peak = peak_rss_mib(child.id()).unwrap_or(peak).max(peak);
        std::thread::sleep(Duration::from_millis(5));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "vigil failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        peak < (LINE >> 20) as u64 / 2,
        "peak RSS {peak} MiB for a {} MiB line",
        LINE >> 20
    );

    let letters = std::fs::read_to_string(Path::new(&dead_letters)).unwrap();
    let letter: serde_json::Value = serde_json::from_str(letters.trim()).unwrap();
    assert_eq!(letter["reason"], "oversized");
    assert_eq!(letter["raw_bytes"], LINE as u64);
}
