use std::io::Write;
use std::sync::Arc;

use super::*;
use crate::settings::Secret;
use crate::settings::template::PathTemplate;
use crate::sinks::policy::SinkPolicy;
use crate::store::Store;

fn event(source: &str, raw: &str) -> Event {
    Event::hashed("acme".into(), source.into(), "json".into(), chrono::Utc::now(), serde_json::from_str(raw).unwrap())
}

fn parse(value: serde_json::Value) -> Result<PostgresConfig, Vec<crate::settings::ConfigError>> {
    let mut errors = Vec::new();
    match <dyn SinkSettings>::parse("postgres", value, "sinks.pg", &mut errors) {
        Some(s) => Ok(s.downcast_ref::<PostgresConfig>().unwrap().clone()),
        None => Err(errors),
    }
}

#[test]
fn identifiers_are_quoted_with_inner_quotes_doubled() {
    assert_eq!(quote("events"), "\"events\"");
    assert_eq!(quote("a\"; DROP TABLE x; --"), "\"a\"\"; DROP TABLE x; --\"");
    assert_eq!(quote("ünïcode space"), "\"ünïcode space\"");
}

#[test]
fn identifiers_fold_to_lower_case_and_respect_postgres_limits() {
    assert_eq!(identifier("Crowdstrike_Hosts").unwrap(), "crowdstrike_hosts");
    assert!(identifier("").is_err());
    assert!(identifier("a\0b").is_err());
    assert!(identifier(&"x".repeat(63)).is_ok());
    assert!(identifier(&"x".repeat(64)).unwrap_err().contains("63 bytes"));
    // Multi-byte characters count in bytes, as PostgreSQL counts them.
    assert!(identifier(&"é".repeat(32)).is_err());
}

#[test]
fn index_names_stay_within_the_limit_and_apart() {
    assert_eq!(index_name("eve"), "eve_event_key");
    let (a, b) = (format!("{}a", "t".repeat(62)), format!("{}b", "t".repeat(62)));
    assert!(index_name(&a).len() <= 63 && index_name(&b).len() <= 63);
    assert_ne!(index_name(&a), index_name(&b));
    assert!(index_name(&"é".repeat(31)).len() <= 63);
}

