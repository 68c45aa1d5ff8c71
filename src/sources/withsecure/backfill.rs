//! Collecting a window of events again on purpose (`sluice backfill`): the source's own
//! collection, on a temporary position held in memory. The live checkpoint is neither read nor
//! written, so the running daemon goes on as if nothing happened.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};

use super::checkpoint::Checkpoint;
use super::client::Api;
use super::config::WithSecureConfig;
use super::{Target, collect_organization, organizations};
use crate::sources::SourceContext;

/// What a backfill has done so far, for a progress report.
#[derive(Debug, Default)]
pub struct Progress {
    pages: AtomicU64,
    events: AtomicU64,
    /// The organization being collected and the newest `persistenceTimestamp` delivered.
    at: Mutex<Option<(String, DateTime<Utc>)>>,
}

impl Progress {
    pub fn pages(&self) -> u64 {
        self.pages.load(Ordering::Relaxed)
    }

    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// The organization being collected and how far it got.
    pub fn at(&self) -> Option<(String, DateTime<Utc>)> {
        self.at.lock().expect("progress poisoned").clone()
    }

    pub(super) fn page(&self, org: &str, events: usize, cp: &Checkpoint) {
        self.pages.fetch_add(1, Ordering::Relaxed);
        self.events.fetch_add(events as u64, Ordering::Relaxed);
        *self.at.lock().expect("progress poisoned") = Some((org.to_string(), cp.timestamp));
    }
}

/// Collects the events persisted in `from..to` (`to` excluded) of every organization of the
/// source into `ctx`'s sinks. Returns the number of events delivered.
pub async fn backfill(
    config: &WithSecureConfig,
    ctx: &SourceContext,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    progress: &Progress,
) -> anyhow::Result<usize> {
    anyhow::ensure!(from < to, "the window is empty: `--from` must be before `--to`");
    let mut api = Api::new(config, &ctx.tenant, ctx.cancel.clone(), ctx.emitter.usage().clone())?;
    let mut total = 0;
    let mut failures = Vec::new();
    for org in organizations(config, &mut api).await? {
        let mut cp = Checkpoint::starting_at(from);
        match collect_organization(config, ctx, &mut api, &org, &mut cp, Target::Window { end: to, progress }).await {
            Ok(n) => total += n,
            Err(e) if ctx.cancel.is_cancelled() => return Err(e),
            Err(e) => failures.push(format!("organization {org}: {e:#} (delivered up to {})", cp.start_param())),
        }
    }
    if failures.is_empty() { Ok(total) } else { Err(anyhow::anyhow!(failures.join("; "))) }
}
