//! SIEM sinks end to end: the real `sluice` binary tails a file and delivers to the Splunk HEC
//! and Elasticsearch emulators while they inject faults (429 storms, 5xx, resets, lost
//! acknowledgements, partial bulk failures), or are down altogether.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{Sluice, count_lines, status_json, wait_until};
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator, EsFaults};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator, HecFaults};

/// `n` distinct JSON events, one per line; returns their `n` field values.
fn write_events(path: &Path, range: std::ops::Range<usize>) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    let mut text = String::with_capacity(range.len() * 200);
    for n in range {
        text.push_str(&format!(
            "{{\"n\":{n},\"severity\":\"high\",\"title\":\"event {n}\",\"src_ip\":\"10.1.{}.{}\",\"message\":\"pad pad pad pad pad pad pad pad pad pad pad pad pad pad pad\"}}\n",
            n / 250 % 250,
            n % 250
        ));
    }
    f.write_all(text.as_bytes()).unwrap();
}

/// HEC events' `n`, from the indexed envelopes.
fn hec_numbers(hec: &HecEmulator) -> Vec<u64> {
    hec.events().iter().map(|e| e["event"]["event"]["n"].as_u64().expect("n in the raw event")).collect()
}

fn config(dir: &Path, sinks: &str, routes: &str) -> std::path::PathBuf {
    let d = dir.display();
    let cfg = dir.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {d}/state\nsinks:\n{sinks}tenants:\n  - name: acme\n    sources:\n      - {{name: events, type: file, path: \"{d}/events.jsonl\", decoder: json}}\n    sinks: [{routes}]\n"
        ),
    )
    .unwrap();
    cfg
}

