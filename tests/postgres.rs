//! The `postgres` sink against a real PostgreSQL at 127.0.0.1:5432 (user `postgres`, trust
//! auth): each test makes a database of its own and drops it at the end. Without a server the
//! tests say so and pass, unless `SLUICE_REQUIRE_POSTGRES=1` (as CI sets it).

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Sluice, status_json, wait_until};

const LINES: usize = 10_000;

/// A fresh database, dropped (with its connections) when this goes.
struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
    name: String,
}

impl Db {
    fn create() -> Option<Db> {
        if std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().unwrap(), Duration::from_secs(2)).is_err() {
            if std::env::var_os("SLUICE_REQUIRE_POSTGRES").is_some() {
                panic!("no PostgreSQL answers at 127.0.0.1:5432 (SLUICE_REQUIRE_POSTGRES is set)");
            }
            eprintln!("SKIPPED: no PostgreSQL at 127.0.0.1:5432");
            return None;
        }
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&rt, "postgres");
        rt.block_on(admin.batch_execute(&format!("CREATE DATABASE {name}"))).unwrap();
        let client = connect(&rt, &name);
        Some(Db { rt, client, name })
    }

    fn url(&self, port: u16) -> String {
        format!("postgres://postgres:unused-password@127.0.0.1:{port}/{}", self.name)
    }

    fn query(&self, sql: &str) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        self.rt.block_on(self.client.query(sql, &[]))
    }

    fn execute(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap();
    }

    /// Rows of `table`; 0 while it does not exist.
    fn count(&self, table: &str) -> i64 {
        self.query(&format!("SELECT count(*) FROM {table}")).map(|rows| rows[0].get(0)).unwrap_or(0)
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let admin = connect(&self.rt, "postgres");
        let _ = self.rt.block_on(admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)));
    }
}

fn connect(rt: &tokio::runtime::Runtime, db: &str) -> tokio_postgres::Client {
    let (client, connection) = rt
        .block_on(tokio_postgres::connect(&format!("host=127.0.0.1 port=5432 user=postgres dbname={db}"), tokio_postgres::NoTls))
        .unwrap();
    rt.spawn(connection);
    client
}

