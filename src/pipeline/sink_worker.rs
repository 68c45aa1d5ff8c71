//! One task per sink. It writes batches straight to the sink while the sink is healthy. When a
//! write fails, the batch goes to the sink's durable outbox in the store and is acknowledged
//! from there; until the outbox is empty again, new batches queue behind it (order is kept) and
//! the worker retries the oldest outbox events with exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Batch, Delivery, SinkHandle};
use crate::sinks::Sink;
use crate::store::Store;

/// Batches waiting for a sink; beyond this, sources wait (backpressure).
const QUEUE_DEPTH: usize = 32;
/// Queued batches written together (group commit: one fsync for many tenants' pages).
const MAX_COALESCED: usize = 32;
const OUTBOX_CHUNK: usize = 2048;
const MIN_RETRY: Duration = Duration::from_millis(500);
const MAX_RETRY: Duration = Duration::from_secs(60);

pub fn spawn(name: String, sink: Box<dyn Sink>, store: Store) -> (SinkHandle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let join = tokio::spawn(Worker { name, sink, store, backoff: MIN_RETRY }.run(rx));
    (SinkHandle { tx }, join)
}

struct Worker {
    name: String,
    sink: Box<dyn Sink>,
    store: Store,
    backoff: Duration,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Delivery>) {
        // Events left in the outbox by an earlier run are delivered before anything new.
        let mut backlog = match self.store.outbox_len(&self.name).await {
            Ok(n) if n > 0 => {
                tracing::info!(sink = %self.name, pending = n, "delivering events left in the outbox");
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::error!(sink = %self.name, error = %format!("{e:#}"), "cannot read the outbox");
                true
            }
        };
        let mut retry_at = Instant::now();
        loop {
            tokio::select! {
                biased;
                delivery = rx.recv() => {
                    let Some(delivery) = delivery else { break };
                    let mut deliveries = vec![delivery];
                    while deliveries.len() < MAX_COALESCED {
                        match rx.try_recv() {
                            Ok(d) => deliveries.push(d),
                            Err(_) => break,
                        }
                    }
                    let batches: Vec<Batch> = deliveries.iter().map(|d| d.events.clone()).collect();
                    let result = self.accept(&batches, &mut backlog, &mut retry_at).await;
                    for d in deliveries {
                        let _ = d.ack.send(result.as_ref().map(|_| ()).map_err(|e| anyhow!("{e:#}")));
                    }
                }
                _ = tokio::time::sleep_until(retry_at), if backlog => {
                    match self.drain_chunk().await {
                        Ok(more) => {
                            backlog = more;
                            self.backoff = MIN_RETRY;
                            retry_at = Instant::now();
                        }
                        Err(e) => {
                            retry_at = Instant::now() + self.next_backoff();
                            tracing::warn!(sink = %self.name, error = %format!("{e:#}"),
                                retry_in = ?retry_at.duration_since(Instant::now()), "outbox delivery failed");
                        }
                    }
                }
            }
        }
        tracing::debug!(sink = %self.name, "sink stopped");
    }

    /// Makes a batch durable: at the destination when possible, else in the outbox.
    async fn accept(&mut self, batches: &[Batch], backlog: &mut bool, retry_at: &mut Instant) -> anyhow::Result<()> {
        let count: usize = batches.iter().map(|b| b.len()).sum();
        if !*backlog {
            match self.sink.write(batches).await {
                Ok(()) => {
                    metrics::counter!("sluice_sink_events_total", "sink" => self.name.clone()).increment(count as u64);
                    return Ok(());
                }
                Err(e) => {
                    metrics::counter!("sluice_sink_errors_total", "sink" => self.name.clone()).increment(1);
                    tracing::warn!(sink = %self.name, events = count, error = %format!("{e:#}"),
                        "sink write failed; holding events in the outbox");
                    *backlog = true;
                    *retry_at = Instant::now() + self.next_backoff();
                }
            }
        }
        self.store.outbox_push(&self.name, batches).await?;
        metrics::counter!("sluice_outbox_events_total", "sink" => self.name.clone()).increment(count as u64);
        Ok(())
    }

    /// Delivers the oldest outbox events. Returns whether more remain.
    async fn drain_chunk(&mut self) -> anyhow::Result<bool> {
        let (events, last_id) = self.store.outbox_peek(&self.name, OUTBOX_CHUNK).await?;
        let Some(last_id) = last_id else { return Ok(false) };
        let count = events.len();
        self.sink.write(&[Arc::new(events)]).await?;
        self.store.outbox_ack(&self.name, last_id).await?;
        metrics::counter!("sluice_sink_events_total", "sink" => self.name.clone()).increment(count as u64);
        if count < OUTBOX_CHUNK {
            tracing::info!(sink = %self.name, "outbox drained; sink is delivering directly again");
            return Ok(false);
        }
        Ok(true)
    }

    fn next_backoff(&mut self) -> Duration {
        let current = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_RETRY);
        // Full jitter on the upper half keeps many sinks from retrying in lockstep.
        let half = current / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::future::BoxFuture;
    use tokio::sync::oneshot;

    use super::*;
    use crate::model::Event;

    /// Fails while `down` is set; records what it delivered.
    struct Flaky {
        down: Arc<Mutex<bool>>,
        delivered: Arc<Mutex<Vec<String>>>,
    }

    impl Sink for Flaky {
        fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<()>> {
            Box::pin(async move {
                if *self.down.lock().unwrap() {
                    anyhow::bail!("destination down");
                }
                self.delivered.lock().unwrap().extend(batches.iter().flat_map(|b| b.iter()).map(|e| e.raw.get().to_string()));
                Ok(())
            })
        }
    }

    fn batch(range: std::ops::Range<u32>) -> Batch {
        Arc::new(
            range
                .map(|n| {
                    Event::hashed("t".into(), "s".into(), "json".into(), chrono::Utc::now(),
                        serde_json::value::RawValue::from_string(format!("{n}")).unwrap())
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
        let down = Arc::new(Mutex::new(true));
        let delivered = Arc::new(Mutex::new(Vec::new()));
        let sink = Flaky { down: down.clone(), delivered: delivered.clone() };
        let (handle, join) = spawn("flaky".into(), Box::new(sink), store.clone());

        // Acknowledged although the destination is down: the events are durable in the outbox.
        send(&handle, batch(0..3)).await.unwrap();
        send(&handle, batch(3..5)).await.unwrap();
        assert_eq!(store.outbox_len("flaky").await.unwrap(), 5);
        assert!(delivered.lock().unwrap().is_empty());

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
}
