//! End-to-end delivery guarantees of the real binary: crash, shutdown, reload.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::{Sluice, count_lines, wait_until};
use rand::Rng;

fn config(dir: &Path, tenants: &[&str]) -> String {
    let d = dir.display();
    let mut text = format!(
        "state_dir: {d}/state\nshutdown_timeout: 20s\nsinks:\n  out: {{type: file, path: \"{d}/out/%TENANCY/%TAG.jsonl\"}}\ntenants:\n"
    );
    for t in tenants {
        text.push_str(&format!(
            "  - name: {t}\n    sources:\n      - {{name: logs, type: file, path: \"{d}/in/{t}.log\", poll_interval: 20ms, glob_interval: 100ms}}\n    sinks: [out]\n"
        ));
    }
    text
}

fn write_lines(path: &Path, range: std::ops::Range<u64>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap());
    for i in range {
        writeln!(f, "{{\"id\":{i},\"msg\":\"event number {i} with some padding to look like a log line\"}}").unwrap();
    }
}

/// One tenant `acme` following `in/acme.log` into `out/acme/logs.jsonl`.
struct Case {
    dir: tempfile::TempDir,
    cfg: std::path::PathBuf,
    input: std::path::PathBuf,
    output: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("sluice.yml");
        std::fs::write(&cfg, config(dir.path(), &["acme"])).unwrap();
        let (input, output, log) = (dir.path().join("in/acme.log"), dir.path().join("out/acme/logs.jsonl"), dir.path().join("sluice.log"));
        Case { dir, cfg, input, output, log }
    }
}

/// id → how many times it is in the output.
fn id_counts(path: &Path) -> HashMap<u64, u32> {
    let mut counts = HashMap::new();
    for line in std::fs::read_to_string(path).unwrap().lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("bad output line {line:?}: {e}"));
        *counts.entry(v["id"].as_u64().unwrap()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn kill_9_at_random_moments_loses_nothing() {
    const TOTAL: u64 = 100_000;
    let Case { dir: _dir, cfg, input, output, log } = Case::new();
    write_lines(&input, 0..TOTAL / 2);

    // Lines keep arriving while sluice is killed and restarted, so every kill lands mid-stream.
    let writer = {
        let input = input.clone();
        std::thread::spawn(move || {
            // Spread over several seconds, longer than the kills take, however fast sluice is.
            for chunk in (TOTAL / 2..TOTAL).step_by(500) {
                write_lines(&input, chunk..chunk + 500);
                std::thread::sleep(Duration::from_millis(60));
            }
        })
    };
    let mut rng = rand::rng();
    let mut kills = 0;
    while kills < 4 {
        let s = Sluice::start(&cfg, &log);
        let before = count_lines(&output);
        wait_until(Duration::from_secs(30), || count_lines(&output) > before, || "no progress".into());
        std::thread::sleep(Duration::from_millis(rng.random_range(0..150)));
        s.kill9();
        kills += 1;
    }
    writer.join().unwrap();
    let s = Sluice::start(&cfg, &log);
    wait_until(
        Duration::from_secs(60),
        || id_counts(&output).len() as u64 == TOTAL,
        || format!("only {} of {TOTAL} ids delivered", id_counts(&output).len()),
    );
    assert_eq!(s.terminate(), 0);

    let counts = id_counts(&output);
    assert!((0..TOTAL).all(|i| counts.contains_key(&i)), "an event was lost");
    let duplicates: u32 = counts.values().map(|c| c - 1).sum();
    // Each kill can repeat at most the batches in flight: 4 per file, each of 2,048 events plus
    // at most the lines of one 256 KiB read (a batch is handed over at a read's boundary).
    let shortest_line = 70;
    let max_batch = 2048 + 256 * 1024 / shortest_line;
    assert!(duplicates <= kills * 4 * max_batch as u32, "{duplicates} duplicates after {kills} kills");
    eprintln!("{kills} kills, {duplicates} duplicates");
}

#[test]
fn sigterm_saves_positions_so_a_restart_repeats_nothing() {
    let Case { dir: _dir, cfg, input, output, log } = Case::new();
    write_lines(&input, 0..5000);

    let s = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || count_lines(&output) == 5000, || "not all delivered".into());
    assert_eq!(s.terminate(), 0);
    assert!(std::fs::read_to_string(&log).unwrap().contains("shutdown complete"));

    write_lines(&input, 5000..5010);
    let s = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || count_lines(&output) >= 5010, || "new lines not delivered".into());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(s.terminate(), 0);
    let counts = id_counts(&output);
    assert_eq!(counts.len(), 5010);
    assert!(counts.values().all(|&c| c == 1), "a restart after SIGTERM repeated events");
}

#[test]
fn reload_adds_a_tenant_and_an_invalid_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("sluice.yml");
    std::fs::write(&cfg, config(dir.path(), &["acme"])).unwrap();
    let log = dir.path().join("sluice.log");
    write_lines(&dir.path().join("in/acme.log"), 0..10);
    write_lines(&dir.path().join("in/globex.log"), 0..20);
    let acme_out = dir.path().join("out/acme/logs.jsonl");
    let globex_out = dir.path().join("out/globex/logs.jsonl");

    let s = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || count_lines(&acme_out) == 10, || "acme not delivered".into());

    // An invalid file is rejected and the running tenant keeps running.
    std::fs::write(&cfg, config(dir.path(), &["acme"]).replace("poll_interval", "pol_interval")).unwrap();
    s.signal("HUP");
    s.wait_log("new configuration rejected");
    write_lines(&dir.path().join("in/acme.log"), 10..15);
    wait_until(Duration::from_secs(20), || count_lines(&acme_out) == 15, || "acme stopped after a bad reload".into());

    // A valid file that adds a tenant starts it; acme is untouched (no restart, no repeat).
    std::fs::write(&cfg, config(dir.path(), &["acme", "globex"])).unwrap();
    s.signal("HUP");
    wait_until(Duration::from_secs(20), || count_lines(&globex_out) == 20, || format!("globex not started:\n{}", s.log_text()));
    assert_eq!(s.terminate(), 0);
    assert_eq!(count_lines(&acme_out), 15);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("tenants_started") && text.contains("globex"), "{text}");
    assert!(!text.contains(r#""tenant":"acme","message":"tenant stopped""#) || text.matches("tenant stopped").count() <= 2);
}

#[test]
fn check_reports_errors_with_paths_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.yml");
    std::fs::write(&cfg, config(dir.path(), &["../etc"]).replace("poll_interval", "intervall")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "-c"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("tenants[0].name: invalid tenant name"), "{err}");
    assert!(err.contains("tenants[0].sources[0].intervall: unknown field"), "{err}");

    let good = dir.path().join("good.yml");
    std::fs::write(&good, config(dir.path(), &["acme"])).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "-c"]).arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["run", "-c"]).arg(&cfg).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "run refuses an invalid config too");
}
