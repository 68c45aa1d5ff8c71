//! The sinks of one tenant, run by a command rather than the daemon.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, TenantConfig};
use crate::pipeline::{SinkMap, sink_worker};
use crate::sinks::status::SinkStatus;
use crate::store::Store;

/// This process's instances of a tenant's sinks, for a command that runs beside the daemon
/// (`backfill`) or instead of it (`collect`).
pub struct Sinks {
    pub map: SinkMap,
    /// Each worker's name, which names its outbox in the store.
    outboxes: Vec<String>,
    joins: Vec<JoinHandle<()>>,
}

impl Sinks {
    /// Starts the tenant's sinks. With `outbox_prefix`, their outboxes are `<prefix>:<sink>`,
    /// apart from the daemon's; without, they are the daemon's own (the command runs instead of it).
    pub async fn start(config: &Config, tenant: &TenantConfig, store: &Store, outbox_prefix: Option<&str>) -> anyhow::Result<Sinks> {
        let map: SinkMap = Arc::new(RwLock::new(HashMap::new()));
        let (mut outboxes, mut joins) = (Vec::new(), Vec::new());
        for name in &tenant.sinks {
            let sink = config.sinks.get(name).with_context(|| format!("sink `{name}` is not defined"))?;
            // Refused events are dead-lettered under the sink's own name, where the daemon and the
            // API show and retry them.
            let instance = sink.settings.start(name, store, &sink.policy).with_context(|| format!("sink `{name}`"))?;
            // `:` is not allowed in sink names: such an outbox is no configured sink's.
            let outbox = outbox_prefix.map_or_else(|| name.clone(), |p| format!("{p}:{name}"));
            let (pending, pending_bytes) = store.outbox_size(&outbox).await?;
            if pending > 0 {
                eprintln!("delivering first the {pending} events an interrupted run left for sink `{name}`");
            }
            let status = SinkStatus::new(store.sink_stats(&outbox).await?, pending, pending_bytes);
            let (handle, join) = sink_worker::spawn(outbox.clone(), instance, store.clone(), sink.policy.clone(), status);
            map.write().expect("sink map poisoned").insert(name.clone(), handle);
            outboxes.push(outbox);
            joins.push(join);
        }
        Ok(Sinks { map, outboxes, joins })
    }

    /// Waits until the sinks delivered what their outboxes hold (unless interrupted), then stops
    /// them. Returns the outboxes still holding events, with their counts.
    pub async fn finish(self, store: &Store, cancel: &CancellationToken) -> anyhow::Result<Vec<(String, u64)>> {
        let mut reported = tokio::time::Instant::now();
        loop {
            let waiting = holding(store, &self.outboxes).await?;
            if waiting.is_empty() || cancel.is_cancelled() {
                break;
            }
            if reported.elapsed() >= Duration::from_secs(5) {
                reported = tokio::time::Instant::now();
                let list: Vec<String> = waiting.iter().map(|(outbox, n)| format!("{n} in `{outbox}`")).collect();
                eprintln!("waiting for the sinks to deliver what they hold: {}", list.join(", "));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = cancel.cancelled() => {}
            }
        }
        // Without their handles, the workers finish what they were given and stop.
        self.map.write().expect("sink map poisoned").clear();
        for join in self.joins {
            let _ = join.await;
        }
        holding(store, &self.outboxes).await
    }
}

/// The outboxes that hold events, with their counts.
async fn holding(store: &Store, outboxes: &[String]) -> anyhow::Result<Vec<(String, u64)>> {
    let mut holding = Vec::new();
    for outbox in outboxes {
        let (n, _) = store.outbox_size(outbox).await?;
        if n > 0 {
            holding.push((outbox.clone(), n));
        }
    }
    Ok(holding)
}
