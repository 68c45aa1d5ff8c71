//! The embedded store: one SQLite database under `state_dir`.
//!
//! WAL with `synchronous=FULL`: a transaction that returned is on disk, even across power loss.
//! Schema changes are numbered migrations in `migrations/`, applied in order and recorded in
//! `PRAGMA user_version`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rusqlite::Connection;

mod accepted;
mod alerts;
mod api_sinks;
mod checkpoints;
mod integrity;
mod inventory;
pub mod lock;
mod outbox;
mod sink_stats;
mod tokens;
mod usage;

pub use alerts::{AlertInsert, StoredAlert};
pub use api_sinks::ApiSink;
pub use integrity::{Salvage, check, salvage};
pub use inventory::{WAZUH_MAX_PAGE, WazuhInventory, WazuhListing, WazuhPage};
pub use tokens::TokenRecord;
pub use usage::UsageRow;

const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_dead_letters.sql"),
    include_str!("migrations/0003_sink_stats.sql"),
    include_str!("migrations/0004_api.sql"),
    include_str!("migrations/0005_api_sinks.sql"),
    include_str!("migrations/0006_wazuh_inventory.sql"),
    include_str!("migrations/0007_sink_accepted.sql"),
];

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
    path: PathBuf,
    space: Arc<Space>,
}

/// Whether the store's disk has room; logged once when it fills and once when it frees.
#[derive(Default)]
struct Space {
    full: Mutex<Option<(String, std::time::Instant)>>,
}

impl Space {
    fn wait(&self, path: &Path, e: &rusqlite::Error) {
        let mut full = self.full.lock().expect("store space poisoned");
        match &mut *full {
            None => {
                tracing::error!(store = %path.display(), error = %e,
                    "the store's disk is full: intake waits (nothing is lost or repeated) and resumes by itself once there is room");
                metrics::gauge!("sluice_store_full").set(1.0);
                *full = Some((e.to_string(), std::time::Instant::now()));
            }
            Some((_, since)) if since.elapsed() >= Duration::from_secs(60) => {
                tracing::error!(store = %path.display(), error = %e, "the store's disk is still full; intake still waits");
                *since = std::time::Instant::now();
            }
            Some(_) => {}
        }
    }

    fn resumed(&self, path: &Path) {
        let mut full = self.full.lock().expect("store space poisoned");
        if full.take().is_some() {
            tracing::info!(store = %path.display(), "the store's disk has room again: intake resumes");
            metrics::gauge!("sluice_store_full").set(0.0);
        }
    }

    fn reason(&self) -> Option<String> {
        self.full.lock().expect("store space poisoned").as_ref().map(|(reason, _)| reason.clone())
    }
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
                Ok(conn) => return Ok(Store { conn: Arc::new(Mutex::new(conn)), path, space: Arc::default() }),
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

    /// Runs `f` on the connection in a blocking thread. A write the disk has no room for is
    /// not an error: it waits until there is room (retrying `f`), so the caller — a source
    /// saving its position, a sink filling its outbox — waits too, and intake stops instead of
    /// failing and repeating what was already delivered.
    pub(crate) async fn with<R: Send + 'static>(
        &self,
        f: impl Fn(&mut Connection) -> rusqlite::Result<R> + Send + Sync + 'static,
    ) -> anyhow::Result<R> {
        let f = Arc::new(f);
        let mut backoff = Duration::from_millis(100);
        let mut waited = false;
        loop {
            let (conn, attempt) = (self.conn.clone(), f.clone());
            let result = tokio::task::spawn_blocking(move || {
                let mut conn = conn.lock().expect("store connection poisoned");
                attempt(&mut conn)
            })
            .await
            .context("store thread failed")?;
            match result {
                Err(e) if is_full(&e) => {
                    waited = true;
                    self.space.wait(&self.path, &e);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
                other => {
                    // Only a write that waited for room says there is room again (reads succeed
                    // on a full disk).
                    if waited {
                        self.space.resumed(&self.path);
                    }
                    return other.context("store query failed");
                }
            }
        }
    }

    /// Why the store cannot take writes right now (its disk is full), if it cannot.
    pub fn no_space(&self) -> Option<String> {
        self.space.reason()
    }
}

/// SQLITE_FULL: the disk (or the file size limit) has no room for the write.
fn is_full(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull)
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
    use crate::event::Event;

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
