//! The position of one organization's event stream.
//!
//! The API orders events by `persistenceTimestamp`, and many events can share one timestamp.
//! Resuming strictly after the last timestamp would skip events persisted at that same
//! instant after the previous poll; resuming at it would repeat the ones already delivered. So
//! the checkpoint keeps the timestamp *and* the ids already delivered at it, queries inclusively,
//! and drops those ids from the first page.
//!
//! A position also records the start setting it began with (`start_mode`, and `start_date` for
//! `fixed`), so that a start setting is applied once: a restart with the same setting resumes,
//! a changed setting starts a new position.

use std::collections::BTreeSet;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::config::{StartMode, WithSecureConfig};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub timestamp: DateTime<Utc>,
    /// Ids delivered whose timestamp equals `timestamp`.
    #[serde(default)]
    pub ids_at_timestamp: BTreeSet<String>,
    /// Every event at `timestamp` was delivered, though their ids are unknown (a position
    /// imported from the original collector): query with `exclusiveStart=true`.
    #[serde(default)]
    pub exclusive: bool,
    /// The start setting this position began with. None: saved by an earlier sluice, which did
    /// not record it (or a backfill's position, which is never saved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartSetting>,
}

/// What decides where a new position starts: `start_mode`, with `start_date` for `fixed` (for the
/// other modes the date means nothing, so changing it changes nothing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartSetting {
    pub mode: StartMode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<Utc>>,
}

impl StartSetting {
    pub fn of(config: &WithSecureConfig) -> Self {
        let date = if config.start_mode == StartMode::Fixed { config.start_date } else { None };
        StartSetting { mode: config.start_mode, date }
    }
}

impl fmt::Display for StartSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            StartMode::State => "state",
            StartMode::Now => "now",
            StartMode::Fixed => "fixed",
        };
        write!(f, "start_mode: {mode}")?;
        if let Some(date) = self.date {
            write!(f, ", start_date: {}", date.to_rfc3339_opts(SecondsFormat::AutoSi, true))?;
        }
        Ok(())
    }
}

impl Checkpoint {
    pub fn starting_at(timestamp: DateTime<Utc>) -> Self {
        Checkpoint { timestamp, ids_at_timestamp: BTreeSet::new(), exclusive: false, start: None }
    }

    /// The value of `persistenceTimestampStart`.
    pub fn start_param(&self) -> String {
        self.timestamp.to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Whether an item at `timestamp` with `id` was delivered already.
    pub fn already_delivered(&self, timestamp: Option<DateTime<Utc>>, id: &str) -> bool {
        match timestamp {
            Some(t) if t == self.timestamp => self.exclusive || self.ids_at_timestamp.contains(id),
            Some(t) => t < self.timestamp,
            None => false,
        }
    }

    /// Moves past a delivered item.
    pub fn advance(&mut self, timestamp: Option<DateTime<Utc>>, id: &str) {
        let Some(t) = timestamp else { return };
        if t > self.timestamp {
            self.timestamp = t;
            self.ids_at_timestamp.clear();
            self.exclusive = false;
        }
        if t == self.timestamp && !self.exclusive {
            self.ids_at_timestamp.insert(id.to_string());
        }
    }
}

/// Parses a `persistenceTimestamp` (RFC 3339, e.g. `2023-12-18T11:28:16.808Z`).
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Option<DateTime<Utc>> {
        parse_timestamp(s)
    }

    #[test]
    fn boundary_ids_are_neither_skipped_nor_repeated() {
        let mut cp = Checkpoint::starting_at(t("2024-01-01T00:00:00Z").unwrap());
        for id in ["a", "b"] {
            assert!(!cp.already_delivered(t("2024-01-01T00:00:01.5Z"), id));
            cp.advance(t("2024-01-01T00:00:01.5Z"), id);
        }
        assert_eq!(cp.start_param(), "2024-01-01T00:00:01.500Z");
        // The next poll starts inclusively at 01.5: a and b come again, c is new at that instant.
        assert!(cp.already_delivered(t("2024-01-01T00:00:01.5Z"), "a"));
        assert!(cp.already_delivered(t("2024-01-01T00:00:01.500+00:00"), "b"));
        assert!(!cp.already_delivered(t("2024-01-01T00:00:01.5Z"), "c"));
        cp.advance(t("2024-01-01T00:00:02Z"), "d");
        assert_eq!(cp.ids_at_timestamp.len(), 1);
    }

    #[test]
    fn imported_positions_are_exclusive_until_time_moves() {
        let mut cp = Checkpoint { exclusive: true, ..Checkpoint::starting_at(t("2024-01-01T00:00:00Z").unwrap()) };
        assert!(cp.already_delivered(t("2024-01-01T00:00:00Z"), "x"));
        cp.advance(t("2024-01-01T00:00:03Z"), "y");
        assert!(!cp.exclusive);
        assert!(cp.already_delivered(t("2024-01-01T00:00:03Z"), "y"));
    }

    #[test]
    fn the_start_setting_is_kept_with_the_position_and_read_back_without_it() {
        let fixed = StartSetting { mode: StartMode::Fixed, date: t("2025-01-01T00:00:00Z") };
        let mut cp = Checkpoint { start: Some(fixed.clone()), ..Checkpoint::starting_at(t("2025-01-01T00:00:00Z").unwrap()) };
        cp.advance(t("2025-01-02T00:00:00Z"), "a");
        let text = serde_json::to_string(&cp).unwrap();
        assert!(text.contains(r#""start":{"mode":"fixed","date":"2025-01-01T00:00:00Z"}"#), "{text}");
        assert_eq!(serde_json::from_str::<Checkpoint>(&text).unwrap(), cp);
        assert_eq!(fixed.to_string(), "start_mode: fixed, start_date: 2025-01-01T00:00:00Z");
        // As an earlier sluice saved it: no start setting.
        let old: Checkpoint = serde_json::from_str(r#"{"timestamp":"2025-01-01T00:00:00Z","ids_at_timestamp":["a"]}"#).unwrap();
        assert_eq!(old.start, None);
        assert!(!serde_json::to_string(&Checkpoint::starting_at(old.timestamp)).unwrap().contains("start"));
    }

    proptest::proptest! {
        /// Splitting one ordered stream into polls at any points delivers each id exactly once.
        #[test]
        fn any_poll_split_delivers_each_event_once(
            stamps in proptest::collection::vec(0u8..5, 1..60),
            cuts in proptest::collection::vec(0usize..60, 0..6),
        ) {
            let mut stamps = stamps;
            stamps.sort();
            let base = t("2024-01-01T00:00:00Z").unwrap();
            let events: Vec<(DateTime<Utc>, String)> = stamps.iter().enumerate()
                .map(|(i, s)| (base + chrono::Duration::milliseconds(*s as i64), format!("id{i}")))
                .collect();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(events.len())).collect();
            cuts.push(events.len());
            cuts.sort();
            let mut cp = Checkpoint::starting_at(base - chrono::Duration::seconds(1));
            let mut delivered = Vec::new();
            for cut in cuts {
                // A poll sees every event up to `cut` at or after the checkpoint's timestamp.
                let start = cp.timestamp;
                for (ts, id) in events[..cut].iter().filter(|(ts, _)| *ts >= start) {
                    if !cp.already_delivered(Some(*ts), id) {
                        delivered.push(id.clone());
                        cp.advance(Some(*ts), id);
                    }
                }
            }
            let mut expected: Vec<String> = events.iter().map(|(_, id)| id.clone()).collect();
            expected.sort();
            delivered.sort();
            proptest::prop_assert_eq!(delivered, expected);
        }
    }
}
