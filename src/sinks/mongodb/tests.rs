use std::io::Write as _;
use std::sync::Arc;

use futures::TryStreamExt;

use super::*;
use crate::settings::template::PathTemplate;
use crate::sinks::policy::SinkPolicy;
use crate::store::Store;

fn parse(value: serde_json::Value) -> Result<MongoConfig, Vec<(String, String)>> {
    let mut errors = Vec::new();
    match <dyn SinkSettings>::parse("mongodb", value, "sinks.m", &mut errors) {
        Some(s) => Ok(s.downcast_ref::<MongoConfig>().unwrap().clone()),
        None => Err(errors.into_iter().map(|e| (e.path, e.message)).collect()),
    }
}

#[test]
fn settings_parse_with_defaults_and_name_their_errors() {
    let config = parse(serde_json::json!({"url": "mongodb://u:hunter2@db:27017/?tls=true", "database": "siem"})).unwrap();
    assert_eq!(config.collection, PathTemplate::parse("%TAG").unwrap());
    assert_eq!(format!("{:?}", config.url), "***");
    let errors = |v| parse(v).unwrap_err();
    let e = errors(serde_json::json!({"url": "http://u:hunter2@db", "database": "siem"}));
    assert_eq!(e[0].0, "sinks.m.url");
    assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
    assert_eq!(errors(serde_json::json!({"url": "mongodb://db", "database": "a.b"}))[0].0, "sinks.m.database");
    assert_eq!(errors(serde_json::json!({"url": "mongodb://db", "database": "d", "collection": "%UUID"}))[0].0, "sinks.m.collection");
    assert_eq!(errors(serde_json::json!({"url": "mongodb://db", "database": "d", "collection": "a$b"}))[0].0, "sinks.m.collection");
}

