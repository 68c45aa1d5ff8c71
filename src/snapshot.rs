//! Snapshots: the whole current state of one data set of one tenant (every host, every user,
//! every open vulnerability), re-read on each run and replacing the previous one at every sink
//! in one step. A leaf module beside [`crate::event`].
//!
//! A collector streams the records into a spool file as they arrive ([`SnapshotWriter`]), so a
//! data set of millions of records never sits in memory. Only a run that completes becomes a
//! [`Snapshot`] handed to the sinks; a failed run deletes its spool and the sinks keep the last
//! complete snapshot. Each record carries the original data collectors' metadata: `_tenancy`,
//! `_upload_timestamp` and `_upload_id`, one id per snapshot (also what `%UUID` renders to).

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::event::{Event, content_id};

/// `_upload_timestamp`'s format: the original collectors' `'%Y-%m-%d %H:%M:%S'`, UTC.
pub const UPLOAD_TIMESTAMP_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A complete data set, spooled on disk. The spool is deleted when the last holder drops it.
#[derive(Debug)]
pub struct Snapshot {
    pub tenant: Arc<str>,
    /// The data set's name (`crowdstrike_hosts`); `%TAG` in path templates and the table name.
    pub tag: Arc<str>,
    pub upload_id: uuid::Uuid,
    pub taken_at: DateTime<Utc>,
    pub records: u64,
    spool: PathBuf,
}

impl Snapshot {
    /// The records in order, each a JSON object on one line (with the metadata fields).
    pub fn records(&self) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Box<RawValue>>> + use<>> {
        let file = File::open(&self.spool).with_context(|| format!("opening snapshot spool {}", self.spool.display()))?;
        Ok(BufReader::with_capacity(1 << 16, file).lines().map(|line| {
            let line = line.context("reading snapshot spool")?;
            RawValue::from_string(line).context("snapshot spool holds invalid JSON")
        }))
    }

    /// The records as events (for sinks that take snapshots as a stream of events), in batches.
    pub fn event_batches(&self, size: usize) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Vec<Event>>> + use<>> {
        let (tenant, tag, at) = (self.tenant.clone(), self.tag.clone(), self.taken_at);
        let mut records = self.records()?.peekable();
        Ok(std::iter::from_fn(move || {
            records.peek()?;
            let mut batch = Vec::with_capacity(size);
            for record in records.by_ref().take(size) {
                match record {
                    Ok(raw) => batch.push(Event {
                        id: content_id(raw.get().as_bytes()),
                        tenant: tenant.clone(),
                        source: tag.clone(),
                        vendor: "json".into(),
                        received_at: at,
                        raw,
                        mapped: None,
                    }),
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(batch))
        }))
    }

    /// The spool file, for tests that damage it.
    #[cfg(test)]
    pub(crate) fn spool_path(&self) -> &Path {
        &self.spool
    }

    /// `_upload_timestamp` of this snapshot.
    pub fn upload_timestamp(&self) -> String {
        self.taken_at.format(UPLOAD_TIMESTAMP_FORMAT).to_string()
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.spool);
    }
}

/// Collects one run's records into a spool file.
pub struct SnapshotWriter {
    tenant: Arc<str>,
    tag: Arc<str>,
    upload_id: uuid::Uuid,
    taken_at: DateTime<Utc>,
    records: u64,
    spool: PathBuf,
    out: Option<BufWriter<File>>,
    /// The three metadata members, serialized once.
    meta: [(String, Value); 3],
}

impl SnapshotWriter {
    /// Starts a spool under `dir` (created if missing).
    pub fn create(dir: &Path, tenant: Arc<str>, tag: Arc<str>) -> anyhow::Result<SnapshotWriter> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let upload_id = uuid::Uuid::new_v4();
        let taken_at = Utc::now();
        let spool = dir.join(format!("{upload_id}.ndjson"));
        let out = BufWriter::with_capacity(1 << 16, File::create(&spool).with_context(|| format!("creating {}", spool.display()))?);
        let meta = [
            ("_tenancy".to_string(), Value::String(tenant.to_string())),
            ("_upload_timestamp".to_string(), Value::String(taken_at.format(UPLOAD_TIMESTAMP_FORMAT).to_string())),
            ("_upload_id".to_string(), Value::String(upload_id.to_string())),
        ];
        Ok(SnapshotWriter { tenant, tag, upload_id, taken_at, records: 0, spool, out: Some(out), meta })
    }

    pub fn upload_id(&self) -> uuid::Uuid {
        self.upload_id
    }

    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends a record. An object gains the metadata members (replacing same-named ones);
    /// anything else is wrapped as `{"value": …}` first, so every record is an object.
    pub fn push(&mut self, record: Value) -> anyhow::Result<()> {
        let mut object = match record {
            Value::Object(map) => map,
            other => Map::from_iter([("value".to_string(), other)]),
        };
        for (key, value) in &self.meta {
            object.insert(key.clone(), value.clone());
        }
        let out = self.out.as_mut().expect("writer is open until finished");
        serde_json::to_writer(&mut *out, &object).context("writing snapshot spool")?;
        out.write_all(b"\n").context("writing snapshot spool")?;
        self.records += 1;
        Ok(())
    }

    /// The run completed: the spool becomes a snapshot to hand to the sinks.
    pub fn finish(mut self) -> anyhow::Result<Snapshot> {
        let out = self.out.take().expect("finished once");
        out.into_inner().map_err(|e| e.into_error()).context("writing snapshot spool")?;
        Ok(Snapshot {
            tenant: self.tenant.clone(),
            tag: self.tag.clone(),
            upload_id: self.upload_id,
            taken_at: self.taken_at,
            records: self.records,
            spool: std::mem::take(&mut self.spool),
        })
    }
}

impl Drop for SnapshotWriter {
    /// An unfinished run leaves nothing behind.
    fn drop(&mut self) {
        if !self.spool.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.spool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_carry_the_metadata_and_the_spool_goes_with_the_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SnapshotWriter::create(dir.path(), "acme".into(), "okta_users".into()).unwrap();
        w.push(serde_json::json!({"id": 1, "_tenancy": "spoofed"})).unwrap();
        w.push(serde_json::json!("bare")).unwrap();
        let id = w.upload_id().to_string();
        let snap = w.finish().unwrap();
        let records: Vec<Value> = snap.records().unwrap().map(|r| serde_json::from_str(r.unwrap().get()).unwrap()).collect();
        assert_eq!(records.len(), 2);
        assert_eq!(records[0]["_tenancy"], "acme");
        assert_eq!(records[0]["_upload_id"], id.as_str());
        assert_eq!(records[1]["value"], "bare");
        assert_eq!(records[1]["_upload_timestamp"].as_str().unwrap().len(), "2024-07-15 14:30:45".len());
        let batches: Vec<_> = snap.event_batches(1).unwrap().map(Result::unwrap).collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(&*batches[0][0].source, "okta_users");
        drop(snap);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_unfinished_run_leaves_no_spool() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SnapshotWriter::create(dir.path(), "acme".into(), "t".into()).unwrap();
        w.push(serde_json::json!({"id": 1})).unwrap();
        drop(w);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
