//! The WithSecure source end to end: the real binary against the Elements emulator.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Sluice, wait_until};
use sluice_emulators::withsecure::{Emulator, Options};

const PAGE: usize = 200;

struct Setup {
    dir: tempfile::TempDir,
    emulator: Emulator,
    log: PathBuf,
}

impl Setup {
    async fn new(options: Options) -> Setup {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sluice.log");
        Setup { dir, emulator, log }
    }

    /// A tenant = an organization + its API client.
    fn tenant(&self, name: &str) -> String {
        let org = format!("org-{name}");
        self.emulator.add_organization(&org, name, "company");
        self.emulator.add_client(&format!("{name}-id"), &format!("{name}-secret"), &org, &[&org]);
        org
    }

    /// Writes the config; `extra` is added to every source.
    fn config(&self, tenants: &[&str], extra: &str) -> PathBuf {
        let d = self.dir.path().display();
        let mut text = format!("state_dir: {d}/state\nsinks:\n  out: {{type: file, path: \"{d}/out/%TENANCY.jsonl\"}}\ntenants:\n");
        for t in tenants {
            text.push_str(&format!(
                "  - name: {t}\n    sources:\n      - name: ws\n        type: withsecure\n        api_url: {}\n        client_id: {t}-id\n        client_secret: {t}-secret\n        interval: 1s\n        request_timeout: 5s\n{extra}    sinks: [out]\n",
                self.emulator.url()
            ));
        }
        let path = self.dir.path().join("sluice.yml");
        std::fs::write(&path, text).unwrap();
        path
    }

    fn output(&self, tenant: &str) -> PathBuf {
        self.dir.path().join(format!("out/{tenant}.jsonl"))
    }

    fn start(&self, config: &Path) -> Sluice {
        Sluice::start(config, &self.log)
    }

    /// Waits (off the async runtime, which serves the emulator) until `tenant` has every id.
    async fn wait_for(&self, tenant: &str, want: &[String], secs: u64) {
        let (out, log, want) = (self.output(tenant), self.log.clone(), want.to_vec());
        tokio::task::spawn_blocking(move || wait_for_ids(&out, &want, Duration::from_secs(secs), &log)).await.unwrap();
    }
}

/// Ids in the output so far. The sink may be mid-write: a last line without its newline is not
/// complete yet and is left for the next look.
fn ids_in(path: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    for line in complete.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        *counts.entry(v["id"].as_str().unwrap().to_string()).or_insert(0) += 1;
    }
    counts
}

fn wait_for_ids(path: &Path, expected: &[String], timeout: Duration, log: &Path) {
    wait_until(
        timeout,
        || {
            let got = ids_in(path);
            expected.iter().all(|id| got.contains_key(id))
        },
        || {
            let got = ids_in(path);
            let missing = expected.iter().filter(|id| !got.contains_key(*id)).count();
            format!(
                "{missing} of {} ids missing in {}\n{}",
                expected.len(),
                path.display(),
                std::fs::read_to_string(log).unwrap_or_default().lines().rev().take(30).collect::<Vec<_>>().join("\n")
            )
        },
    );
}

fn assert_exactly_once(path: &Path, expected: &[String]) {
    let got = ids_in(path);
    for id in expected {
        assert_eq!(got.get(id), Some(&1), "id {id} is not in {} exactly once", path.display());
    }
    assert_eq!(got.len(), expected.len(), "unexpected extra events");
}

fn past(minutes: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::minutes(minutes)
}

fn fixed_from(t: DateTime<Utc>) -> String {
    format!("        rate_limit_per_minute: 6000\n        start_mode: fixed\n        start_date: \"{}\"\n", t.to_rfc3339())
}

const STATE: &str = "        rate_limit_per_minute: 6000\n        start_mode: state\n";

