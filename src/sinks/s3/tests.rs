use std::io::{Read, Write as _};
use std::sync::Arc;

use futures::TryStreamExt;

use super::*;
use crate::event::Event;
use crate::store::Store;

fn parse(value: serde_json::Value) -> Result<S3Config, Vec<(String, String)>> {
    let mut errors = Vec::new();
    match <dyn SinkSettings>::parse("s3", value, "sinks.s3", &mut errors) {
        Some(s) => Ok(s.downcast_ref::<S3Config>().unwrap().clone()),
        None => Err(errors.into_iter().map(|e| (e.path, e.message)).collect()),
    }
}

#[test]
fn settings_parse_with_defaults_and_name_their_errors() {
    let config = parse(serde_json::json!({"bucket": "b", "key": "%TAG/%TENANCY.json"})).unwrap();
    assert_eq!((config.compression, config.max_bytes, config.path_style), (Compression::None, 64 << 20, false));
    assert!(config.backup_key.is_none());
    let config = parse(serde_json::json!({"bucket": "b", "key": "k", "max_bytes": "1MiB", "secret_access_key": "s", "access_key_id": "a"}));
    assert_eq!(config.unwrap().max_bytes, 1 << 20);
    let errors = |v| parse(v).unwrap_err();
    assert_eq!(errors(serde_json::json!({"bucket": "b", "key": "k", "backup_key": "b/%UUID.json"}))[0].0, "sinks.s3.backup_key");
    assert_eq!(errors(serde_json::json!({"bucket": "b", "key": "k", "backup_key": "b/%YYYY.json"}))[0].0, "sinks.s3.backup_key");
    assert_eq!(errors(serde_json::json!({"bucket": "b", "key": "k", "access_key_id": "a"}))[0].0, "sinks.s3.secret_access_key");
    assert_eq!(errors(serde_json::json!({"bucket": "b", "key": "a//%TAG"}))[0].0, "sinks.s3.key");
    assert_eq!(errors(serde_json::json!({"bucket": "b", "key": "k", "endpoint": "ftp://x"}))[0].0, "sinks.s3.endpoint");
    assert_eq!(errors(serde_json::json!({"bucket": "b", "key": "k", "compression": "zstd"}))[0].0, "sinks.s3.compression");
    let e = errors(serde_json::json!({"bucket": "b", "key": "k", "access_key_id": "a", "secret_access_key": "hunter2", "max_bytes": 0}));
    assert!(!format!("{e:?}").contains("hunter2"));
}

#[test]
fn stream_objects_always_have_a_uuid_of_their_own() {
    assert_eq!(stream_object_name(&format!("a/{UUID_MARK}.json"), "U"), "a/U.json");
    assert_eq!(stream_object_name("a/eve.jsonl.gz", "U"), "a/eve-U.jsonl.gz");
    assert_eq!(stream_object_name("a.b/eve", "U"), "a.b/eve-U");
    assert_eq!(stream_object_name("a/.hidden", "U"), "a/.hidden-U");
}

#[test]
fn virtual_hosted_endpoints_carry_the_bucket() {
    assert_eq!(virtual_hosted("https://s3.example.org:9000", "logs").unwrap(), "https://logs.s3.example.org:9000");
}

/// A moto S3 server on a free port, stopped when dropped; `None` (skip) when it cannot start,
/// unless `SLUICE_REQUIRE_S3` is set.
pub(crate) struct Moto {
    child: std::process::Child,
    pub endpoint: String,
}

impl Moto {
    pub(crate) async fn start() -> Option<Moto> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let args = ["-H", "127.0.0.1", "-p", &port.to_string()];
        let spawn = |program: &str, pre: &[&str]| {
            std::process::Command::new(program)
                .args(pre)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
        };
        let failure = match spawn("moto_server", &[]).or_else(|_| spawn("python3", &["-m", "moto.server"])) {
            Ok(mut child) => {
                for _ in 0..200 {
                    if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                        return Some(Moto { child, endpoint: format!("http://127.0.0.1:{port}") });
                    }
                    if let Ok(Some(status)) = child.try_wait() {
                        return Self::unavailable(format!("moto_server exited: {status}"));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let _ = child.kill();
                let _ = child.wait();
                "moto_server did not listen within 20 s".to_string()
            }
            Err(e) => format!("cannot run moto_server or python3 -m moto.server: {e}"),
        };
        Self::unavailable(failure)
    }

