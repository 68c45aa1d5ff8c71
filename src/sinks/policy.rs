//! Settings every sink has, whatever its type: `batch`, `retry`, `filter`, `outbox` and
//! `health`. They are read from the sink's section next to its type-specific keys.

use std::num::NonZeroUsize;
use std::time::Duration;

use rand::Rng;
use serde::Deserialize;

use crate::model::{Kind, Level, SecurityEvent};
use crate::settings::{ConfigError, duration, parse_at};

pub const KEYS: &[&str] = &["batch", "retry", "filter", "outbox", "health"];

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SinkPolicy {
    pub batch: BatchPolicy,
    pub retry: RetryPolicy,
    pub filter: Filter,
    pub outbox: OutboxPolicy,
    pub health: HealthPolicy,
}

impl SinkPolicy {
    /// Takes the common keys out of a sink's section and parses them; what remains is the
    /// type-specific part.
    pub fn take(value: &mut serde_json::Value, path: &str, errors: &mut Vec<ConfigError>) -> SinkPolicy {
        let mut policy = SinkPolicy::default();
        let Some(map) = value.as_object_mut() else { return policy };
        if let Some(v) = map.remove("batch") {
            policy.batch = parse_at(v, &format!("{path}.batch"), errors).unwrap_or_default();
        }
        if let Some(v) = map.remove("retry") {
            policy.retry = parse_at(v, &format!("{path}.retry"), errors).unwrap_or_default();
            if policy.retry.max_attempts == 0 {
                errors.push(ConfigError::at(format!("{path}.retry.max_attempts"), "must be at least 1"));
            }
        }
        if let Some(v) = map.remove("filter") {
            policy.filter = parse_at(v, &format!("{path}.filter"), errors).unwrap_or_default();
        }
        if let Some(v) = map.remove("outbox") {
            policy.outbox = parse_at(v, &format!("{path}.outbox"), errors).unwrap_or_default();
        }
        if let Some(v) = map.remove("health") {
            policy.health = parse_at(v, &format!("{path}.health"), errors).unwrap_or_default();
        }
        policy
    }
}

/// How events are grouped into requests.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchPolicy {
    /// Events per request at most (the original SIEM integration module's `batch_size`).
    pub max_events: NonZeroUsize,
    /// Encoded bytes per request at most (one event larger than this still goes, alone).
    pub max_bytes: NonZeroUsize,
    /// How long an event may wait for more to fill its batch (the original SIEM integration module's
    /// `batch_interval_seconds`). 0: send what is there at once. Above 0, events wait in the
    /// durable outbox, so sources are never held up by it.
    #[serde(with = "duration")]
    pub timeout: Duration,
}

impl Default for BatchPolicy {
    fn default() -> Self {
        BatchPolicy {
            max_events: NonZeroUsize::new(1000).unwrap(),
            max_bytes: NonZeroUsize::new(4 << 20).unwrap(),
            timeout: Duration::ZERO,
        }
    }
}

impl BatchPolicy {
    /// Splits `items` (with their encoded sizes) into request-sized runs, in order.
    pub fn split<T>(&self, items: Vec<(T, usize)>) -> Vec<Vec<T>> {
        let mut out = Vec::new();
        let mut current = Vec::new();
        let mut bytes = 0;
        for (item, size) in items {
            if !current.is_empty() && (current.len() >= self.max_events.get() || bytes + size > self.max_bytes.get()) {
                out.push(std::mem::take(&mut current));
                bytes = 0;
            }
            bytes += size;
            current.push(item);
        }
        if !current.is_empty() {
            out.push(current);
        }
        out
    }
}

/// Retries of one request before the sink gives up on it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryPolicy {
    /// Attempts per request. A request that still fails with a transient error stays in the
    /// outbox (retried later, never dropped); an event the destination keeps refusing on its own
    /// (a bulk item answered 429 every time) goes to the dead-letter list.
    pub max_attempts: u32,
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    #[serde(with = "duration")]
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 5, initial_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait before attempt `attempt + 1` (attempt counts from 1): exponential with jitter
    /// over the upper half, or what the server asked for in `Retry-After` (capped at
    /// `max_backoff`).
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(wait) = retry_after {
            return wait.min(self.max_backoff);
        }
        let base = self.initial_backoff.saturating_mul(1u32 << attempt.saturating_sub(1).min(16)).min(self.max_backoff);
        let half = base / 2;
        half + rand::rng().random_range(Duration::ZERO..=half)
    }
}

/// The original SIEM integration module's selective export: which events a sink takes.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Filter {
    /// Only these kinds (`alert`, `security_event`, `anomaly`, …); empty: all.
    pub kinds: Vec<Kind>,
    /// Only events at or above this level (`info` < `low` < `medium` < `high` < `critical`).
    pub min_severity: Option<Level>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty() && self.min_severity.is_none()
    }

    pub fn accepts(&self, e: &SecurityEvent) -> bool {
        (self.kinds.is_empty() || self.kinds.contains(&e.kind)) && self.min_severity.is_none_or(|min| e.severity.level >= min)
    }
}

/// The durable outbox of a sink that is down.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutboxPolicy {
    /// Disk the outbox may use (bytes of stored events). Beyond it the sink stops accepting, so
    /// sources slow down: events wait at their origin, none is dropped.
    pub max_bytes: u64,
}

impl Default for OutboxPolicy {
    fn default() -> Self {
        OutboxPolicy { max_bytes: 1 << 30 }
    }
}

/// The active health check: a request that writes nothing.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthPolicy {
    #[serde(with = "duration")]
    pub interval: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        HealthPolicy { interval: Duration::from_secs(30) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_respects_both_limits_and_keeps_oversized_items_alone() {
        let policy =
            BatchPolicy { max_events: NonZeroUsize::new(3).unwrap(), max_bytes: NonZeroUsize::new(10).unwrap(), ..Default::default() };
        let items = vec![(1, 4), (2, 4), (3, 4), (4, 1), (5, 1), (6, 1), (7, 1), (8, 50), (9, 1)];
        assert_eq!(policy.split(items), vec![vec![1, 2], vec![3, 4, 5], vec![6, 7], vec![8], vec![9]]);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let p = RetryPolicy { max_attempts: 5, initial_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
        let first = p.backoff(1, None);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100), "{first:?}");
        let later = p.backoff(10, None);
        assert!(later >= Duration::from_millis(500) && later <= Duration::from_secs(1), "{later:?}");
        assert_eq!(p.backoff(1, Some(Duration::from_millis(300))), Duration::from_millis(300));
        assert_eq!(p.backoff(1, Some(Duration::from_secs(120))), Duration::from_secs(1));
    }
}
