//! Follows one file (one inode) from its checkpoint to its end, and on as it grows.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::decode::Decoder;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::{FileId, FileSourceConfig};
use crate::decode::Origin;
use crate::event::Event;
use crate::pipeline::Ack;
use crate::sources::SourceContext;

const READ_CHUNK: usize = 256 * 1024;
/// Blocks at least this large are decoded on two threads.
const PARALLEL_DECODE_BYTES: usize = 64 * 1024;
/// Batches handed to the sinks and not yet acknowledged. Bounds what a crash can repeat.
const MAX_IN_FLIGHT: usize = 4;
/// Bytes hashed for the fingerprint when the first line is longer.
const FINGERPRINT_BYTES: usize = 4096;
/// Quiet polls at the end of a rotated-away file before it is considered finished.
const ROTATED_IDLE_POLLS: u32 = 4;

#[derive(Serialize, Deserialize)]
struct Position {
    offset: u64,
    path: String,
}

pub struct Tailer {
    config: Arc<FileSourceConfig>,
    ctx: SourceContext,
    path: PathBuf,
    id: FileId,
    orphaned: Arc<AtomicBool>,
    origin: Origin,
    invalid_lines: u64,
}

impl Tailer {
    pub fn new(config: Arc<FileSourceConfig>, ctx: SourceContext, path: PathBuf, id: FileId, orphaned: Arc<AtomicBool>) -> Self {
        let origin = Origin { tenant: ctx.tenant.clone(), source: ctx.source.clone(), vendor: "json".into() };
        Tailer { config, ctx, path, id, orphaned, origin, invalid_lines: 0 }
    }

