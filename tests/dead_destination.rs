//! A destination that refuses connections never stalls its tenant, whatever the sink type: the
//! real `sluice` binary tails a file into a file sink and a sink whose destination is down; the
//! file sink gets every line within seconds, the dead sink's events wait in its outbox, and once
//! the destination listens on that address all of them are delivered. Credentials written in a
//! sink's URL appear nowhere: not in the log, `sluice status`, the API or the sink's errors.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Sluice, count_lines, status_json, wait_until};
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator};

const LINES: usize = 4000;

fn write_events(path: &Path, range: std::ops::Range<usize>) {
    let mut text = String::with_capacity(range.len() * 120);
    for n in range {
        text.push_str(&format!(
            "{{\"n\":{n},\"severity\":\"high\",\"title\":\"event {n}\",\"src_ip\":\"10.1.{}.{}\"}}\n",
            n / 250 % 250,
            n % 250
        ));
    }
    std::fs::write(path, text).unwrap();
}

/// A config: `events.jsonl` of tenant `acme` → `archive` (a file) and `dead` (`dead_sink`).
fn config(dir: &Path, dead_sink: &str, extra: &str) -> PathBuf {
    let d = dir.display();
    let cfg = dir.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {d}/state\n{extra}sinks:\n  archive: {{type: file, path: \"{d}/archive.jsonl\"}}\n  dead:\n{dead_sink}    health: {{interval: 1s}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: events, type: file, path: \"{d}/events.jsonl\", decoder: json, poll_interval: 20ms}}\n    sinks: [archive, dead]\n"
        ),
    )
    .unwrap();
    cfg
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    SplunkHec,
    Elasticsearch,
    SyslogTcp,
    Idmefv2Http,
}

impl Kind {
    /// The sink's settings (indented for `dead:`), pointing at `addr`.
    fn sink(self, addr: SocketAddr) -> String {
        match self {
            Kind::SplunkHec => {
                format!(
                    "    type: splunk_hec\n    url: http://{addr}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    format: raw\n"
                )
            }
            Kind::Elasticsearch => format!("    type: elasticsearch\n    url: http://{addr}\n    index: dead\n    format: raw\n"),
            Kind::SyslogTcp => {
                format!("    type: syslog\n    address: \"{addr}\"\n    transport: tcp\n    framing: newline\n    format: raw\n")
            }
            Kind::Idmefv2Http => format!("    type: idmefv2_http\n    url: http://{addr}/\n"),
        }
    }

    /// Starts the destination on `addr`; returns how many distinct events it received so far.
    async fn start(self, addr: SocketAddr) -> Box<dyn Fn() -> usize> {
        match self {
            Kind::SplunkHec => {
                let hec = HecEmulator::start_on(addr, HecConfig::default()).await.unwrap();
                Box::new(move || hec.events().iter().map(|e| e["event"]["n"].as_u64()).collect::<HashSet<_>>().len())
            }
            Kind::Elasticsearch => {
                let es = EsEmulator::start_on(addr, EsConfig::default()).await.unwrap();
                Box::new(move || es.doc_count())
            }
            Kind::SyslogTcp => {
                let received = Arc::new(Mutex::new(HashSet::new()));
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                let seen = received.clone();
                tokio::spawn(async move {
                    while let Ok((conn, _)) = listener.accept().await {
                        let seen = seen.clone();
                        tokio::spawn(async move {
                            use tokio::io::AsyncBufReadExt;
                            let mut lines = tokio::io::BufReader::new(conn).lines();
                            while let Ok(Some(line)) = lines.next_line().await {
                                // The raw event is the message body, after the structured data.
                                let raw: serde_json::Value = serde_json::from_str(&line[line.find('{').unwrap()..]).unwrap();
                                seen.lock().unwrap().insert(raw["n"].as_u64().unwrap());
                            }
                        });
                    }
                });
                Box::new(move || received.lock().unwrap().len())
            }
            Kind::Idmefv2Http => {
                let received = Arc::new(Mutex::new(HashSet::new()));
                let seen = received.clone();
                let app = axum::Router::new().fallback(move |method: axum::http::Method, body: axum::body::Bytes| {
                    let seen = seen.clone();
                    async move {
                        if method != axum::http::Method::POST {
                            return axum::http::StatusCode::METHOD_NOT_ALLOWED;
                        }
                        let message: serde_json::Value = serde_json::from_slice(&body).unwrap();
                        seen.lock().unwrap().insert(message["ID"].as_str().unwrap().to_string());
                        axum::http::StatusCode::OK
                    }
                });
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
                Box::new(move || received.lock().unwrap().len())
            }
        }
    }
}

