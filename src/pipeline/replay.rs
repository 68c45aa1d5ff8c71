//! After a restart, sources repeat what they had read ahead of their saved positions. A sink
//! that already accepted those events (delivered them, or holds them in its outbox) skips them,
//! so a crash costs each sink at most its own writes in flight — not the sources' read-ahead,
//! nor what a slower sink held up.
//!
//! The replay of a (tenant, source) ends at its first event the sink does not have; from then
//! on nothing of it is skipped (two identical events later are both delivered). The filter
//! forgets itself once every source's replay ended, or after a while.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::event::{Batch, Event};

/// A replay comes first after a restart; past this, nothing is filtered any more.
const REPLAY_WINDOW: Duration = Duration::from_secs(600);

pub struct ReplayFilter {
    accepted: HashSet<u64>,
    /// (tenant, source) whose replay ended.
    ended: HashSet<(Arc<str>, Arc<str>)>,
    until: Instant,
}

/// The key a sink records for an event: its (tenant, source, id).
pub fn key(event: &Event) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    for part in [event.tenant.as_bytes(), event.source.as_bytes(), event.id.as_bytes()] {
        h.update(part);
        h.update(&[0]);
    }
    h.digest()
}

impl ReplayFilter {
    /// A filter over what the sink accepted before the restart; `None` when it had nothing.
    pub fn new(accepted: HashSet<u64>) -> Option<ReplayFilter> {
        (!accepted.is_empty()).then(|| ReplayFilter { accepted, ended: HashSet::new(), until: Instant::now() + REPLAY_WINDOW })
    }

    /// Leaves out the events the sink already has; returns the batches and how many were left out.
    pub fn filter(&mut self, batches: Vec<Batch>) -> (Vec<Batch>, usize) {
        let mut skipped = 0;
        let out = batches
            .into_iter()
            .map(|batch| {
                if !batch.iter().any(|e| self.replaying(e)) {
                    return batch;
                }
                let kept: Vec<Event> = batch
                    .iter()
                    .filter(|e| {
                        let origin = (e.tenant.clone(), e.source.clone());
                        if self.ended.contains(&origin) {
                            return true;
                        }
                        if self.accepted.contains(&key(e)) {
                            skipped += 1;
                            false
                        } else {
                            self.ended.insert(origin);
                            true
                        }
                    })
                    .cloned()
                    .collect();
                Arc::new(kept)
            })
            .collect();
        (out, skipped)
    }

    fn replaying(&self, e: &Event) -> bool {
        !self.ended.contains(&(e.tenant.clone(), e.source.clone())) && self.accepted.contains(&key(e))
    }

    /// True once the filter can be dropped.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(source: &str, n: u32) -> Event {
        Event {
            id: format!("e{n}"),
            tenant: "acme".into(),
            source: source.into(),
            vendor: "json".into(),
            received_at: chrono::Utc::now(),
            raw: serde_json::value::RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap(),
            mapped: None,
        }
    }

    fn ids(batches: &[Batch]) -> Vec<String> {
        batches.iter().flat_map(|b| b.iter().map(|e| format!("{}:{}", e.source, e.id))).collect()
    }

    #[test]
    fn the_replayed_prefix_is_skipped_and_what_follows_is_kept_even_if_seen() {
        let had: HashSet<u64> = (0..5).map(|n| key(&event("a", n))).chain([key(&event("a", 7))]).collect();
        let mut f = ReplayFilter::new(had).unwrap();
        let batch = Arc::new((0..10).map(|n| event("a", n)).collect::<Vec<_>>());
        let (out, skipped) = f.filter(vec![batch]);
        assert_eq!(skipped, 5);
        // e7 comes after the replay ended: an event of the same id again is delivered.
        assert_eq!(ids(&out), ["a:e5", "a:e6", "a:e7", "a:e8", "a:e9"]);
        let (out, skipped) = f.filter(vec![Arc::new(vec![event("a", 0)])]);
        assert_eq!((ids(&out), skipped), (vec!["a:e0".to_string()], 0));
    }

    #[test]
    fn sources_replay_independently() {
        let had: HashSet<u64> = [key(&event("a", 1)), key(&event("b", 1))].into();
        let mut f = ReplayFilter::new(had).unwrap();
        let (out, _) = f.filter(vec![Arc::new(vec![event("a", 1), event("a", 2)])]);
        assert_eq!(ids(&out), ["a:e2"]);
        let (out, _) = f.filter(vec![Arc::new(vec![event("b", 1), event("b", 3)])]);
        assert_eq!(ids(&out), ["b:e3"]);
    }

    #[test]
    fn nothing_accepted_means_no_filter() {
        assert!(ReplayFilter::new(HashSet::new()).is_none());
    }
}