#[tokio::test(flavor = "multi_thread")]
async fn three_tenants_exactly_once_through_token_expiry_429s_and_5xx() {
    // Tokens live 3 s: they run out while paging through 10,000 events.
    let s = Setup::new(Options { token_ttl: Duration::from_secs(3), ..Options::default() }).await;
    let tenants = ["acme", "globex", "initech"];
    let mut expected = HashMap::new();
    for t in tenants {
        let org = s.tenant(t);
        // 7 events per millisecond: timestamps are shared across the 200-event page boundaries.
        expected.insert(t, s.emulator.generate(&org, 10_000, past(60), 7));
    }
    s.emulator.set_delay(Duration::from_millis(20));
    let config = s.config(&tenants, &fixed_from(past(61)));
    let sluice = s.start(&config);
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.emulator.throttle_next(6, 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.emulator.fail_next(4, 503);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Mid-pagination, tokens are revoked before their time: the next request gets a 401.
    let out = s.output("acme");
    tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(30), || ids_in(&out).len() > 2000, || "no progress".into()))
        .await
        .unwrap();
    s.emulator.expire_tokens();
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.emulator.set_delay(Duration::from_millis(2));

    // Late arrivals sharing the newest timestamp must still be collected, once.
    for t in tenants {
        s.wait_for(t, &expected[t], 90).await;
    }
    for t in tenants {
        let org = format!("org-{t}");
        let more = s.emulator.generate(&org, 450, Utc::now(), 300);
        expected.get_mut(t).unwrap().extend(more);
    }
    for t in tenants {
        s.wait_for(t, &expected[t], 60).await;
        assert_exactly_once(&s.output(t), &expected[t]);
    }
    assert_eq!(sluice.terminate(), 0);
    let statuses: Vec<u16> = s.emulator.requests().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&429) && statuses.contains(&503) && statuses.contains(&401), "faults were not exercised: {statuses:?}");
    let token_requests = s.emulator.requests().iter().filter(|r| r.path == "/as/token.oauth2").count();
    assert!(token_requests > 2 * tenants.len(), "tokens were not refreshed while paging ({token_requests} token requests)");
    assert!(s.emulator.requests().iter().all(|r| r.user_agent.as_deref().is_some_and(|ua| ua.starts_with("sluice/"))));

    // Restart (production mode resumes from state): still exactly once, and new events arrive.
    let config = s.config(&tenants, STATE);
    let sluice = s.start(&config);
    for t in tenants {
        let more = s.emulator.generate(&format!("org-{t}"), 300, Utc::now(), 3);
        expected.get_mut(t).unwrap().extend(more);
    }
    for t in tenants {
        s.wait_for(t, &expected[t], 60).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await; // another cycle: nothing repeated
    assert_eq!(sluice.terminate(), 0);
    for t in tenants {
        assert_exactly_once(&s.output(t), &expected[t]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_mid_collection_loses_nothing_and_repeats_at_most_a_page() {
    let s = Setup::new(Options::default()).await;
    let tenants = ["acme", "globex", "initech"];
    let mut expected = HashMap::new();
    for t in tenants {
        let org = s.tenant(t);
        expected.insert(t, s.emulator.generate(&org, 10_000, past(60), 5));
    }
    // Slow pages, so the kill lands mid-collection.
    s.emulator.set_delay(Duration::from_millis(30));
    let config = s.config(&tenants, &fixed_from(past(61)));
    let sluice = s.start(&config);
    let out = s.output("acme");
    tokio::task::spawn_blocking(move || wait_until(Duration::from_secs(30), || ids_in(&out).len() > 1000, || "no progress".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(rand::random_range(0..300))).await;
    sluice.kill9();
    let partial: usize = tenants.iter().map(|t| ids_in(&s.output(t)).len()).sum();
    assert!(partial < 30_000, "killed too late to test anything");

    s.emulator.set_delay(Duration::ZERO);
    let config = s.config(&tenants, STATE);
    let sluice = s.start(&config);
    for t in tenants {
        s.wait_for(t, &expected[t], 60).await;
    }
    assert_eq!(sluice.terminate(), 0);
    for t in tenants {
        let counts = ids_in(&s.output(t));
        assert_eq!(counts.len(), expected[t].len());
        let duplicates: usize = counts.values().map(|c| c - 1).sum();
        assert!(duplicates <= PAGE, "{t}: {duplicates} duplicates, more than one page");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn never_exceeds_the_rate_limit() {
    let s = Setup::new(Options::default()).await;
    let org = s.tenant("acme");
    let ids = s.emulator.generate(&org, 4_000, past(60), 1); // 20 pages + a token
    let extra =
        format!("        rate_limit_per_minute: 60\n        start_mode: fixed\n        start_date: \"{}\"\n", past(61).to_rfc3339());
    let config = s.config(&["acme"], &extra);
    let sluice = s.start(&config);
    s.wait_for("acme", &ids, 60).await;
    assert_eq!(sluice.terminate(), 0);

    // 60 per minute, spread evenly: never more than 11 in any 10 s (unthrottled, all 21 would
    // land within a second).
    let times: Vec<_> = s.emulator.requests().iter().filter(|r| r.client_id.as_deref() == Some("acme-id")).map(|r| r.at).collect();
    assert!(times.len() >= 21);
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| u.duration_since(*t) < Duration::from_secs(10)).count();
        assert!(in_window <= 11, "{in_window} requests within 10 s");
    }
    assert!(s.emulator.max_requests_in_any_minute("acme-id") <= 60);
}

#[tokio::test(flavor = "multi_thread")]
async fn start_modes_now_fixed_and_state() {
    let s = Setup::new(Options::default()).await;
    let org = s.tenant("acme");
    let old = s.emulator.generate(&org, 50, past(120), 1);
    let recent = s.emulator.generate(&org, 30, past(30), 1);

    // fixed: from start_date on, nothing before it.
    let config = s.config(&["acme"], &fixed_from(past(60)));
    let sluice = s.start(&config);
    s.wait_for("acme", &recent, 30).await;
    assert_eq!(sluice.terminate(), 0);
    assert_exactly_once(&s.output("acme"), &recent);
    assert!(old.iter().all(|id| !ids_in(&s.output("acme")).contains_key(id)));

    // now: ignores the saved position and everything older than the start.
    std::fs::remove_file(s.output("acme")).unwrap();
    let config = s.config(&["acme"], "        start_mode: now\n");
    let sluice = s.start(&config);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fresh = s.emulator.generate(&org, 20, Utc::now() + chrono::Duration::milliseconds(100), 1);
    s.wait_for("acme", &fresh, 30).await;
    assert_eq!(sluice.terminate(), 0);
    assert_exactly_once(&s.output("acme"), &fresh);

    // state: resumes where `now` left off; only what arrived while it was stopped.
    let missed = s.emulator.generate(&org, 25, Utc::now(), 1);
    let config = s.config(&["acme"], STATE);
    let sluice = s.start(&config);
    s.wait_for("acme", &missed, 30).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sluice.terminate(), 0);
    let mut all = fresh.clone();
    all.extend(missed);
    assert_exactly_once(&s.output("acme"), &all);
}

#[tokio::test(flavor = "multi_thread")]
async fn partner_account_collects_every_organization_separately() {
    let s = Setup::new(Options::default()).await;
    s.emulator.add_organization("partner", "msp", "partner");
    let mut expected = Vec::new();
    let mut orgs = Vec::new();
    for i in 0..3 {
        let org = format!("customer-{i}");
        s.emulator.add_organization(&org, &org, "company");
        expected.extend(s.emulator.generate(&org, 300, past(30), 2));
        orgs.push(org);
    }
    let visible: Vec<&str> = orgs.iter().map(String::as_str).chain(["partner"]).collect();
    s.emulator.add_client("msp-id", "msp-secret", "partner", &visible);
    let extra = format!("{}        organizations: all\n", fixed_from(past(31)));
    let config = s.config(&["msp"], &extra);
    let sluice = s.start(&config);
    s.wait_for("msp", &expected, 30).await;
    assert_eq!(sluice.terminate(), 0);
    assert_exactly_once(&s.output("msp"), &expected);
    let queried: std::collections::HashSet<String> =
        s.emulator.requests().iter().flat_map(|r| r.form.iter().filter(|(k, _)| k == "organizationId").map(|(_, v)| v.clone())).collect();
    assert!(orgs.iter().all(|o| queried.contains(o)), "{queried:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn seed_000_config_and_state_file_migrate() {
    let s = Setup::new(Options::default()).await;
    let org = s.tenant("tenant1");
    let base = DateTime::from_timestamp_millis(past(90).timestamp_millis()).unwrap();
    let before = s.emulator.generate(&org, 40, base, 4);
    let after = s.emulator.generate(&org, 60, past(30), 4);
    let d = s.dir.path();
    // The original tool's files, as it left them: its state says it has everything up to the
    // last "before" event.
    std::fs::create_dir_all(d.join("state")).unwrap();
    let last_ts = (base + chrono::Duration::milliseconds(9)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    std::fs::write(d.join("state/tenant1.json"), format!("{{\n  \"last_ts\": \"{last_ts}\",\n  \"anchor\": \"ANCHOR-1\"\n}}")).unwrap();
    let config = d.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "clients:\n  - name: \"tenant1\"\n    client_id: \"tenant1-id\"\n    client_secret: \"tenant1-secret\"\n    scope: \"connect.api.read\"\n    interval: 1\n    output_log: events/tenant1.log\n    rate_limit_per_minute: 600\n    start_mode: state\n    api_url: {}\n",
            s.emulator.url()
        ),
    )
    .unwrap();
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_sluice")).args(["check", "-c"]).arg(&config).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));

    let sluice = s.start(&config);
    let output = d.join("events/tenant1.log");
    wait_until(Duration::from_secs(10), || output.exists(), || "output_log not created at start".into());
    let log = s.log.clone();
    let out2 = output.clone();
    let lines = move || {
        std::fs::read_to_string(&out2)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let lines2 = lines.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(Duration::from_secs(30), || lines2().len() >= 60, || std::fs::read_to_string(&log).unwrap())
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(sluice.terminate(), 0);
    let lines = lines();
    assert_eq!(lines.len(), 60, "only the events after the imported position");
    for line in &lines {
        assert_eq!(line["vendor"], "withsecure");
        let id = line["withsecure"]["id"].as_str().unwrap().to_string();
        assert!(after.contains(&id) && !before.contains(&id));
    }
    assert!(d.join("state/sluice.db").exists());
}

/// Duplicated ids in the output: every delivery of an id after its first.
fn duplicates(path: &Path) -> usize {
    ids_in(path).values().map(|c| c - 1).sum()
}

/// The live positions in the store, by key.
fn live_positions(state_dir: &Path) -> Vec<(String, String)> {
    let db = rusqlite::Connection::open(state_dir.join("sluice.db")).unwrap();
    let mut stmt = db.prepare("SELECT key, value FROM checkpoints ORDER BY key").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().collect::<Result<_, _>>().unwrap()
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn fixed_start_applies_once_a_restart_resumes_and_a_new_start_date_starts_over() {
    let s = Setup::new(Options::default()).await;
    let org = s.tenant("acme");
    let older = s.emulator.generate(&org, 500, past(180), 1);
    let ids = s.emulator.generate(&org, 3_000, past(60), 2);
    let first_date = past(90);
    let config = s.config(&["acme"], &fixed_from(first_date));
    let sluice = s.start(&config);
    s.wait_for("acme", &ids, 60).await;
    assert_eq!(sluice.terminate(), 0);
    assert_exactly_once(&s.output("acme"), &ids);

    // A restart (an upgrade, a reboot) with the same config resumes: the backfill is not repeated.
    let sluice = s.start(&config);
    let more = s.emulator.generate(&org, 100, Utc::now(), 1);
    s.wait_for("acme", &more, 60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // another cycle
    assert_eq!(sluice.terminate(), 0);
    let dup = duplicates(&s.output("acme"));
    eprintln!("duplicates after a restart with start_mode fixed: {dup} of {} events", ids.len());
    assert_eq!(dup, 0, "a restart collected the start_date window again");
    let mut all = ids.clone();
    all.extend(more.iter().cloned());
    assert_exactly_once(&s.output("acme"), &all);

    // A new start_date, picked up by a reload while running, starts the new window.
    let sluice = s.start(&config);
    sluice.wait_log("withsecure cycle done");
    let second_date = past(200);
    std::fs::write(&config, std::fs::read_to_string(&config).unwrap().replace(&first_date.to_rfc3339(), &second_date.to_rfc3339()))
        .unwrap();
    s.wait_for("acme", &older, 60).await;
    let out = s.output("acme");
    let want = all.clone();
    tokio::task::spawn_blocking(move || {
        wait_until(
            Duration::from_secs(60),
            || {
                let got = ids_in(&out);
                want.iter().all(|id| got.get(id) == Some(&2))
            },
            || "the new window is incomplete".into(),
        )
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let log = sluice.log_text();
    assert_eq!(sluice.terminate(), 0);
    let counts = ids_in(&s.output("acme"));
    assert!(older.iter().all(|id| counts[id] == 1), "events before the first start_date: once, from the new window");
    assert!(all.iter().all(|id| counts[id] == 2), "the rest: once per window");
    let changed = log.lines().find(|l| l.contains("start setting changed")).unwrap_or_else(|| panic!("no log of the change:\n{log}"));
    assert!(changed.contains(&stamp(first_date)) && changed.contains(&stamp(second_date)), "{changed}");
}

#[tokio::test(flavor = "multi_thread")]
async fn backfill_recollects_a_window_into_the_sinks_without_moving_the_live_position() {
    let s = Setup::new(Options::default()).await;
    let org = s.tenant("acme");
    let base = DateTime::from_timestamp_millis(past(60).timestamp_millis()).unwrap();
    // Two events per millisecond: 3,000 events over 1.5 s.
    let ids = s.emulator.generate(&org, 3_000, base, 2);
    let config = s.config(&["acme"], &fixed_from(past(61)));
    let sluice = s.start(&config);
    s.wait_for("acme", &ids, 60).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let state = s.dir.path().join("state");
    let before = live_positions(&state);
    assert!(!before.is_empty());

    // While the daemon runs: the first second again, 2,000 events.
    let backfill = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["backfill", "-c"])
        .arg(&config)
        .args(["--tenant", "acme", "--source", "ws", "--from", &stamp(base), "--to", &stamp(base + chrono::Duration::seconds(1))])
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&backfill.stderr);
    eprintln!("sluice backfill said:\n{stderr}");
    assert!(backfill.status.success(), "backfill failed: {stderr}");
    assert!(stderr.contains("pages") && stderr.contains("2000 events"), "no progress on stderr: {stderr}");
    assert_eq!(live_positions(&state), before, "the backfill moved the live position");

    // The daemon's next cycles do not repeat the window; new events arrive once.
    let more = s.emulator.generate(&org, 50, Utc::now(), 1);
    s.wait_for("acme", &more, 60).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sluice.terminate(), 0);
    let counts = ids_in(&s.output("acme"));
    assert!(ids[..2000].iter().all(|id| counts[id] == 2), "the window: once live, once backfilled");
    assert!(ids[2000..].iter().chain(&more).all(|id| counts[id] == 1), "outside the window: once");
    assert_eq!(counts.len(), ids.len() + more.len());

    // Asking for a tenant or source that cannot be backfilled is an error that says why.
    let wrong = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["backfill", "-c"])
        .arg(&config)
        .args(["--tenant", "nobody", "--from", "2025-01-01"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("nobody"));
}
