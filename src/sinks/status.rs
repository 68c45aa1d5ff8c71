//! Health and statistics of each sink: what its worker observed (writes, dead letters, the
//! active check), summarized as `healthy | degraded | failed | unknown`, kept in memory for the
//! API and metrics, and saved to the store every few seconds for `sluice status`. Error texts are
//! kept with the credentials of any URL in them redacted, so none reaches the store, `sluice
//! status` or the API.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::settings::redact_urls;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Nothing written and no check done yet.
    Unknown,
    Healthy,
    /// Delivering, but with recent failures, dead letters, or a backlog being drained.
    Degraded,
    /// The last write or the last active check failed: events wait in the outbox.
    Failed,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Healthy => "healthy",
            Health::Degraded => "degraded",
            Health::Failed => "failed",
        }
    }
}

/// Failures within this many recent writes make a working sink `degraded`.
const RECENT: usize = 20;

/// A sink's live status, shared by its worker (which writes it) and readers.
#[derive(Debug, Default)]
pub struct SinkStatus {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default, Clone)]
struct Inner {
    stored: StoredStats,
    pending: u64,
    pending_bytes: u64,
    /// Outcomes of the last writes, newest last: `true` = delivered.
    recent: std::collections::VecDeque<bool>,
    last_write_failed: bool,
    check: Option<Result<(), String>>,
    dirty: bool,
    /// The health last handed out by [`SinkStatus::take_changes`].
    saved_health: Option<Health>,
}

/// The counters and health as the store keeps them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct StoredStats {
    pub sent: u64,
    /// Events whose delivery attempt failed (each attempt of a batch counts its events).
    pub failed: u64,
    pub dead_lettered: u64,
    /// Events the sink's filter left out.
    pub filtered: u64,
    /// Syslog messages cut to the UDP size limit.
    pub truncated: u64,
    pub health: String,
    pub health_reason: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_success_at: Option<String>,
    pub updated_at: String,
}

/// What readers see.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub health: Health,
    pub health_reason: Option<String>,
    pub sent: u64,
    pub failed: u64,
    pub pending: u64,
    pub pending_bytes: u64,
    pub dead_lettered: u64,
    pub filtered: u64,
    pub truncated: u64,
    /// Delivered / (delivered + failed attempts), 0–1; absent before the first write.
    pub success_rate: Option<f64>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub last_success_at: Option<String>,
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl SinkStatus {
    pub fn new(stored: Option<StoredStats>, pending: u64, pending_bytes: u64) -> Arc<SinkStatus> {
        let inner = Inner { stored: stored.unwrap_or_default(), pending, pending_bytes, ..Default::default() };
        Arc::new(SinkStatus { inner: Mutex::new(inner) })
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        f(&mut self.inner.lock().expect("sink status poisoned"))
    }

    pub fn delivered(&self, events: u64) {
        self.with(|i| {
            i.stored.sent += events;
            i.stored.last_success_at = Some(stamp(Utc::now()));
            i.last_write_failed = false;
            i.push_recent(true);
        });
    }

    pub fn write_failed(&self, events: u64, error: &str) {
        self.with(|i| {
            i.stored.failed += events;
            i.stored.last_error = Some(redact_urls(error));
            i.stored.last_error_at = Some(stamp(Utc::now()));
            i.last_write_failed = true;
            i.push_recent(false);
        });
    }

    pub fn dead_lettered(&self, events: u64, reason: &str) {
        self.with(|i| {
            i.stored.dead_lettered += events;
            i.stored.last_error = Some(format!("dead-lettered: {}", redact_urls(reason)));
            i.stored.last_error_at = Some(stamp(Utc::now()));
            i.push_recent(false);
        });
    }

    pub fn filtered(&self, events: u64) {
        self.with(|i| {
            i.stored.filtered += events;
            i.dirty = true;
        });
    }

    pub fn truncated(&self, messages: u64) {
        self.with(|i| {
            i.stored.truncated += messages;
            i.dirty = true;
        });
    }

    pub fn checked(&self, result: Result<(), String>) {
        self.with(|i| {
            i.check = Some(result.map_err(|e| redact_urls(&e)));
            i.dirty = true;
        });
    }

    pub fn set_pending(&self, events: u64, bytes: u64) {
        self.with(|i| {
            i.pending = events;
            i.pending_bytes = bytes;
        });
    }

    pub fn pending(&self) -> (u64, u64) {
        self.with(|i| (i.pending, i.pending_bytes))
    }

    pub fn snapshot(&self) -> Snapshot {
        self.with(|i| {
            let (health, reason) = i.health();
            let s = &i.stored;
            let attempts = s.sent + s.failed;
            Snapshot {
                health,
                health_reason: reason,
                sent: s.sent,
                failed: s.failed,
                pending: i.pending,
                pending_bytes: i.pending_bytes,
                dead_lettered: s.dead_lettered,
                filtered: s.filtered,
                truncated: s.truncated,
                success_rate: (attempts > 0).then(|| s.sent as f64 / attempts as f64),
                last_error: s.last_error.clone(),
                last_error_at: s.last_error_at.clone(),
                last_success_at: s.last_success_at.clone(),
            }
        })
    }

    /// Whether the health differs from what was last saved: worth saving at once.
    pub fn health_changed(&self) -> bool {
        self.with(|i| i.saved_health != Some(i.health().0))
    }

    /// The row to save, when something changed since the last call.
    pub fn take_changes(&self) -> Option<StoredStats> {
        self.with(|i| {
            let (health, reason) = i.health();
            if !std::mem::take(&mut i.dirty) && i.saved_health == Some(health) {
                return None;
            }
            i.saved_health = Some(health);
            let mut row = i.stored.clone();
            row.health = health.as_str().to_string();
            row.health_reason = reason;
            Some(row)
        })
    }
}

