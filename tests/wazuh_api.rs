//! The Wazuh API source end to end: the real binary against the Wazuh API emulator, the inventory
//! read back through the store.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::Sluice;
use serde_json::Value;
use sluice::store::Store;
use sluice_emulators::wazuh::{Agent, FimEntry, Package, WazuhConfig, WazuhEmulator, WazuhFaults};

const TENANT: &str = "acme";
const SOURCE: &str = "wazuh";
const USER: &str = "sluice-reader";
const PASSWORD: &str = "Pa55-wazuh-reader.";
const COLLECTED: &str = "wazuh inventory collected";

struct Setup {
    dir: tempfile::TempDir,
    emulator: WazuhEmulator,
    log: PathBuf,
}

impl Setup {
    async fn new(config: WazuhConfig) -> Setup {
        let config = WazuhConfig { user: USER.into(), password: PASSWORD.into(), ..config };
        let emulator = WazuhEmulator::start(config).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sluice.log");
        std::fs::write(dir.path().join("wazuh.secret"), PASSWORD).unwrap();
        Setup { dir, emulator, log }
    }

    /// Writes the config; `extra` lines are added to the source.
    fn config(&self, extra: &str) -> PathBuf {
        let d = self.dir.path().display();
        let text = format!(
            "state_dir: {d}/state\nsinks:\n  out: {{type: file, path: \"{d}/out/%TENANCY.jsonl\"}}\ntenants:\n  - name: {TENANT}\n    sources:\n      - name: {SOURCE}\n        type: wazuh_api\n        url: {}\n        username: {USER}\n        password: \"${{file:wazuh.secret}}\"\n{extra}    sinks: [out]\n",
            self.emulator.url()
        );
        let path = self.dir.path().join("sluice.yml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn start(&self, config: &Path) -> Sluice {
        Sluice::start(config, &self.log)
    }

    fn store(&self) -> Store {
        Store::open(&self.dir.path().join("state")).unwrap()
    }

    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.dir.path().join("state/sluice.db")).unwrap()
    }

    fn log_lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    /// The "collected" lines logged so far.
    fn collections(&self) -> Vec<Value> {
        self.log_lines().into_iter().filter(|l| l["message"] == COLLECTED).collect()
    }

    /// Waits until `n` collections were logged; returns the last one.
    async fn wait_collections(&self, n: usize, secs: u64) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let done = self.collections();
            if done.len() >= n {
                return done[n - 1].clone();
            }
            assert!(tokio::time::Instant::now() < deadline, "{n} collection(s) not done in {secs} s; log:\n{}", self.tail());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
    }

    fn assert_no_errors(&self) {
        let errors: Vec<Value> = self.log_lines().into_iter().filter(|l| l["level"] == "ERROR").collect();
        assert!(errors.is_empty(), "errors logged: {errors:#?}");
    }
}

/// Counts per agent id: (packages, files, OS entries).
type Counts = BTreeMap<String, (usize, usize, usize)>;

/// An agent of a hand-made fleet with `packages` packages and `files` FIM entries.
fn host(id: usize, status: &str, packages: usize, files: usize) -> (Agent, Vec<Package>, Vec<FimEntry>) {
    let now = Utc::now();
    let agent = Agent {
        id: format!("{id:03}"),
        name: format!("host-{id:03}.corp"),
        ip: format!("10.0.0.{id}"),
        status: status.into(),
        os_platform: "ubuntu".into(),
        os_name: "Ubuntu".into(),
        os_version: "22.04.4 LTS".into(),
        last_keep_alive: now - chrono::Duration::seconds(30),
        version: "Wazuh v4.14.7".into(),
        groups: vec!["default".into()],
    };
    let packages = (0..packages)
        .map(|k| Package {
            name: format!("pkg-{k:03}"),
            version: "1.0.0".into(),
            architecture: "amd64".into(),
            vendor: "Ubuntu Developers".into(),
            format: "deb".into(),
            description: format!("package {k}"),
        })
        .collect();
    let files = (0..files)
        .map(|k| FimEntry {
            file: format!("/etc/app/{k:03}.conf"),
            size: 100 + k as u64,
            sha256: format!("{k:064x}"),
            md5: format!("{k:032x}"),
            sha1: format!("{k:040x}"),
            mtime: now - chrono::Duration::days(1),
            perm: "rw-r--r--".into(),
            uname: "root".into(),
            changes: 1,
        })
        .collect();
    (agent, packages, files)
}

