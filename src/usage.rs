//! Usage per tenant and day (events and bytes taken in, API requests made): the base of MSSP
//! billing. Counted in memory on the hot path and added to the store every few seconds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::Store;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    events: u64,
    bytes: u64,
    api_calls: u64,
}

#[derive(Debug, Default)]
pub struct UsageMeter {
    pending: Mutex<HashMap<Arc<str>, Counts>>,
}

impl UsageMeter {
    pub fn new() -> Arc<UsageMeter> {
        Arc::new(UsageMeter::default())
    }

    pub fn events(&self, tenant: &Arc<str>, events: u64, bytes: u64) {
        let mut pending = self.pending.lock().expect("usage meter poisoned");
        let c = pending.entry(tenant.clone()).or_default();
        c.events += events;
        c.bytes += bytes;
    }

    pub fn api_call(&self, tenant: &str) {
        let mut pending = self.pending.lock().expect("usage meter poisoned");
        pending.entry(Arc::from(tenant)).or_default().api_calls += 1;
    }

    /// Adds what was counted since the last flush to the store.
    pub async fn flush(&self, store: &Store) {
        let pending = std::mem::take(&mut *self.pending.lock().expect("usage meter poisoned"));
        for (tenant, c) in pending {
            if let Err(e) = store.add_usage(&tenant, c.events, c.bytes, c.api_calls).await {
                tracing::warn!(%tenant, error = %format!("{e:#}"), "cannot save usage");
            }
        }
    }
}
