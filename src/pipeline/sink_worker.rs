//! One task per sink. It writes batches straight to the sink while the sink is healthy. When a
//! write fails, the batch goes to the sink's durable outbox in the store and is acknowledged
//! from there; until the outbox is empty again, new batches queue behind it (order is kept) and
//! the worker retries the oldest outbox events with exponential backoff and jitter.
//!
//! The same outbox serves `batch.timeout`: small batches wait there (acknowledged, so sources go
//! on) until enough events gathered or the timeout passed. When the outbox reaches its disk
//! budget the worker stops taking batches, so sources wait: nothing is dropped.
//!
//! A destination that is down costs one failed write per batch, and sinks fail a write as soon
//! as they find no connection can be made (they do not retry it message by message), so the
//! batch reaches the outbox within seconds and the sources, which wait for every sink of their
//! tenant, go on. Outbox deliveries and active checks run as jobs beside the worker, which keeps
//! taking batches into the outbox meanwhile: a destination that takes its time to fail (a
//! connect timeout, a server that never answers) holds up neither intake nor the other sinks.
//! While the outbox is retried with backoff, a successful active check retries it at once.
//!
//! The worker also applies the sink's filter and keeps its statistics (saved to the store every
//! few seconds). Every error text it logs or records has the credentials of any URL in it
//! redacted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::replay::{self, ReplayFilter};
use super::{Batch, Delivery, SinkHandle, SnapshotDelivery};
use crate::settings::redact_urls;
use crate::sinks::policy::{RetryPolicy, SinkPolicy};
use crate::sinks::status::SinkStatus;
use crate::sinks::{Sink, Written};
use crate::store::Store;

/// Batches waiting for a sink; beyond this, sources wait (backpressure).
const QUEUE_DEPTH: usize = 32;
/// Queued batches written together (group commit: one fsync for many tenants' pages).
const MAX_COALESCED: usize = 32;
const OUTBOX_CHUNK: usize = 4096;
const STATS_EVERY: Duration = Duration::from_secs(5);
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// The backoff between outbox delivery attempts while a sink is down.
const OUTBOX_RETRY: RetryPolicy =
    RetryPolicy { max_attempts: u32::MAX, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(60) };

pub fn spawn(name: String, sink: Box<dyn Sink>, store: Store, policy: SinkPolicy, status: Arc<SinkStatus>) -> (SinkHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let (snapshots, snapshot_rx) = mpsc::channel(QUEUE_DEPTH);
    let worker = Worker {
        name,
        events_in_flight: sink.events_in_flight(),
        sink: Some(sink),
        job: None,
        store,
        policy,
        status,
        failures: 0,
        backlog: false,
        failing: false,
        retry_at: Instant::now(),
        prefetch: None,
        replay: None,
    };
    let join = tokio::spawn(worker.run(rx, snapshot_rx));
    (SinkHandle { tx, snapshots }, join)
}

struct Worker {
    name: String,
    /// The sink, unless a job has it.
    sink: Option<Box<dyn Sink>>,
    /// The most events the sink may leave unconfirmed: the size of a write and of an outbox chunk.
    events_in_flight: Option<usize>,
    /// An outbox delivery or an active check in progress: it has the sink and gives it back.
    job: Option<JoinHandle<(Box<dyn Sink>, Job)>>,
    store: Store,
    policy: SinkPolicy,
    status: Arc<SinkStatus>,
    /// Failed outbox deliveries in a row (for the backoff).
    failures: u32,
    /// Events wait in the outbox: new batches go behind them.
    backlog: bool,
    /// The last delivery attempt failed.
    failing: bool,
    /// When to deliver from the outbox next.
    retry_at: Instant,
    /// The next outbox chunk, read while the current one is written.
    prefetch: Option<JoinHandle<anyhow::Result<Chunk>>>,
    /// After a restart: what this sink accepted before, skipped when the sources repeat it.
    replay: Option<ReplayFilter>,
}

/// Outbox events, the id of the last, and their stored size.
type Chunk = (Vec<crate::event::Event>, Option<i64>, u64);