/// Adds `n` active agents (001…) with the given inventory; returns the counts to expect,
/// the manager's own entry (000: its OS only) included.
fn fleet(emulator: &WazuhEmulator, n: usize, packages: usize, files: usize) -> Counts {
    let mut expected = Counts::from([("000".to_string(), (0, 0, 1))]);
    for id in 1..=n {
        let (agent, p, f) = host(id, "active", packages, files);
        expected.insert(agent.id.clone(), (packages, files, 1));
        emulator.upsert_agent(agent, p, f);
    }
    expected
}

/// What the manager holds, read through its API: distinct packages and files, OS entries.
async fn manager_counts(url: &str) -> Counts {
    let http = reqwest::Client::new();
    let login: Value =
        http.post(format!("{url}/security/user/authenticate")).basic_auth(USER, Some(PASSWORD)).send().await.unwrap().json().await.unwrap();
    let token = login["data"]["token"].as_str().unwrap().to_string();
    let get = async |path: String| -> Vec<Value> {
        let response = http.get(format!("{url}{path}")).bearer_auth(&token).send().await.unwrap();
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            return Vec::new(); // 2007: no database for the agent
        }
        let body: Value = response.json().await.unwrap();
        body["data"]["affected_items"].as_array().unwrap().clone()
    };
    let mut counts = Counts::new();
    for agent in get("/agents?limit=100000".into()).await {
        let id = agent["id"].as_str().unwrap().to_string();
        let files: std::collections::HashSet<String> =
            get(format!("/syscheck/{id}?limit=100000")).await.iter().map(|f| f["file"].to_string()).collect();
        let packages: std::collections::HashSet<String> = get(format!("/syscollector/{id}/packages?limit=100000"))
            .await
            .iter()
            .map(|p| format!("{} {} {}", p["name"], p["version"], p["architecture"]))
            .collect();
        let os = get(format!("/syscollector/{id}/os")).await.len();
        counts.insert(id, (packages.len(), files.len(), os));
    }
    counts
}

async fn stored_agents(store: &Store) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.wazuh_agents(TENANT, after.as_deref(), 7).await.unwrap();
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

