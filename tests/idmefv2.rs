//! Suricata eve.json tailed → `idmefv2_http` sink → `sluice testserver`: every event arrives and
//! is valid. Refused messages go to the dead-letter list.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Sluice;

#[test]
fn suricata_alerts_reach_the_testserver_valid() {
    let dir = tempfile::tempdir().unwrap();
    let mut server =
        Command::new(env!("CARGO_BIN_EXE_sluice")).args(["testserver", "--listen", "127.0.0.1:0"]).stdout(Stdio::piped()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = server.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20)).unwrap();
    let url = first.rsplit(' ').next().unwrap().to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");

    // The sample alerts, plus ICMP alerts without ports (which crash the original connector).
    let eve = dir.path().join("eve.json");
    let mut text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/logs/eve.json")).unwrap();
    for i in 0..20 {
        text.push_str(&format!(
            "{{\"timestamp\":\"2024-01-01T00:00:{i:02}.000000+0000\",\"event_type\":\"alert\",\"src_ip\":\"10.0.0.{i}\",\"dest_ip\":\"10.0.1.1\",\"proto\":\"ICMP\",\"alert\":{{\"signature_id\":{i},\"signature\":\"ICMP ping {i}\",\"category\":\"Misc activity\",\"severity\":3}}}}\n"
        ));
    }
    std::fs::write(&eve, &text).unwrap();
    let expected = text.lines().count();
    let d = dir.path().display();
    let cfg = dir.path().join("sluice.yml");
    std::fs::write(
        &cfg,
        format!("state_dir: {d}/state\nsinks:\n  concerto: {{type: idmefv2_http, url: \"{url}/\"}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: eve, type: file, path: \"{d}/eve.json\", decoder: suricata}}\n    sinks: [concerto]\n"),
    )
    .unwrap();
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    let mut ok = 0;
    let mut invalid = Vec::new();
    while ok + invalid.len() < expected {
        let line = rx.recv_timeout(Duration::from_secs(30)).expect("messages stopped arriving");
        if line.split(' ').nth(1) == Some("OK") {
            ok += 1;
        } else {
            invalid.push(line);
        }
    }
    assert!(invalid.is_empty(), "{invalid:?}");
    assert_eq!(ok, expected);
    assert_eq!(sluice.terminate(), 0);
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_messages_are_dead_lettered_not_retried_forever() {
    use axum::http::StatusCode;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(|| async { (StatusCode::UNPROCESSABLE_ENTITY, "schema says no") });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("in.log"), "{\"a\":1}\n{\"a\":2}\n").unwrap();
    let text = format!(
        "state_dir: {d}/state\nsinks:\n  siem: {{type: idmefv2_http, url: \"http://{addr}/\"}}\ntenants:\n  - name: t\n    sources:\n      - {{name: s, type: file, path: \"{d}/in.log\", poll_interval: 20ms}}\n    sinks: [siem]\n"
    );
    let config = sluice::config::Config::parse(&text, Path::new("."), Path::new("t.yml")).unwrap();
    let runtime = sluice::pipeline::runtime::Runtime::start(config).await.unwrap();
    let store = runtime.store().clone();
    let mut letters = Vec::new();
    for _ in 0..200 {
        letters = store.dead_letters("siem").await.unwrap();
        if letters.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(letters.len(), 2);
    assert!(letters[0].1.contains("422") && letters[0].1.contains("schema says no"), "{}", letters[0].1);
    assert_eq!(store.outbox_len("siem").await.unwrap(), 0, "a refused message is not retried");
    assert!(runtime.shutdown(Duration::from_secs(10)).await);
}
