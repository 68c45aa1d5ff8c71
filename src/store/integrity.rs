//! A damaged store is refused, never half-read: the daemon runs SQLite's quick check when it
//! opens the store, `sluice store check` the full one, and `sluice store salvage` copies every
//! row that can still be read into a new store, keeping the damaged file aside.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags, params};

use super::{MIGRATIONS, Store, migrate};

/// The tables a salvage copies, in an order that satisfies their references.
const TABLES: &[&str] = &[
    "checkpoints",
    "outbox",
    "dead_letters",
    "sink_stats",
    "api_tokens",
    "wazuh_alerts",
    "usage",
    "api_sinks",
    "wazuh_agents",
    "wazuh_packages",
    "wazuh_files",
    "wazuh_os",
    "sink_accepted",
];

/// What a check found: `ok`, or SQLite's list of problems.
pub fn check(path: &Path, full: bool) -> anyhow::Result<Vec<String>> {
    let conn =
        Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).with_context(|| format!("opening {}", path.display()))?;
    let pragma = if full { "integrity_check" } else { "quick_check" };
    let mut stmt = conn.prepare(&format!("PRAGMA {pragma}"))?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>();
    Ok(match rows {
        Ok(rows) if rows == ["ok"] => Vec::new(),
        Ok(rows) => rows,
        // A page SQLite cannot even walk is a finding too.
        Err(e) => vec![e.to_string()],
    })
}

/// Fails with what to do when the store at `path` does not pass the quick check.
pub fn ensure_intact(path: &Path, config_hint: &str) -> anyhow::Result<()> {
    if !path.exists() {
        return Ok(());
    }
    let problems = check(path, false)?;
    if problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(3).map(String::as_str).collect();
    bail!(
        "the store {} is damaged ({}{}). sluice will not run on it, so that nothing is delivered twice or lost silently. \
         Run `sluice store check -c {config_hint}` for the full report, then `sluice store salvage -c {config_hint}` to copy \
         everything still readable into a new store (the damaged file is kept beside it)",
        path.display(),
        shown.join("; "),
        if problems.len() > shown.len() { format!("; and {} more", problems.len() - shown.len()) } else { String::new() }
    )
}

/// What a salvage did.
#[derive(Debug, Default)]
pub struct Salvage {
    /// Rows copied and rows lost, per table.
    pub tables: Vec<(String, u64, u64)>,
    /// Where the damaged file now is.
    pub damaged: PathBuf,
}

/// Copies every readable row of the store in `state_dir` into a new one, which takes its place;
/// the damaged file is renamed `sluice.db.damaged-<time>`. sluice must not be running.
pub fn salvage(state_dir: &Path) -> anyhow::Result<Salvage> {
    let path = state_dir.join("sluice.db");
    anyhow::ensure!(path.exists(), "there is no store at {}", path.display());
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let damaged = state_dir.join(format!("sluice.db.damaged-{stamp}"));
    let fresh = state_dir.join(format!("sluice.db.salvage-{stamp}"));

    let old = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let version: i64 = old.pragma_query_value(None, "user_version", |r| r.get(0)).context("reading the schema version")?;
    drop(old);
    anyhow::ensure!(
        version as usize <= MIGRATIONS.len(),
        "the store has schema version {version}, newer than this sluice ({}); salvage it with that version",
        MIGRATIONS.len()
    );

    let mut new = Connection::open(&fresh).with_context(|| format!("creating {}", fresh.display()))?;
    new.pragma_update(None, "journal_mode", "WAL")?;
    migrate_to(&mut new, version as usize)?;
    new.execute("ATTACH DATABASE ?1 AS old", params![path.to_string_lossy()])?;
    let mut report = Salvage::default();
    for table in TABLES {
        let exists: bool = new
            .query_row("SELECT COUNT(*) FROM old.sqlite_master WHERE type = 'table' AND name = ?1", params![table], |r| r.get::<_, i64>(0))
            .map(|n| n > 0)
            .unwrap_or(false);
        if exists {
            let (copied, lost) = copy_table(&new, table)?;
            report.tables.push((table.to_string(), copied, lost));
        }
    }
    new.execute("DETACH DATABASE old", [])?;
    // Bring the copy up to this version's schema, then make it the store.
    migrate(&mut new)?;
    new.pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    drop(new);
    for suffix in ["-wal", "-shm"] {
        let side = PathBuf::from(format!("{}{suffix}", path.display()));
        if side.exists() {
            std::fs::rename(&side, format!("{}{suffix}", damaged.display()))?;
        }
    }
    std::fs::rename(&path, &damaged).with_context(|| format!("moving {} aside", path.display()))?;
    std::fs::rename(&fresh, &path).with_context(|| format!("putting the salvaged store at {}", path.display()))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", fresh.display()));
    }
    report.damaged = damaged;
    Ok(report)
}