const FAST_RETRY: &str = "retry: {max_attempts: 8, initial_backoff: 10ms, max_backoff: 200ms}";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hec_and_elasticsearch_under_faults_lose_nothing_and_duplicate_no_document() {
    let total = 100_000;
    let hec = HecEmulator::start(HecConfig { ack: true, ack_delay: Duration::from_millis(20), ..Default::default() }).await.unwrap();
    hec.set_faults(HecFaults { busy_rate: 0.05, error_rate: 0.02, reset_rate: 0.02, lose_acks_rate: 0.02, ..Default::default() });
    let es = EsEmulator::start(EsConfig::default()).await.unwrap();
    es.set_faults(EsFaults { item_429_rate: 0.05, item_500_rate: 0.01, request_429_rate: 0.03, reset_rate: 0.02, ..Default::default() });

    let dir = tempfile::tempdir().unwrap();
    write_events(&dir.path().join("events.jsonl"), 0..total);
    let sinks = format!(
        "  splunk:\n    type: splunk_hec\n    url: {}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    index: main\n    acknowledgements: {{enabled: true, poll_interval: 20ms, timeout: 2s}}\n    compression: gzip\n    {FAST_RETRY}\n  elastic:\n    type: elasticsearch\n    url: {}\n    index: \"sluice-%TENANCY\"\n    format: raw\n    {FAST_RETRY}\n",
        hec.url(),
        es.url()
    );
    let cfg = config(dir.path(), &sinks, "splunk, elastic");
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    let deadline = Duration::from_secs(240);
    wait_until(
        deadline,
        || es.doc_count() >= total,
        || format!("elasticsearch has {} of {total}; log:\n{}", es.doc_count(), tail(&sluice.log_text())),
    );
    wait_until(
        deadline,
        || hec_numbers(&hec).into_iter().collect::<HashSet<_>>().len() >= total,
        || format!("HEC has {} events", hec.event_count()),
    );
    assert_eq!(sluice.terminate(), 0);

    // Elasticsearch: every document once, by _id; replays after resets met 409 and stopped there.
    let docs = es.docs("sluice-acme");
    assert_eq!(docs.len(), total, "documents");
    let ids: HashSet<&str> = docs.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(ids.len(), total, "distinct _id");
    let ns: HashSet<u64> = docs.iter().map(|(_, d)| d["n"].as_u64().unwrap()).collect();
    assert_eq!(ns.len(), total, "every event's document");
    // HEC: every event indexed and acknowledged (HEC cannot deduplicate; resent requests whose
    // acknowledgement was lost may repeat events).
    let hec_ns: HashSet<u64> = hec_numbers(&hec).into_iter().collect();
    assert_eq!(hec_ns, (0..total as u64).collect::<HashSet<_>>());
    let status = status_json(&cfg);
    for sink in ["splunk", "elastic"] {
        let s = &status[sink];
        assert_eq!((s["pending"].as_u64(), s["dead_lettered"].as_u64()), (Some(0), Some(0)), "{sink}: {s}");
        assert!(s["sent"].as_u64().unwrap() >= total as u64, "{sink}: {s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_for_50000_events_catches_up_and_never_holds_up_the_others() {
    // Below the ephemeral range, so no other test's emulator takes the port while HEC is down.
    let addr = sluice_emulators::ports::outside_ephemeral_range();
    let hec = HecEmulator::start_on(addr, HecConfig::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_events(&events, 0..1000);
    let d = dir.path().display();
    let sinks = format!(
        "  splunk:\n    type: splunk_hec\n    url: {}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    health: {{interval: 1s}}\n    concurrency: 1\n    {FAST_RETRY}\n  archive: {{type: file, path: \"{d}/archive.jsonl\"}}\n",
        hec.url()
    );
    let cfg = config(dir.path(), &sinks, "splunk, archive");
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    wait_until(Duration::from_secs(60), || hec.event_count() >= 1000, || "first events".into());

    // HEC goes away (connection refused) while 50,000 events arrive.
    hec.stop().await;
    write_events(&events, 1000..51_000);
    wait_until(
        Duration::from_secs(120),
        || count_lines(&dir.path().join("archive.jsonl")) >= 51_000,
        || format!("the file sink got {} while HEC was down", count_lines(&dir.path().join("archive.jsonl"))),
    );
    wait_until(
        Duration::from_secs(30),
        || status_json(&cfg)["splunk"]["pending"].as_u64() >= Some(50_000),
        || format!("outbox: {}", status_json(&cfg)["splunk"]),
    );
    wait_until(
        Duration::from_secs(10),
        || status_json(&cfg)["splunk"]["health"] == "failed",
        || format!("{}", status_json(&cfg)["splunk"]),
    );

    // Back on the same address: the outbox drains, in order, and nothing is missing.
    let hec = HecEmulator::start_on(addr, HecConfig::default()).await.unwrap();
    wait_until(Duration::from_secs(120), || hec.event_count() >= 50_000, || format!("HEC caught up {} of 50,000", hec.event_count()));
    let ns = hec_numbers(&hec);
    assert_eq!(ns.iter().copied().collect::<HashSet<_>>(), (1000..51_000).collect::<HashSet<_>>());
    assert!(ns.windows(2).all(|w| w[0] < w[1]), "delivered in order");
    wait_until(Duration::from_secs(20), || status_json(&cfg)["splunk"]["pending"].as_u64() == Some(0), || "outbox empty".into());
    assert_eq!(sluice.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_mapping_errors_are_dead_lettered_and_replays_are_recognised() {
    let es = EsEmulator::start(EsConfig::default()).await.unwrap();
    es.set_faults(EsFaults { reject_field: Some("bad".into()), ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.jsonl");
    write_events(&events, 0..500);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&events)
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"{\"n\":9999,\"bad\":true}\n"))
        .unwrap();
    let sinks =
        format!("  elastic:\n    type: elasticsearch\n    url: {}\n    format: raw\n    index: plain\n    {FAST_RETRY}\n", es.url());
    let cfg = config(dir.path(), &sinks, "elastic");
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    wait_until(
        Duration::from_secs(60),
        || status_json(&cfg)["elastic"]["dead_lettered"].as_u64() == Some(1),
        || format!("{}", status_json(&cfg)["elastic"]),
    );
    assert_eq!(es.doc_count(), 500);
    assert_eq!(sluice.terminate(), 0);
    let s = &status_json(&cfg)["elastic"];
    assert!(s["last_error"].as_str().unwrap().contains("bad"), "the reason names the field: {s}");

    // Everything again from the start (state lost): `create` with the same _id, no duplicates.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    es.set_faults(EsFaults::default());
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice2.log"));
    wait_until(Duration::from_secs(60), || es.conflicts() >= 500, || format!("conflicts {}", es.conflicts()));
    assert_eq!(sluice.terminate(), 0);
    assert_eq!(es.doc_count(), 501, "the formerly refused event is in; nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hec_index_the_token_may_not_use_fails_the_sink_until_a_reload_fixes_it() {
    let hec = HecEmulator::start(HecConfig { allowed_indexes: vec!["security".into()], ..Default::default() }).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    write_events(&dir.path().join("events.jsonl"), 0..200);
    let sink = |index: &str| {
        format!(
            "  splunk:\n    type: splunk_hec\n    url: {}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    index: {index}\n    {FAST_RETRY}\n",
            hec.url()
        )
    };
    let cfg = config(dir.path(), &sink("main"), "splunk");
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    wait_until(
        Duration::from_secs(30),
        || status_json(&cfg)["splunk"]["health"] == "failed",
        || format!("{}", status_json(&cfg)["splunk"]),
    );
    let s = status_json(&cfg)["splunk"].clone();
    assert!(s["last_error"].as_str().unwrap().contains("Incorrect index"), "{s}");
    assert_eq!(hec.event_count(), 0);
    assert_eq!(s["dead_lettered"], 0, "a configuration problem dead-letters nothing");

    config(dir.path(), &sink("security"), "splunk");
    sluice.signal("HUP");
    wait_until(Duration::from_secs(60), || hec.event_count() >= 200, || format!("HEC has {}", hec.event_count()));
    assert_eq!(hec.events()[0]["index"], "security");
    assert_eq!(sluice.terminate(), 0);
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_delivering_to_elasticsearch_loses_nothing() {
    let total = 40_000;
    let es = EsEmulator::start(EsConfig::default()).await.unwrap();
    es.set_faults(EsFaults { item_429_rate: 0.02, reset_rate: 0.01, ..Default::default() });
    let dir = tempfile::tempdir().unwrap();
    write_events(&dir.path().join("events.jsonl"), 0..total);
    let sinks =
        format!("  elastic:\n    type: elasticsearch\n    url: {}\n    index: crash\n    format: raw\n    {FAST_RETRY}\n", es.url());
    let cfg = config(dir.path(), &sinks, "elastic");
    // Killed at moments spread over the delivery, restarted each time.
    let mut counts = Vec::new();
    for (round, after_ms) in [300u64, 700, 450, 900].into_iter().enumerate() {
        let sluice = Sluice::start(&cfg, &dir.path().join(format!("sluice-{round}.log")));
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        sluice.kill9();
        counts.push(es.doc_count());
    }
    assert!(counts[0] < total, "the first kill came before everything was delivered: {counts:?}");
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice-last.log"));
    wait_until(Duration::from_secs(120), || es.doc_count() >= total, || format!("{} of {total} after the crashes", es.doc_count()));
    sluice.wait_log("sluice running");
    let log = sluice.log.clone();
    let code = sluice.terminate();
    assert_eq!(code, 0, "{}", std::fs::read_to_string(log).unwrap_or_default());
    let docs = es.docs("crash");
    let ns: std::collections::HashSet<u64> = docs.iter().map(|(_, d)| d["n"].as_u64().unwrap()).collect();
    assert_eq!((docs.len(), ns.len()), (total, total), "every event once");
}
