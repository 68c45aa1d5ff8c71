//! Each sink's health and counters, saved by the running daemon for `sluice status` and the API.

use rusqlite::{OptionalExtension, params};

use super::{Store, now};

impl Store {
    /// The stored statistics of a sink, if it ever ran.
    pub async fn sink_stats(&self, sink: &str) -> anyhow::Result<Option<crate::sinks::status::StoredStats>> {
        let sink = sink.to_string();
        self.with(move |c| {
            c.query_row(
                "SELECT sent, failed, dead_lettered, filtered, truncated, health, health_reason, last_error, last_error_at, \
                 last_success_at, updated_at FROM sink_stats WHERE sink = ?1",
                params![sink],
                |r| {
                    Ok(crate::sinks::status::StoredStats {
                        sent: r.get::<_, i64>(0)? as u64,
                        failed: r.get::<_, i64>(1)? as u64,
                        dead_lettered: r.get::<_, i64>(2)? as u64,
                        filtered: r.get::<_, i64>(3)? as u64,
                        truncated: r.get::<_, i64>(4)? as u64,
                        health: r.get(5)?,
                        health_reason: r.get(6)?,
                        last_error: r.get(7)?,
                        last_error_at: r.get(8)?,
                        last_success_at: r.get(9)?,
                        updated_at: r.get(10)?,
                    })
                },
            )
            .optional()
        })
        .await
    }

    pub async fn save_sink_stats(&self, sink: &str, s: crate::sinks::status::StoredStats) -> anyhow::Result<()> {
        let sink = sink.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT INTO sink_stats (sink, sent, failed, dead_lettered, filtered, truncated, health, health_reason, \
                 last_error, last_error_at, last_success_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) \
                 ON CONFLICT (sink) DO UPDATE SET sent = ?2, failed = ?3, dead_lettered = ?4, filtered = ?5, truncated = ?6, \
                 health = ?7, health_reason = ?8, last_error = ?9, last_error_at = ?10, last_success_at = ?11, updated_at = ?12",
                params![
                    sink,
                    s.sent as i64,
                    s.failed as i64,
                    s.dead_lettered as i64,
                    s.filtered as i64,
                    s.truncated as i64,
                    s.health,
                    s.health_reason,
                    s.last_error,
                    s.last_error_at,
                    s.last_success_at,
                    now()
                ],
            )
            .map(|_| ())
        })
        .await
    }
}