/// Applies the first `version` migrations, so the copy has the damaged store's schema.
fn migrate_to(conn: &mut Connection, version: usize) -> anyhow::Result<()> {
    for (i, sql) in MIGRATIONS.iter().take(version).enumerate() {
        let tx = conn.transaction()?;
        tx.execute_batch(sql).with_context(|| format!("migration {}", i + 1))?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// Copies a table by rowid ranges; a range that cannot be read is split until the unreadable
/// rows stand alone, and those are counted as lost.
fn copy_table(conn: &Connection, table: &str) -> anyhow::Result<(u64, u64)> {
    let bounds: rusqlite::Result<(Option<i64>, Option<i64>)> =
        conn.query_row(&format!("SELECT MIN(rowid), MAX(rowid) FROM old.{table}"), [], |r| Ok((r.get(0)?, r.get(1)?)));
    let (lo, hi) = match bounds {
        Ok((Some(lo), Some(hi))) => (lo, hi),
        Ok(_) => return Ok((0, 0)),
        Err(e) if e.to_string().contains("no such column") => return copy_rows(conn, table),
        // The table's root cannot be read: scan the plausible range in steps instead.
        Err(_) => (1, 1 << 24),
    };
    let insert = format!("INSERT OR IGNORE INTO main.{table} SELECT * FROM old.{table} WHERE rowid BETWEEN ?1 AND ?2");
    let count = format!("SELECT COUNT(*) FROM old.{table} WHERE rowid BETWEEN ?1 AND ?2");
    let (mut copied, mut lost) = (0u64, 0u64);
    // Steps of 4,096 rows, so one bad page costs the bisection of one step only; popped from
    // the end, so the steps are reversed first to copy in rowid order.
    const STEP: i64 = 4096;
    let mut ranges: Vec<(i64, i64)> = (0..=(hi - lo) / STEP).map(|k| (lo + k * STEP, (lo + k * STEP + STEP - 1).min(hi))).rev().collect();
    while let Some((a, b)) = ranges.pop() {
        let tx = conn.unchecked_transaction()?;
        match tx.execute(&insert, params![a, b]) {
            Ok(n) => {
                tx.commit()?;
                copied += n as u64;
            }
            Err(_) => {
                drop(tx);
                if a == b {
                    // How many rows were there? Unknown when unreadable: count the rowid.
                    lost += conn.query_row(&count, params![a, b], |r| r.get::<_, i64>(0)).map(|n| n as u64).unwrap_or(1);
                } else {
                    let mid = a + (b - a) / 2;
                    ranges.push((mid + 1, b));
                    ranges.push((a, mid));
                }
            }
        }
    }
    Ok((copied, lost))
}

/// Copies a table without rowids (small tables keyed by name) row by row, in key order, up to
/// the first row that cannot be read; what follows it is lost.
fn copy_rows(conn: &Connection, table: &str) -> anyhow::Result<(u64, u64)> {
    if let Ok(n) = conn.execute(&format!("INSERT OR IGNORE INTO main.{table} SELECT * FROM old.{table}"), []) {
        return Ok((n as u64, 0));
    }
    let mut select = conn.prepare(&format!("SELECT * FROM old.{table}"))?;
    let columns = select.column_count();
    let placeholders = vec!["?"; columns].join(", ");
    let mut insert = conn.prepare(&format!("INSERT OR IGNORE INTO main.{table} VALUES ({placeholders})"))?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                let values = (0..columns).map(|i| row.get::<_, rusqlite::types::Value>(i)).collect::<rusqlite::Result<Vec<_>>>();
                match values {
                    Ok(values) => copied += insert.execute(rusqlite::params_from_iter(values))? as u64,
                    Err(_) => return Ok((copied, 1)),
                }
            }
            Ok(None) => return Ok((copied, 0)),
            // The count of rows past the damage is unknown: at least one is lost.
            Err(_) => return Ok((copied, 1)),
        }
    }
}

impl Store {
    /// Opens the store of a daemon: refuses a damaged one with what to do about it.
    pub fn open_checked(state_dir: &Path, config_hint: &str) -> anyhow::Result<Store> {
        ensure_intact(&state_dir.join("sluice.db"), config_hint)?;
        Store::open(state_dir)
    }
}
