//! The built-in collectors and user-written `http_pull` definitions end to end: the real binary
//! (`sluice collect`, `sluice run`, `sluice pull`, `sluice check`) against the vendor emulators.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{Sluice, count_lines, wait_until};
use serde_json::Value;
use sluice_emulators::{crowdstrike, knowbe4, okta, snyk, tenable};

const CID: &str = "0123456789abcdef0123456789abcdef";
const ORG: &str = "3f1f2737-d0f0-4222-805d-264bd94b87b0";

struct Vendors {
    cs: crowdstrike::Emulator,
    tenable: tenable::Emulator,
    okta: okta::Emulator,
    snyk: snyk::Emulator,
    kb4: knowbe4::Emulator,
}

const RECORDS: u64 = 700;

async fn vendors() -> Vendors {
    let any = "127.0.0.1:0".parse().unwrap();
    let cs = crowdstrike::Emulator::start(any, Default::default()).await.unwrap();
    cs.add_client("falcon-id", "falcon-secret", CID);
    cs.set_hosts(CID, RECORDS);
    cs.set_vulnerabilities(CID, 2 * RECORDS);
    // Exports finish on the first status poll: the tests wait for nothing.
    let fast = tenable::Options { queued_polls: 0, processing_polls: 0, empty_chunk: true, ..Default::default() };
    let tenable = tenable::Emulator::start(any, fast).await.unwrap();
    tenable.add_keys("tio-access", "tio-secret");
    for kind in [tenable::ExportKind::Vulns, tenable::ExportKind::Assets, tenable::ExportKind::Compliance, tenable::ExportKind::WasVulns] {
        tenable.set_count("tio-access", kind, RECORDS);
    }
    let okta = okta::Emulator::start(any, Default::default()).await.unwrap();
    okta.add_token("okta-token");
    okta.set_users("okta-token", RECORDS, 5);
    let snyk = snyk::Emulator::start(any, Default::default()).await.unwrap();
    snyk.add_token("snyk-token");
    snyk.add_org("snyk-token", ORG, "Acme");
    snyk.set_projects(ORG, 150);
    snyk.set_issues(ORG, RECORDS);
    snyk.set_members(ORG, 12);
    let kb4 = knowbe4::Emulator::start(any, Default::default()).await.unwrap();
    kb4.add_key("kb4-key");
    kb4.set_enrollments("kb4-key", RECORDS);
    Vendors { cs, tenable, okta, snyk, kb4 }
}

impl Vendors {
    /// The original data collectors' variables for all five.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("FALCON_CLIENT_ID", "falcon-id".into()),
            ("FALCON_SECRET", "falcon-secret".into()),
            ("FALCON_BASE_URL", self.cs.url()),
            ("TIO_ACCESS_KEY", "tio-access".into()),
            ("TIO_SECRET_KEY", "tio-secret".into()),
            ("TIO_URL", self.tenable.url()),
            ("OKTA_DOMAIN", self.okta.url()),
            ("OKTA_TOKEN", "okta-token".into()),
            ("SNYK_TOKEN", "snyk-token".into()),
            ("SNYK_ENDPOINT", self.snyk.url()),
            ("KNOWBE4_TOKEN", "kb4-key".into()),
            ("KNOWBE4_ENDPOINT", format!("{}/v1/training/enrollments", self.kb4.url())),
            ("TENANCY", "acme".into()),
        ]
    }
}

