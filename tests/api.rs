//! The REST API through real HTTP against a running `sluice run`: the authorization matrix,
//! ingest and the Wazuh webhook (durable before 200, deduplicated), alerts, usage, tokens,
//! limits, and the OpenAPI document.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Sluice, count_lines, wait_until};
use reqwest::StatusCode;
use serde_json::{Value, json};

struct Api {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    cfg: PathBuf,
    url: String,
    sluice: Option<Sluice>,
    http: reqwest::Client,
    open_files: Option<u32>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn token(cfg: &Path, role: &str, tenant: Option<&str>) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.args(["token", "create", "-c"]).arg(cfg).args(["--role", role]);
    if let Some(t) = tenant {
        cmd.args(["--tenant", t]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Api {
    fn start(max_body: usize) -> Api {
        Api::start_with(&format!(", max_body_bytes: {max_body}"), "", None)
    }

    /// `api_keys` go into the `api:` map after `listen`, `top` before it; `open_files` runs
    /// sluice under `ulimit -n`.
    fn start_with(api_keys: &str, top: &str, open_files: Option<u32>) -> Api {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let port = free_port();
        let cfg = d.join("sluice.yml");
        std::fs::write(
            &cfg,
            format!(
                "state_dir: {s}/state\n{top}api: {{listen: \"127.0.0.1:{port}\"{api_keys}}}\nsinks:\n  acme-out: {{type: file, path: \"{s}/acme.jsonl\", format: event}}\n  globex-out: {{type: file, path: \"{s}/globex.jsonl\", format: event}}\ntenants:\n  - {{name: acme, sinks: [acme-out]}}\n  - {{name: globex, sinks: [globex-out]}}\n",
                s = d.display()
            ),
        )
        .unwrap();
        let mut api =
            Api { url: format!("http://127.0.0.1:{port}"), _dir: dir, dir: d, cfg, sluice: None, http: reqwest::Client::new(), open_files };
        api.restart();
        api
    }

    fn restart(&mut self) {
        let log = self.dir.join("sluice.log");
        let sluice = match self.open_files {
            None => Sluice::start(&self.cfg, &log),
            Some(n) => {
                let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
                let child = Command::new("sh")
                    .arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" run -c \"$1\" --log-format json"))
                    .arg(env!("CARGO_BIN_EXE_sluice"))
                    .arg(&self.cfg)
                    .env_remove("RUST_LOG")
                    .stdout(std::process::Stdio::null())
                    .stderr(log_file)
                    .spawn()
                    .unwrap();
                Sluice { child, log }
            }
        };
        let url = self.url.clone();
        wait_until(
            Duration::from_secs(20),
            || std::net::TcpStream::connect(url.trim_start_matches("http://")).is_ok(),
            || sluice.log_text(),
        );
        self.sluice = Some(sluice);
    }

    fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }

    async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&str>) -> (StatusCode, String) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("Content-Type", "application/json").body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.text().await.unwrap())
    }
}