    fn unavailable(why: String) -> Option<Moto> {
        if std::env::var_os("SLUICE_REQUIRE_S3").is_some() {
            panic!("S3 test server: {why} (pip install 'moto[server]')");
        }
        eprintln!("SKIPPED: no S3 test server ({why}; pip install 'moto[server]', SLUICE_REQUIRE_S3=1 to require it)");
        None
    }

    pub(crate) async fn bucket(&self, name: &str) {
        let answer = reqwest::Client::new().put(format!("{}/{name}", self.endpoint)).send().await.unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
    }

    pub(crate) fn config(&self, bucket: &str, key: &str) -> S3Config {
        let mut config = parse(serde_json::json!({
            "bucket": bucket, "key": key, "endpoint": self.endpoint, "region": "us-east-1", "path_style": true,
            "access_key_id": "test", "secret_access_key": "test", "timeout": "10s",
        }))
        .unwrap();
        config.format = crate::encode::Format::Raw;
        config
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sink(config: &S3Config) -> S3Sink {
    let dir = tempfile::tempdir().unwrap();
    let ctx = SinkContext { name: "s3".into(), store: Store::open(dir.path()).unwrap(), policy: SinkPolicy::default() };
    S3Sink::new(config.clone(), &ctx).unwrap()
}

fn event(tenant: &str, n: usize, pad: usize) -> Event {
    let raw = serde_json::value::RawValue::from_string(format!(r#"{{"n":{n},"pad":"{}"}}"#, "x".repeat(pad))).unwrap();
    Event::hashed(tenant.into(), "eve".into(), "json".into(), Utc::now(), raw)
}

/// Every object under `prefix`, by name.
async fn objects(config: &S3Config, prefix: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    let store = object_store(config, &Default::default()).unwrap();
    let listed: Vec<_> = store.list(Some(&Path::from(prefix))).try_collect().await.unwrap();
    let mut out = std::collections::BTreeMap::new();
    for meta in listed {
        let body = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        out.insert(meta.location.to_string(), body.to_vec());
    }
    out
}

/// One object, if it exists.
async fn object(config: &S3Config, key: &str) -> Option<Vec<u8>> {
    let store = object_store(config, &Default::default()).unwrap();
    match store.get(&Path::from(key)).await {
        Ok(got) => Some(got.bytes().await.unwrap().to_vec()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn stream_writes_become_objects_read_back_whole() {
    let Some(moto) = Moto::start().await else { return };
    moto.bucket("logs").await;
    let config = moto.config("logs", "events/%TENANCY/%TAG/%UUID.jsonl");
    let mut s = sink(&config);
    s.check().await.unwrap();
    let batch: Batch = Arc::new((0..100).map(|n| event(if n % 2 == 0 { "acme" } else { "globex" }, n, 10)).collect());
    s.write(std::slice::from_ref(&batch)).await.unwrap();
    s.write(std::slice::from_ref(&batch)).await.unwrap();
    let found = objects(&config, "events").await;
    assert_eq!(found.len(), 4, "one object per write and tenant: {:?}", found.keys());
    assert_eq!(found.keys().filter(|k| k.starts_with("events/acme/eve/")).count(), 2);
    let lines: usize = found.values().map(|b| b.split(|&c| c == b'\n').filter(|l| !l.is_empty()).count()).sum();
    assert_eq!(lines, 200);
    for body in found.values() {
        for line in body.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
            serde_json::from_slice::<serde_json::Value>(line).unwrap();
        }
    }

    // gzip, and a key without %UUID, which still gets one object per write.
    let mut config = moto.config("logs", "gz/%TAG.jsonl.gz");
    config.compression = Compression::Gzip;
    let mut s = sink(&config);
    s.write(std::slice::from_ref(&batch)).await.unwrap();
    s.write(std::slice::from_ref(&batch)).await.unwrap();
    let found = objects(&config, "gz").await;
    assert_eq!(found.len(), 2, "{:?}", found.keys());
    for (name, body) in found {
        assert!(name.starts_with("gz/eve-") && name.ends_with(".jsonl.gz"), "{name}");
        let mut text = String::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut text).unwrap();
        assert_eq!(text.lines().count(), 100);
    }

    // max_bytes cuts a write into objects; a body over 8 MiB goes as a multipart upload.
    let mut config = moto.config("logs", "cut/%UUID.jsonl");
    config.max_bytes = 1_000;
    sink(&config).write(std::slice::from_ref(&batch)).await.unwrap();
    let found = objects(&config, "cut").await;
    assert!(found.len() >= 2 && found.values().all(|b| b.len() <= 1_000), "{:?}", found.keys());
    assert_eq!(found.values().map(|b| b.iter().filter(|&&c| c == b'\n').count()).sum::<usize>(), 100);
    let config = moto.config("logs", "big/%UUID.jsonl");
    let big: Batch = Arc::new((0..40_000).map(|n| event("acme", n, 250)).collect());
    sink(&config).write(&[big]).await.unwrap();
    let found = objects(&config, "big").await;
    assert_eq!(found.len(), 1);
    let body = found.values().next().unwrap();
    assert!(body.len() > PART_BYTES, "{}", body.len());
    assert_eq!(body.iter().filter(|&&c| c == b'\n').count(), 40_000);
}

fn snapshot(dir: &std::path::Path, records: usize, pad: usize) -> Snapshot {
    let mut w = crate::snapshot::SnapshotWriter::create(&dir.join("spool"), "acme".into(), "hosts".into()).unwrap();
    for i in 0..records {
        w.push(serde_json::json!({"id": i, "pad": "z".repeat(pad), "when": "2024-07-15 14:30:45", "big": u64::MAX})).unwrap();
    }
    w.finish().unwrap()
}

#[tokio::test]
async fn snapshots_are_arrays_and_the_backup_keeps_the_last_complete_one() {
    let Some(moto) = Moto::start().await else { return };
    moto.bucket("data").await;
    let mut config = moto.config("data", "source/%TAG/%TENANCY-%UUID.json");
    config.backup_key = Some(PathTemplate::parse("backup/%TAG/%TENANCY.json").unwrap());
    let mut s = sink(&config);
    let dir = tempfile::tempdir().unwrap();

    // Large enough for a multipart upload.
    let first = snapshot(dir.path(), 40_000, 250);
    s.write_snapshot(&first).await.unwrap();
    let found = objects(&config, "source").await;
    let (name, body) = found.iter().next().unwrap();
    assert_eq!(name, &format!("source/hosts/acme-{}.json", first.upload_id));
    assert!(body.len() > PART_BYTES);
    let array: Vec<serde_json::Value> = serde_json::from_slice(body).unwrap();
    assert_eq!(array.len(), 40_000);
    assert!(array.iter().all(|r| r["_upload_id"] == first.upload_id.to_string() && r["_tenancy"] == "acme"));
    assert_eq!(array[7]["big"], u64::MAX);

    let second = snapshot(dir.path(), 3, 1);
    s.write_snapshot(&second).await.unwrap();
    let second_body = object(&config, &format!("source/hosts/acme-{}.json", second.upload_id)).await.unwrap();
    assert_eq!(object(&config, "backup/hosts/acme.json").await, Some(second_body.clone()));

    // A later attempt that fails half-way (its spool turns out unreadable) leaves the backup alone.
    let third = snapshot(dir.path(), 10, 1);
    std::fs::OpenOptions::new().append(true).open(third.spool_path()).unwrap().write_all(b"{broken\n").unwrap();
    assert!(s.write_snapshot(&third).await.is_err());
    assert!(object(&config, &format!("source/hosts/acme-{}.json", third.upload_id)).await.is_none());
    assert_eq!(object(&config, "backup/hosts/acme.json").await, Some(second_body.clone()));

    // A fresh deployment seeds its local file from the backup.
    let local = dir.path().join("data/source/hosts/acme.json");
    let size = restore_backup(&config, "acme", "hosts", &local).await.unwrap();
    assert_eq!(std::fs::read(&local).unwrap(), second_body);
    assert_eq!(size, second_body.len() as u64);
    let restored: Vec<serde_json::Value> = serde_json::from_slice(&std::fs::read(&local).unwrap()).unwrap();
    assert_eq!(restored.len(), 3);
    assert!(restore_backup(&config, "acme", "no_such_tag", &dir.path().join("x.json")).await.is_err());
    assert!(!dir.path().join("x.json").exists());
}

#[tokio::test]
async fn the_check_fails_for_a_missing_bucket() {
    let Some(moto) = Moto::start().await else { return };
    assert!(sink(&moto.config("missing", "k")).check().await.is_err());
}
