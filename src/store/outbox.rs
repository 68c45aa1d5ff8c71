//! Each sink's outbox (events a sink has not delivered yet, in order) and its dead letters (events its destination refused for good).

use anyhow::Context;
use rusqlite::params;

use super::{Store, now};
use crate::event::Event;

impl Store {
    /// Appends the events of `batches` to a sink's outbox in one transaction. Returns the bytes
    /// stored.
    pub async fn outbox_push(&self, sink: &str, batches: &[crate::event::Batch]) -> anyhow::Result<u64> {
        let payloads: Vec<Vec<u8>> =
            batches.iter().flat_map(|b| b.iter()).map(|e| serde_json::to_vec(e).expect("events serialize")).collect();
        let bytes = payloads.iter().map(|p| p.len() as u64).sum();
        let sink = sink.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            {
                let mut stmt = tx.prepare_cached("INSERT INTO outbox (sink, payload, created_at) VALUES (?1, ?2, ?3)")?;
                let ts = now();
                for p in &payloads {
                    stmt.execute(params![sink, p, ts])?;
                }
            }
            tx.commit()
        })
        .await?;
        Ok(bytes)
    }

    /// The oldest `limit` events of a sink's outbox with ids above `after` (0: from the start),
    /// with the last id (to pass to [`Self::outbox_ack`]) and their stored size in bytes.
    pub async fn outbox_peek(&self, sink: &str, after: i64, limit: usize) -> anyhow::Result<(Vec<Event>, Option<i64>, u64)> {
        let sink = sink.to_string();
        let rows: Vec<(i64, Vec<u8>)> = self
            .with(move |c| {
                let mut stmt = c.prepare_cached("SELECT id, payload FROM outbox WHERE sink = ?1 AND id > ?2 ORDER BY id LIMIT ?3")?;
                let rows = stmt.query_map(params![sink, after, limit as i64], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await?;
        let last = rows.last().map(|r| r.0);
        let bytes = rows.iter().map(|r| r.1.len() as u64).sum();
        let events = rows
            .into_iter()
            .map(|(id, p)| serde_json::from_slice(&p).with_context(|| format!("outbox row {id} is corrupt")))
            .collect::<anyhow::Result<_>>()?;
        Ok((events, last, bytes))
    }

    /// Removes a sink's outbox rows up to and including `last_id` (they were delivered).
    pub async fn outbox_ack(&self, sink: &str, last_id: i64) -> anyhow::Result<()> {
        let sink = sink.to_string();
        self.with(move |c| c.execute("DELETE FROM outbox WHERE sink = ?1 AND id <= ?2", params![sink, last_id]).map(|_| ())).await
    }

    /// Events and bytes in a sink's outbox.
    pub async fn outbox_size(&self, sink: &str) -> anyhow::Result<(u64, u64)> {
        let sink = sink.to_string();
        self.with(move |c| {
            c.query_row("SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox WHERE sink = ?1", params![sink], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
            })
        })
        .await
    }

    pub async fn outbox_len(&self, sink: &str) -> anyhow::Result<u64> {
        let sink = sink.to_string();
        self.with(move |c| c.query_row("SELECT COUNT(*) FROM outbox WHERE sink = ?1", params![sink], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as u64)
    }

    /// Records an event a sink refused for good, with the reason.
    pub async fn dead_letter(&self, sink: &str, event: &Event, error: &str) -> anyhow::Result<()> {
        let (sink, error) = (sink.to_string(), error.to_string());
        let payload = serde_json::to_vec(event)?;
        self.with(move |c| {
            c.execute(
                "INSERT INTO dead_letters (sink, payload, error, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![sink, payload, error, now()],
            )
            .map(|_| ())
        })
        .await
    }

    /// Dead letters of a sink, oldest first: (event, error).
    pub async fn dead_letters(&self, sink: &str) -> anyhow::Result<Vec<(Event, String)>> {
        let sink = sink.to_string();
        let rows: Vec<(Vec<u8>, String)> = self
            .with(move |c| {
                let mut stmt = c.prepare("SELECT payload, error FROM dead_letters WHERE sink = ?1 ORDER BY id")?;
                let rows = stmt.query_map(params![sink], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await?;
        rows.into_iter().map(|(p, e)| Ok((serde_json::from_slice(&p)?, e))).collect()
    }

    pub async fn dead_letter_count(&self, sink: &str) -> anyhow::Result<u64> {
        let sink = sink.to_string();
        self.with(move |c| c.query_row("SELECT COUNT(*) FROM dead_letters WHERE sink = ?1", params![sink], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as u64)
    }

    /// Moves a sink's dead letters younger than `max_age` back to its outbox (the original SIEM integration module's
    /// retry-failed). Returns how many.
    pub async fn retry_dead_letters(&self, sink: &str, max_age: chrono::Duration) -> anyhow::Result<u64> {
        let sink = sink.to_string();
        let since = (chrono::Utc::now() - max_age).to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        self.with(move |c| {
            let tx = c.transaction()?;
            let moved = tx.execute(
                "INSERT INTO outbox (sink, payload, created_at) SELECT sink, payload, created_at FROM dead_letters \
                 WHERE sink = ?1 AND created_at >= ?2 ORDER BY id",
                params![sink, since],
            )?;
            tx.execute("DELETE FROM dead_letters WHERE sink = ?1 AND created_at >= ?2", params![sink, since])?;
            tx.commit()?;
            Ok(moved as u64)
        })
        .await
    }
}
