//! `type: file`: appends one line per event to files named by a path template, and fsyncs before
//! it acknowledges. Open files are bounded by an LRU so thousands of tenants do not exhaust
//! file descriptors.
//!
//! A snapshot is one JSON array of its records per file, the original data collectors' shape
//! (DuckDB's `read_json('…/%TAG/*.json')` reads it), written to a temporary file beside the
//! target, fsynced and renamed over it: a reader sees the previous snapshot or the new one,
//! never a part. `%UUID` is the snapshot's `_upload_id`.

mod config;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use futures::future::BoxFuture;
use lru::LruCache;

pub use config::*;

use crate::event::Batch;
use crate::settings::template::UUID_MARK;
use crate::sinks::{Sink, Written};
use crate::snapshot::Snapshot;

pub struct FileSink {
    name: String,
    state: Arc<Mutex<State>>,
}

struct State {
    config: FileSinkConfig,
    open: LruCache<PathBuf, File>,
    /// Rendered key (with `%UUID` unresolved) → the file chosen for it. One UUID per file.
    uuid_paths: LruCache<String, PathBuf>,
}

impl FileSink {
    pub fn new(name: &str, config: FileSinkConfig) -> anyhow::Result<Self> {
        let capacity = config.max_open_files;
        // A fixed output file exists from the start: a log reader (Wazuh's logcollector) that
        // is told to watch it must find it even before the first event.
        if let Some(path) = config.path.constant() {
            let path = std::path::Path::new(path);
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            OpenOptions::new().create(true).append(true).open(path).with_context(|| format!("creating {}", path.display()))?;
        }
        Ok(FileSink {
            name: name.to_string(),
            state: Arc::new(Mutex::new(State {
                config,
                open: LruCache::new(capacity),
                uuid_paths: LruCache::new(NonZeroUsize::new(4096).unwrap()),
            })),
        })
    }
}

impl Sink for FileSink {
    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        let state = self.state.clone();
        let name = self.name.clone();
        // Encoding and rendering need no file system; do them here, then hand bytes to a blocking
        // thread for the writes and fsyncs.
        let groups = {
            let st = state.lock().expect("file sink state poisoned");
            group_by_key(&st.config, batches)
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut st = state.lock().expect("file sink state poisoned");
                st.write_groups(groups).with_context(|| format!("sink `{name}`"))
            })
            .await
            .context("file sink writer thread failed")??;
            Ok(Written::default())
        })
    }

    fn write_snapshot<'a>(&'a mut self, snapshot: &'a Snapshot) -> BoxFuture<'a, anyhow::Result<()>> {
        let mut target = String::new();
        let uuid = snapshot.upload_id.to_string();
        self.state.lock().expect("file sink state poisoned").config.path.render(
            &snapshot.tenant,
            &snapshot.tag,
            snapshot.taken_at,
            &uuid,
            &mut target,
        );
        Box::pin(async move {
            let records = snapshot.records()?;
            let target = PathBuf::from(target);
            tokio::task::spawn_blocking(move || replace_with_array(&target, records, &uuid))
                .await
                .context("file sink writer thread failed")?
                .with_context(|| format!("sink `{}`", self.name))
        })
    }
}

/// Writes `records` as one JSON array to a temporary file beside `target`, then renames it over
/// `target` once it is durable.
fn replace_with_array(
    target: &std::path::Path,
    records: impl Iterator<Item = anyhow::Result<Box<serde_json::value::RawValue>>>,
    unique: &str,
) -> anyhow::Result<()> {
    let dir = target.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("snapshot");
    let temp = dir.join(format!(".{name}.{unique}.tmp"));
    let written = (|| {
        let mut out = std::io::BufWriter::with_capacity(1 << 16, File::create(&temp)?);
        out.write_all(b"[")?;
        for (i, record) in records.enumerate() {
            if i > 0 {
                out.write_all(b", ")?;
            }
            out.write_all(record.map_err(std::io::Error::other)?.get().as_bytes())?;
        }
        out.write_all(b"]")?;
        out.into_inner().map_err(|e| e.into_error())?.sync_all()
    })();
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, target)) {
        let _ = std::fs::remove_file(&temp);
        return Err(e).with_context(|| format!("writing {}", target.display()));
    }
    // The rename itself is durable once the directory is.
    File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("fsync {}", dir.display()))
}

/// Encodes events and groups the bytes by rendered key, keeping first-seen order.
fn group_by_key(config: &FileSinkConfig, batches: &[Batch]) -> Vec<(String, Vec<u8>)> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<(String, Vec<u8>)> = Vec::new();
    let mut key = String::new();
    let total: usize = batches.iter().map(|b| b.len()).sum();
    for event in batches.iter().flat_map(|b| b.iter()) {
        key.clear();
        config.path.render_key(event, &mut key);
        let i = match index.get(&key) {
            Some(&i) => i,
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key.clone(), Vec::with_capacity(total * 512)));
                groups.len() - 1
            }
        };
        config.format.encode_line(event, &mut groups[i].1);
    }
    groups
}

