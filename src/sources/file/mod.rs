//! `type: file`: `tail -f` over a glob of files.
//!
//! Each file is followed by its own tailer, keyed by (device, inode), so a file renamed by log
//! rotation is read to its end while the new file at the same path starts from its beginning.
//! A file's position is checkpointed under a fingerprint of its first line, so a rotated file
//! that still matches the glob is recognised and not read twice. Truncation (copytruncate) is
//! detected when the file becomes shorter than the position read.

mod tailer;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Deserialize;
use tokio::task::JoinHandle;

use futures::future::BoxFuture;

use super::{SourceContext, SourceSettings};
use crate::decode::Decoder;
use crate::normalize::mapping::Mapping;
use crate::settings::duration;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSourceConfig {
    /// A path or glob (`/var/log/suricata/eve*.json`).
    pub path: String,
    #[serde(default)]
    pub decoder: Decoder,
    /// Where to start in a file that has no checkpoint and existed when the source started.
    /// Files that appear later are always read from their beginning.
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Events per batch handed to the sinks.
    #[serde(default = "default_batch_events")]
    pub batch_events: usize,
    /// How often a file at its end is checked for new lines.
    #[serde(default = "default_poll", with = "duration")]
    pub poll_interval: Duration,
    /// How often the glob is expanded again to find new files.
    #[serde(default = "default_glob_interval", with = "duration")]
    pub glob_interval: Duration,
    /// Longer lines are skipped and counted as invalid (protects memory).
    #[serde(default = "default_max_line_bytes")]
    pub max_line_bytes: usize,
    /// A VRL program mapping each event to model fields (see `normalize::mapping`).
    #[serde(default, deserialize_with = "mapping")]
    pub mapping: Option<Mapping>,
    /// Read symbolic links that a wildcard of `path` matches. Off by default: a link dropped in
    /// a log directory could otherwise make sluice read any file it can open. A `path` without
    /// wildcards is read even when it is a link: it was named on purpose.
    #[serde(default)]
    pub follow_symlinks: bool,
}

fn mapping<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Mapping>, D::Error> {
    let source = String::deserialize(d)?;
    Mapping::compile(&source).map(Some).map_err(|e| serde::de::Error::custom(format!("invalid VRL mapping:\n{e}")))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ReadFrom {
    #[default]
    Beginning,
    End,
}

fn default_batch_events() -> usize {
    2048
}
fn default_poll() -> Duration {
    Duration::from_millis(250)
}
fn default_glob_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_max_line_bytes() -> usize {
    1 << 20
}

type FileId = (u64, u64);

struct Tailing {
    /// Set when the file no longer matches the glob: the tailer finishes once at its end.
    orphaned: Arc<AtomicBool>,
    join: JoinHandle<anyhow::Result<()>>,
}

impl SourceSettings for FileSourceConfig {
    fn run(&self, ctx: SourceContext) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(run(self.clone(), ctx))
    }
}

pub async fn run(config: FileSourceConfig, ctx: SourceContext) -> anyhow::Result<()> {
    let config = Arc::new(config);
    let mut tailers: HashMap<FileId, Tailing> = HashMap::new();
    let mut first_scan = true;
    let mut links_skipped = std::collections::HashSet::new();
    loop {
        let mut seen = Vec::new();
        for path in expand_glob(&config.path) {
            if !config.follow_symlinks && is_wildcard(&config.path) && path.is_symlink() {
                if links_skipped.insert(path.clone()) {
                    tracing::warn!(tenant = %ctx.tenant, source = %ctx.source, path = %path.display(),
                        "skipping a symbolic link matched by the glob (set follow_symlinks: true to read it)");
                }
                continue;
            }
            let Ok(meta) = std::fs::metadata(&path) else { continue };
            if !meta.is_file() {
                continue;
            }
            let id = (meta.dev(), meta.ino());
            seen.push(id);
            if tailers.contains_key(&id) {
                continue;
            }
            let orphaned = Arc::new(AtomicBool::new(false));
            let start_at_end = first_scan && config.read_from == ReadFrom::End;
            let tailer = tailer::Tailer::new(config.clone(), ctx.clone(), path, id, orphaned.clone());
            let join = tokio::spawn(tailer.run(start_at_end));
            tailers.insert(id, Tailing { orphaned, join });
        }
        first_scan = false;
        for (id, t) in &tailers {
            if !seen.contains(id) {
                t.orphaned.store(true, Ordering::Relaxed);
            }
        }
        // A tailer that failed is dropped here and started again by the next scan, from its
        // checkpoint.
        let finished: Vec<FileId> = tailers.iter().filter(|(_, t)| t.join.is_finished()).map(|(id, _)| *id).collect();
        for id in finished {
            if let Some(t) = tailers.remove(&id)
                && let Ok(Err(e)) = t.join.await
            {
                tracing::warn!(tenant = %ctx.tenant, source = %ctx.source, error = %format!("{e:#}"), "file tailer failed; restarting it");
            }
        }
        tokio::select! {
            _ = ctx.cancel.cancelled() => break,
            _ = tokio::time::sleep(config.glob_interval) => {}
        }
    }
    for (_, t) in tailers {
        if let Ok(Err(e)) = t.join.await {
            tracing::warn!(tenant = %ctx.tenant, source = %ctx.source, error = %format!("{e:#}"), "file tailer failed while stopping");
        }
    }
    Ok(())
}

fn is_wildcard(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

fn expand_glob(pattern: &str) -> Vec<std::path::PathBuf> {
    match glob::glob(pattern) {
        Ok(paths) => {
            let mut v: Vec<_> = paths.filter_map(Result::ok).collect();
            v.sort();
            v
        }
        Err(_) => vec![std::path::PathBuf::from(pattern)],
    }
}

#[cfg(test)]
mod tests;