#[test]
fn json_becomes_bson_without_losing_values() {
    let d = document(
        &RawValue::from_string(
            r#"{"i":1,"l":9007199254740993,"u":18446744073709551615,"huge":123456789012345678901234567890,
                "vast":1234567890123456789012345678901234567890,"f":2.5,"e":1e1000000,"s":"a\u0000b","NaN":"NaN",
                "k\u0000":true,"bad":"\ud800x","n":null,"a":[1,[{"x":-3}]],"when":"2024-07-15 14:30:45"}"#
                .into(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(d.get("i"), Some(&Bson::Int32(1)));
    assert_eq!(d.get("l"), Some(&Bson::Int64(9007199254740993)));
    assert_eq!(d.get("u").unwrap().to_string(), "18446744073709551615");
    assert!(matches!(d.get("u"), Some(Bson::Decimal128(_))));
    assert_eq!(d.get("huge").unwrap().to_string(), "123456789012345678901234567890");
    assert_eq!(d.get("vast"), Some(&Bson::String("1234567890123456789012345678901234567890".into())));
    assert_eq!(d.get("f"), Some(&Bson::Double(2.5)));
    assert_eq!(d.get("e"), Some(&Bson::String("1e1000000".into())));
    assert_eq!(d.get("s"), Some(&Bson::String("a\0b".into())));
    assert_eq!(d.get("NaN"), Some(&Bson::String("NaN".into())));
    assert_eq!(d.get("k\\u0000"), Some(&Bson::Boolean(true)));
    assert_eq!(d.get("bad"), Some(&Bson::String("\\ud800x".into())));
    assert_eq!(d.get("n"), Some(&Bson::Null));
    assert_eq!(d.get_array("a").unwrap()[1].as_array().unwrap()[0].as_document().unwrap().get("x"), Some(&Bson::Int32(-3)));
    let keys: Vec<_> = d.keys().take(3).collect();
    assert_eq!(keys, ["i", "l", "u"], "member order is kept");
    // The whole document serializes: BSON takes every value.
    mongodb::bson::to_vec(&d).unwrap();
    assert_eq!(document(&RawValue::from_string("[1]".into()).unwrap()).unwrap(), doc! {"value": [1]});
}

/// An nx-27017 server (MongoDB's wire protocol over SQLite, from PyPI) on a free port, stopped
/// when dropped; `None` (skip) when it cannot start, unless `SLUICE_REQUIRE_MONGODB` is set.
struct Nx {
    child: std::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Nx {
    async fn start() -> Option<Nx> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let spawned = std::process::Command::new("nx-27017")
            .args(["--db", "memory", "--host", "127.0.0.1", "-p", &port.to_string()])
            .arg("--log-file")
            .arg(dir.path().join("nx.log"))
            .arg("--pid-file")
            .arg(dir.path().join("nx.pid"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        let why = match spawned {
            Ok(mut child) => {
                for _ in 0..200 {
                    if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                        return Some(Nx { child, url: format!("mongodb://127.0.0.1:{port}/"), _dir: dir });
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        return Self::unavailable(format!("nx-27017 exited: {status}"));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let _ = child.kill();
                let _ = child.wait();
                "nx-27017 did not listen within 20 s".to_string()
            }
            Err(e) => format!("cannot run nx-27017: {e}"),
        };
        Self::unavailable(why)
    }

    fn unavailable(why: String) -> Option<Nx> {
        if std::env::var_os("SLUICE_REQUIRE_MONGODB").is_some() {
            panic!("MongoDB test server: {why} (pip install nx-27017)");
        }
        eprintln!("SKIPPED: no MongoDB test server ({why}; pip install nx-27017, SLUICE_REQUIRE_MONGODB=1 to require it)");
        None
    }

    fn sink(&self, dir: &std::path::Path) -> (MongoSink, SinkContext) {
        let config = parse(serde_json::json!({"url": self.url, "database": "siem", "timeout": "10s"})).unwrap();
        let ctx = SinkContext { name: "m".into(), store: Store::open(dir).unwrap(), policy: SinkPolicy::default() };
        (MongoSink::new(config, ctx.clone()), ctx)
    }
}

impl Drop for Nx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(tenant: &str, raw: &str) -> Event {
    Event::hashed(tenant.into(), "eve".into(), "json".into(), chrono::Utc::now(), RawValue::from_string(raw.into()).unwrap())
}

async fn all(sink: &mut MongoSink, collection: &str, filter: Document) -> Vec<Document> {
    let c = sink.collection(collection).await.unwrap();
    c.find(filter).await.unwrap().try_collect().await.unwrap()
}

#[tokio::test]
async fn events_are_documents_once_however_often_replayed() {
    let Some(nx) = Nx::start().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, ctx) = nx.sink(dir.path());
    sink.check().await.unwrap();
    let mut events: Vec<Event> = (0..50).map(|i| event("acme", &format!(r#"{{"n":{i},"_id":"vendor-{i}"}}"#))).collect();
    // Integers past 64 bits become Decimal128, which nx-27017 cannot store (a real server can);
    // the conversion is checked above.
    events.push(event("globex", r#"{"big":9223372036854775807,"s":"nul\u0000","when":"2024-07-15 14:30:45"}"#));
    let batch: Batch = Arc::new(events);
    let written = sink.write(std::slice::from_ref(&batch)).await.unwrap();
    assert_eq!(written.dead_lettered, 0);
    // A replay, and one that overlaps a new event: duplicates count as delivered.
    sink.write(std::slice::from_ref(&batch)).await.unwrap();
    sink.write(&[batch.clone(), Arc::new(vec![event("acme", r#"{"n":"new"}"#)])]).await.unwrap();
    assert_eq!(all(&mut sink, "eve", doc! {"_tenancy": "acme"}).await.len(), 51);
    let doc = all(&mut sink, "eve", doc! {"_tenancy": "globex"}).await.remove(0);
    assert_eq!(doc.get_str("_id").unwrap(), batch[50].id.as_str());
    assert_eq!(doc.get("big"), Some(&Bson::Int64(i64::MAX)));
    assert_eq!(doc.get_str("s").unwrap(), "nul\0");
    assert!(doc.get_datetime("_received_at").is_ok());
    let doc = all(&mut sink, "eve", doc! {"n": 7}).await.remove(0);
    assert_eq!(doc.get_str("_vendor_id").unwrap(), "vendor-7");
    assert_eq!(ctx.store.dead_letters("m").await.unwrap().len(), 0);
}

fn snapshot(dir: &std::path::Path, tenant: &str, ids: std::ops::Range<usize>) -> Snapshot {
    let mut w = crate::snapshot::SnapshotWriter::create(&dir.join("spool"), tenant.into(), "hosts".into()).unwrap();
    for i in ids {
        w.push(serde_json::json!({"host": i, "big": i64::MIN})).unwrap();
    }
    w.finish().unwrap()
}

#[tokio::test]
async fn snapshots_replace_the_tenants_documents() {
    let Some(nx) = Nx::start().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let (mut sink, _) = nx.sink(dir.path());
    sink.write_snapshot(&snapshot(dir.path(), "globex", 0..3)).await.unwrap();
    let first = snapshot(dir.path(), "acme", 0..2500);
    sink.write_snapshot(&first).await.unwrap();
    let docs = all(&mut sink, "hosts", doc! {"_tenancy": "acme"}).await;
    assert_eq!(docs.len(), 2500);
    assert!(docs.iter().all(|d| d.get_str("_upload_id").unwrap() == first.upload_id.to_string()));
    assert_eq!(docs[0].get("big"), Some(&Bson::Int64(i64::MIN)));

    let second = snapshot(dir.path(), "acme", 100..110);
    sink.write_snapshot(&second).await.unwrap();
    sink.write_snapshot(&second).await.unwrap();
    let docs = all(&mut sink, "hosts", doc! {"_tenancy": "acme"}).await;
    assert_eq!(docs.len(), 10, "the same snapshot twice is one");
    assert!(docs.iter().all(|d| d.get_str("_upload_id").unwrap() == second.upload_id.to_string()));
    assert_eq!(all(&mut sink, "hosts", doc! {"_tenancy": "globex"}).await.len(), 3);

    // A write that fails half-way (the spool is unreadable after 1,500 records) leaves the
    // previous snapshot, and nothing of its own.
    let broken = snapshot(dir.path(), "acme", 0..1500);
    std::fs::OpenOptions::new().append(true).open(broken.spool_path()).unwrap().write_all(b"{broken\n").unwrap();
    assert!(sink.write_snapshot(&broken).await.is_err());
    let docs = all(&mut sink, "hosts", doc! {"_tenancy": "acme"}).await;
    assert_eq!(docs.len(), 10);
    assert!(docs.iter().all(|d| d.get_str("_upload_id").unwrap() == second.upload_id.to_string()));
}

#[tokio::test]
async fn an_unreachable_server_fails_the_write_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config =
        parse(serde_json::json!({"url": format!("mongodb://u:hunter2@127.0.0.1:{port}/"), "database": "d", "timeout": "1s"})).unwrap();
    let ctx = SinkContext { name: "m".into(), store: Store::open(dir.path()).unwrap(), policy: SinkPolicy::default() };
    let mut sink = MongoSink::new(config, ctx);
    let err = sink.write(&[Arc::new(vec![event("acme", "{}")])]).await.unwrap_err();
    assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
    assert!(sink.check().await.is_err());
}