async fn stored_packages(store: &Store, agent: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.wazuh_packages(TENANT, agent, after.as_deref(), 9).await.unwrap();
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

async fn stored_files(store: &Store, agent: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = store.wazuh_syscheck(TENANT, agent, after.as_deref(), 11).await.unwrap();
        out.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
}

/// The store's counts, read through the query methods the REST API uses.
async fn stored_counts(store: &Store) -> Counts {
    let mut counts = Counts::new();
    for agent in stored_agents(store).await {
        let id = agent["id"].as_str().unwrap().to_string();
        let packages = stored_packages(store, &id).await.len();
        let files = stored_files(store, &id).await.len();
        let os = store.wazuh_os(TENANT, &id).await.unwrap().len();
        counts.insert(id, (packages, files, os));
    }
    counts
}

fn totals(counts: &Counts) -> (usize, usize) {
    counts.values().fold((0, 0), |(p, f), c| (p + c.0, f + c.1))
}

fn agent_rows(db: &rusqlite::Connection, id: &str) -> i64 {
    db.query_row("SELECT COUNT(*) FROM wazuh_agents WHERE tenant = ?1 AND agent_id = ?2", [TENANT, id], |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_agents_collected_completely_and_a_restart_waits_for_the_interval() {
    let s = Setup::new(WazuhConfig { max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    s.emulator.generate(30, 40, 25);
    // Small pages: every list takes several.
    let config = s.config("        page_size: 7\n        rate_limit_per_minute: 6000\n        parallelism: 4\n");
    let sluice = s.start(&config);
    let line = s.wait_collections(1, 60).await;

    let expected = manager_counts(&s.emulator.url()).await;
    assert_eq!(expected.len(), 31, "30 agents and the manager");
    let got = stored_counts(&s.store()).await;
    assert_eq!(got, expected);
    let (packages, files) = totals(&expected);
    assert!(packages > 30 * 30 && files > 30 * 20, "{packages} packages, {files} files");
    assert_eq!(
        (line["agents"].as_u64(), line["packages"].as_u64(), line["files"].as_u64()),
        (Some(31), Some(packages as u64), Some(files as u64))
    );
    assert_eq!(line["rate_limited"], 0);
    let agents = stored_agents(&s.store()).await;
    assert!(agents.iter().all(|a| a["removed_at"].is_null() && a["sluice_source"] == SOURCE && a["first_seen"].is_string()));
    s.assert_no_errors();
    let log = std::fs::read_to_string(&s.log).unwrap();
    assert!(!log.contains(PASSWORD) && !log.contains("eyJ"), "a secret was logged");

    // A restart within the interval (15 minutes by default) does not collect again.
    assert_eq!(sluice.terminate(), 0);
    let before = s.emulator.requests();
    let sluice = s.start(&config);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.emulator.requests(), before, "the restarted source collected at once");
    assert_eq!(s.collections().len(), 1);
    assert_eq!(sluice.terminate(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_collection_updates_records_in_place() {
    let s = Setup::new(WazuhConfig { max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    let mut expected = fleet(&s.emulator, 4, 6, 5);
    let config = s.config("        interval: 2s\n        page_size: 4\n        rate_limit_per_minute: 6000\n");
    let _sluice = s.start(&config);
    s.wait_collections(1, 30).await;
    let store = s.store();
    assert_eq!(stored_counts(&store).await, expected);
    let before: BTreeMap<String, Value> =
        stored_agents(&store).await.into_iter().map(|a| (a["id"].as_str().unwrap().to_string(), a)).collect();
    let untouched_before = stored_packages(&store, "002").await;
    let upgraded_before = stored_packages(&store, "001").await;
    let changed_at = Utc::now();

    // Every agent checks in again, one package of 001 is upgraded, 004 is deleted.
    let seen = Utc::now() + chrono::Duration::seconds(5);
    for id in ["000", "001", "002", "003", "004"] {
        s.emulator.touch_agent(id, seen);
    }
    let (mut agent, mut packages, files) = host(1, "active", 6, 5);
    agent.last_keep_alive = seen;
    packages[2].version = "1.0.1".into();
    s.emulator.upsert_agent(agent, packages, files);
    s.emulator.remove_agent("004");
    expected.remove("004");
    // Two more: the second started after the changes.
    let done = s.collections().len();
    let line = s.wait_collections(done + 2, 30).await;
    assert_eq!(line["agents"], 4);
    let removed: u64 = s.collections().iter().map(|l| l["removed"].as_u64().unwrap()).sum();
    assert_eq!(removed, 1, "004 is marked removed once");

    let db = s.db();
    for id in ["000", "001", "002", "003", "004"] {
        assert_eq!(agent_rows(&db, id), 1, "agent {id} is one record");
    }
    let after: BTreeMap<String, Value> =
        stored_agents(&store).await.into_iter().map(|a| (a["id"].as_str().unwrap().to_string(), a)).collect();
    for id in ["001", "002", "003"] {
        let (old, new) = (&before[id], &after[id]);
        assert_eq!(new["first_seen"], old["first_seen"], "agent {id}");
        assert!(new["updated_at"].as_str() > old["updated_at"].as_str(), "agent {id}: {} → {}", old["updated_at"], new["updated_at"]);
        assert_ne!(new["lastKeepAlive"], old["lastKeepAlive"]);
        assert!(new["removed_at"].is_null());
    }
    // Deleted from the manager: kept, marked, with its inventory.
    assert!(after["004"]["removed_at"].is_string(), "{}", after["004"]);
    assert_eq!(stored_packages(&store, "004").await.len(), 6);

    let upgraded = stored_packages(&store, "001").await;
    assert_eq!(upgraded.len(), 6);
    let versions: Vec<&str> = upgraded.iter().filter(|p| p["name"] == "pkg-002").map(|p| p["version"].as_str().unwrap()).collect();
    assert_eq!(versions, ["1.0.1"], "the old version's row is gone");
    let new_row = upgraded.iter().find(|p| p["name"] == "pkg-002").unwrap();
    let first_seen: DateTime<Utc> = new_row["first_seen"].as_str().unwrap().parse().unwrap();
    assert!(first_seen >= changed_at);
    let kept = upgraded.iter().find(|p| p["name"] == "pkg-000").unwrap();
    assert_eq!(kept["first_seen"], upgraded_before.iter().find(|p| p["name"] == "pkg-000").unwrap()["first_seen"]);
    // Nothing changed on 002's packages: not even rewritten.
    assert_eq!(stored_packages(&store, "002").await, untouched_before);
    let rows: i64 = db.query_row("SELECT COUNT(*) FROM wazuh_packages WHERE tenant = ?1", [TENANT], |r| r.get(0)).unwrap();
    assert_eq!(rows, 4 * 6, "four agents (one of them removed) with six packages each, the manager none");
    s.assert_no_errors();
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_expiring_during_a_collection_are_renewed() {
    let s = Setup::new(WazuhConfig { token_lifetime: Duration::from_secs(2), max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    s.emulator.generate(10, 12, 8);
    // ~70 requests at 5 per second: a collection of about 15 s, tokens living 2 s.
    let config = s.config("        page_size: 5\n        rate_limit_per_minute: 300\n");
    let _sluice = s.start(&config);
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(s.collections().is_empty(), "the collection should still be running");
    // Revoked before their time, too.
    s.emulator.expire_tokens();
    let line = s.wait_collections(1, 60).await;
    let tokens = s.emulator.tokens_issued();
    assert!(tokens > 3, "{tokens} tokens for a collection of {:?}", line["took"]);
    assert_eq!(stored_counts(&s.store()).await, manager_counts(&s.emulator.url()).await);
    s.assert_no_errors();
}

#[tokio::test(flavor = "multi_thread")]
async fn never_connected_agents_have_no_data_and_do_not_fail_the_collection() {
    let s = Setup::new(WazuhConfig { max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    let mut expected = fleet(&s.emulator, 2, 5, 3);
    let (never, packages, files) = host(3, "never_connected", 5, 3);
    s.emulator.upsert_agent(never, packages, files);
    let (pending, packages, files) = host(4, "pending", 5, 3);
    s.emulator.upsert_agent(pending, packages, files);
    expected.insert("003".into(), (0, 0, 0));
    expected.insert("004".into(), (5, 3, 1));
    let config = s.config("        rate_limit_per_minute: 6000\n");
    let _sluice = s.start(&config);
    let line = s.wait_collections(1, 30).await;
    assert_eq!(line["agents"], 5);
    assert_eq!(stored_counts(&s.store()).await, expected);
    assert_eq!(s.store().wazuh_agent(TENANT, "003").await.unwrap()[0]["status"], "never_connected");
    s.assert_no_errors();
}

/// Both halves run at once: each has to cross a 60 s window of the manager.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_429s_are_waited_out_and_a_limit_within_the_managers_gets_none() {
    let manager = WazuhConfig { max_requests_per_minute: 60, ..WazuhConfig::default() };
    // 76 requests at 300 a minute: the manager's 60 run out after 12 s.
    let over = Setup::new(manager.clone()).await;
    let over_expected = fleet(&over.emulator, 5, 40, 25);
    let over_sluice = over.start(&over.config("        page_size: 5\n        rate_limit_per_minute: 300\n"));
    // 65 requests at 60 a minute: past the end of the first window, never over it.
    let within = Setup::new(manager).await;
    let within_expected = fleet(&within.emulator, 4, 45, 25);
    let within_sluice = within.start(&within.config("        page_size: 5\n        rate_limit_per_minute: 60\n"));

    let (over_line, within_line) = tokio::join!(over.wait_collections(1, 85), within.wait_collections(1, 85));

    assert!(over.emulator.rate_limited() > 0, "no 429 happened");
    assert!(over_line["rate_limited"].as_u64() > Some(0), "{over_line}");
    assert_eq!(stored_counts(&over.store()).await, over_expected);
    over.assert_no_errors();

    assert!(within.emulator.requests() > 60, "{} requests do not cross a window", within.emulator.requests());
    assert_eq!(within.emulator.rate_limited(), 0);
    assert_eq!(within_line["rate_limited"], 0);
    assert_eq!(stored_counts(&within.store()).await, within_expected);
    within.assert_no_errors();
    drop((over_sluice, within_sluice));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_resets_are_retried() {
    let s = Setup::new(WazuhConfig { max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    let expected = fleet(&s.emulator, 6, 12, 6);
    s.emulator.set_faults(WazuhFaults { error_rate: 0.1, reset_rate: 0.05, ..WazuhFaults::default() });
    let config = s.config("        page_size: 5\n        rate_limit_per_minute: 6000\n        request_timeout: 5s\n");
    let _sluice = s.start(&config);
    s.wait_collections(1, 60).await;
    assert_eq!(stored_counts(&s.store()).await, expected);
    let retried = s.log_lines().iter().filter(|l| l["message"] == "request failed; retrying").count();
    assert!(retried > 0, "no fault was injected");
    s.assert_no_errors();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_login_is_not_repeated_at_once() {
    let s = Setup::new(WazuhConfig { max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    fleet(&s.emulator, 1, 1, 1);
    std::fs::write(s.dir.path().join("wazuh.secret"), "wrong-password").unwrap();
    let _sluice = s.start(&s.config(""));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !s.log_lines().iter().any(|l| l["level"] == "ERROR" && l["error"].as_str().is_some_and(|e| e.contains("login refused"))) {
        assert!(tokio::time::Instant::now() < deadline, "no login error logged:\n{}", s.tail());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The manager blocks a client after repeated failed logins: the next try waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(s.emulator.requests(), 1);
    assert!(!std::fs::read_to_string(&s.log).unwrap().contains("wrong-password"));
}
