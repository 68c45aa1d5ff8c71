//! What each sink accepted lately, so that a restart's replay skips it (see
//! `pipeline::replay`). Kept for an hour and at most the last few hundred writes per sink: a
//! source saves its position within moments of every sink's acknowledgement.

use std::collections::HashSet;

use rusqlite::params;

use super::Store;

/// Rows kept per sink, whatever their age.
const KEEP_ROWS: i64 = 512;
/// Rows older than this are dropped.
const KEEP_MILLIS: i64 = 3_600_000;
/// What a sink accepted this long before its last record can be repeated by a replay: sources
/// save their positions as soon as every sink acknowledged, and acknowledgements wait longer
/// only while an outbox is at its budget or the store's disk is full.
const REPLAY_MILLIS: i64 = 120_000;

impl Store {
    /// Records the keys of one accepted write, and drops what is too old to matter.
    pub async fn record_accepted(&self, sink: &str, keys: Vec<u64>) -> anyhow::Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let sink = sink.to_string();
        let blob: Vec<u8> = keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        self.with(move |c| {
            // Written without its own fsync: the record must survive a killed process, which the
            // WAL in the page cache does; after a power loss it may be lost, and a replay then
            // repeats a little more (never less). The next durable commit syncs it anyway.
            c.pragma_update(None, "synchronous", "NORMAL")?;
            let result = record(c, &sink, &blob);
            c.pragma_update(None, "synchronous", "FULL")?;
            result
        })
        .await
    }

    /// Forgets what a sink accepted: after a clean stop every source saved its position, so a
    /// restart repeats nothing, and an event identical to an earlier one is a new event.
    pub async fn forget_accepted(&self, sink: &str) -> anyhow::Result<()> {
        let sink = sink.to_string();
        self.with(move |c| c.execute("DELETE FROM sink_accepted WHERE sink = ?1", params![sink]).map(|_| ())).await
    }

    /// The keys a sink accepted in the last moments before it stopped (`REPLAY_MILLIS` before
    /// its newest record, within the kept window): what a replay can repeat.
    pub async fn recently_accepted(&self, sink: &str) -> anyhow::Result<HashSet<u64>> {
        let sink = sink.to_string();
        self.with(move |c| {
            let newest: Option<i64> = c.query_row("SELECT MAX(at) FROM sink_accepted WHERE sink = ?1", params![sink], |r| r.get(0))?;
            let Some(newest) = newest else { return Ok(HashSet::new()) };
            let since = (chrono::Utc::now().timestamp_millis() - KEEP_MILLIS).max(newest - REPLAY_MILLIS);
            let mut stmt = c.prepare("SELECT keys FROM sink_accepted WHERE sink = ?1 AND at >= ?2 ORDER BY id DESC LIMIT ?3")?;
            let mut keys = HashSet::new();
            for blob in stmt.query_map(params![sink, since, KEEP_ROWS], |r| r.get::<_, Vec<u8>>(0))? {
                keys.extend(blob?.chunks_exact(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))));
            }
            Ok(keys)
        })
        .await
    }
}

/// Inserts one record, pruning what is too old every 64th time.
fn record(c: &mut rusqlite::Connection, sink: &str, blob: &[u8]) -> rusqlite::Result<()> {
    let now = chrono::Utc::now().timestamp_millis();
    let tx = c.transaction()?;
    let id =
        tx.query_row("INSERT INTO sink_accepted (sink, at, keys) VALUES (?1, ?2, ?3) RETURNING id", params![sink, now, blob], |r| {
            r.get::<_, i64>(0)
        })?;
    // Pruning every 64th write keeps the cost off the common path.
    if id % 64 == 0 {
        tx.execute("DELETE FROM sink_accepted WHERE sink = ?1 AND at < ?2", params![sink, now - KEEP_MILLIS])?;
        tx.execute(
            "DELETE FROM sink_accepted WHERE sink = ?1 AND id < \
                 (SELECT id FROM sink_accepted WHERE sink = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
            params![sink, KEEP_ROWS],
        )?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_keys_survive_a_reopen_per_sink() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.record_accepted("a", vec![1, 2, 3]).await.unwrap();
        store.record_accepted("b", vec![9]).await.unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.recently_accepted("a").await.unwrap(), HashSet::from([1, 2, 3]));
        assert_eq!(store.recently_accepted("b").await.unwrap(), HashSet::from([9]));
        store.forget_accepted("a").await.unwrap();
        assert!(store.recently_accepted("a").await.unwrap().is_empty());
        assert_eq!(store.recently_accepted("b").await.unwrap(), HashSet::from([9]));
    }

    #[tokio::test]
    async fn old_rows_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..(KEEP_ROWS as u64 * 2) {
            store.record_accepted("a", vec![i]).await.unwrap();
        }
        let kept = store.recently_accepted("a").await.unwrap();
        assert_eq!(kept.len(), KEEP_ROWS as usize);
        assert!(kept.contains(&(KEEP_ROWS as u64 * 2 - 1)) && !kept.contains(&0));
    }
}