fn alert(id: &str, agent: &str, level: u64) -> String {
    json!({
        "timestamp": "2024-02-14T22:02:34.461+0500",
        "rule": {"level": level, "description": "sshd: Attempt to login using a non-existent user", "id": "5710", "groups": ["syslog", "sshd"]},
        "agent": {"id": agent, "name": "web-1", "ip": "10.0.1.85"},
        "manager": {"name": "wazuh"},
        "id": id,
        "full_log": "Failed password for invalid user admin from 123.20.109.89 port 49286 ssh2",
        "data": {"srcip": "123.20.109.89", "srcuser": "admin"},
        "location": "/var/log/auth.log"
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_matrix_and_no_cross_tenant_data() {
    let api = Api::start(1 << 20);
    let cfg = &api.cfg;
    let tokens: Vec<(&str, Option<String>)> = vec![
        ("none", None),
        ("bad", Some("sluice_00000000_notavalidtoken".to_string())),
        ("admin", Some(token(cfg, "admin", None))),
        ("reader", Some(token(cfg, "reader", None))),
        ("ingest", Some(token(cfg, "ingest", None))),
        ("acme-admin", Some(token(cfg, "admin", Some("acme")))),
        ("acme-reader", Some(token(cfg, "reader", Some("acme")))),
        ("acme-ingest", Some(token(cfg, "ingest", Some("acme")))),
        ("globex-reader", Some(token(cfg, "reader", Some("globex")))),
    ];
    // Seed data for acme, so "no cross-tenant data" has something to leak.
    let acme_ingest = tokens[7].1.clone().unwrap();
    let (s, b) = api.call("POST", "/wazuh-alert", Some(&acme_ingest), Some(&alert("1707930154.1", "1", 10))).await;
    assert_eq!(s, StatusCode::OK, "{b}");

    let ndjson = "{\"msg\":\"hello\"}";
    let new_token = "{\"role\":\"reader\"}";
    let globex_alert = alert("1707930154.2", "2", 3);
    // endpoint → expected status per token, in the order of `tokens`.
    let matrix: Vec<(&str, &str, Option<&str>, [u16; 9])> = vec![
        ("GET", "/health", None, [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("GET", "/api/openapi.json", None, [200, 200, 200, 200, 200, 200, 200, 200, 200]),
        ("GET", "/metrics", None, [401, 401, 200, 200, 403, 403, 403, 403, 403]),
        ("GET", "/api/v1/sinks", None, [401, 401, 200, 200, 403, 403, 403, 403, 403]),
        ("GET", "/api/alerts?tenant=acme", None, [401, 401, 200, 200, 403, 200, 200, 403, 404]),
        ("GET", "/api/alerts", None, [401, 401, 400, 400, 403, 200, 200, 403, 200]),
        ("GET", "/api/v1/tenants/acme/usage", None, [401, 401, 200, 200, 403, 200, 200, 403, 404]),
        ("GET", "/api/v1/tokens", None, [401, 401, 200, 403, 403, 200, 403, 403, 403]),
        ("POST", "/api/v1/tokens", Some(new_token), [401, 401, 201, 403, 403, 201, 403, 403, 403]),
        ("POST", "/api/v1/ingest/app?tenant=acme", Some(ndjson), [401, 401, 200, 403, 200, 200, 403, 200, 403]),
        ("POST", "/api/v1/ingest/app", Some(ndjson), [401, 401, 400, 403, 400, 200, 403, 200, 403]),
        ("POST", "/wazuh-alert?tenant=globex", Some(&globex_alert), [401, 401, 200, 403, 200, 404, 403, 404, 403]),
        ("DELETE", "/api/v1/tokens/ffffffff", None, [401, 401, 404, 403, 403, 404, 403, 403, 403]),
        ("GET", "/api/v1/siem/connections", None, [401, 401, 200, 200, 403, 200, 200, 403, 200]),
        ("GET", "/api/v1/siem/statistics", None, [401, 401, 200, 200, 403, 200, 200, 403, 200]),
        ("GET", "/api/v1/siem/health", None, [401, 401, 200, 200, 403, 200, 200, 403, 200]),
        ("POST", "/api/v1/siem/connections", Some("{}"), [401, 401, 400, 403, 403, 400, 403, 403, 403]),
        ("POST", "/api/v1/siem/retry-failed", None, [401, 401, 200, 403, 403, 200, 403, 403, 403]),
        ("GET", "/api/v1/siem/connections/SIEM-CONN-00000000", None, [401, 401, 404, 404, 403, 404, 404, 403, 404]),
        ("GET", "/api/agents", None, [401, 401, 400, 400, 403, 200, 200, 403, 200]),
        ("GET", "/api/agents/001/alerts", None, [401, 401, 400, 400, 403, 200, 200, 403, 200]),
        ("GET", "/api/agents/001/software?tenant=acme", None, [401, 401, 404, 404, 403, 404, 404, 403, 404]),
        ("GET", "/api/v1/nothing-here", None, [404, 404, 404, 404, 404, 404, 404, 404, 404]),
    ];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &matrix {
        for ((who, tok), want) in tokens.iter().zip(expected) {
            let (status, text) = api.call(method, path, tok.as_deref(), *body).await;
            if status.as_u16() != *want {
                wrong.push(format!("{method} {path} as {who}: {status} (expected {want}) {text}"));
            }
            // Whatever the status, acme's alert never shows to a token of another tenant.
            if who.starts_with("globex") {
                assert!(!text.contains("1707930154.1"), "{method} {path} leaked acme data to {who}: {text}");
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // Failed authentication is limited per address, and logged without the token.
    for _ in 0..30 {
        api.call("GET", "/api/v1/sinks", Some("sluice_deadbeef_secretpart"), None).await;
    }
    let (status, _) = api.call("GET", "/api/v1/sinks", Some(tokens[2].1.as_deref().unwrap()), None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let log = api.sluice.as_ref().unwrap().log_text();
    assert!(log.contains("deadbeef") && !log.contains("secretpart"), "the log names the token id only");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_and_wazuh_alerts_are_durable_before_200_and_deduplicated() {
    let api = Api::start(64 * 1024);
    let ingest = token(&api.cfg, "ingest", Some("acme"));
    let reader = token(&api.cfg, "reader", Some("acme"));
    let acme = api.dir.join("acme.jsonl");

    // NDJSON: on disk (fsynced) when the 200 arrives.
    let body: String = (0..100).map(|i| format!("{{\"n\":{i},\"severity\":\"high\"}}\n")).collect();
    let (s, b) = api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some(&body)).await;
    assert_eq!((s, serde_json::from_str::<Value>(&b).unwrap()["accepted"].as_u64()), (StatusCode::OK, Some(100)), "{b}");
    assert_eq!(count_lines(&acme), 100);
    // A JSON array works too; a bad line refuses the whole batch, naming it.
    let (s, _) = api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some("[{\"n\":100},{\"n\":101}]")).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some("{\"n\":1}\n{\"n\":\n{\"n\":3}\n")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("event 2"), "{b}");
    assert_eq!(count_lines(&acme), 102, "nothing of a refused batch is taken");
    // Too large: 413.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    assert_eq!(api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some(&big)).await.0, StatusCode::PAYLOAD_TOO_LARGE);
    // Unknown fields in management payloads are named.
    let admin = token(&api.cfg, "admin", None);
    let (s, b) = api.call("POST", "/api/v1/tokens", Some(&admin), Some("{\"role\":\"reader\",\"tenat\":\"acme\"}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("tenat"), "{b}");

    // The Wazuh webhook: posted twice, stored once, routed once; the Shuffle wrapper works too.
    let a = alert("1707930154.2696", "7", 10);
    for _ in 0..2 {
        let (s, b) = api.call("POST", "/wazuh-alert", Some(&ingest), Some(&a)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (_, b) = api.call("POST", "/wazuh-alert", Some(&ingest), Some(&a)).await;
    let r: Value = serde_json::from_str(&b).unwrap();
    assert_eq!((r["duplicate"].as_bool(), r["agent_id"].as_str(), r["risk_score"].as_u64()), (Some(true), Some("007"), Some(75)));
    let wrapped =
        json!({"severity": 2, "title": "x", "all_fields": serde_json::from_str::<Value>(&alert("1707930155.1", "7", 3)).unwrap()})
            .to_string();
    assert_eq!(api.call("POST", "/wazuh-alert", Some(&ingest), Some(&wrapped)).await.0, StatusCode::OK);
    assert_eq!(api.call("POST", "/wazuh-alert", Some(&ingest), Some("{\"rule\":{}}")).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(count_lines(&acme), 104, "two distinct alerts routed once each");

    // Query: filters and paging by cursor.
    for i in 0..25 {
        let (s, _) = api.call("POST", "/wazuh-alert", Some(&ingest), Some(&alert(&format!("1707930200.{i}"), "9", 12))).await;
        assert_eq!(s, StatusCode::OK);
    }
    let (_, b) = api.call("GET", "/api/alerts?agent_id=007", Some(&reader), None).await;
    let page: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(page["alerts"].as_array().unwrap().len(), 2, "{page}");
    assert_eq!(page["alerts"][0]["alert"]["sluice"]["agent_id"], "007");
    let (_, b) = api.call("GET", "/api/alerts?risk_score=90", Some(&reader), None).await;
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["alerts"].as_array().unwrap().len(), 25, "rule level 12 is critical (95)");
    let mut seen = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (_, b) = api.call("GET", &format!("/api/alerts?limit=7{cursor}"), Some(&reader), None).await;
        let page: Value = serde_json::from_str(&b).unwrap();
        for a in page["alerts"].as_array().unwrap() {
            assert!(seen.insert(a["alert_id"].as_str().unwrap().to_string()), "a page repeated an alert");
        }
        match page["next"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 27);
    let (s, _) = api.call("GET", "/api/alerts?since=yesterday", Some(&reader), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Usage: events, bytes and API calls per day, as JSON and CSV.
    let (_, b) = api.call("GET", "/api/v1/tenants/acme/usage", Some(&reader), None).await;
    let rows: Value = serde_json::from_str(&b).unwrap();
    assert!(rows[0]["events"].as_u64().unwrap() >= 129, "{rows}");
    assert!(rows[0]["api_calls"].as_u64().unwrap() >= 30, "{rows}");
    let (s, csv) = api.call("GET", "/api/v1/tenants/acme/usage?format=csv", Some(&reader), None).await;
    assert_eq!(s, StatusCode::OK);
    assert!(csv.starts_with("tenant,day,events,bytes,api_calls\nacme,"), "{csv}");

    // Metrics per tenant, source and sink.
    let (s, text) = api.call("GET", "/metrics", Some(&admin), None).await;
    assert_eq!(s, StatusCode::OK);
    for needle in [
        "sluice_events_in_total{",
        "tenant=\"acme\"",
        "source=\"wazuh-webhook\"",
        "sluice_sink_events_total{sink=\"acme-out\"}",
        "sluice_sink_outbox_events{sink=\"acme-out\"} 0",
        "sluice_sink_last_success_timestamp_seconds{sink=\"acme-out\"}",
    ] {
        assert!(text.contains(needle), "no {needle} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_ingest_loses_no_acknowledged_request() {
    let mut api = Api::start(1 << 20);
    let ingest = token(&api.cfg, "ingest", Some("acme"));
    let url = format!("{}/api/v1/ingest/app", api.url);
    let mut senders = Vec::new();
    for worker in 0..4 {
        let (url, ingest) = (url.clone(), ingest.clone());
        senders.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for n in 0..100_000 {
                let id = format!("w{worker}-{n}");
                let body: String = (0..20).map(|k| format!("{{\"req\":\"{id}\",\"k\":{k}}}\n")).collect();
                match http.post(&url).bearer_auth(&ingest).body(body).send().await {
                    Ok(r) if r.status() == StatusCode::OK => acknowledged.push(id),
                    _ => break,
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    api.sluice.take().unwrap().kill9();
    let mut acknowledged = Vec::new();
    for s in senders {
        acknowledged.extend(s.await.unwrap());
    }
    assert!(acknowledged.len() > 20, "only {} requests went through", acknowledged.len());
    api.restart();
    let text = std::fs::read_to_string(api.dir.join("acme.jsonl")).unwrap();
    let mut events_per_request = std::collections::HashMap::<String, usize>::new();
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: a torn line {line:?}"));
        *events_per_request.entry(v["event"]["req"].as_str().unwrap().to_string()).or_default() += 1;
    }
    for id in &acknowledged {
        assert_eq!(events_per_request.get(id), Some(&20), "request {id} got 200 but is not whole in the output");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let api = Api::start(1 << 20);
    let (s, b) = api.call("GET", "/api/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    let doc: Value = serde_json::from_str(&b).unwrap();
    let paths: BTreeSet<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let expected: BTreeSet<&str> = [
        "/health",
        "/metrics",
        "/api/v1/sinks",
        "/api/alerts",
        "/api/v1/tenants/{tenant}/usage",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/ingest/{source}",
        "/wazuh-alert",
        "/api/v1/siem/connections",
        "/api/v1/siem/connections/{id}",
        "/api/v1/siem/connections/{id}/test",
        "/api/v1/siem/export",
        "/api/v1/siem/statistics",
        "/api/v1/siem/health",
        "/api/v1/siem/process-pending",
        "/api/v1/siem/retry-failed",
        "/api/agents",
        "/api/agents/{id}/syscheck",
        "/api/agents/{id}/software",
        "/api/agents/{id}/osinfo",
        "/api/agents/{id}/alerts",
    ]
    .into();
    assert_eq!(paths, expected);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    // Every documented path is served (no 404 from the fallback).
    for path in &paths {
        let concrete = path.replace("{tenant}", "acme").replace("{id}", "x").replace("{source}", "s");
        let (status, body) = api.call("GET", &concrete, None, None).await;
        assert!(status != StatusCode::NOT_FOUND || !body.contains("no such endpoint"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wazuh_integration_script_delivers_an_alert_file() {
    let api = Api::start(1 << 20);
    let ingest = token(&api.cfg, "ingest", Some("globex"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/wazuh/custom-sluice");
    let file = api.dir.join("1707930154-123.alert");
    std::fs::write(&file, alert("1707930154.77", "3", 7) + "\n").unwrap();
    let hook = format!("{}/wazuh-alert", api.url);
    let run = |token: &str| {
        let out = Command::new("sh").arg(&script).arg(&file).arg(token).arg(&hook).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (ok, err) = tokio::task::block_in_place(|| run(&ingest));
    assert!(ok, "{err}");
    assert_eq!(count_lines(&api.dir.join("globex.jsonl")), 1);
    // A wrong token is a failure Wazuh's integrator sees (exit status), not a silent loss.
    let (ok, err) = tokio::task::block_in_place(|| run("sluice_00000000_wrong"));
    assert!(!ok);
    assert!(err.contains("401"), "{err}");
}

/// schemathesis (PyPI) generates requests from `/api/openapi.json`; none may get a 5xx.
/// Without schemathesis installed the test says so and passes, unless
/// `SLUICE_REQUIRE_SCHEMATHESIS=1` (as CI sets it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error() {
    let found = Command::new("schemathesis").arg("--version").output().is_ok_and(|o| o.status.success());
    if !found {
        assert!(std::env::var_os("SLUICE_REQUIRE_SCHEMATHESIS").is_none(), "schemathesis is required: pip install schemathesis");
        eprintln!("SKIPPED: schemathesis is not installed (pip install schemathesis)");
        return;
    }
    let api = Api::start(1 << 20);
    let admin = token(&api.cfg, "admin", None);
    let schema = format!("{}/api/openapi.json", api.url);
    let out = tokio::task::block_in_place(|| {
        Command::new("schemathesis")
            .args(["run", &schema, "--checks", "not_a_server_error", "--max-examples", "25", "--seed", "1"])
            .args(["-H", &format!("Authorization: Bearer {admin}")])
            .env("NO_COLOR", "1")
            // Its cache goes to the test's scratch directory, not the source tree.
            .current_dir(&api.dir)
            .output()
            .unwrap()
    });
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found problems:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(!api.sluice.as_ref().unwrap().log_text().contains("API request failed"), "internal errors were logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_connections_are_live_sinks_that_survive_restarts() {
    use sluice_emulators::splunk_hec::{HecConfig, HecEmulator};
    let hec = HecEmulator::start(HecConfig::default()).await.unwrap();
    let port = hec.url().rsplit(':').next().unwrap().to_string();
    let mut api = Api::start(1 << 20);
    let admin = token(&api.cfg, "admin", Some("acme"));
    let ingest = token(&api.cfg, "ingest", Some("acme"));
    let hec_token = HecConfig::default().token;

    // The original SIEM integration module's payload, as its scripts post it.
    let payload = json!({
        "name": "Splunk prod", "siem_type": "splunk", "endpoint": "127.0.0.1", "port": port.parse::<u16>().unwrap(),
        "use_ssl": false, "verify_ssl": true, "auth_type": "token", "auth_token": hec_token, "index_name": "security",
        "source_type": "_json", "enabled_event_types": ["alert", "security_event"], "batch_size": 100,
        "batch_interval_seconds": 0, "enabled": true
    })
    .to_string();
    let (s, b) = api.call("POST", "/api/v1/siem/connections", Some(&admin), Some(&payload)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(!b.contains(&hec_token), "the secret is write-only: {b}");
    let created: Value = serde_json::from_str(&b).unwrap();
    let id = created["connection_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("SIEM-CONN-"));

    // Live at once: the tenant's events go to it (alerts only, as enabled_event_types says).
    let events = "{\"title\":\"a\",\"kind\":\"alert\",\"severity\":\"high\"}\n{\"title\":\"b\",\"severity\":\"low\"}\n";
    let (s, b) = api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some(events)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    wait_until(Duration::from_secs(20), || hec.event_count() >= 1, || "the connection got nothing".into());
    let (_, b) = api.call("GET", "/api/v1/siem/connections", Some(&admin), None).await;
    let list: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!b.contains(&hec_token));
    let (_, b) = api.call("POST", &format!("/api/v1/siem/connections/{id}/test"), Some(&admin), None).await;
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["success"], true, "{b}");

    // It survives a restart, and the immediate export reaches it.
    api.sluice.take().unwrap().terminate();
    api.restart();
    let before = hec.event_count();
    let export = json!({"event_type": "alert", "event_source": "mac-agent", "event_data": {"title": "exported", "kind": "alert", "severity": "critical"}}).to_string();
    let (s, b) = api.call("POST", "/api/v1/siem/export", Some(&admin), Some(&export)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["results"][&id], true, "{b}");
    wait_until(Duration::from_secs(20), || hec.event_count() > before, || "export after restart".into());

    let (_, b) = api.call("GET", "/api/v1/siem/statistics", Some(&admin), None).await;
    let stats: Value = serde_json::from_str(&b).unwrap();
    assert!(stats["sent_events"].as_u64().unwrap() >= 1 && stats["active_connections"].as_u64().unwrap() >= 2, "{stats}");
    let (_, b) = api.call("GET", "/api/v1/siem/health", Some(&admin), None).await;
    assert!(serde_json::from_str::<Value>(&b).unwrap()["connections"][&id]["connection_id"] == id.as_str(), "{b}");

    // Validation names the field; unknown fields are refused by name.
    let (s, b) = api.call("PUT", &format!("/api/v1/siem/connections/{id}"), Some(&admin), Some("{\"batch_size\": 0}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("batch_size"), "{b}");
    let (s, b) = api.call("PUT", &format!("/api/v1/siem/connections/{id}"), Some(&admin), Some("{\"batch_sise\": 5}")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(b.contains("batch_sise"), "{b}");

    // Disabled, then deleted: the sink stops.
    let (s, _) = api.call("PUT", &format!("/api/v1/siem/connections/{id}"), Some(&admin), Some("{\"enabled\": false}")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, b) = api.call("GET", "/api/v1/siem/health", Some(&admin), None).await;
    assert!(serde_json::from_str::<Value>(&b).unwrap()["connections"].get(&id).is_none(), "{b}");
    let (s, _) = api.call("DELETE", &format!("/api/v1/siem/connections/{id}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = api.call("GET", &format!("/api/v1/siem/connections/{id}"), Some(&admin), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wazuh_inventory_is_queryable_per_tenant_with_paging() {
    use sluice_emulators::wazuh::{WazuhConfig, WazuhEmulator};
    let wazuh = WazuhEmulator::start(WazuhConfig::default()).await.unwrap();
    wazuh.generate(12, 7, 4);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let d = d.as_path();
    let port = free_port();
    let cfg = d.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {s}/state\napi: {{listen: \"127.0.0.1:{port}\"}}\nsinks:\n  out: {{type: file, path: \"{s}/out.jsonl\"}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: wazuh, type: wazuh_api, url: \"{url}\", username: wazuh, password: wazuh, interval: 1h, page_size: 5}}\n    sinks: [out]\n  - {{name: globex, sinks: [out]}}\n",
            s = d.display(),
            url = wazuh.url()
        ),
    )
    .unwrap();
    let reader = token(&cfg, "reader", Some("acme"));
    let other = token(&cfg, "reader", Some("globex"));
    let api = Api {
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
        dir: d.to_path_buf(),
        cfg: cfg.clone(),
        sluice: None,
        http: reqwest::Client::new(),
        open_files: None,
    };
    let sluice = Sluice::start(&cfg, &d.join("sluice.log"));
    wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), || sluice.log_text());
    let collected = || async {
        let (s, b) = api.call("GET", "/api/agents?limit=100", Some(&reader), None).await;
        s == StatusCode::OK && serde_json::from_str::<Value>(&b).unwrap()["items"].as_array().unwrap().len() == 13
    };
    let started = std::time::Instant::now();
    while !collected().await {
        assert!(started.elapsed() < Duration::from_secs(60), "the inventory was not collected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give the last agent's inventory its transaction.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Paging by cursor: every agent once.
    let mut ids = BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let (s, b) = api.call("GET", &format!("/api/agents?limit=5{cursor}"), Some(&reader), None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let page: Value = serde_json::from_str(&b).unwrap();
        for a in page["items"].as_array().unwrap() {
            assert!(ids.insert(a["id"].as_str().unwrap().to_string()));
        }
        match page["next"].as_str() {
            Some(n) => cursor = format!("&cursor={}", urlencode(n)),
            None => break,
        }
    }
    assert_eq!(ids.len(), 13);
    let count = |b: &str| serde_json::from_str::<Value>(b).unwrap()["items"].as_array().unwrap().len();
    let (_, b) = api.call("GET", "/api/agents/001/software", Some(&reader), None).await;
    assert_eq!(count(&b), 7, "{b}");
    let (_, b) = api.call("GET", "/api/agents/001/syscheck", Some(&reader), None).await;
    assert_eq!(count(&b), 4, "{b}");
    let (_, b) = api.call("GET", "/api/agents/001/osinfo", Some(&reader), None).await;
    assert_eq!(serde_json::from_str::<Value>(&b).unwrap().as_array().unwrap().len(), 1, "{b}");
    assert_eq!(api.call("GET", "/api/agents?cursor=garbage", Some(&reader), None).await.0, StatusCode::BAD_REQUEST);

    // Another tenant sees none of it.
    let (s, b) = api.call("GET", "/api/agents", Some(&other), None).await;
    assert_eq!((s, count(&b)), (StatusCode::OK, 0));
    assert_eq!(api.call("GET", "/api/agents/001/software", Some(&other), None).await.0, StatusCode::NOT_FOUND);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_serves_https_with_its_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &rcgen::Issuer::from_params(&ca_params, &ca_key))
        .unwrap();
    std::fs::write(d.join("api.pem"), cert.pem()).unwrap();
    std::fs::write(d.join("api.key"), key.serialize_pem()).unwrap();
    let port = free_port();
    let cfg = d.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {s}/state\napi: {{listen: \"127.0.0.1:{port}\", tls: {{cert_file: \"{s}/api.pem\", key_file: \"{s}/api.key\"}}}}\nsinks:\n  out: {{type: file, path: \"{s}/out.jsonl\"}}\ntenants:\n  - {{name: acme, sinks: [out]}}\n",
            s = d.display()
        ),
    )
    .unwrap();
    let reader = token(&cfg, "reader", Some("acme"));
    let sluice = Sluice::start(&cfg, &d.join("sluice.log"));
    wait_until(Duration::from_secs(20), || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(), || sluice.log_text());
    let client =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(ca.pem().as_bytes()).unwrap()).build().unwrap();
    let url = format!("https://localhost:{port}");
    let r = client.get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client.get(format!("{url}/api/alerts")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // A client that does not trust the certificate gets no answer at all.
    assert!(reqwest::Client::new().get(format!("{url}/health")).send().await.is_err());
    // Plain HTTP on the TLS port is refused by the handshake, not served.
    assert!(reqwest::Client::new().get(format!("http://127.0.0.1:{port}/health")).send().await.is_err());
}

/// A request line and half a header, never finished.
const PARTIAL_REQUEST: &[u8] = b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";

/// Opens `n` connections to `addr` that never complete a request: a third send nothing, a third
/// part of a request, a third trickle a header byte every 300 ms. Each one's task answers when
/// the server closed it: how long after it was opened (None: not within `wait`).
async fn slow_clients(addr: &str, n: usize, wait: Duration) -> Vec<tokio::task::JoinHandle<Option<Duration>>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut clients = Vec::new();
    for i in 0..n {
        let opened = std::time::Instant::now();
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        if i % 3 != 0 {
            write.write_all(PARTIAL_REQUEST).await.unwrap();
        }
        let trickle = i % 3 == 2;
        clients.push(tokio::spawn(async move {
            let writer = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    if trickle && write.write_all(b"a").await.is_err() {
                        break;
                    }
                }
            });
            let mut buf = [0u8; 1024];
            let closed = tokio::time::timeout(wait, async {
                loop {
                    match read.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            writer.abort();
            closed.ok().map(|()| opened.elapsed())
        }));
    }
    clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_closed_after_the_header_timeout_while_others_are_served() {
    let api = Api::start_with(", header_timeout: 2s", "", None);
    let n = 600;
    let clients = slow_clients(&api.addr(), n, Duration::from_secs(8)).await;
    // While they hang on, a normal request is answered at once.
    let started = std::time::Instant::now();
    let (s, b) = api.call("GET", "/health", None, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert!(started.elapsed() < Duration::from_secs(1), "a normal request took {:?}", started.elapsed());
    let mut closed_after = Vec::new();
    for c in clients {
        closed_after.push(c.await.unwrap().expect("a slow client was not closed within 8 s"));
    }
    closed_after.sort();
    let (first, last) = (closed_after[0], closed_after[n - 1]);
    eprintln!("{n} slow clients closed after {first:?} … {last:?}");
    assert!(first >= Duration::from_millis(1900), "a slow client was closed before the header timeout: {first:?}");
    assert!(last <= Duration::from_millis(3500), "a slow client was closed only after {last:?}");
    let (s, _) = api.call("GET", "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_limit_are_refused_and_the_api_recovers() {
    use tokio::io::AsyncReadExt;
    let api = Api::start_with(", max_connections: 20, header_timeout: 30s", "", None);
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(tokio::net::TcpStream::connect(api.addr()).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // One more: answered 503 (or cut) at once, not left hanging.
    for _ in 0..5 {
        let started = std::time::Instant::now();
        let mut extra = tokio::net::TcpStream::connect(api.addr()).await.unwrap();
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut answer)).await;
        assert!(read.is_ok(), "a connection beyond the limit was left open");
        let text = String::from_utf8_lossy(&answer);
        assert!(text.is_empty() || text.starts_with("HTTP/1.1 503"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    if let Ok(r) = api.http.get(format!("{}/health", api.url)).timeout(Duration::from_secs(2)).send().await {
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = r.json().await.unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
    // Once they go, the API answers again.
    held.clear();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let r = reqwest::Client::new().get(format!("{}/health", api.url)).timeout(Duration::from_secs(1)).send().await;
        if r.as_ref().is_ok_and(|r| r.status() == StatusCode::OK) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the API did not recover: {r:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = api.sluice.as_ref().unwrap().log_text();
    assert_eq!(log.matches("connection limit reached").count(), 1, "refusals are logged once a second:\n{log}");
    // Clients that never finish a request do not hold up a shutdown for their 30 s.
    for _ in 0..10 {
        let mut slow = tokio::net::TcpStream::connect(api.addr()).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut slow, PARTIAL_REQUEST).await.unwrap();
        held.push(slow);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let mut api = api;
    assert_eq!(api.sluice.take().unwrap().terminate(), 0);
    assert!(started.elapsed() < Duration::from_secs(5), "the shutdown took {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_keep_answering_while_the_api_is_flooded() {
    let metrics_port = free_port();
    // 256 open files: without a limit, the flood takes them all.
    let api = Api::start_with(", header_timeout: 2s", &format!("metrics: {{listen: \"127.0.0.1:{metrics_port}\"}}\n"), Some(256));
    let metrics_url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let quick = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    let ingest = token(&api.cfg, "ingest", Some("acme"));
    let (s, _) = api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some("{\"n\":1}")).await;
    assert_eq!(s, StatusCode::OK);

    let flood = slow_clients(&api.addr(), 400, Duration::from_secs(8)).await;
    let on_metrics = slow_clients(&format!("127.0.0.1:{metrics_port}"), 20, Duration::from_secs(15)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let r = quick.get(&metrics_url).send().await.expect("the metrics listener answers under the flood");
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.text().await.unwrap().contains("sluice_events_in_total"));
    }
    // The flood is closed by the header timeout (or refused at once); then the API answers.
    for c in flood {
        assert!(c.await.unwrap().is_some(), "a slow client of the API was not closed");
    }
    let r = quick.get(format!("{}/health", api.url)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = quick.get(&metrics_url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for c in on_metrics {
        c.abort();
    }
    let log = api.sluice.as_ref().unwrap().log_text();
    let lines = log.lines().count();
    assert!(lines < 50, "{lines} log lines:\n{}", log.lines().take(60).collect::<Vec<_>>().join("\n"));
    assert!(!log.contains("Too many open files"), "the open files ran out:\n{log}");
}

fn json_error(status: StatusCode, body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {body}"));
    assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{status}: {body}");
    v["error"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_also_for_a_too_large_body_or_a_bad_query_string() {
    let api = Api::start(64 * 1024);
    let ingest = token(&api.cfg, "ingest", Some("acme"));
    let reader = token(&api.cfg, "reader", Some("acme"));
    // 413, a bad query string, a bad path, a wrong method: JSON like every other error.
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(70 * 1024));
    let (s, b) = api.call("POST", "/api/v1/ingest/app", Some(&ingest), Some(&big)).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    json_error(s, &b);
    let (s, b) = api.call("GET", "/api/alerts?limit=many", Some(&reader), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(json_error(s, &b).contains("limit"), "{b}");
    let (s, b) = api.call("DELETE", "/health", None, None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    json_error(s, &b);
    let (s, b) = api.call("GET", "/api/v1/tenants/acme/usage?from=2024-01-01&from=2024-01-02", Some(&reader), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    json_error(s, &b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_filter_by_level_words_and_carry_the_word() {
    let api = Api::start(64 * 1024);
    let ingest = token(&api.cfg, "ingest", Some("acme"));
    let reader = token(&api.cfg, "reader", Some("acme"));
    // Wazuh rule levels 12, 10, 6 and 3: critical, high, medium, low.
    for (id, level, word) in
        [("1707930300.1", 12, "critical"), ("1707930300.2", 10, "high"), ("1707930300.3", 6, "medium"), ("1707930300.4", 3, "low")]
    {
        let (s, b) = api.call("POST", "/wazuh-alert", Some(&ingest), Some(&alert(id, "5", level))).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(serde_json::from_str::<Value>(&b).unwrap()["risk_level"], word, "{b}");
    }
    let ids = |body: &str| -> Vec<(String, i64, String)> {
        let page: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
        page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let word = a["risk_level"].as_str().unwrap_or_else(|| panic!("no risk_level in {a}"));
                (a["alert_id"].as_str().unwrap().to_string(), a["risk_score"].as_i64().unwrap(), word.to_string())
            })
            .collect()
    };
    let (s, b) = api.call("GET", "/api/alerts?risk_score=critical", Some(&reader), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(ids(&b), [("1707930300.1".to_string(), 95, "critical".to_string())]);
    let (s, b) = api.call("GET", "/api/alerts?risk_score=high", Some(&reader), None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(ids(&b), [("1707930300.2".to_string(), 75, "high".to_string())], "a level's word is that level exactly");
    let (_, b) = api.call("GET", "/api/alerts?risk_score=low", Some(&reader), None).await;
    assert_eq!(ids(&b), [("1707930300.4".to_string(), 25, "low".to_string())]);
    // Numbers stay a minimum.
    let (_, b) = api.call("GET", "/api/alerts?risk_score=75", Some(&reader), None).await;
    assert_eq!(ids(&b).len(), 2);
    let (_, b) = api.call("GET", "/api/alerts", Some(&reader), None).await;
    let words: BTreeSet<String> = ids(&b).into_iter().map(|(_, _, w)| w).collect();
    assert_eq!(words, BTreeSet::from(["critical", "high", "medium", "low"].map(String::from)));
    // Paging within a level.
    let (_, b) = api.call("GET", "/api/alerts?risk_score=medium&limit=1", Some(&reader), None).await;
    let page: Value = serde_json::from_str(&b).unwrap();
    assert_eq!(ids(&b)[0].2, "medium");
    let next = page["next"].as_str().expect("a cursor after a full page");
    let (_, b) = api.call("GET", &format!("/api/alerts?risk_score=medium&limit=1&cursor={next}"), Some(&reader), None).await;
    assert!(ids(&b).is_empty(), "{b}");
    let (s, b) = api.call("GET", "/api/alerts?risk_score=severe", Some(&reader), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(json_error(s, &b).contains("risk_score"), "{b}");
}
