//! One task per sink. It writes batches straight to the sink while the sink is healthy. When a
//! write fails, the batch goes to the sink's durable outbox in the store and is acknowledged
//! from there; until the outbox is empty again, new batches queue behind it (order is kept) and
//! the worker retries the oldest outbox events with exponential backoff and jitter.

use std::time::Duration;

use rand::Rng;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::{Delivery, SinkHandle};
use crate::model::Event;
use crate::sinks::Sink;
use crate::store::Store;

/// Batches waiting for a sink; beyond this, sources wait (backpressure).
const QUEUE_DEPTH: usize = 16;
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
                    let result = self.accept(&delivery.events, &mut backlog, &mut retry_at).await;
                    let _ = delivery.ack.send(result);
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
    async fn accept(&mut self, events: &[Event], backlog: &mut bool, retry_at: &mut Instant) -> anyhow::Result<()> {
        if !*backlog {
            match self.sink.write(events).await {
                Ok(()) => {
                    metrics::counter!("sluice_sink_events_total", "sink" => self.name.clone()).increment(events.len() as u64);
                    return Ok(());
                }
                Err(e) => {
                    metrics::counter!("sluice_sink_errors_total", "sink" => self.name.clone()).increment(1);
                    tracing::warn!(sink = %self.name, events = events.len(), error = %format!("{e:#}"),
                        "sink write failed; holding events in the outbox");
                    *backlog = true;
                    *retry_at = Instant::now() + self.next_backoff();
                }
            }
        }
        self.store.outbox_push(&self.name, events).await?;
        metrics::counter!("sluice_outbox_events_total", "sink" => self.name.clone()).increment(events.len() as u64);
        Ok(())
    }

    /// Delivers the oldest outbox events. Returns whether more remain.
    async fn drain_chunk(&mut self) -> anyhow::Result<bool> {
        let (events, last_id) = self.store.outbox_peek(&self.name, OUTBOX_CHUNK).await?;
        let Some(last_id) = last_id else { return Ok(false) };
        self.sink.write(&events).await?;
        self.store.outbox_ack(&self.name, last_id).await?;
        metrics::counter!("sluice_sink_events_total", "sink" => self.name.clone()).increment(events.len() as u64);
        if events.len() < OUTBOX_CHUNK {
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