/// The file sink has every line within seconds while `kind`'s destination refuses connections;
/// the dead sink holds them all in its outbox and delivers them once the destination is up.
async fn a_dead_destination_holds_up_nothing(kind: Kind) {
    // Bound and released at once: connections to it are refused, and no other test's port-0
    // bind can take it in the meantime.
    let addr = sluice_emulators::ports::outside_ephemeral_range();
    let dir = tempfile::tempdir().unwrap();
    write_events(&dir.path().join("events.jsonl"), 0..LINES);
    let cfg = config(dir.path(), &kind.sink(addr), "");
    let archive = dir.path().join("archive.jsonl");
    let began = Instant::now();
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    wait_until(
        Duration::from_secs(30),
        || count_lines(&archive) >= LINES,
        || format!("{kind:?} down: the file sink got {} of {LINES}\n{}", count_lines(&archive), sluice.log_text()),
    );
    let took = began.elapsed();
    eprintln!("{kind:?} down: the file sink had all {LINES} lines {:.2} s after start", took.as_secs_f64());
    assert!(took < Duration::from_secs(10), "{kind:?} down held the file sink up for {took:?}");
    wait_until(
        Duration::from_secs(10),
        || {
            let s = &status_json(&cfg)["dead"];
            s["pending"].as_u64() == Some(LINES as u64) && s["health"] == "failed"
        },
        || format!("{kind:?}: {}", status_json(&cfg)["dead"]),
    );

    // The destination comes up on the same address: the outbox drains.
    let received = kind.start(addr).await;
    let up = Instant::now();
    wait_until(
        Duration::from_secs(60),
        || received() >= LINES,
        || format!("{kind:?} back: received {} of {LINES}; status {}", received(), status_json(&cfg)["dead"]),
    );
    eprintln!("{kind:?} back: all {LINES} events delivered {:.2} s after it came up", up.elapsed().as_secs_f64());
    wait_until(Duration::from_secs(20), || status_json(&cfg)["dead"]["pending"].as_u64() == Some(0), || "outbox empty".into());
    assert_eq!(sluice.terminate(), 0);
    assert_eq!(received(), LINES);
    assert_eq!(count_lines(&archive), LINES, "the file sink got each line once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn splunk_hec_down_holds_up_nothing_and_catches_up() {
    a_dead_destination_holds_up_nothing(Kind::SplunkHec).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elasticsearch_down_holds_up_nothing_and_catches_up() {
    a_dead_destination_holds_up_nothing(Kind::Elasticsearch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_tcp_down_holds_up_nothing_and_catches_up() {
    a_dead_destination_holds_up_nothing(Kind::SyslogTcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idmefv2_http_down_holds_up_nothing_and_catches_up() {
    a_dead_destination_holds_up_nothing(Kind::Idmefv2Http).await;
}

/// An Elasticsearch sink whose URL holds a password (from a secret file) while the cluster is
/// down: the password is in no log line (at debug level), no `sluice status`, no API answer; once
/// the cluster is up, the URL's credentials are what authenticates the requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_a_sink_url_appears_nowhere() {
    const PASSWORD: &str = "Hunter2@very-SECRET";
    let addr = sluice_emulators::ports::outside_ephemeral_range();
    let api_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("es.secret"), format!("{PASSWORD}\n")).unwrap();
    write_events(&dir.path().join("events.jsonl"), 0..LINES);
    let sink =
        format!("    type: elasticsearch\n    url: \"http://elastic:${{file:es.secret}}@{addr}\"\n    index: dead\n    format: raw\n");
    let cfg = config(dir.path(), &sink, &format!("api: {{listen: \"127.0.0.1:{api_port}\"}}\n"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["token", "create", "--role", "admin", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let sluice = Sluice::start_with(&cfg, &dir.path().join("sluice.log"), &["--log-level", "debug"]);
    wait_until(Duration::from_secs(30), || count_lines(&dir.path().join("archive.jsonl")) >= LINES, || sluice.log_text());
    wait_until(
        Duration::from_secs(20),
        || {
            let s = &status_json(&cfg)["dead"];
            s["pending"].as_u64() == Some(LINES as u64) && s["last_error"].is_string() && s["health_reason"].is_string()
        },
        || format!("{}", status_json(&cfg)["dead"]),
    );
    let secret_free = |what: &str, text: &str| {
        assert!(!text.contains("very-SECRET") && !text.contains("Hunter2"), "{what} shows the password:\n{text}");
    };
    let status = status_json(&cfg);
    eprintln!("last error: {}", status["dead"]["last_error"]);
    secret_free("sluice status --json", &status.to_string());
    let table = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["status", "-c"]).arg(&cfg).output().unwrap();
    secret_free("sluice status", &String::from_utf8_lossy(&table.stdout));
    let http = reqwest::Client::new();
    for path in ["/api/v1/sinks", "/api/v1/siem/health"] {
        let response = http.get(format!("http://127.0.0.1:{api_port}{path}")).bearer_auth(&token).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        let body = response.text().await.unwrap();
        assert!(body.contains("\"dead\""), "{path}: {body}");
        secret_free(path, &body);
    }

    // The cluster comes up, wanting the URL's credentials as HTTP Basic.
    let es =
        EsEmulator::start_on(addr, EsConfig { basic: Some(("elastic".into(), PASSWORD.into())), ..EsConfig::default() }).await.unwrap();
    wait_until(
        Duration::from_secs(60),
        || es.doc_count() >= LINES,
        || format!("{} of {LINES}: {}", es.doc_count(), status_json(&cfg)["dead"]),
    );
    assert_eq!(sluice.terminate(), 0);
    let log = std::fs::read_to_string(dir.path().join("sluice.log")).unwrap();
    assert!(log.contains("sink write failed"), "the failure is logged:\n{log}");
    secret_free("the log", &log);
}
