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