/// Runs the binary in `cwd` with only `env` (and PATH) set, off the runtime's threads so the
/// emulators keep serving.
async fn sluice(cwd: &Path, args: &[&str], env: Vec<(&'static str, String)>) -> Output {
    let (cwd, args) = (cwd.to_path_buf(), args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(&args)
            .current_dir(&cwd)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env)
            .output()
            .expect("run sluice")
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A file the original's `STORE_FILE` default names: a JSON array of records.
fn snapshot(dir: &Path, tag: &str) -> Vec<Value> {
    let path = dir.join(format!("data/source/{tag}/acme.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not a JSON array: {e}", path.display()))
}

fn upload_ids(records: &[Value]) -> HashSet<String> {
    records.iter().map(|r| r["_upload_id"].as_str().expect("_upload_id").to_string()).collect()
}

const EXPECTED: &[(&str, u64)] = &[
    ("crowdstrike_hosts", RECORDS),
    ("crowdstrike_vulnerabilities", 2 * RECORDS),
    ("tenable_findings", RECORDS),
    ("tenable_assets", RECORDS),
    ("tenable_was", RECORDS),
    ("tenable_vulnerabilities", RECORDS),
    ("okta_users", RECORDS),
    ("snyk_organizations", 1),
    ("snyk_members", 12),
    ("snyk_projects", 150),
    ("snyk_issues", RECORDS),
    ("knowbe4_enrollments", RECORDS),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_from_the_environment_writes_every_data_set_in_the_original_shape() {
    let v = vendors().await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path().join("collectors");
    std::fs::create_dir_all(&cwd).unwrap();
    let out = sluice(&cwd, &["collect"], v.env()).await;
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    for (tag, count) in EXPECTED {
        let records = snapshot(dir.path(), tag);
        assert_eq!(records.len() as u64, *count, "{tag}");
        assert!(report.contains(&format!("acme/{} {tag}: {count} records", tag.split('_').next().unwrap())), "{tag}: {report}");
        assert_eq!(upload_ids(&records).len(), 1, "{tag}: one _upload_id per snapshot");
        assert!(records.iter().all(|r| r["_tenancy"] == "acme" && r["_upload_timestamp"].as_str().is_some_and(|t| t.len() == 19)));
    }
    // The Zero Trust data set is the hosts that have an assessment.
    let zta = snapshot(dir.path(), "crowdstrike_zero_trust_assessment");
    assert!(zta.len() as u64 > RECORDS / 2 && (zta.len() as u64) < RECORDS, "{}", zta.len());
    // Okta users in the original's field names, deprovisioned users left out as the API does.
    let user = &snapshot(dir.path(), "okta_users")[0];
    assert!(user["profile"]["first_name"].is_string() && user["type"]["id"].is_string() && user.get("statusChanged").is_none(), "{user}");
    let hosts = snapshot(dir.path(), "crowdstrike_hosts");
    let unique: HashSet<&str> = hosts.iter().map(|h| h["device_id"].as_str().unwrap()).collect();
    assert_eq!(unique.len() as u64, RECORDS, "every host once");
    read_back_with_duckdb(dir.path());

    // A second run replaces every snapshot whole: new upload ids, the same counts, nothing left over.
    let first = upload_ids(&snapshot(dir.path(), "okta_users"));
    let out = sluice(&cwd, &["collect"], v.env()).await;
    assert!(out.status.success(), "{}", text(&out));
    let second = snapshot(dir.path(), "okta_users");
    assert_eq!(second.len() as u64, RECORDS);
    assert!(upload_ids(&second).is_disjoint(&first));
    let leftovers: Vec<_> = walk(&dir.path().join("data")).into_iter().filter(|p| !p.to_string_lossy().ends_with("acme.json")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    // No token, secret or key is ever in the output.
    assert!(!text(&out).contains("falcon-secret") && !text(&out).contains("tio-secret"));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

/// The metrics step of the original reads `read_json('…/%TAG/*.json')` with DuckDB.
fn read_back_with_duckdb(dir: &Path) {
    let script = "import duckdb, sys\nfor tag, n in [('okta_users', int(sys.argv[2])), ('tenable_vulnerabilities', int(sys.argv[2]))]:\n    got = duckdb.sql(f\"select count(*), count(distinct _upload_id) from read_json('{sys.argv[1]}/data/source/{tag}/*.json')\").fetchall()[0]\n    assert got == (n, 1), (tag, got)\nprint('duckdb ok')\n";
    let out = Command::new("python3").args(["-c", script, &dir.display().to_string(), &RECORDS.to_string()]).output();
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o)
            if String::from_utf8_lossy(&o.stderr).contains("No module named 'duckdb'")
                && std::env::var("SLUICE_REQUIRE_DUCKDB").is_err() =>
        {
            eprintln!("skipping the DuckDB read-back: python3 has no duckdb (pip install duckdb)")
        }
        Ok(o) => panic!("DuckDB could not read the files: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("python3: {e}"),
    }
}

/// A config file with the given sources for tenant `acme`, into the original's file layout.
fn config(dir: &Path, sources: &str) -> PathBuf {
    let d = dir.display();
    let text = format!(
        "state_dir: {d}/state\nsinks:\n  files: {{type: file, path: \"{d}/data/source/%TAG/%TENANCY.json\"}}\n  events: {{type: file, path: \"{d}/events/%TAG.jsonl\", format: raw}}\ntenants:\n  - name: acme\n    sources:\n{sources}    sinks: [files, events]\n"
    );
    let path = dir.join("sluice.yml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_export_keeps_the_last_complete_snapshot_and_a_429_storm_is_waited_out() {
    let v = vendors().await;
    let dir = tempfile::tempdir().unwrap();
    let sources = format!(
        "      - {{name: tenable, type: tenable, access_key: tio-access, secret_key: tio-secret, base_url: \"{}\", datasets: [tenable_findings, tenable_assets], retry: {{max_attempts: 2, initial_backoff: 10ms}}}}\n      - {{name: okta, type: okta, domain: \"{}\", token: okta-token}}\n",
        v.tenable.url(),
        v.okta.url()
    );
    let cfg = config(dir.path(), &sources);
    let cfg_arg = cfg.display().to_string();
    let out = sluice(dir.path(), &["collect", "-c", &cfg_arg], vec![]).await;
    assert!(out.status.success(), "{}", text(&out));
    let good = upload_ids(&snapshot(dir.path(), "tenable_findings"));

    // The next findings export ends in ERROR after half its chunks; Okta throttles meanwhile.
    v.tenable.fail_next_jobs(1);
    v.okta.throttle_next(4, Duration::from_secs(1));
    let (webhook, messages) = slack_webhook().await;
    let out = sluice(dir.path(), &["collect", "-c", &cfg_arg], vec![("SLACK_WEBHOOK", webhook)]).await;
    assert_eq!(out.status.code(), Some(1), "a failed data set fails the run: {}", text(&out));
    let report = text(&out);
    assert!(report.contains("tenable_findings: failed") && report.contains("ERROR"), "{report}");
    assert!(report.contains(&format!("tenable_assets: {RECORDS} records")), "the other data sets still run: {report}");
    assert!(report.contains(&format!("okta_users: {RECORDS} records")), "the 429s were waited out: {report}");
    let kept = snapshot(dir.path(), "tenable_findings");
    assert_eq!(upload_ids(&kept), good, "the last complete snapshot stays");
    assert_eq!(kept.len() as u64, RECORDS);
    let throttled = v.okta.requests().iter().filter(|r| r.status == Some(429)).count();
    assert_eq!(throttled, 4);
    assert!(walk(&dir.path().join("state/spool")).is_empty(), "a failed run leaves no spool");
    // The original's Slack messages: start, the failure (without the keys), the end.
    let texts: Vec<String> = messages.lock().unwrap().iter().map(|m| m["text"].as_str().unwrap().to_string()).collect();
    assert!(messages.lock().unwrap().iter().all(|m| m["type"] == "mrkdwn"));
    assert!(texts[0].starts_with(":information_source: Starting the collection process"), "{texts:?}");
    assert!(texts.iter().any(|t| t.starts_with(":x: Collection failed") && t.contains("tenable_findings")), "{texts:?}");
    assert!(texts.last().unwrap().starts_with(":warning: Completed with the collection process"), "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains("tio-secret")), "{texts:?}");
}

/// A Slack incoming webhook that keeps what it is sent.
async fn slack_webhook() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    let messages = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = messages.clone();
    let app = axum::Router::new().route(
        "/services/T0/B0/x",
        axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/services/T0/B0/x", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_expiring_mid_paging_is_renewed_and_nothing_is_missed() {
    let v = vendors().await;
    v.cs.set_vulnerabilities(CID, 30_000);
    let dir = tempfile::tempdir().unwrap();
    // 75 pages at 20 requests a second: long enough to expire the token in the middle.
    let sources = format!(
        "      - {{name: falcon, type: crowdstrike, client_id: falcon-id, client_secret: falcon-secret, base_url: \"{}\", datasets: [crowdstrike_vulnerabilities], rate_limit_per_minute: 1200}}\n",
        v.cs.url()
    );
    let cfg = config(dir.path(), &sources).display().to_string();
    let run = {
        let dir = dir.path().to_path_buf();
        tokio::spawn(async move { sluice(&dir, &["collect", "-c", &cfg], vec![]).await })
    };
    let spotlight = |v: &Vendors| v.cs.requests().iter().filter(|r| r.path.starts_with("/spotlight")).count();
    while spotlight(&v) < 10 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    v.cs.expire_tokens();
    let out = run.await.unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let records = snapshot(dir.path(), "crowdstrike_vulnerabilities");
    assert_eq!(records.len(), 30_000);
    let ids: HashSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 30_000, "no page twice");
    let log = v.cs.requests();
    let refused = log.iter().position(|r| r.status == Some(401)).expect("the expired token was refused once");
    assert!(log[refused..].iter().any(|r| r.path == "/oauth2/token" && r.status == Some(201)), "a new token was fetched");
    assert!(v.cs.max_requests_in_any_minute("falcon-id") <= 1300);
}

/// The CrowdStrike alerts as a user-written stream: OAuth 2, a POST body with the cursor, the
/// `after` token in the body.
fn alerts_stream(url: &str) -> String {
    format!(
        r#"      - name: alerts
        type: http_pull
        base_url: "{url}"
        interval: 1s
        auth: {{type: oauth2, token_url: "{url}/oauth2/token", client_id: falcon-id, client_secret: falcon-secret}}
        datasets:
          - tag: falcon_alerts
            mode: stream
            request:
              method: POST
              path: /alerts/combined/alerts/v1
              body: {{filter: "updated_timestamp:>='{{{{cursor}}}}'", sort: "updated_timestamp|asc", limit: 100}}
            records: /resources
            paging: {{type: cursor, param: after, pointer: /meta/pagination/after, in_body: true}}
            cursor: {{pointer: /updated_timestamp, initial: "{{{{now-30d}}}}"}}
            id: /composite_id
"#
    )
}

fn alert_ids(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["composite_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_resumes_exactly_once_across_sigterm_and_kill_9() {
    let v = vendors().await;
    let start = chrono::Utc::now() - chrono::Duration::days(1);
    // Several alerts share each instant, also across page boundaries.
    let batch = |from: u64, n: u64| {
        (from..from + n).map(|i| crowdstrike::sample_alert(CID, i, start + chrono::Duration::seconds((i / 3) as i64))).collect()
    };
    v.cs.add_alerts(CID, batch(0, 250));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &alerts_stream(&v.cs.url()));
    let out = dir.path().join("events/falcon_alerts.jsonl");
    let log = dir.path().join("sluice.log");

    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || count_lines(&out) >= 250, || format!("{} of 250", count_lines(&out)));
    assert_eq!(daemon.terminate(), 0);
    v.cs.add_alerts(CID, batch(250, 100));
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || count_lines(&out) >= 350, || format!("{} of 350", count_lines(&out)));
    daemon.kill9();
    v.cs.add_alerts(CID, batch(350, 100));
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || count_lines(&out) >= 450, || format!("{} of 450", count_lines(&out)));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(daemon.terminate(), 0);

    let ids = alert_ids(&out);
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 450, "every alert delivered");
    // The SIGTERM restart repeated nothing; the kill -9 at most the page in flight (100).
    assert!(ids.len() <= 450 + 100, "{} lines", ids.len());
    assert_eq!(ids[..350].iter().collect::<HashSet<_>>().len(), 350, "nothing twice before the kill -9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_written_definitions_page_by_offset_and_preview_with_dry_run() {
    let v = vendors().await;
    v.cs.set_hosts(CID, 2_345);
    let dir = tempfile::tempdir().unwrap();
    let url = v.cs.url();
    let sources = format!(
        r#"      - name: hosts
        type: http_pull
        base_url: "{url}"
        auth: {{type: oauth2, token_url: "{url}/oauth2/token", client_id: falcon-id, client_secret: falcon-secret}}
        datasets:
          - tag: host_ids
            request: {{path: /devices/queries/devices/v1, query: {{limit: "500"}}}}
            records: /resources
            paging: {{type: offset, next: /meta/pagination/offset, total: /meta/pagination/total}}
"#
    );
    let cfg = config(dir.path(), &sources).display().to_string();
    let out =
        sluice(dir.path(), &["pull", "-c", &cfg, "--tenant", "acme", "--source", "hosts", "--dry-run", "--records", "2"], vec![]).await;
    assert!(out.status.success(), "{}", text(&out));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert_eq!(shown.lines().count(), 2, "two records, one per line (ids are strings): {shown}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("/devices/queries/devices/v1"), "the requests are shown");
    assert!(!dir.path().join("data").exists(), "a dry run writes nothing");

    let out = sluice(dir.path(), &["pull", "-c", &cfg, "--tenant", "acme", "--source", "hosts"], vec![]).await;
    assert!(out.status.success(), "{}", text(&out));
    let ids = snapshot(dir.path(), "host_ids");
    let unique: HashSet<&str> = ids.iter().map(|r| r["value"].as_str().unwrap()).collect();
    assert_eq!(unique.len(), 2_345);
    let offsets: Vec<String> =
        v.cs.requests()
            .iter()
            .filter(|r| r.path == "/devices/queries/devices/v1")
            .filter_map(|r| r.param("offset").map(str::to_string))
            .collect();
    assert_eq!(offsets, ["0", "0", "500", "1000", "1500", "2000"], "the dry run stopped after its first page; the run paged to the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_the_path_of_every_mistake_in_a_definition() {
    let dir = tempfile::tempdir().unwrap();
    let sources = r#"      - name: typo
        type: http_pull
        base_url: "https://api.example.com"
        datasets:
          - tag: a
            request: {path: "/x?since={{cursr}}"}
      - name: broken
        type: http_pull
        base_url: "not a url"
        datasets:
          - tag: a
            mode: stream
            request: {path: /x}
          - tag: b
            request: {path: /y}
            records: resources
            paging: {type: next_url, pointer: links.next}
      - name: falcon
        type: crowdstrike
        client_id: x
        client_secret: y
        datasets: [crowdstrike_hostz]
"#;
    let cfg = config(dir.path(), sources).display().to_string();
    let out = sluice(dir.path(), &["check", "-c", &cfg], vec![]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let report = text(&out);
    let expected: BTreeMap<&str, &str> = BTreeMap::from([
        ("unknown placeholder", "tenants[0].sources[0].datasets[0].request.path"),
        ("not a URL", "tenants[0].sources[1].base_url"),
        ("[0].cursor: a stream needs a cursor", "tenants[0].sources[1].datasets"),
        ("[1].records", "tenants[0].sources[1].datasets"),
        ("[1].paging.pointer", "tenants[0].sources[1].datasets"),
        ("crowdstrike_hostz", "tenants[0].sources[2]"),
    ]);
    for (what, path) in expected {
        assert!(report.lines().any(|l| l.contains(what) && l.contains(path)), "`{what}` at `{path}` in:\n{report}");
    }
}

/// One collector in a config of its own, with short retries and a pace slow enough to inject a
/// fault in the middle of a run.
fn one_collector(v: &Vendors, kind: &str) -> String {
    let opts = "rate_limit_per_minute: 600, retry: {max_attempts: 2, initial_backoff: 10ms}";
    match kind {
        "crowdstrike" => format!(
            "      - {{name: crowdstrike, type: crowdstrike, client_id: falcon-id, client_secret: falcon-secret, base_url: \"{}\", datasets: [crowdstrike_vulnerabilities], {opts}}}\n",
            v.cs.url()
        ),
        "tenable" => format!(
            "      - {{name: tenable, type: tenable, access_key: tio-access, secret_key: tio-secret, base_url: \"{}\", datasets: [tenable_vulnerabilities], {opts}}}\n",
            v.tenable.url()
        ),
        "okta" => format!("      - {{name: okta, type: okta, domain: \"{}\", token: okta-token, {opts}}}\n", v.okta.url()),
        "snyk" => format!(
            "      - {{name: snyk, type: snyk, token: snyk-token, endpoint: \"{}\", datasets: [snyk_issues], {opts}}}\n",
            v.snyk.url()
        ),
        "knowbe4" => format!(
            "      - {{name: knowbe4, type: knowbe4, token: kb4-key, endpoint: \"{}/v1/training/enrollments\", {opts}}}\n",
            v.kb4.url()
        ),
        _ => unreachable!(),
    }
}

fn inject(v: &Vendors, kind: &str, fault: &str) {
    match (kind, fault) {
        ("crowdstrike", "5xx") => v.cs.fail_next(10, 500),
        ("tenable", "5xx") => v.tenable.fail_next(10, 502),
        ("okta", "5xx") => v.okta.fail_next(10, 500),
        ("snyk", "5xx") => v.snyk.fail_next(10, 503),
        ("knowbe4", "5xx") => v.kb4.fail_next(10, 500),
        ("crowdstrike", "429") => v.cs.throttle_next(3, Duration::from_secs(1)),
        ("tenable", "429") => v.tenable.throttle_next(3, 1),
        ("okta", "429") => v.okta.throttle_next(3, Duration::from_secs(1)),
        ("snyk", "429") => v.snyk.throttle_next(3),
        ("knowbe4", "429") => v.kb4.throttle_next(3),
        _ => unreachable!(),
    }
}

fn requests(v: &Vendors, kind: &str) -> usize {
    match kind {
        "crowdstrike" => v.cs.requests().len(),
        "tenable" => v.tenable.requests().len(),
        "okta" => v.okta.requests().len(),
        "snyk" => v.snyk.requests().len(),
        _ => v.kb4.requests().len(),
    }
}

/// For every collector: a 429 storm in the middle of a run is waited out and the snapshot is
/// complete; 5xx answers in the middle of a run that outlast the retries fail that run and leave
/// the previous complete snapshot as it was, with no part of the new one visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_collector_survives_a_429_storm_and_keeps_its_last_snapshot_through_5xx() {
    let v = vendors().await;
    v.tenable.set_count("tio-access", tenable::ExportKind::Vulns, 4 * RECORDS);
    let expected = [
        ("crowdstrike", "crowdstrike_vulnerabilities", 2 * RECORDS),
        ("tenable", "tenable_vulnerabilities", 4 * RECORDS),
        ("okta", "okta_users", RECORDS),
        ("snyk", "snyk_issues", RECORDS),
        ("knowbe4", "knowbe4_enrollments", RECORDS),
    ];
    for (kind, tag, count) in expected {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &one_collector(&v, kind)).display().to_string();
        let mut previous = HashSet::new();
        for fault in ["429", "5xx"] {
            let before = requests(&v, kind);
            let run = {
                let (dir, cfg) = (dir.path().to_path_buf(), cfg.clone());
                tokio::spawn(async move { sluice(&dir, &["collect", "-c", &cfg], vec![]).await })
            };
            // Past the first requests (the token, the export's start): mid-snapshot.
            while requests(&v, kind) < before + 3 && !run.is_finished() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            inject(&v, kind, fault);
            let out = run.await.unwrap();
            let records = snapshot(dir.path(), tag);
            if fault == "429" {
                assert!(out.status.success(), "{kind}: {}", text(&out));
                assert_eq!(records.len() as u64, count, "{kind}: complete after the 429s");
                previous = upload_ids(&records);
            } else {
                assert_eq!(out.status.code(), Some(1), "{kind}: {}", text(&out));
                assert_eq!(upload_ids(&records), previous, "{kind}: the last complete snapshot stays");
                assert_eq!(records.len() as u64, count, "{kind}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_whose_chunks_expire_fails_without_touching_the_last_snapshot() {
    let v = vendors().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), &one_collector(&v, "tenable")).display().to_string();
    let out = sluice(dir.path(), &["collect", "-c", &cfg], vec![]).await;
    assert!(out.status.success(), "{}", text(&out));
    let good = upload_ids(&snapshot(dir.path(), "tenable_vulnerabilities"));
    v.tenable.expire_next_job(Duration::ZERO);
    let out = sluice(dir.path(), &["collect", "-c", &cfg], vec![]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("404"), "{}", text(&out));
    assert_eq!(upload_ids(&snapshot(dir.path(), "tenable_vulnerabilities")), good);
}

fn okta_ids(path: &Path, pointer: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap().pointer(pointer).unwrap().as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_okta_system_log_streams_exactly_once_across_restarts() {
    let v = vendors().await;
    let start = chrono::Utc::now() - chrono::Duration::minutes(30);
    // Two events per millisecond: page boundaries fall inside one `published` instant.
    let batch = |from: u64, n: u64| {
        (from..from + n).map(|i| okta::sample_log_event(i, start + chrono::Duration::milliseconds((i / 2) as i64))).collect()
    };
    v.okta.add_log_events("okta-token", batch(0, 2500));
    let dir = tempfile::tempdir().unwrap();
    let source = format!("      - {{name: okta_logs, type: okta_logs, domain: \"{}\", token: okta-token, interval: 1s}}\n", v.okta.url());
    let cfg = config(dir.path(), &source);
    let out = dir.path().join("events/okta_logs.jsonl");
    let log = dir.path().join("sluice.log");
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || count_lines(&out) >= 2500, || format!("{} of 2500", count_lines(&out)));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(daemon.terminate(), 0);
    v.okta.add_log_events("okta-token", batch(2500, 300));
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || count_lines(&out) >= 2800, || format!("{} of 2800", count_lines(&out)));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(daemon.terminate(), 0);
    let ids = okta_ids(&out, "/uuid");
    assert_eq!(ids.len(), 2800, "after SIGTERM restarts, every event exactly once");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 2800);

    // kill -9 right after a page reached the file: at most that page (1,000 events) again.
    v.okta.add_log_events("okta-token", batch(2800, 2200));
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || count_lines(&out) >= 3800, || format!("{} of 3800", count_lines(&out)));
    daemon.kill9();
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(30), || okta_ids(&out, "/uuid").iter().collect::<HashSet<_>>().len() >= 5000, || "5000 distinct".into());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(daemon.terminate(), 0);
    let ids = okta_ids(&out, "/uuid");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 5000, "every event");
    assert!(ids.len() <= 5000 + 1000, "a kill -9 repeats at most one page: {} lines", ids.len());
    let since: Vec<String> =
        v.okta.requests().iter().filter(|r| r.path == "/api/v1/logs").filter_map(|r| r.param("since").map(str::to_string)).collect();
    assert!(since.iter().all(|s| chrono::DateTime::parse_from_rfc3339(s).is_ok()), "{since:?}");
    assert!(v.okta.max_requests_in_any_minute("okta-token") <= 60 + 5, "the source's pace holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_delivers_only_what_it_did_not_deliver_before_also_after_a_restart() {
    let v = vendors().await;
    v.okta.set_users("okta-token", 300, 0);
    let dir = tempfile::tempdir().unwrap();
    let url = v.okta.url();
    // The user list stands in for a list of firing alerts.
    let source = format!(
        r#"      - name: current
        type: http_pull
        base_url: "{url}"
        interval: 1s
        auth: {{type: header, name: Authorization, value: "SSWS okta-token"}}
        datasets:
          - tag: listed
            mode: poll
            existing_at_start: skip
            request: {{path: /api/v1/users}}
            paging: {{type: link_header}}
            id: /id
"#
    );
    let cfg = config(dir.path(), &source);
    let out = dir.path().join("events/listed.jsonl");
    let log = dir.path().join("sluice.log");
    let daemon = Sluice::start(&cfg, &log);
    let runs = |v: &Vendors| v.okta.requests().iter().filter(|r| r.path == "/api/v1/users" && r.param("after").is_none()).count();
    wait_until(Duration::from_secs(20), || runs(&v) >= 2, || "two runs".into());
    assert_eq!(count_lines(&out), 0, "what was listed at the first start is not sent");
    v.okta.set_users("okta-token", 450, 0);
    wait_until(Duration::from_secs(20), || count_lines(&out) >= 150, || format!("{} of 150", count_lines(&out)));
    assert_eq!(daemon.terminate(), 0);
    v.okta.set_users("okta-token", 500, 0);
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || count_lines(&out) >= 200, || format!("{} of 200", count_lines(&out)));
    let before = runs(&v);
    wait_until(Duration::from_secs(20), || runs(&v) >= before + 2, || "two more runs".into());
    assert_eq!(daemon.terminate(), 0);
    let ids = okta_ids(&out, "/id");
    assert_eq!(ids.len(), 200, "only the 200 added, each once: {}", ids.len());
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 200);
}