#[test]
fn nul_escapes_become_text_for_jsonb_and_nothing_else_changes() {
    assert_eq!(jsonb_text(r#"{"a":"x"}"#), None);
    assert_eq!(jsonb_text(r#"{"a":"x\u0000y"}"#).unwrap(), r#"{"a":"x\\u0000y"}"#);
    // An escaped backslash followed by `u0000` is no NUL: left as it is.
    assert_eq!(jsonb_text(r#"{"a":"\\u0000","b":"\u0000"}"#).unwrap(), r#"{"a":"\\u0000","b":"\\u0000"}"#);
    assert_eq!(jsonb_text(r#"{"\u0000k":["\u0000\u0000",1]}"#).unwrap(), r#"{"\\u0000k":["\\u0000\\u0000",1]}"#);
    // Other escapes, including \u00001 (NUL then `1`), are kept.
    assert_eq!(jsonb_text(r#"["\u00001","\n","\u0001"]"#).unwrap(), r#"["\\u00001","\n","\u0001"]"#);
    // The result is still JSON, and the string now holds the six characters `\u0000`.
    let value: serde_json::Value = serde_json::from_str(&jsonb_text(r#"{"a":"x\u0000y"}"#).unwrap()).unwrap();
    assert_eq!(value["a"], "x\\u0000y");
}

#[test]
fn settings_parse_with_defaults() {
    let config = parse(serde_json::json!({"url": "postgres://sluice:pw@db:5432/siem"})).unwrap();
    assert_eq!(config.schema, "public");
    assert_eq!(config.table, PathTemplate::parse("%TAG").unwrap());
    assert_eq!(config.tls, TlsMode::Disable);
    assert_eq!(config.timeout, std::time::Duration::from_secs(30));
    assert!(config.create_tables);
    assert_eq!(format!("{:?}", config.url), "***", "the URL holds the password");
    let config = parse(serde_json::json!({"url": "postgresql://db/siem", "tls": "verify-full", "table": "%TENANCY_%TAG"})).unwrap();
    assert_eq!(config.tls, TlsMode::VerifyFull);
}

#[test]
fn settings_errors_name_their_key_and_never_the_password() {
    let errors = |value| parse(value).unwrap_err().into_iter().map(|e| (e.path, e.message)).collect::<Vec<_>>();
    let e = errors(serde_json::json!({"url": "http://u:hunter2@db/siem"}));
    assert_eq!(e[0].0, "sinks.pg.url");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    let e = errors(serde_json::json!({"url": "postgres://u:hunter2@db:notaport/siem"}));
    assert_eq!(e[0].0, "sinks.pg.url");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    let e = errors(serde_json::json!({"url": "postgres://u:hunter2@db:5432"}));
    assert!(e[0].1.contains("database"), "{e:?}");
    let e = errors(serde_json::json!({"url": "postgres://db/x", "schema": "s".repeat(64)}));
    assert_eq!(e[0].0, "sinks.pg.schema");
    let e = errors(serde_json::json!({"url": "postgres://db/x", "table": "%UUID"}));
    assert_eq!(e[0].0, "sinks.pg.table");
    let e = errors(serde_json::json!({"url": "postgres://db/x", "tls": "prefer"}));
    assert_eq!(e[0].0, "sinks.pg.tls");
    let e = errors(serde_json::json!({"url": "postgres://db/x", "ca_file": "/nonexistent.pem", "tls": "require"}));
    assert_eq!(e[0].0, "sinks.pg.ca_file");
    let e = errors(serde_json::json!({"url": "postgres://db/x", "password": "x"}));
    assert_eq!(e[0].0, "sinks.pg.password");
}

/// A fresh database on the local server, dropped at the end; `None` (skip) without a server.
struct TestDb {
    name: String,
}

impl TestDb {
    async fn create() -> Option<TestDb> {
        let admin = match tokio_postgres::connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", NoTls).await {
            Ok((client, connection)) => {
                tokio::spawn(connection);
                client
            }
            Err(e) if std::env::var_os("SLUICE_REQUIRE_POSTGRES").is_some() => panic!("PostgreSQL at 127.0.0.1:5432: {e}"),
            Err(e) => {
                eprintln!("SKIPPED: no PostgreSQL at 127.0.0.1:5432 ({e})");
                return None;
            }
        };
        let name = format!("sluice_unit_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        Some(TestDb { name })
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:5432/{}", self.name)
    }

    async fn client(&self) -> Client {
        let (client, connection) = tokio_postgres::connect(&format!("{}?application_name=check", self.url()), NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    async fn drop_it(self) {
        let (admin, connection) = tokio_postgres::connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", NoTls).await.unwrap();
        tokio::spawn(connection);
        admin.batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name)).await.unwrap();
    }
}

#[tokio::test]
async fn refused_rows_are_dead_lettered_alone_and_the_rest_is_stored_once() {
    let Some(db) = TestDb::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = PostgresConfig {
        url: Secret::new(db.url()),
        schema: "Security".into(),
        table: PathTemplate::parse("%TENANCY_%TAG").unwrap(),
        tls: TlsMode::Disable,
        ca_file: None,
        timeout: std::time::Duration::from_secs(10),
        create_tables: true,
    };
    let ctx = SinkContext { name: "pg".into(), store: Store::open(dir.path()).unwrap(), policy: SinkPolicy::default() };
    let mut sink = PgSink::new(config, ctx.clone()).unwrap();
    sink.check().await.unwrap();
    let mut events: Vec<Event> = (0..100).map(|i| event("Eve", &format!(r#"{{"n":{i},"s":"nul\u0000 {i}"}}"#))).collect();
    // jsonb refuses a number beyond numeric's range and a lone surrogate.
    events.insert(37, event("Eve", r#"{"n":1e1000000}"#));
    events.insert(80, event("Eve", r#"{"s":"\ud800"}"#));
    events.push(event("other", r#"{"big":123456789012345678901234567890,"when":"2024-07-15 14:30:45"}"#));
    let batch: Batch = Arc::new(events);
    let written = sink.write(std::slice::from_ref(&batch)).await.unwrap();
    assert_eq!(written.dead_lettered, 2, "{written:?}");
    assert!(written.dead_letter_reason.unwrap().contains("SQLSTATE 22"));
    assert_eq!(ctx.store.dead_letters("pg").await.unwrap().len(), 2);
    // A replay adds nothing.
    let written = sink.write(std::slice::from_ref(&batch)).await.unwrap();
    assert_eq!(written.dead_lettered, 2);

    let client = db.client().await;
    let count = |table: &'static str| {
        let client = &client;
        async move { client.query_one(&format!("SELECT count(*) FROM security.{table}"), &[]).await.unwrap().get::<_, i64>(0) }
    };
    assert_eq!(count("acme_eve").await, 100);
    assert_eq!(count("acme_other").await, 1);
    let row = client.query_one("SELECT data->>'s', json_data::text FROM security.acme_eve WHERE (data->>'n')::int = 5", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "nul\\u0000 5");
    assert_eq!(row.get::<_, String>(1), r#"{"n":5,"s":"nul\u0000 5"}"#, "json_data is the event as received");
    let row = client.query_one("SELECT data->>'big', tenancy, source, upload_id IS NULL FROM security.acme_other", &[]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "123456789012345678901234567890");
    assert_eq!((row.get::<_, String>(1), row.get::<_, String>(2), row.get::<_, bool>(3)), ("acme".into(), "other".into(), true));
    drop(client);
    drop(sink);
    db.drop_it().await;
}

#[tokio::test]
async fn a_refused_connection_fails_the_write_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = parse(serde_json::json!({"url": format!("postgres://u:hunter2@127.0.0.1:{port}/x"), "timeout": "2s"})).unwrap();
    let ctx = SinkContext { name: "pg".into(), store: Store::open(dir.path()).unwrap(), policy: SinkPolicy::default() };
    let mut sink = PgSink::new(config, ctx).unwrap();
    let err = sink.write(&[Arc::new(vec![event("eve", "{}")])]).await.unwrap_err();
    let text = format!("{err:#}");
    assert!(text.contains(&format!("127.0.0.1:{port}/x")) && !text.contains("hunter2"), "{text}");
    assert!(sink.check().await.is_err());
}

fn snapshot_sink(db: &TestDb, dir: &std::path::Path) -> PgSink {
    let config = parse(serde_json::json!({"url": db.url(), "timeout": "10s"})).unwrap();
    let ctx = SinkContext { name: "pg".into(), store: Store::open(dir).unwrap(), policy: SinkPolicy::default() };
    PgSink::new(config, ctx).unwrap()
}

fn snapshot(dir: &std::path::Path, tenant: &str, records: impl IntoIterator<Item = serde_json::Value>) -> crate::snapshot::Snapshot {
    let mut w = crate::snapshot::SnapshotWriter::create(&dir.join("spool"), tenant.into(), "hosts".into()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    w.finish().unwrap()
}

/// (rows, distinct upload ids) of `tenant` in `public.hosts`.
async fn snapshot_rows(client: &Client, tenant: &str) -> (i64, i64) {
    let row =
        client.query_one("SELECT count(*), count(DISTINCT upload_id) FROM public.hosts WHERE tenancy = $1", &[&tenant]).await.unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn snapshots_replace_each_other_per_tenant_and_keep_awkward_values() {
    let Some(db) = TestDb::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sink = snapshot_sink(&db, dir.path());
    let other = snapshot(dir.path(), "globex", [serde_json::json!({"id": "g1"})]);
    sink.write_snapshot(&other).await.unwrap();
    // Rows the original collectors appended (no upload_id) are replaced too.
    let client = db.client().await;
    client
        .batch_execute("INSERT INTO public.hosts (upload_timestamp, tenancy, json_data) VALUES (now(), 'acme', '{\"old\":1}')")
        .await
        .unwrap();

    let first = snapshot(
        dir.path(),
        "acme",
        [
            serde_json::json!({"id": "h1", "when": "2024-07-15 14:30:45", "big": u64::MAX, "nan": "NaN"}),
            serde_json::json!({"id": "h2", "s": "nul\u{0}byte", "nested": {"a": [1, 2.5, null, true]}}),
            serde_json::json!({"id": "h3", "unicode": "ünïcødé ✓"}),
        ],
    );
    sink.write_snapshot(&first).await.unwrap();
    assert_eq!(snapshot_rows(&client, "acme").await, (3, 1));
    let row = client
        .query_one(
            "SELECT upload_id::text, upload_timestamp::text, data->>'big', data->>'when', data->>'nan', data->>'_upload_id'
             FROM public.hosts WHERE data->>'id' = 'h1'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), first.upload_id.to_string());
    assert_eq!(row.get::<_, String>(1), first.upload_timestamp(), "upload_timestamp is _upload_timestamp");
    assert_eq!(row.get::<_, String>(2), u64::MAX.to_string());
    assert_eq!((row.get::<_, String>(3), row.get::<_, String>(4)), ("2024-07-15 14:30:45".into(), "NaN".into()));
    assert_eq!(row.get::<_, String>(5), first.upload_id.to_string());
    let nul: String = client.query_one("SELECT data->>'s' FROM public.hosts WHERE data->>'id' = 'h2'", &[]).await.unwrap().get(0);
    assert_eq!(nul, "nul\\u0000byte");

    let second = snapshot(dir.path(), "acme", [serde_json::json!({"id": "h9"}), serde_json::json!({"id": "h9"})]);
    sink.write_snapshot(&second).await.unwrap();
    // The same snapshot again changes nothing; identical records stay two rows.
    sink.write_snapshot(&second).await.unwrap();
    assert_eq!(snapshot_rows(&client, "acme").await, (2, 1));
    let id: String =
        client.query_one("SELECT DISTINCT upload_id::text FROM public.hosts WHERE tenancy = 'acme'", &[]).await.unwrap().get(0);
    assert_eq!(id, second.upload_id.to_string());
    assert_eq!(snapshot_rows(&client, "globex").await, (1, 1), "another tenant's snapshot is left alone");
    drop(client);
    drop(sink);
    db.drop_it().await;
}

#[tokio::test]
async fn a_reader_sees_only_complete_snapshots_while_one_is_written() {
    let Some(db) = TestDb::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sink = snapshot_sink(&db, dir.path());
    let rows = |n: usize| (0..n).map(|i| serde_json::json!({"id": i, "pad": "x".repeat(100)})).collect::<Vec<_>>();
    sink.write_snapshot(&snapshot(dir.path(), "acme", rows(20_000))).await.unwrap();
    let next = snapshot(dir.path(), "acme", rows(30_000));
    let writer = tokio::spawn(async move { sink.write_snapshot(&next).await });
    let client = db.client().await;
    let mut seen = std::collections::BTreeMap::new();
    while !writer.is_finished() {
        *seen.entry(snapshot_rows(&client, "acme").await).or_insert(0) += 1;
    }
    writer.await.unwrap().unwrap();
    *seen.entry(snapshot_rows(&client, "acme").await).or_insert(0) += 1;
    assert!(seen.keys().all(|k| *k == (20_000, 1) || *k == (30_000, 1)), "{seen:?}");
    assert!(seen.contains_key(&(20_000, 1)) && seen.contains_key(&(30_000, 1)), "{seen:?}");
    drop(client);
    db.drop_it().await;
}

#[tokio::test]
async fn a_failure_mid_load_leaves_the_previous_snapshot() {
    let Some(db) = TestDb::create().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut sink = snapshot_sink(&db, dir.path());
    let first = snapshot(dir.path(), "acme", (0..100).map(|i| serde_json::json!({"id": i})));
    sink.write_snapshot(&first).await.unwrap();
    let client = db.client().await;

    // A record PostgreSQL refuses (jsonb has no number this large) after 1,000 good ones.
    let refused = snapshot(dir.path(), "acme", (0..1000).map(|i| serde_json::json!({"id": i})));
    std::fs::OpenOptions::new().append(true).open(refused.spool_path()).unwrap().write_all(b"{\"n\":1e1000000}\n").unwrap();
    let err = sink.write_snapshot(&refused).await.unwrap_err();
    assert!(format!("{err:#}").contains("SQLSTATE 22"), "{err:#}");
    assert_eq!(snapshot_rows(&client, "acme").await, (100, 1));

    // The connection killed during the COPY.
    let big = snapshot(dir.path(), "acme", (0..100_000).map(|i| serde_json::json!({"id": i, "pad": "y".repeat(200)})));
    let big = Arc::new(big);
    let writer = {
        let big = big.clone();
        tokio::spawn(async move {
            let result = sink.write_snapshot(&big).await;
            (sink, result)
        })
    };
    let mut killed = false;
    while !killed && !writer.is_finished() {
        let rows = client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'sluice' AND query LIKE 'COPY%' AND state = 'active'",
                &[],
            )
            .await
            .unwrap();
        killed = !rows.is_empty();
    }
    let (mut sink, result) = writer.await.unwrap();
    assert!(killed, "the COPY finished before it could be interrupted");
    assert!(result.is_err());
    assert_eq!(snapshot_rows(&client, "acme").await, (100, 1));
    // The next attempt connects again and lands.
    sink.write_snapshot(&big).await.unwrap();
    assert_eq!(snapshot_rows(&client, "acme").await, (100_000, 1));
    drop(client);
    drop(sink);
    db.drop_it().await;
}