impl Inner {
    fn push_recent(&mut self, ok: bool) {
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(ok);
        self.dirty = true;
    }

    fn health(&self) -> (Health, Option<String>) {
        if let Some(Err(e)) = &self.check {
            return (Health::Failed, Some(format!("health check: {e}")));
        }
        if self.last_write_failed {
            return (Health::Failed, self.stored.last_error.clone());
        }
        if self.pending > 0 {
            return (Health::Degraded, Some(format!("{} events waiting in the outbox", self.pending)));
        }
        if self.recent.iter().any(|ok| !ok) {
            return (Health::Degraded, self.stored.last_error.clone());
        }
        if !self.recent.is_empty() || matches!(self.check, Some(Ok(()))) {
            return (Health::Healthy, None);
        }
        (Health::Unknown, None)
    }
}

/// Every running sink's status, by name.
pub type StatusMap = Arc<RwLock<BTreeMap<String, Arc<SinkStatus>>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_follows_what_the_worker_saw() {
        let s = SinkStatus::new(None, 0, 0);
        assert_eq!(s.snapshot().health, Health::Unknown);
        s.checked(Ok(()));
        assert_eq!(s.snapshot().health, Health::Healthy);
        s.delivered(10);
        assert_eq!(s.snapshot().health, Health::Healthy);
        s.write_failed(5, "connection refused");
        let snap = s.snapshot();
        assert_eq!((snap.health, snap.health_reason.as_deref()), (Health::Failed, Some("connection refused")));
        s.set_pending(5, 500);
        s.delivered(5);
        assert_eq!(s.snapshot().health, Health::Degraded, "backlog");
        s.set_pending(0, 0);
        assert_eq!(s.snapshot().health, Health::Degraded, "a recent failure");
        for _ in 0..RECENT {
            s.delivered(1);
        }
        assert_eq!(s.snapshot().health, Health::Healthy);
        s.checked(Err("TLS handshake failed".into()));
        assert_eq!(s.snapshot().health, Health::Failed);
        let snap = s.snapshot();
        assert_eq!((snap.sent, snap.failed), (35, 5));
        assert!((snap.success_rate.unwrap() - 35.0 / 40.0).abs() < 1e-9);
        assert!(s.take_changes().is_some());
        assert!(s.take_changes().is_none());
    }

    #[test]
    fn no_error_keeps_the_credentials_of_a_url() {
        let s = SinkStatus::new(None, 0, 0);
        s.write_failed(1, "POST http://u:hunter2@h/: refused");
        assert_eq!(s.snapshot().last_error.as_deref(), Some("POST http://***@h/: refused"));
        s.dead_lettered(1, "http://u:hunter2@h/ said 400");
        s.checked(Err("GET https://u:hunter2@h/: refused".into()));
        let snap = s.snapshot();
        let text = format!("{snap:?} {:?}", s.take_changes());
        assert!(!text.contains("hunter2") && text.contains("***@h"), "{text}");
    }
}
