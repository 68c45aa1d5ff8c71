//! The embedded store refuses to run damaged, salvages what is readable, and belongs to one
//! daemon at a time. Real binary, real SQLite files.

mod common;

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use common::{Sluice, wait_until};

fn sluice(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sluice")).args(args).arg("-c").arg(config).output().unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A config whose only sink is the file sink `archive`, and no sources: the daemon idles.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let cfg = dir.join("sluice.yml");
    let text = format!(
        "state_dir: {state}\nsinks:\n  archive: {{type: file, path: \"{out}/%TENANCY.jsonl\"}}\ntenants:\n  - name: acme\n    sinks: [archive]\n",
        state = dir.join("state").display(),
        out = dir.join("out").display()
    );
    std::fs::write(&cfg, text).unwrap();
    cfg
}

async fn fill_outbox(state: &Path, events: usize) {
    let store = sluice::store::Store::open(state).unwrap();
    for chunk in 0..events / 1000 {
        let batch: Vec<_> = (0..1000)
            .map(|i| {
                let raw = format!(r#"{{"n":{},"pad":"{}"}}"#, chunk * 1000 + i, "x".repeat(200));
                sluice::event::Event::hashed(
                    "acme".into(),
                    "eve".into(),
                    "json".into(),
                    chrono::Utc::now(),
                    serde_json::value::RawValue::from_string(raw).unwrap(),
                )
            })
            .collect();
        store.outbox_push("archive", &[Arc::new(batch)]).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_damaged_in_the_middle_is_refused_then_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let state = dir.path().join("state");
    const EVENTS: usize = 20_000;
    fill_outbox(&state, EVENTS).await;
    // Closing the last connection folded the WAL into the file; overwrite 64 KiB in its middle.
    let db = state.join("sluice.db");
    let len = std::fs::metadata(&db).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
    f.seek(SeekFrom::Start(len / 2)).unwrap();
    f.write_all(&vec![0xA5; 64 * 1024]).unwrap();
    f.sync_all().unwrap();

    let run = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["run", "-c"]).arg(&cfg).output().unwrap();
    assert!(!run.status.success(), "sluice ran on a damaged store:\n{}", text(&run));
    let said = text(&run);
    assert!(said.contains(&db.display().to_string()) && said.contains("sluice store salvage"), "{said}");

    let check = sluice(&["store", "check"], &cfg);
    assert_eq!(check.status.code(), Some(1), "{}", text(&check));

    let salvage = sluice(&["store", "salvage"], &cfg);
    assert!(salvage.status.success(), "{}", text(&salvage));
    let damaged: Vec<_> = std::fs::read_dir(&state)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("sluice.db.damaged-"))
        .collect();
    assert!(!damaged.is_empty(), "the damaged file is kept");
    assert!(sluice(&["store", "check"], &cfg).status.success());

    let (pending, _) = sluice::store::Store::open(&state).unwrap().outbox_size("archive").await.unwrap();
    eprintln!("salvaged {pending} of {EVENTS} outbox events: {}", text(&salvage));
    assert!(pending as usize > EVENTS / 2 && (pending as usize) < EVENTS, "salvaged {pending} of {EVENTS}");

    // The salvaged store runs, and delivers what it kept.
    let log = dir.path().join("run.log");
    let daemon = Sluice::start(&cfg, &log);
    let out = dir.path().join("out/acme.jsonl");
    wait_until(
        Duration::from_secs(30),
        || common::count_lines(&out) == pending as usize,
        || format!("{} of {pending} delivered:\n{}", common::count_lines(&out), daemon.log_text()),
    );
    assert_eq!(daemon.terminate(), 0);
}

#[test]
fn a_second_daemon_on_the_same_state_dir_is_refused_and_status_still_works() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let first = Sluice::start(&cfg, &dir.path().join("first.log"));
    first.wait_log("sluice running");
    let second = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["run", "-c"]).arg(&cfg).output().unwrap();
    assert!(!second.status.success());
    let said = text(&second);
    assert!(said.contains(&format!("PID {}", first.child.id())), "{said}");
    let status = sluice(&["status"], &cfg);
    assert!(status.status.success(), "{}", text(&status));
    assert_eq!(first.terminate(), 0);
}