impl State {
    fn write_groups(&mut self, groups: Vec<(String, Vec<u8>)>) -> anyhow::Result<()> {
        let mut touched = Vec::with_capacity(groups.len());
        for (key, bytes) in groups {
            let path = self.resolve(&key);
            let file = self.file(&path)?;
            file.write_all(&bytes).with_context(|| format!("writing {}", path.display()))?;
            touched.push(path);
        }
        // Durable before acknowledged: the pipeline forgets these events once we return.
        for path in touched {
            let file = self.file(&path)?;
            file.sync_data().with_context(|| format!("fsync {}", path.display()))?;
        }
        Ok(())
    }

    fn resolve(&mut self, key: &str) -> PathBuf {
        if !self.config.path.has_uuid() {
            return PathBuf::from(key);
        }
        if let Some(p) = self.uuid_paths.get(key) {
            return p.clone();
        }
        let path = PathBuf::from(key.replace(UUID_MARK, &uuid::Uuid::new_v4().to_string()));
        self.uuid_paths.put(key.to_string(), path.clone());
        path
    }

    fn file(&mut self, path: &PathBuf) -> anyhow::Result<&mut File> {
        if !self.open.contains(path) {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .read(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            end_last_line(&mut file).with_context(|| format!("checking the end of {}", path.display()))?;
            // An evicted file was fsynced when its batch was acknowledged; closing it is safe.
            self.open.put(path.clone(), file);
        }
        Ok(self.open.get_mut(path).expect("just inserted"))
    }
}

/// A write cut short (the process killed mid-write, a full disk) leaves a last line without its
/// newline; that line's events are written again whole, since they were never acknowledged.
/// Ending it here keeps the next event on a line of its own, readable by a line reader.
fn end_last_line(file: &mut File) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut last = [0u8];
    if len > 0 && file.read_at(&mut last, len - 1)? == 1 && last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encode::Format;
    use crate::event::Event;
    use crate::settings::template::PathTemplate;
    use chrono::Utc;

    fn event(tenant: &str, n: u32) -> Event {
        Event {
            id: n.to_string(),
            tenant: tenant.into(),
            source: "eve".into(),
            vendor: "json".into(),
            received_at: Utc::now(),
            raw: serde_json::value::RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap(),
            mapped: None,
        }
    }

    fn sink(path: &str, max_open: usize) -> FileSink {
        FileSink::new(
            "t",
            FileSinkConfig {
                path: PathTemplate::parse(path).unwrap(),
                format: Format::Raw,
                max_open_files: NonZeroUsize::new(max_open).unwrap(),
            },
        )
        .unwrap()
    }

    #[tokio::test]
    async fn writes_one_file_per_tenant_with_bounded_descriptors() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(&format!("{}/%TENANCY/%TAG.jsonl", dir.path().display()), 2);
        let events: Batch = Arc::new((0..50).map(|n| event(&format!("t{}", n % 5), n)).collect());
        s.write(std::slice::from_ref(&events)).await.unwrap();
        s.write(&[events]).await.unwrap();
        assert!(s.state.lock().unwrap().open.len() <= 2);
        for t in 0..5 {
            let text = std::fs::read_to_string(dir.path().join(format!("t{t}/eve.jsonl"))).unwrap();
            assert_eq!(text.lines().count(), 20, "10 events twice for t{t}");
        }
    }

    #[tokio::test]
    async fn uuid_is_one_value_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = sink(&format!("{}/%TENANCY-%UUID/%UUID.json", dir.path().display()), 8);
        s.write(&[Arc::new(vec![event("a", 1)]), Arc::new(vec![event("a", 2)])]).await.unwrap();
        s.write(&[Arc::new(vec![event("b", 3)])]).await.unwrap();
        let mut files = Vec::new();
        for d in std::fs::read_dir(dir.path()).unwrap() {
            let d = d.unwrap().path();
            for f in std::fs::read_dir(&d).unwrap() {
                files.push((d.clone(), f.unwrap().path()));
            }
        }
        assert_eq!(files.len(), 2, "one file per tenant: {files:?}");
        for (d, f) in files {
            let dir_uuid = d.file_name().unwrap().to_str().unwrap().split_once('-').unwrap().1.to_string();
            assert_eq!(f.file_stem().unwrap().to_str().unwrap(), dir_uuid, "same UUID in both places");
        }
    }
}