    pub async fn run(mut self, start_at_end: bool) -> anyhow::Result<()> {
        let mut file = std::fs::File::open(&self.path).with_context(|| format!("opening {}", self.path.display()))?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.id {
            return Ok(()); // replaced between the scan and the open; the next scan finds the new one
        }
        // The fingerprint needs the first line, so wait until it is complete.
        let fingerprint = loop {
            if let Some(fp) = fingerprint(&mut file)? {
                break fp;
            }
            if self.orphaned.load(Ordering::Relaxed) {
                return Ok(());
            }
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => return Ok(()),
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        };
        let key = format!("file:{fingerprint:016x}");
        let len = file.metadata()?.len();
        let saved: Option<Position> =
            self.ctx.store.checkpoint(&self.ctx.tenant, &self.ctx.source, &key).await?.and_then(|v| serde_json::from_str(&v).ok());
        let mut offset = match saved {
            Some(p) if p.offset <= len => p.offset,
            Some(_) => {
                tracing::info!(tenant = %self.ctx.tenant, source = %self.ctx.source, path = %self.path.display(),
                    "file is shorter than its checkpoint (truncated); reading from the beginning");
                0
            }
            None if start_at_end => len,
            None => 0,
        };
        tracing::info!(tenant = %self.ctx.tenant, source = %self.ctx.source, path = %self.path.display(), offset, "following file");
        file.seek(SeekFrom::Start(offset))?;

        let mut pending: Vec<u8> = Vec::with_capacity(READ_CHUNK * 2);
        let mut skipping_long_line = false;
        let mut batch: Vec<Event> = Vec::with_capacity(self.config.batch_events);
        let mut batch_end = offset;
        let mut in_flight: VecDeque<(u64, Ack)> = VecDeque::new();
        let mut handed_over = offset;
        let mut committed = offset;
        let mut idle_polls_since_rotation = 0u32;
        let mut chunk = vec![0u8; READ_CHUNK];

        loop {
            if self.ctx.cancel.is_cancelled() {
                break;
            }
            let n;
            (file, chunk, n) = read_chunk(file, chunk).await?;
            if n > 0 {
                idle_polls_since_rotation = 0;
                pending.extend_from_slice(&chunk[..n]);
                if skipping_long_line {
                    // The tail of a line already reported as too long.
                    let Some(nl) = memchr(&pending) else {
                        offset += pending.len() as u64;
                        batch_end = offset;
                        pending.clear();
                        continue;
                    };
                    pending.drain(..=nl);
                    offset += nl as u64 + 1;
                    batch_end = offset;
                    skipping_long_line = false;
                }
                if let Some(last_nl) = pending.iter().rposition(|&b| b == b'\n') {
                    let block: Arc<[u8]> = pending.drain(..=last_nl).collect::<Vec<u8>>().into();
                    let (mut events, invalid) = decode_block(block, offset, self.config.decoder, self.origin.clone()).await?;
                    for (line_offset, reason) in invalid {
                        self.report_invalid(line_offset, &reason);
                    }
                    if let Some(mapping) = self.config.mapping.clone() {
                        events.iter_mut().for_each(|e| self.map(&mapping, e));
                    }
                    batch.extend(events);
                    offset += last_nl as u64 + 1;
                    batch_end = offset;
                    if batch.len() >= self.config.batch_events {
                        self.emit(&mut batch, batch_end, &mut in_flight, &mut committed, &key).await?;
                        handed_over = batch_end;
                    }
                }
                if pending.len() > self.config.max_line_bytes {
                    self.report_invalid(offset, &format!("line longer than {} bytes", self.config.max_line_bytes));
                    offset += pending.len() as u64;
                    batch_end = offset;
                    pending.clear();
                    skipping_long_line = true;
                }
                continue;
            }

            // At the end of the file: hand over what we have, then wait for more.
            if batch_end > handed_over {
                self.emit(&mut batch, batch_end, &mut in_flight, &mut committed, &key).await?;
                handed_over = batch_end;
            }
            let current_len = file.metadata()?.len();
            if current_len < offset + pending.len() as u64 {
                // Truncated in place. Finish what is in flight, then start over: the restarted
                // tailer sees the checkpoint beyond the end and reads from the beginning.
                self.settle(&mut in_flight, &mut committed, &key, true).await?;
                tracing::info!(tenant = %self.ctx.tenant, source = %self.ctx.source, path = %self.path.display(), "file truncated");
                return Ok(());
            }
            self.settle(&mut in_flight, &mut committed, &key, false).await?;
            if self.orphaned.load(Ordering::Relaxed) && in_flight.is_empty() {
                // Rotated away and read to its end. The writer may still hold it open for a
                // moment, so finish only after a few quiet polls.
                idle_polls_since_rotation += 1;
                if idle_polls_since_rotation >= ROTATED_IDLE_POLLS {
                    tracing::info!(tenant = %self.ctx.tenant, source = %self.ctx.source, path = %self.path.display(), "finished rotated file");
                    return Ok(());
                }
            }
            tokio::select! {
                _ = self.ctx.cancel.cancelled() => break,
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
        // Stopping: everything handed over is acknowledged and its position saved. The partial
        // batch not yet handed over is simply read again next time.
        self.settle(&mut in_flight, &mut committed, &key, true).await
    }

    /// Runs the source's mapping. A failing mapping leaves the event as the decoder made it: it
    /// is still delivered, and the failure is counted and logged.
    fn map(&mut self, mapping: &crate::normalize::mapping::Mapping, event: &mut Event) {
        let result = serde_json::from_str(event.raw.get()).map_err(|e| e.to_string()).and_then(|raw| mapping.apply(&raw));
        match result {
            Ok(mapped) => event.mapped = Some(crate::event::compact_raw(&mapped)),
            Err(reason) => {
                metrics::counter!("sluice_mapping_errors_total", "tenant" => self.ctx.tenant.to_string(), "source" => self.ctx.source.to_string()).increment(1);
                tracing::warn!(tenant = %self.ctx.tenant, source = %self.ctx.source, event = %event.id, reason, "mapping failed; event kept as decoded");
            }
        }
    }

    fn report_invalid(&mut self, offset: u64, reason: &str) {
        self.invalid_lines += 1;
        metrics::counter!("sluice_source_invalid_lines_total",
            "tenant" => self.ctx.tenant.to_string(), "source" => self.ctx.source.to_string())
        .increment(1);
        // The first lines are each worth a log line; after that, one per thousand.
        if self.invalid_lines <= 10 || self.invalid_lines.is_multiple_of(1000) {
            tracing::warn!(tenant = %self.ctx.tenant, source = %self.ctx.source, path = %self.path.display(),
                offset, invalid_lines = self.invalid_lines, reason, "skipping line that cannot be decoded");
        }
    }

    async fn emit(
        &self,
        batch: &mut Vec<Event>,
        end: u64,
        in_flight: &mut VecDeque<(u64, Ack)>,
        committed: &mut u64,
        key: &str,
    ) -> anyhow::Result<()> {
        while in_flight.len() >= MAX_IN_FLIGHT {
            let (pos, ack) = in_flight.pop_front().expect("not empty");
            ack.await?;
            self.commit(pos, committed, key).await?;
        }
        let events = std::mem::replace(batch, Vec::with_capacity(self.config.batch_events));
        if events.is_empty() {
            // Only skipped lines: nothing to deliver, but the position may still move on.
            in_flight.push_back((end, Box::pin(async { Ok(()) })));
            return Ok(());
        }
        let ack = self.ctx.emitter.emit(events).await?;
        in_flight.push_back((end, ack));
        Ok(())
    }

    /// Saves the position of acknowledged batches. With `wait`, waits for all of them.
    async fn settle(&self, in_flight: &mut VecDeque<(u64, Ack)>, committed: &mut u64, key: &str, wait: bool) -> anyhow::Result<()> {
        let mut last = None;
        while let Some((pos, ack)) = in_flight.front_mut() {
            let pos = *pos;
            if wait {
                ack.await?;
            } else {
                match futures::FutureExt::now_or_never(ack) {
                    Some(result) => result?,
                    None => break,
                }
            }
            in_flight.pop_front();
            last = Some(pos);
        }
        if let Some(pos) = last {
            self.commit(pos, committed, key).await?;
        }
        Ok(())
    }

    async fn commit(&self, pos: u64, committed: &mut u64, key: &str) -> anyhow::Result<()> {
        if pos == *committed {
            return Ok(());
        }
        let value = serde_json::to_string(&Position { offset: pos, path: self.path.display().to_string() })?;
        self.ctx.store.set_checkpoint(&self.ctx.tenant, &self.ctx.source, key, value).await?;
        *committed = pos;
        Ok(())
    }
}

/// Lines that could not be decoded: (file offset, reason).
type Invalid = Vec<(u64, String)>;

/// Decodes a block of complete lines starting at file offset `base`. Large blocks are split in
/// two at a line boundary and decoded on two threads; the results are joined in file order.
async fn decode_block(block: Arc<[u8]>, base: u64, decoder: Decoder, origin: Origin) -> anyhow::Result<(Vec<Event>, Invalid)> {
    let now = chrono::Utc::now();
    let split = if block.len() < PARALLEL_DECODE_BYTES {
        block.len()
    } else {
        memchr(&block[block.len() / 2..]).map_or(block.len(), |nl| block.len() / 2 + nl + 1)
    };
    let (first, second) = {
        let (b1, o1) = (block.clone(), origin.clone());
        let first = tokio::task::spawn_blocking(move || decode_lines(&b1[..split], base, decoder, &o1, now));
        let second = tokio::task::spawn_blocking(move || decode_lines(&block[split..], base + split as u64, decoder, &origin, now));
        (first.await.context("decoder thread failed")?, second.await.context("decoder thread failed")?)
    };
    let (mut events, mut invalid) = first;
    events.extend(second.0);
    invalid.extend(second.1);
    Ok((events, invalid))
}

/// Decodes complete lines (each ends in `\n`); blank lines are skipped.
fn decode_lines(bytes: &[u8], base: u64, decoder: Decoder, origin: &Origin, now: chrono::DateTime<chrono::Utc>) -> (Vec<Event>, Invalid) {
    let mut events = Vec::new();
    let mut invalid = Vec::new();
    let mut start = 0;
    while let Some(nl) = memchr(&bytes[start..]) {
        let line = &bytes[start..start + nl];
        let line_offset = base + start as u64;
        start += nl + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let result = std::str::from_utf8(line)
            .map_err(|e| format!("not UTF-8: {e}"))
            .and_then(|text| decoder.decode_line(text, origin, now).map_err(|e| e.to_string()));
        match result {
            Ok(decoded) => events.extend(decoded),
            Err(reason) => invalid.push((line_offset, reason)),
        }
    }
    (events, invalid)
}

/// Reads the next chunk on a blocking thread; hands the file and buffer back.
async fn read_chunk(mut file: std::fs::File, mut buf: Vec<u8>) -> anyhow::Result<(std::fs::File, Vec<u8>, usize)> {
    tokio::task::spawn_blocking(move || {
        let n = file.read(&mut buf)?;
        Ok((file, buf, n))
    })
    .await
    .context("reader thread failed")?
}

/// xxh3 of the first line (or of the first 4 KiB when the line is longer). `None` until the
/// first line is complete, so a file being written is not fingerprinted by half a line.
fn fingerprint(file: &mut std::fs::File) -> anyhow::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; FINGERPRINT_BYTES];
    let mut filled = 0;
    while filled < buf.len() {
        let n = file.read_at(&mut buf[filled..], filled as u64)?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    let head = &buf[..filled];
    Ok(match memchr(head) {
        Some(nl) => Some(xxhash_rust::xxh3::xxh3_64(&head[..nl])),
        None if filled == FINGERPRINT_BYTES => Some(xxhash_rust::xxh3::xxh3_64(head)),
        None => None,
    })
}

fn memchr(haystack: &[u8]) -> Option<usize> {
    haystack.iter().position(|&b| b == b'\n')
}
