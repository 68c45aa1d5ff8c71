//! The pipeline between sources and sinks: routing, durable hand-off, and the runtime that starts,
//! reloads and stops tenants, sources and sinks.
//!
//! Invariant (at-least-once): a source may advance its position past a batch only after the
//! batch's [`Ack`] resolved `Ok`, which every routed sink gives once the events are durable at the
//! destination or in the store's outbox.

pub mod replay;
pub mod runtime;
pub mod sink_worker;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use anyhow::anyhow;
use futures::future::{BoxFuture, FutureExt, try_join_all};
use tokio::sync::{mpsc, oneshot};

use crate::event::{Batch, Event};
use crate::snapshot::Snapshot;

/// A batch handed to one sink, with the channel on which it says the batch is durable.
pub struct Delivery {
    pub events: Batch,
    pub ack: oneshot::Sender<anyhow::Result<()>>,
}

/// A snapshot handed to one sink, with the channel on which it says the snapshot replaced the
/// previous one.
pub struct SnapshotDelivery {
    pub snapshot: Arc<Snapshot>,
    pub ack: oneshot::Sender<anyhow::Result<()>>,
}

#[derive(Clone)]
pub struct SinkHandle {
    tx: mpsc::Sender<Delivery>,
    snapshots: mpsc::Sender<SnapshotDelivery>,
}

/// The live sinks by name. Sources look sinks up per batch, so a sink replaced by a reload is
/// picked up without restarting the sources that feed it.
pub type SinkMap = Arc<RwLock<HashMap<String, SinkHandle>>>;

/// Resolves once every sink the batch was routed to holds it durably.
pub type Ack = BoxFuture<'static, anyhow::Result<()>>;

/// Hands one tenant's batches to the sinks it routes to.
#[derive(Clone)]
pub struct Emitter {
    sinks: SinkMap,
    routes: Arc<[String]>,
    usage: Arc<crate::usage::UsageMeter>,
}

impl Emitter {
    pub fn new(sinks: SinkMap, routes: Vec<String>, usage: Arc<crate::usage::UsageMeter>) -> Self {
        Emitter { sinks, routes: routes.into(), usage }
    }

    /// Usage of this tenant (events, bytes, vendor API calls), for billing.
    pub fn usage(&self) -> &Arc<crate::usage::UsageMeter> {
        &self.usage
    }

    /// Sends a batch to every routed sink. Waits while a sink's queue is full (backpressure),
    /// then returns the acknowledgement to await before advancing the source's position.
    pub async fn emit(&self, events: Vec<Event>) -> anyhow::Result<Ack> {
        if let Some(first) = events.first() {
            let bytes = events.iter().map(|e| e.raw.get().len() as u64).sum();
            self.usage.events(&first.tenant, events.len() as u64, bytes);
            let labels = [("tenant", first.tenant.to_string()), ("source", first.source.to_string())];
            metrics::counter!("sluice_events_in_total", &labels).increment(events.len() as u64);
            metrics::counter!("sluice_events_in_bytes_total", &labels).increment(bytes);
        }
        let events = Arc::new(events);
        let handles = self.resolve().await?;
        let mut acks = Vec::with_capacity(handles.len());
        for (name, handle) in handles {
            let (ack, rx) = oneshot::channel();
            handle.tx.send(Delivery { events: events.clone(), ack }).await.map_err(|_| anyhow!("sink `{name}` stopped"))?;
            acks.push(rx.map(move |r| r.unwrap_or_else(|_| Err(anyhow!("sink `{name}` stopped before acknowledging")))));
        }
        Ok(try_join_all(acks).map(|r| r.map(|_| ())).boxed())
    }

    /// Hands a complete snapshot to every routed sink and waits until each has replaced its
    /// previous one. Returns each sink's outcome, so a caller can name the sinks that failed.
    /// Writing the same snapshot again is harmless: it replaces itself.
    pub async fn emit_snapshot(&self, snapshot: Arc<Snapshot>) -> anyhow::Result<Vec<(String, anyhow::Result<()>)>> {
        let labels = [("tenant", snapshot.tenant.to_string()), ("source", snapshot.tag.to_string())];
        metrics::counter!("sluice_snapshot_records_total", &labels).increment(snapshot.records);
        let handles = self.resolve().await?;
        let writes = handles.into_iter().map(|(name, handle)| {
            let snapshot = snapshot.clone();
            async move {
                let (ack, rx) = oneshot::channel();
                let outcome = match handle.snapshots.send(SnapshotDelivery { snapshot, ack }).await {
                    Ok(()) => rx.await.unwrap_or_else(|_| Err(anyhow!("sink `{name}` stopped before acknowledging"))),
                    Err(_) => Err(anyhow!("sink `{name}` stopped")),
                };
                (name, outcome)
            }
        });
        let outcomes = futures::future::join_all(writes).await;
        Ok(outcomes)
    }

    /// The routed sinks' handles. A reload replaces a changed sink with a short gap; wait it out
    /// rather than fail the batch.
    async fn resolve(&self) -> anyhow::Result<Vec<(String, SinkHandle)>> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let lookup: Result<Vec<_>, &String> = {
                let map = self.sinks.read().expect("sink map poisoned");
                self.routes.iter().map(|name| map.get(name).cloned().map(|h| (name.clone(), h)).ok_or(name)).collect()
            };
            match lookup {
                Ok(handles) => return Ok(handles),
                Err(name) if tokio::time::Instant::now() >= deadline => return Err(anyhow!("sink `{name}` is not running")),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        }
    }
}
