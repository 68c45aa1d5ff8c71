//! The embedded store: one SQLite database under `state_dir`.
//!
//! WAL with `synchronous=FULL`: a transaction that returned is on disk, even across power loss.
//! Schema changes are numbered migrations in `migrations/`, applied in order and recorded in
//! `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension, params};

use crate::event::Event;

mod api;
mod inventory;
pub use api::{AlertInsert, ApiSink, StoredAlert, TokenRecord, UsageRow};
pub use inventory::{WAZUH_MAX_PAGE, WazuhInventory, WazuhListing, WazuhPage};

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_dead_letters.sql"),
    include_str!("migrations/0003_sink_stats.sql"),
    include_str!("migrations/0004_api.sql"),
    include_str!("migrations/0005_api_sinks.sql"),
    include_str!("migrations/0006_wazuh_inventory.sql"),
];

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `state_dir/sluice.db` and brings its schema up to date.
    pub fn open(state_dir: &Path) -> anyhow::Result<Store> {
        std::fs::create_dir_all(state_dir).with_context(|| format!("creating state directory {}", state_dir.display()))?;
        let path = state_dir.join("sluice.db");
        // Another process may be creating or migrating the same store (the daemon next to
        // `sluice status`): switching a new file to WAL can answer "busy" without waiting.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            match Self::connect(&path) {
                Ok(conn) => return Ok(Store { conn: Arc::new(Mutex::new(conn)), path }),
                Err(e) if is_busy(&e) && std::time::Instant::now() < deadline => std::thread::sleep(std::time::Duration::from_millis(50)),
                Err(e) => return Err(e),
            }
        }
    }

    fn connect(path: &Path) -> anyhow::Result<Connection> {
        let mut conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        migrate(&mut conn).with_context(|| format!("migrating {}", path.display()))?;
        Ok(conn)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` on the connection in a blocking thread.
    pub(crate) async fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().expect("store connection poisoned");
            f(&mut conn)
        })
        .await
        .context("store thread failed")?
        .context("store query failed")
    }

    pub async fn checkpoint(&self, tenant: &str, source: &str, key: &str) -> anyhow::Result<Option<String>> {
        let (t, s, k) = (tenant.to_string(), source.to_string(), key.to_string());
        self.with(move |c| {
            c.query_row("SELECT value FROM checkpoints WHERE tenant = ?1 AND source = ?2 AND key = ?3", params![t, s, k], |r| r.get(0))
                .optional()
        })
        .await
    }

    pub async fn set_checkpoint(&self, tenant: &str, source: &str, key: &str, value: String) -> anyhow::Result<()> {
        let (t, s, k) = (tenant.to_string(), source.to_string(), key.to_string());
        self.with(move |c| {
            c.execute(
                "INSERT INTO checkpoints (tenant, source, key, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (tenant, source, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                params![t, s, k, value, now()],
            )
            .map(|_| ())
        })
        .await
    }

    /// Every checkpoint of one source, as (key, value).
    pub async fn checkpoints(&self, tenant: &str, source: &str) -> anyhow::Result<Vec<(String, String)>> {
        let (t, s) = (tenant.to_string(), source.to_string());
        self.with(move |c| {
            let mut stmt = c.prepare("SELECT key, value FROM checkpoints WHERE tenant = ?1 AND source = ?2")?;
            let rows = stmt.query_map(params![t, s], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await
    }

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
                for p in payloads {
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

    pub async fn dead_letter_count(&self, sink: &str) -> anyhow::Result<u64> {
        let sink = sink.to_string();
        self.with(move |c| c.query_row("SELECT COUNT(*) FROM dead_letters WHERE sink = ?1", params![sink], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as u64)
    }

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

    pub async fn outbox_len(&self, sink: &str) -> anyhow::Result<u64> {
        let sink = sink.to_string();
        self.with(move |c| c.query_row("SELECT COUNT(*) FROM outbox WHERE sink = ?1", params![sink], |r| r.get::<_, i64>(0)))
            .await
            .map(|n| n as u64)
    }
}

fn is_busy(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(c.downcast_ref::<rusqlite::Error>(), Some(rusqlite::Error::SqliteFailure(f, _))
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    loop {
        // IMMEDIATE takes the write lock first, so two processes opening a new store at once
        // (the daemon and `sluice status`) apply each migration exactly once.
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let current: usize = tx.pragma_query_value(None, "user_version", |r| r.get::<_, i64>(0))? as usize;
        anyhow::ensure!(
            current <= MIGRATIONS.len(),
            "the store has schema version {current}, newer than this sluice ({}); upgrade sluice",
            MIGRATIONS.len()
        );
        let Some(sql) = MIGRATIONS.get(current) else { return Ok(()) };
        tx.execute_batch(sql).with_context(|| format!("migration {}", current + 1))?;
        tx.pragma_update(None, "user_version", (current + 1) as i64)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checkpoints_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_checkpoint("t", "s", "k", "1".into()).await.unwrap();
        store.set_checkpoint("t", "s", "k", "2".into()).await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.checkpoint("t", "s", "k").await.unwrap().as_deref(), Some("2"));
        assert_eq!(store.checkpoints("t", "s").await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn outbox_is_fifo_per_sink() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let ev = |n: u32| {
            Event::hashed(
                "t".into(),
                "s".into(),
                "json".into(),
                chrono::Utc::now(),
                serde_json::value::RawValue::from_string(format!("{{\"n\":{n}}}")).unwrap(),
            )
        };
        let batch = |events: Vec<Event>| vec![std::sync::Arc::new(events)];
        store.outbox_push("a", &batch(vec![ev(1), ev(2)])).await.unwrap();
        store.outbox_push("b", &batch(vec![ev(9)])).await.unwrap();
        store.outbox_push("a", &batch(vec![ev(3)])).await.unwrap();
        let (events, last, _) = store.outbox_peek("a", 0, 2).await.unwrap();
        assert_eq!(events.iter().map(|e| e.raw.get()).collect::<Vec<_>>(), ["{\"n\":1}", "{\"n\":2}"]);
        store.outbox_ack("a", last.unwrap()).await.unwrap();
        assert_eq!(store.outbox_len("a").await.unwrap(), 1);
        assert_eq!(store.outbox_len("b").await.unwrap(), 1);
    }

    #[test]
    fn many_processes_may_open_a_new_store_at_once() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().to_path_buf();
            let opened: Vec<_> = (0..8)
                .map(|_| {
                    let path = path.clone();
                    std::thread::spawn(move || Store::open(&path).map(|_| ()))
                })
                .collect();
            for o in opened {
                o.join().unwrap().unwrap();
            }
        }
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(dir.path()).unwrap());
        let c = Connection::open(dir.path().join("sluice.db")).unwrap();
        c.pragma_update(None, "user_version", 99).unwrap();
        drop(c);
        let err = format!("{:#}", Store::open(dir.path()).err().unwrap());
        assert!(err.contains("newer than this sluice"), "{err}");
    }
}