/// moto's S3 server on a free port (PyPI `moto[server]`); `None` to skip unless
/// `SLUICE_REQUIRE_S3` is set.
struct Moto(std::process::Child, String);

impl Moto {
    async fn start() -> Option<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if let Ok(child) = child {
            for _ in 0..200 {
                if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                    return Some(Moto(child, format!("http://127.0.0.1:{port}")));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        assert!(std::env::var_os("SLUICE_REQUIRE_S3").is_none(), "moto_server did not start (pip install 'moto[server]')");
        eprintln!("SKIPPED: no moto_server");
        None
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_backup_seeds_a_fresh_deployment_whose_collection_fails() {
    let Some(moto) = Moto::start().await else { return };
    assert!(reqwest::Client::new().put(format!("{}/metrics", moto.1)).send().await.unwrap().status().is_success());
    let v = vendors().await;
    let env = |token: &str| {
        vec![
            ("OKTA_DOMAIN", v.okta.url()),
            ("OKTA_TOKEN", token.to_string()),
            ("TENANCY", "acme".to_string()),
            ("STORE_AWS_S3_BUCKET", "metrics".to_string()),
            ("STORE_AWS_S3_KEY", "data/%TAG/%YYYY/%MM/%DD/%UUID.json".to_string()),
            ("AWS_ENDPOINT_URL", moto.1.clone()),
            ("AWS_ACCESS_KEY_ID", "test".to_string()),
            ("AWS_SECRET_ACCESS_KEY", "test".to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
    };
    let first = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(first.path().join("collectors")).unwrap();
    let out = sluice(&first.path().join("collectors"), &["collect"], env("okta-token")).await;
    assert!(out.status.success(), "{}", text(&out));
    let good = upload_ids(&snapshot(first.path(), "okta_users"));
    let id = good.iter().next().unwrap().clone();
    let listing = reqwest::get(format!("{}/metrics?list-type=2", moto.1)).await.unwrap().text().await.unwrap();
    assert!(listing.contains(&format!("{id}.json")), "the object's %UUID is the snapshot's _upload_id: {listing}");
    assert!(listing.contains("backup/okta_users/acme.json"), "{listing}");

    // A fresh container, and the collection fails: the metrics still find the last good data.
    let fresh = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fresh.path().join("collectors")).unwrap();
    let out = sluice(&fresh.path().join("collectors"), &["collect"], env("revoked-token")).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("restored from the S3 backup"), "{}", text(&out));
    let restored = snapshot(fresh.path(), "okta_users");
    assert_eq!(upload_ids(&restored), good);
    assert_eq!(restored.len() as u64, RECORDS);
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Microsoft Graph lists newest first and Security Hub oldest first: both streams deliver every
/// alert once, and an alert updated later once more, as an update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_and_security_hub_deliver_every_alert_and_each_update_once() {
    use sluice_emulators::{graph, securityhub};
    let any = "127.0.0.1:0".parse().unwrap();
    let g = graph::Emulator::start(any, graph::Options { default_top: 50, ..Default::default() }).await.unwrap();
    let tenant = "b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c";
    g.add_app(tenant, "graph-app", "graph-secret");
    let now = chrono::Utc::now();
    g.generate_alerts(tenant, 240, now - chrono::Duration::minutes(50), now - chrono::Duration::minutes(1));
    let hub = securityhub::Emulator::start(any, Default::default()).await.unwrap();
    hub.add_key("AKIAEXAMPLE");
    hub.enable_region("eu-west-1");
    hub.generate_findings("eu-west-1", "111111111111", 260, now - chrono::Duration::hours(20), now - chrono::Duration::minutes(1));
    let dir = tempfile::tempdir().unwrap();
    let sources = format!(
        "      - {{name: graph, type: graph_security, tenant_id: {tenant}, client_id: graph-app, client_secret: graph-secret, base_url: \"{g}/v1.0\", login_url: \"{g}\", interval: 1s}}\n      - {{name: hub, type: aws_securityhub, region: eu-west-1, access_key_id: AKIAEXAMPLE, secret_access_key: hub-secret, endpoint: \"{h}\", interval: 1s}}\n",
        g = g.url(),
        h = hub.url()
    );
    let cfg = config(dir.path(), &sources);
    let (graph_out, hub_out) = (dir.path().join("events/graph_alerts.jsonl"), dir.path().join("events/aws_securityhub_findings.jsonl"));
    let log = dir.path().join("sluice.log");
    let daemon = Sluice::start(&cfg, &log);
    wait_until(
        Duration::from_secs(30),
        || count_lines(&graph_out) >= 240 && count_lines(&hub_out) >= 260,
        || format!("graph {} of 240, hub {} of 260", count_lines(&graph_out), count_lines(&hub_out)),
    );
    assert_eq!(daemon.terminate(), 0);
    let first_alert = g.alerts(tenant)[0]["id"].as_str().unwrap().to_string();
    assert!(g.update_alert(tenant, &first_alert, serde_json::json!({"status": "resolved"})));
    let first_finding = hub.findings("eu-west-1")[0]["Id"].as_str().unwrap().to_string();
    assert!(hub.update_finding("eu-west-1", &first_finding, serde_json::json!({"Workflow": {"Status": "RESOLVED"}})));
    let daemon = Sluice::start(&cfg, &log);
    wait_until(
        Duration::from_secs(30),
        || count_lines(&graph_out) >= 241 && count_lines(&hub_out) >= 261,
        || {
            format!(
                "the updates: graph {}, hub {}: {}",
                count_lines(&graph_out),
                count_lines(&hub_out),
                std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .filter(|l| l.contains("ERROR") || l.contains("WARN"))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        },
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(daemon.terminate(), 0);
    let alerts = lines(&graph_out);
    assert_eq!(alerts.len(), 241, "every alert once, the update once more");
    assert_eq!(alerts.last().unwrap()["status"], "resolved");
    let findings = lines(&hub_out);
    assert_eq!(findings.len(), 261);
    assert_eq!(findings.last().unwrap()["Workflow"]["Status"], "RESOLVED");
    let signed =
        hub.requests().iter().all(|r| r.header("authorization").is_some_and(|a| a.contains("/eu-west-1/securityhub/aws4_request")));
    assert!(signed, "every request is signed for the region and service");
}

/// The pollers: an alert already present at the first start is not sent (`existing_at_start:
/// skip`, the original connectors' behaviour), each new one once, also across a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_kismet_and_zabbix_pollers_send_each_new_alert_once() {
    use sluice_emulators::{kismet, prometheus, zabbix};
    let any = "127.0.0.1:0".parse().unwrap();
    let prom = prometheus::Emulator::start(any, Default::default()).await.unwrap();
    prom.fire(&[("alertname", "InstanceDown"), ("instance", "node-1:9100"), ("severity", "critical")], &[]);
    let kis = kismet::Emulator::start(any, Default::default()).await.unwrap();
    kis.raise_alert("DEAUTHFLOOD", 15, "Deauthenticate/Disassociate flood", "aa:bb:cc:dd:ee:01");
    let zab = zabbix::Emulator::start(any, Default::default()).await.unwrap();
    zab.add_api_token("zbx-token");
    zab.raise_problem("web-1", "10.0.0.5", "High CPU utilization", 4);
    let dir = tempfile::tempdir().unwrap();
    let sources = format!(
        "      - {{name: prom, type: prometheus, url: \"{}\", existing_at_start: skip, interval: 1s}}\n      - {{name: kis, type: kismet, url: \"{}\", username: kismet, password: kismet, existing_at_start: skip, interval: 1s}}\n      - {{name: zab, type: zabbix, url: \"{}\", token: zbx-token, existing_at_start: skip, interval: 1s}}\n",
        prom.url(),
        kis.url(),
        zab.url()
    );
    let cfg = config(dir.path(), &sources);
    let outs = ["prometheus_alerts", "kismet_alerts", "zabbix_problems"].map(|t| dir.path().join(format!("events/{t}.jsonl")));
    let log = dir.path().join("sluice.log");
    let polled = |n: usize| prom.requests().len() >= n && kis.requests().len() >= n && zab.requests().len() >= n;
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || polled(2), || "two polls each".into());
    assert!(outs.iter().all(|o| count_lines(o) == 0), "present at the first start: not sent");
    prom.fire(&[("alertname", "DiskFull"), ("instance", "node-2:9100"), ("severity", "warning")], &[]);
    kis.raise_alert("APSPOOF", 20, "Unauthorized device advertising an SSID", "aa:bb:cc:dd:ee:02");
    zab.raise_problem("db-1", "10.0.0.6", "Disk space is low", 3);
    wait_until(Duration::from_secs(20), || outs.iter().all(|o| count_lines(o) == 1), || "one new alert each".into());
    assert_eq!(daemon.terminate(), 0);
    kis.raise_alert("BSSTIMESTAMP", 10, "Invalid BSS timestamp", "aa:bb:cc:dd:ee:03");
    let daemon = Sluice::start(&cfg, &log);
    wait_until(Duration::from_secs(20), || count_lines(&outs[1]) == 2, || "the alert raised while stopped".into());
    let before = zab.requests().len();
    wait_until(Duration::from_secs(20), || zab.requests().len() >= before + 2, || "more polls".into());
    assert_eq!(daemon.terminate(), 0);
    assert_eq!(lines(&outs[0]).iter().map(|a| a["labels"]["alertname"].as_str().unwrap().to_string()).collect::<Vec<_>>(), ["DiskFull"]);
    assert_eq!(lines(&outs[1]).len(), 2, "the restart sent nothing twice");
    assert_eq!(lines(&outs[2])[0]["name"], "Disk space is low");
    assert_eq!(lines(&outs[2]).len(), 1);
}