/// What a job did with the sink.
enum Job {
    /// Wrote `count` outbox events, up to id `last_id`, of `bytes` stored bytes (`chunk`: how many
    /// were asked for).
    Delivery {
        result: anyhow::Result<Written>,
        count: usize,
        last_id: i64,
        bytes: u64,
        chunk: usize,
    },
    Check(Result<(), String>),
    /// Wrote a snapshot of `records` records; the source waits on `ack`.
    Snapshot {
        result: anyhow::Result<()>,
        records: u64,
        ack: tokio::sync::oneshot::Sender<anyhow::Result<()>>,
    },
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Delivery>, mut snapshots: mpsc::Receiver<SnapshotDelivery>) {
        // Events left in the outbox by an earlier run are delivered before anything new.
        match self.store.recently_accepted(&self.name).await {
            Ok(accepted) => self.replay = ReplayFilter::new(accepted),
            Err(e) => {
                tracing::warn!(sink = %self.name, error = %format!("{e:#}"), "cannot read what this sink accepted before; a replay may repeat events")
            }
        }
        let (pending, _) = self.status.pending();
        if pending > 0 {
            tracing::info!(sink = %self.name, pending, "delivering events left in the outbox");
            self.backlog = true;
        }
        let mut stats_tick = tokio::time::interval(STATS_EVERY);
        let mut check_tick = tokio::time::interval(self.policy.health.interval.max(Duration::from_secs(1)));
        loop {
            let over_budget = self.status.pending().1 >= self.policy.outbox.max_bytes;
            let idle = self.job.is_none();
            tokio::select! {
                biased;
                done = async { self.job.as_mut().expect("a job runs").await }, if !idle => {
                    self.job = None;
                    self.job_done(done).await;
                }
                delivery = rx.recv(), if !over_budget => {
                    let Some(delivery) = delivery else { break };
                    let mut deliveries = vec![delivery];
                    while deliveries.len() < MAX_COALESCED {
                        match rx.try_recv() {
                            Ok(d) => deliveries.push(d),
                            Err(_) => break,
                        }
                    }
                    let batches: Vec<Batch> = deliveries.iter().map(|d| d.events.clone()).collect();
                    let result = self.accept(batches).await;
                    for d in deliveries {
                        let _ = d.ack.send(result.as_ref().map(|_| ()).map_err(|e| anyhow!(error_text(e))));
                    }
                }
                Some(delivery) = snapshots.recv(), if idle => self.start_snapshot(delivery),
                _ = tokio::time::sleep_until(self.retry_at), if self.backlog && idle => self.start_delivery().await,
                _ = check_tick.tick() => {
                    // Events put back in the outbox from outside (retried dead letters).
                    if !self.backlog
                        && let Ok((n, bytes)) = self.store.outbox_size(&self.name).await
                        && n > 0
                    {
                        self.status.set_pending(n, bytes);
                        self.backlog = true;
                        self.retry_at = Instant::now();
                    }
                    // A sink busy delivering needs no other check.
                    if let Some(mut sink) = self.sink.take() {
                        self.job = Some(tokio::spawn(async move {
                            let result = match tokio::time::timeout(CHECK_TIMEOUT, sink.check()).await {
                                Ok(r) => r.map_err(|e| error_text(&e)),
                                Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                            };
                            (sink, Job::Check(result))
                        }));
                    }
                }
                _ = stats_tick.tick() => self.save_stats().await,
            }
            if self.status.health_changed() {
                self.save_stats().await;
            }
        }
        // Let a delivery in progress finish, so that what it delivered is not sent again.
        self.wait_for_job().await;
        self.save_stats().await;
        // Every source that fed this sink has stopped and saved its position: a restart repeats
        // nothing, so nothing is to be skipped then.
        if let Err(e) = self.store.forget_accepted(&self.name).await {
            tracing::warn!(sink = %self.name, error = %error_text(&e), "cannot clear the record of accepted events");
        }
        tracing::debug!(sink = %self.name, "sink stopped");
    }

    /// Waits for the job in progress, if any, and takes the sink back.
    async fn wait_for_job(&mut self) {
        if let Some(job) = self.job.take() {
            let done = job.await;
            self.job_done(done).await;
        }
    }

    async fn job_done(&mut self, done: Result<(Box<dyn Sink>, Job), tokio::task::JoinError>) {
        match done {
            Ok((sink, job)) => {
                self.sink = Some(sink);
                self.finish(job).await;
            }
            // The sink panicked: the worker goes down with it, as when it wrote itself.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => panic!("sink job cancelled: {e}"),
        }
    }

    /// Takes in what a job did with the sink.
    async fn finish(&mut self, job: Job) {
        match job {
            Job::Check(result) => {
                match &result {
                    Err(e) => tracing::warn!(sink = %self.name, error = %e, "health check failed"),
                    // The destination is back: deliver what waits without sitting out the backoff.
                    Ok(()) if self.backlog && self.failing => self.retry_at = Instant::now(),
                    Ok(()) => {}
                }
                self.status.checked(result);
            }
            Job::Snapshot { result, records, ack } => {
                match &result {
                    Ok(()) => self.delivered(records as usize, Written::default()),
                    Err(e) => self.failed(records as usize, e),
                }
                let _ = ack.send(result.map_err(|e| anyhow!(error_text(&e))));
            }
            Job::Delivery { result, count, last_id, bytes, chunk } => {
                let result = match result {
                    Ok(written) => {
                        self.delivered(count, written);
                        self.store.outbox_ack(&self.name, last_id).await
                    }
                    Err(e) => {
                        self.failed(count, &e);
                        Err(e)
                    }
                };
                match result {
                    Ok(()) => self.outbox_advanced(count, bytes, chunk).await,
                    Err(e) => self.outbox_failed(&e),
                }
            }
        }
    }

    /// Makes batches durable: at the destination when possible, else in the outbox. Then
    /// records that this sink has them, for the replay after a crash.
    async fn accept(&mut self, batches: Vec<Batch>) -> anyhow::Result<()> {
        let batches = self.skip_replayed(self.filter(batches));
        let count: usize = batches.iter().map(|b| b.len()).sum();
        if count == 0 {
            return Ok(());
        }
        // One write at a time of at most what the sink can leave unconfirmed, each recorded
        // once held: a crash repeats one such write here at most.
        for (part, count) in split(batches, count, self.events_in_flight) {
            self.hold(&part, count).await?;
            let keys = part.iter().flat_map(|b| b.iter().map(replay::key)).collect();
            if let Err(e) = self.store.record_accepted(&self.name, keys).await {
                tracing::warn!(sink = %self.name, error = %format!("{e:#}"), "cannot record accepted events; a crash now may repeat them");
            }
        }
        Ok(())
    }

    /// Leaves out what a restart's replay repeats and this sink already has.
    fn skip_replayed(&mut self, batches: Vec<Batch>) -> Vec<Batch> {
        let Some(replay) = &mut self.replay else { return batches };
        let (batches, skipped) = replay.filter(batches);
        if skipped > 0 {
            tracing::info!(sink = %self.name, skipped, "skipped events the sink already had before the restart");
            metrics::counter!("sluice_sink_replay_skipped_total", "sink" => self.name.clone()).increment(skipped as u64);
        }
        if replay.expired() {
            self.replay = None;
        }
        batches
    }

    /// Delivers `batches` (`count` events) or keeps them in the outbox.
    async fn hold(&mut self, batches: &[Batch], count: usize) -> anyhow::Result<()> {
        let batch = self.policy.batch.clone();
        let wait_for_more = !batch.timeout.is_zero() && count < batch.max_events.get();
        if !self.backlog && !wait_for_more {
            // Without a backlog the only job is an active check, which takes no longer than the
            // write would if the destination had gone.
            self.wait_for_job().await;
            let sink = self.sink.as_mut().expect("no job runs");
            match sink.write(batches).await {
                Ok(written) => {
                    self.delivered(count, written);
                    return Ok(());
                }
                Err(e) => {
                    self.failed(count, &e);
                    tracing::warn!(sink = %self.name, events = count, error = %error_text(&e),
                        "sink write failed; holding events in the outbox");
                }
            }
        }
        let bytes = self.store.outbox_push(&self.name, batches).await?;
        metrics::counter!("sluice_outbox_events_total", "sink" => self.name.clone()).increment(count as u64);
        let (pending, pending_bytes) = self.status.pending();
        self.status.set_pending(pending + count as u64, pending_bytes + bytes);
        if !self.backlog {
            // The first event waiting sets when the outbox is delivered: after the batch
            // timeout, or after the backoff when the write just failed.
            self.backlog = true;
            self.retry_at = Instant::now() + if self.failing { self.next_backoff() } else { batch.timeout };
        }
        if !self.failing && pending + count as u64 >= batch.max_events.get() as u64 {
            self.retry_at = Instant::now();
        }
        Ok(())
    }

    /// Leaves out what the sink's filter does not take; those events count as handled.
    fn filter(&self, batches: Vec<Batch>) -> Vec<Batch> {
        let filter = &self.policy.filter;
        if filter.is_empty() {
            return batches;
        }
        let mut left_out = 0;
        let kept = batches
            .into_iter()
            .map(|b| {
                let kept: Vec<_> = b.iter().filter(|e| filter.accepts(&crate::normalize::normalize_lossless(e))).cloned().collect();
                left_out += b.len() - kept.len();
                Arc::new(kept)
            })
            .collect();
        if left_out > 0 {
            self.status.filtered(left_out as u64);
            metrics::counter!("sluice_sink_filtered_total", "sink" => self.name.clone()).increment(left_out as u64);
        }
        kept
    }

    /// Writes a snapshot as a job. It replaces the previous one whole at the destination, so it
    /// needs no outbox: a failed write is reported to the source, which keeps the spool and
    /// tries again.
    fn start_snapshot(&mut self, delivery: SnapshotDelivery) {
        let mut sink = self.sink.take().expect("no job runs");
        self.job = Some(tokio::spawn(async move {
            let SnapshotDelivery { snapshot, ack } = delivery;
            let result = sink.write_snapshot(&snapshot).await;
            (sink, Job::Snapshot { result, records: snapshot.records, ack })
        }));
    }

    /// Starts delivering the oldest outbox events as a job.
    async fn start_delivery(&mut self) {
        let chunk = match self.events_in_flight {
            Some(limit) => limit.clamp(1, 50_000),
            None => OUTBOX_CHUNK.max(self.policy.batch.max_events.get()).min(50_000),
        };
        let peeked = match self.prefetch.take() {
            Some(next) => next.await.map_err(anyhow::Error::from).and_then(|r| r),
            None => self.store.outbox_peek(&self.name, 0, chunk).await,
        };
        let (events, last_id, bytes) = match peeked {
            Ok(c) => c,
            Err(e) => return self.outbox_failed(&e),
        };
        let Some(last_id) = last_id else { return self.outbox_advanced(0, 0, chunk).await };
        let count = events.len();
        if count == chunk {
            // Read the next chunk while this one is delivered.
            let (store, name) = (self.store.clone(), self.name.clone());
            self.prefetch = Some(tokio::spawn(async move { store.outbox_peek(&name, last_id, chunk).await }));
        }
        let mut sink = self.sink.take().expect("no job runs");
        self.job = Some(tokio::spawn(async move {
            let result = sink.write(&[Arc::new(events)]).await;
            (sink, Job::Delivery { result, count, last_id, bytes, chunk })
        }));
    }

    /// `count` outbox events of `bytes` were delivered and acknowledged: on to the next chunk, or
    /// back to direct delivery when the outbox is empty.
    async fn outbox_advanced(&mut self, count: usize, bytes: u64, chunk: usize) {
        self.failures = 0;
        let (pending, pending_bytes) = self.status.pending();
        let (pending, pending_bytes) = (pending.saturating_sub(count as u64), pending_bytes.saturating_sub(bytes));
        if count < chunk {
            // Rows pushed while this chunk was in flight are read on the next round.
            let (n, b) = self.store.outbox_size(&self.name).await.unwrap_or((pending, pending_bytes));
            self.status.set_pending(n, b);
            if n == 0 {
                self.backlog = false;
                if count > 0 {
                    tracing::debug!(sink = %self.name, "outbox drained; delivering directly again");
                }
                return;
            }
        } else {
            self.status.set_pending(pending, pending_bytes);
        }
        self.retry_at = Instant::now();
    }

    /// The outbox could not be delivered (the chunk is still in it): the next attempt after the
    /// backoff starts from it again.
    fn outbox_failed(&mut self, e: &anyhow::Error) {
        self.prefetch.take().inspect(JoinHandle::abort);
        self.retry_at = Instant::now() + self.next_backoff();
        tracing::warn!(sink = %self.name, error = %error_text(e),
            retry_in = ?self.retry_at.duration_since(Instant::now()), "outbox delivery failed");
    }

    fn delivered(&mut self, count: usize, written: Written) {
        self.failing = false;
        let sent = count as u64 - written.dead_lettered.min(count as u64);
        self.status.delivered(sent);
        metrics::counter!("sluice_sink_events_total", "sink" => self.name.clone()).increment(sent);
        metrics::gauge!("sluice_sink_last_success_timestamp_seconds", "sink" => self.name.clone())
            .set(chrono::Utc::now().timestamp() as f64);
        if written.dead_lettered > 0 {
            let reason = written.dead_letter_reason.as_deref().unwrap_or("refused");
            self.status.dead_lettered(written.dead_lettered, reason);
            metrics::counter!("sluice_sink_dead_letters_total", "sink" => self.name.clone()).increment(written.dead_lettered);
        }
        if written.truncated > 0 {
            self.status.truncated(written.truncated);
        }
    }

    fn failed(&mut self, count: usize, error: &anyhow::Error) {
        self.failing = true;
        self.status.write_failed(count as u64, &error_text(error));
        metrics::counter!("sluice_sink_errors_total", "sink" => self.name.clone()).increment(1);
    }

    fn next_backoff(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        OUTBOX_RETRY.backoff(self.failures, None)
    }

    async fn save_stats(&mut self) {
        if let Some(row) = self.status.take_changes()
            && let Err(e) = self.store.save_sink_stats(&self.name, row).await
        {
            tracing::warn!(sink = %self.name, error = %error_text(&e), "cannot save sink statistics");
        }
    }
}

