//! After `kill -9`, a sink receives again at most what it had in flight — its own
//! `concurrency × batch.max_events` — not everything the source had read ahead of its saved
//! position. Splunk HEC cannot deduplicate, so this is what a crash costs a customer there.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use common::{Sluice, wait_until};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator, HecFaults};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_after_kill_9_are_bounded_by_the_sinks_writes_in_flight() {
    const TOTAL: u64 = 60_000;
    // The sink's own bound per crash: concurrency × batch.max_events.
    const CONCURRENCY: u64 = 2;
    const MAX_EVENTS: u64 = 250;
    let hec = HecEmulator::start(HecConfig::default()).await.unwrap();
    // Slow enough that a kill lands mid-stream.
    hec.set_faults(HecFaults { delay: Duration::from_millis(40), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let mut f = std::fs::File::create(dir.path().join("events.jsonl")).unwrap();
    for n in 0..TOTAL {
        writeln!(f, r#"{{"n":{n},"severity":"high","message":"{}"}}"#, "p".repeat(120)).unwrap();
    }
    drop(f);
    let cfg = dir.path().join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {d}/state\nsinks:\n  splunk:\n    type: splunk_hec\n    url: {url}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    concurrency: {CONCURRENCY}\n    batch: {{max_events: {MAX_EVENTS}}}\n    format: raw\ntenants:\n  - name: acme\n    sources:\n      - {{name: events, type: file, path: \"{d}/events.jsonl\"}}\n    sinks: [splunk]\n",
            url = hec.url()
        ),
    )
    .unwrap();

    let mut kills = 0;
    for round in 0..2 {
        let sluice = Sluice::start(&cfg, &dir.path().join(format!("run-{round}.log")));
        // Kill while events stream in: after a share of them arrived, before the end.
        let target = (round + 1) * TOTAL as usize / 4;
        wait_until(Duration::from_secs(60), || hec.event_count() >= target, || format!("{} events at HEC", hec.event_count()));
        sluice.kill9();
        eprintln!("kill -9 at {} events received", hec.event_count());
        kills += 1;
    }
    let distinct =
        |hec: &HecEmulator| hec.events().iter().map(|e| e["event"]["n"].as_u64().unwrap()).collect::<std::collections::HashSet<_>>().len();
    assert!(distinct(&hec) < TOTAL as usize, "everything arrived before the last kill");
    let sluice = Sluice::start(&cfg, &dir.path().join("run-last.log"));
    wait_until(
        Duration::from_secs(120),
        || {
            let mut seen = std::collections::HashSet::new();
            hec.events().iter().for_each(|e| {
                seen.insert(e["event"]["n"].as_u64().unwrap());
            });
            seen.len() == TOTAL as usize
        },
        || format!("{} events at HEC", hec.events().len()),
    );
    assert_eq!(sluice.terminate(), 0);

    let mut counts: HashMap<u64, u32> = HashMap::new();
    for e in hec.events() {
        *counts.entry(e["event"]["n"].as_u64().unwrap()).or_default() += 1;
    }
    let duplicates: u64 = counts.values().map(|&c| u64::from(c - 1)).sum();
    let bound = kills * CONCURRENCY * MAX_EVENTS;
    eprintln!("duplicates after {kills} kill -9: {duplicates} (bound {bound}; the source's read-ahead alone is 4 × 2048 per kill)");
    assert_eq!(counts.len() as u64, TOTAL, "nothing lost");
    assert!(duplicates <= bound, "{duplicates} duplicates, more than the sink's bound {bound}");
}

/// After a clean stop every source saved its position, so nothing is a replay: a new event
/// identical to one delivered before (same content, so the same id) is delivered again.
#[test]
fn a_new_event_identical_to_one_delivered_before_a_clean_restart_is_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, input, output, log) = common::one_file_pipeline(dir.path());
    let repeated = "{\"msg\":\"disk check failed\",\"host\":\"web-1\"}\n";
    std::fs::write(&input, format!("{repeated}{{\"msg\":\"other\"}}\n")).unwrap();
    let sluice = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || common::count_lines(&output) == 2, || "first two lines".into());
    assert_eq!(sluice.terminate(), 0);

    std::fs::OpenOptions::new().append(true).open(&input).unwrap().write_all(repeated.as_bytes()).unwrap();
    let sluice = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || common::count_lines(&output) == 3, || std::fs::read_to_string(&log).unwrap_or_default());
    assert_eq!(sluice.terminate(), 0);
}