/// `LINES` different events with what the original collectors crashed on: dates, integers past
/// 64 bits, NaN-like strings, NUL, nesting, unicode.
fn lines() -> Vec<String> {
    (0..LINES)
        .map(|n| match n % 6 {
            0 => format!(r#"{{"n":{n},"when":"2024-07-15 14:30:45","iso":"2024-07-15T14:30:45.123+02:00","epoch":1721054445}}"#),
            1 => format!(r#"{{"n":{n},"big":123456789012345678901234567890{n},"neg":-9223372036854775809,"f":1.5e300}}"#),
            2 => format!(r#"{{"n":{n},"s":"NaN","t":"Infinity","u":"-inf","v":null}}"#),
            3 => format!(r#"{{"n":{n},"nul":"a\u0000b","not_nul":"\\u0000 is text"}}"#),
            4 => format!(r#"{{"n":{n},"nested":{{"a":[1,{{"b":{{"c":[true,false,null]}}}}],"empty":{{}},"list":[]}}}}"#),
            _ => format!(r#"{{"n":{n},"text":"ünïcödé 日本語 🦀 \u00e9 \" ' \\ \n\t"}}"#),
        })
        .collect()
}

fn write_lines(dir: &Path) -> Vec<String> {
    let lines = lines();
    std::fs::write(dir.join("events.jsonl"), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    lines
}

fn config(dir: &Path, url: &str, sink_extra: &str) -> PathBuf {
    let d = dir.display();
    let cfg = dir.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {d}/state\nsinks:\n  pg:\n    type: postgres\n    url: \"{url}\"\n    timeout: 5s\n    health: {{interval: 1s}}\n{sink_extra}tenants:\n  - name: acme\n    sources:\n      - {{name: events, type: file, path: \"{d}/events.jsonl\", poll_interval: 20ms}}\n    sinks: [pg]\n"
        ),
    )
    .unwrap();
    cfg
}

fn wait_rows(db: &Db, sluice: &Sluice, n: i64) {
    wait_until(
        Duration::from_secs(120),
        || db.count("public.events") >= n,
        || format!("{} rows of {n}; sluice log:\n{}", db.count("public.events"), sluice.log_text()),
    );
}

#[test]
fn every_event_is_one_row_with_its_json_and_a_replay_adds_none() {
    let Some(db) = Db::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    let lines = write_lines(dir.path());
    let cfg = config(dir.path(), &db.url(5432), "");
    let sluice = Sluice::start(&cfg, &dir.path().join("run-1.log"));
    wait_rows(&db, &sluice, LINES as i64);
    assert_eq!(sluice.terminate(), 0);
    assert_eq!(db.count("public.events"), LINES as i64);

    let rows = db.query("SELECT (data->>'n')::int, json_data::text, tenancy, source, vendor, event_id FROM events").unwrap();
    let mut seen = vec![false; LINES];
    for row in &rows {
        let n: i32 = row.get(0);
        let json: String = row.get(1);
        assert_eq!(json, lines[n as usize], "json_data is the event as received");
        assert_eq!((row.get::<_, &str>(2), row.get::<_, &str>(3)), ("acme", "events"));
        assert!(!row.get::<_, &str>(5).is_empty());
        seen[n as usize] = true;
    }
    assert!(seen.iter().all(|&s| s));
    // The jsonb copy is queryable, numbers exact, NUL kept as the text `\u0000`.
    let big = db.query("SELECT data->>'big' FROM events WHERE data->>'n' = '1'").unwrap();
    assert_eq!(big[0].get::<_, &str>(0), "1234567890123456789012345678901");
    let nul = db.query("SELECT data->>'nul', data->>'not_nul' FROM events WHERE data->>'n' = '3'").unwrap();
    assert_eq!((nul[0].get::<_, &str>(0), nul[0].get::<_, &str>(1)), ("a\\u0000b", "\\u0000 is text"));
    let nested = db.query("SELECT data #>> '{nested,a,1,b,c,0}' FROM events WHERE data->>'n' = '4'").unwrap();
    assert_eq!(nested[0].get::<_, &str>(0), "true");

    // Everything again from the start: the file source reads it all, the sink writes it all,
    // the table keeps one row per event.
    std::fs::remove_dir_all(dir.path().join("state")).unwrap();
    let sluice = Sluice::start(&cfg, &dir.path().join("run-2.log"));
    wait_until(
        Duration::from_secs(120),
        || {
            let s = &status_json(&cfg)["pg"];
            s["sent"].as_u64() >= Some(LINES as u64) && s["pending"].as_u64() == Some(0)
        },
        || format!("replay: {}\n{}", status_json(&cfg)["pg"], sluice.log_text()),
    );
    assert_eq!(sluice.terminate(), 0);
    assert_eq!(db.count("public.events"), LINES as i64, "a replay adds no row");
}

#[test]
fn a_refused_connection_keeps_events_in_the_outbox_until_a_reload_fixes_the_url() {
    let Some(db) = Db::create() else { return };
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path());
    let wrong = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = config(dir.path(), &db.url(wrong), "");
    let sluice = Sluice::start(&cfg, &dir.path().join("sluice.log"));
    wait_until(
        Duration::from_secs(60),
        || {
            let s = &status_json(&cfg)["pg"];
            s["pending"].as_u64() == Some(LINES as u64) && s["health"] == "failed"
        },
        || format!("{}\n{}", status_json(&cfg)["pg"], sluice.log_text()),
    );
    let status = status_json(&cfg)["pg"].to_string();
    assert!(status.contains(&format!("127.0.0.1:{wrong}")), "the reason names the server: {status}");
    assert!(!status.contains("unused-password") && !sluice.log_text().contains("unused-password"), "{status}");
    assert_eq!(db.count("public.events"), 0);

    config(dir.path(), &db.url(5432), "");
    sluice.signal("HUP");
    let fixed = Instant::now();
    wait_rows(&db, &sluice, LINES as i64);
    eprintln!("all {LINES} events stored {:.2} s after the reload", fixed.elapsed().as_secs_f64());
    wait_until(Duration::from_secs(20), || status_json(&cfg)["pg"]["pending"].as_u64() == Some(0), || "outbox empty".into());
    assert_eq!(sluice.terminate(), 0);
    assert_eq!(db.count("public.events"), LINES as i64);
}

#[test]
fn kill_9_during_delivery_then_a_restart_stores_every_event_once() {
    let Some(db) = Db::create() else { return };
    // The table as the original collectors made it, holding one of their rows; sluice adds its
    // columns. A statement trigger slows each transaction so that the kill lands mid-delivery.
    db.execute(
        "CREATE TABLE public.events (upload_timestamp timestamp, tenancy VARCHAR, json_data json);
         INSERT INTO public.events VALUES (now(), 'acme', '{\"from\":\"the original collector\"}');
         CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
         CREATE TRIGGER slow AFTER INSERT ON public.events FOR EACH STATEMENT EXECUTE FUNCTION slow();",
    );
    let dir = tempfile::tempdir().unwrap();
    write_lines(dir.path());
    let cfg = config(dir.path(), &db.url(5432), "    batch: {max_events: 100}\n");
    let sluice = Sluice::start(&cfg, &dir.path().join("run-1.log"));
    wait_rows(&db, &sluice, 3_000);
    sluice.kill9();
    let at_kill = db.count("public.events") - 1;
    eprintln!("kill -9 with {at_kill} of {LINES} events stored");
    assert!(at_kill < LINES as i64, "everything arrived before the kill");

    let sluice = Sluice::start(&cfg, &dir.path().join("run-2.log"));
    wait_rows(&db, &sluice, LINES as i64 + 1);
    wait_until(Duration::from_secs(30), || status_json(&cfg)["pg"]["pending"].as_u64() == Some(0), || "outbox empty".into());
    assert_eq!(sluice.terminate(), 0);
    let rows = db.query("SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE event_id IS NULL) FROM public.events").unwrap();
    let (all, distinct, original): (i64, i64, i64) = (rows[0].get(0), rows[0].get(1), rows[0].get(2));
    assert_eq!((all, distinct, original), (LINES as i64 + 1, LINES as i64, 1), "each event once, the original row kept");
}