/// `batches` (`count` events) in parts of at most `limit` events, each with its count. Whole
/// batches are shared as they are; only a batch larger than `limit` is copied into pieces.
fn split(batches: Vec<Batch>, count: usize, limit: Option<usize>) -> Vec<(Vec<Batch>, usize)> {
    let limit = match limit {
        Some(limit) if limit < count => limit.max(1),
        _ => return vec![(batches, count)],
    };
    let mut parts: Vec<(Vec<Batch>, usize)> = Vec::new();
    let mut current: (Vec<Batch>, usize) = (Vec::new(), 0);
    for batch in batches {
        let pieces: Vec<Batch> =
            if batch.len() > limit { batch.chunks(limit).map(|c| Arc::new(c.to_vec())).collect() } else { vec![batch] };
        for piece in pieces {
            if current.1 + piece.len() > limit {
                parts.push(std::mem::take(&mut current));
            }
            current.1 += piece.len();
            current.0.push(piece);
        }
    }
    if current.1 > 0 {
        parts.push(current);
    }
    parts
}

/// An error with its causes, without the credentials of any URL in it.
fn error_text(error: &anyhow::Error) -> String {
    redact_urls(&format!("{error:#}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use tokio::sync::oneshot;

    use super::*;
    use crate::event::Event;

    /// Fails while `down` is set; records what it delivered.
    #[derive(Clone, Default)]
    struct Flaky {
        down: Arc<Mutex<bool>>,
        delivered: Arc<Mutex<Vec<String>>>,
        /// Events per write call.
        writes: Arc<Mutex<Vec<usize>>>,
        /// While set, a write waits for it before doing anything (a destination that hangs).
        hang: Arc<Mutex<Option<Arc<tokio::sync::Notify>>>>,
        /// Writes begun.
        calls: Arc<Mutex<usize>>,
    }

    fn start(sink: &Flaky, store: &Store, policy: SinkPolicy) -> (SinkHandle, JoinHandle<()>, Arc<SinkStatus>) {
        let status = SinkStatus::new(None, 0, 0);
        let (handle, join) = spawn("flaky".into(), Box::new(sink.clone()), store.clone(), policy, status.clone());
        (handle, join, status)
    }

    impl Sink for Flaky {
        fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
            Box::pin(async move {
                *self.calls.lock().unwrap() += 1;
                let hang = self.hang.lock().unwrap().clone();
                if let Some(release) = hang {
                    release.notified().await;
                }
                if *self.down.lock().unwrap() {
                    anyhow::bail!("destination down");
                }
                self.writes.lock().unwrap().push(batches.iter().map(|b| b.len()).sum());
                self.delivered.lock().unwrap().extend(batches.iter().flat_map(|b| b.iter()).map(|e| e.raw.get().to_string()));
                Ok(Written::default())
            })
        }
    }

    fn batch(range: std::ops::Range<u32>) -> Batch {
        Arc::new(
            range
                .map(|n| {
                    Event::hashed(
                        "t".into(),
                        "s".into(),
                        "json".into(),
                        chrono::Utc::now(),
                        serde_json::value::RawValue::from_string(format!("{n}")).unwrap(),
                    )
                })
                .collect(),
        )
    }

    async fn send(handle: &SinkHandle, events: Batch) -> anyhow::Result<()> {
        let (ack, rx) = oneshot::channel();
        handle.tx.send(Delivery { events, ack }).await.unwrap();
        rx.await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_down_sink_spills_to_the_outbox_and_catches_up_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sink = Flaky::default();
        let (down, delivered) = (sink.down.clone(), sink.delivered.clone());
        *down.lock().unwrap() = true;
        let (handle, join, status) = start(&sink, &store, SinkPolicy::default());

        // Acknowledged although the destination is down: the events are durable in the outbox.
        send(&handle, batch(0..3)).await.unwrap();
        send(&handle, batch(3..5)).await.unwrap();
        assert_eq!(store.outbox_len("flaky").await.unwrap(), 5);
        assert!(delivered.lock().unwrap().is_empty());
        let snap = status.snapshot();
        assert_eq!((snap.health, snap.pending), (crate::sinks::status::Health::Failed, 5));

        *down.lock().unwrap() = false;
        // Newer batches queue behind the outbox, so order is kept.
        send(&handle, batch(5..6)).await.unwrap();
        for _ in 0..100 {
            if delivered.lock().unwrap().len() == 6 {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let got: Vec<String> = delivered.lock().unwrap().clone();
        assert_eq!(got, (0..6).map(|n| n.to_string()).collect::<Vec<_>>());
        assert_eq!(store.outbox_len("flaky").await.unwrap(), 0);

        // Back to direct delivery.
        send(&handle, batch(6..7)).await.unwrap();
        assert_eq!(delivered.lock().unwrap().len(), 7);
        drop(handle);
        join.await.unwrap();
    }

    #[tokio::test]
    async fn batches_are_taken_into_the_outbox_while_an_outbox_delivery_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sink = Flaky::default();
        *sink.down.lock().unwrap() = true;
        let (handle, join, status) = start(&sink, &store, SinkPolicy::default());
        send(&handle, batch(0..3)).await.unwrap();

        // The destination now takes forever to fail; the worker's next outbox delivery hangs.
        let release = Arc::new(tokio::sync::Notify::new());
        *sink.hang.lock().unwrap() = Some(release.clone());
        for _ in 0..100 {
            if *sink.calls.lock().unwrap() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(*sink.calls.lock().unwrap(), 2, "the outbox delivery began");
        // New batches are acknowledged from the outbox meanwhile, not held up by it.
        tokio::time::timeout(Duration::from_secs(2), send(&handle, batch(3..5))).await.expect("held up by a hanging write").unwrap();
        assert_eq!((store.outbox_len("flaky").await.unwrap(), status.snapshot().pending), (5, 5));

        // Back: everything arrives, in order.
        *sink.hang.lock().unwrap() = None;
        *sink.down.lock().unwrap() = false;
        release.notify_one();
        wait_for(&sink.delivered, 5).await;
        assert_eq!(*sink.delivered.lock().unwrap(), ["0", "1", "2", "3", "4"]);
        drop(handle);
        join.await.unwrap();
        assert_eq!(store.outbox_len("flaky").await.unwrap(), 0);
    }

    async fn wait_for(delivered: &Arc<Mutex<Vec<String>>>, n: usize) {
        for _ in 0..600 {
            if delivered.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("only {} of {n} delivered", delivered.lock().unwrap().len());
    }

    #[tokio::test(start_paused = true)]
    async fn small_batches_wait_for_the_batch_timeout_and_go_out_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sink = Flaky::default();
        let mut policy = SinkPolicy::default();
        policy.batch.timeout = Duration::from_secs(10);
        policy.batch.max_events = std::num::NonZeroUsize::new(100).unwrap();
        let (handle, join, _) = start(&sink, &store, policy);
        let began = Instant::now();
        for n in 0..5 {
            // Acknowledged at once: the events wait durably in the outbox.
            send(&handle, batch(n * 2..n * 2 + 2)).await.unwrap();
        }
        assert!(sink.delivered.lock().unwrap().is_empty());
        wait_for(&sink.delivered, 10).await;
        assert!(began.elapsed() >= Duration::from_secs(10), "{:?}", began.elapsed());
        assert_eq!(*sink.writes.lock().unwrap(), vec![10], "one request for all ten");
        // A full batch does not wait.
        send(&handle, batch(100..250)).await.unwrap();
        wait_for(&sink.delivered, 160).await;
        assert!(began.elapsed() < Duration::from_secs(12));
        drop(handle);
        join.await.unwrap();
    }

    #[tokio::test]
    async fn the_filter_keeps_only_the_kinds_and_severities_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sink = Flaky::default();
        let mut policy = SinkPolicy::default();
        policy.filter.min_severity = Some(crate::model::Level::High);
        let (handle, join, status) = start(&sink, &store, policy);
        let events: Vec<Event> = ["low", "high", "critical", "info"]
            .iter()
            .map(|sev| {
                Event::hashed(
                    "t".into(),
                    "s".into(),
                    "json".into(),
                    chrono::Utc::now(),
                    serde_json::value::RawValue::from_string(format!("{{\"severity\":\"{sev}\"}}")).unwrap(),
                )
            })
            .collect();
        send(&handle, Arc::new(events)).await.unwrap();
        let got = sink.delivered.lock().unwrap().clone();
        assert_eq!(got, ["{\"severity\":\"high\"}", "{\"severity\":\"critical\"}"]);
        assert_eq!(status.snapshot().filtered, 2);
        drop(handle);
        join.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_outbox_holds_sources_back_instead_of_dropping() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sink = Flaky::default();
        *sink.down.lock().unwrap() = true;
        let mut policy = SinkPolicy::default();
        policy.outbox.max_bytes = 1;
        let (handle, join, status) = start(&sink, &store, policy);
        send(&handle, batch(0..3)).await.unwrap();
        // Over budget: the next batch is not taken while the sink is down.
        let (ack, mut rx) = oneshot::channel();
        handle.tx.send(Delivery { events: batch(3..4), ack }).await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(rx.try_recv().is_err(), "acknowledged beyond the disk budget");
        assert_eq!(status.snapshot().pending, 3);
        *sink.down.lock().unwrap() = false;
        rx.await.unwrap().unwrap();
        wait_for(&sink.delivered, 4).await;
        assert_eq!(*sink.delivered.lock().unwrap(), ["0", "1", "2", "3"]);
        drop(handle);
        join.await.unwrap();
    }

    #[test]
    fn splits_keep_whole_batches_and_never_exceed_the_limit() {
        let batch = |n: usize| -> Batch {
            Arc::new(
                (0..n)
                    .map(|i| {
                        Event::hashed(
                            "t".into(),
                            "s".into(),
                            "json".into(),
                            chrono::Utc::now(),
                            serde_json::value::RawValue::from_string(format!("{{\"i\":{i}}}")).unwrap(),
                        )
                    })
                    .collect(),
            )
        };
        let batches = vec![batch(3), batch(3), batch(9), batch(1)];
        let first = batches[0].clone();
        let parts = split(batches, 16, Some(4));
        assert_eq!(parts.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [3, 3, 4, 4, 2]);
        assert!(parts.iter().all(|(b, n)| b.iter().map(|b| b.len()).sum::<usize>() == *n && *n <= 4));
        assert!(Arc::ptr_eq(&parts[0].0[0], &first), "a batch within the limit is shared, not copied");
        assert_eq!(split(vec![batch(5)], 5, None).len(), 1);
    }
}
