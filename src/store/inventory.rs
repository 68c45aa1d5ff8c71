//! The Wazuh inventory kept by `type: wazuh_api` sources: agents, their packages, FIM files and
//! OS information, and the tenant-scoped queries the REST API pages through.
//!
//! Every agent, package and file is one record, updated in place when the manager reports it
//! again: `first_seen` is when sluice first stored it, `updated_at` when its content last
//! changed. Packages and files an agent no longer has are deleted once a collection read all of
//! the agent's items. Agents the manager no longer lists are kept with `removed_at` set, together
//! with their last inventory, so the history of a decommissioned host stays queryable.

use std::collections::HashSet;

use anyhow::{Context, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Transaction, params};
use serde_json::Value;

use super::{Store, now};

/// The most rows one query returns.
pub const WAZUH_MAX_PAGE: usize = 10_000;

/// An agent's packages or files as one collection read them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WazuhListing {
    pub items: Vec<Value>,
    /// Every item the manager has was read: stored items not among them are deleted.
    pub complete: bool,
}

/// What a collection read about one agent besides its record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WazuhInventory {
    pub packages: WazuhListing,
    pub files: WazuhListing,
    /// `None`: the manager has no OS information for the agent; a stored one is deleted.
    pub os: Option<Value>,
}

/// One page of a query. `next`, when set, is the `after` of the following page.
#[derive(Debug, Clone, PartialEq)]
pub struct WazuhPage {
    /// The stored items, each with `sluice_source` (the source that collected it),
    /// `first_seen` and `updated_at` added (and `removed_at` for agents: null while listed).
    pub items: Vec<Value>,
    pub next: Option<String>,
}

impl Store {
    /// Writes an agent's record and, when given, its inventory, in one transaction. `agent` is
    /// an item of `GET /agents`.
    pub async fn wazuh_save_agent(
        &self,
        tenant: &str,
        source: &str,
        agent: Value,
        inventory: Option<WazuhInventory>,
    ) -> anyhow::Result<()> {
        let id = agent.get("id").and_then(Value::as_str).context("agent without an `id`")?.to_string();
        let (tenant, source) = (tenant.to_string(), source.to_string());
        self.with(move |c| {
            let tx = c.transaction()?;
            let ts = now();
            let scope = Scope { tenant: &tenant, source: &source, agent: &id, ts: &ts };
            save_agent(&tx, &scope, &agent)?;
            if let Some(inventory) = &inventory {
                save_packages(&tx, &scope, &inventory.packages)?;
                save_files(&tx, &scope, &inventory.files)?;
                save_os(&tx, &scope, inventory.os.as_ref())?;
            }
            tx.commit()
        })
        .await
    }

    /// Marks the agents of a source that are not in `listed` (a complete `GET /agents`) as
    /// removed. Returns how many were newly marked.
    pub async fn wazuh_mark_removed(&self, tenant: &str, source: &str, listed: &[String]) -> anyhow::Result<usize> {
        let (tenant, source) = (tenant.to_string(), source.to_string());
        let ids = serde_json::to_string(listed)?;
        self.with(move |c| {
            c.execute(
                "UPDATE wazuh_agents SET removed_at = ?4, updated_at = ?4 WHERE tenant = ?1 AND source = ?2 AND removed_at IS NULL \
                 AND agent_id NOT IN (SELECT value FROM json_each(?3))",
                params![tenant, source, ids, now()],
            )
        })
        .await
    }

    /// A tenant's agents ordered by id (then source), removed ones included.
    pub async fn wazuh_agents(&self, tenant: &str, after: Option<&str>, limit: usize) -> anyhow::Result<WazuhPage> {
        let [id, source] = cursor(after)?;
        let limit = page_limit(limit);
        let tenant = tenant.to_string();
        let rows = self
            .with(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT item, source, first_seen, updated_at, removed_at, agent_id FROM wazuh_agents \
                     WHERE tenant = ?1 AND (agent_id, source) > (?2, ?3) ORDER BY agent_id, source LIMIT ?4",
                )?;
                let rows = stmt.query_map(params![tenant, id, source, limit as i64], |r| {
                    Ok((Stored::read(r)?, Some(r.get::<_, Option<String>>(4)?), vec![r.get(5)?, r.get(1)?]))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        page(rows, limit)
    }

    /// One agent of a tenant: a row per source that knows the id (usually one).
    pub async fn wazuh_agent(&self, tenant: &str, agent_id: &str) -> anyhow::Result<Vec<Value>> {
        let (tenant, id) = (tenant.to_string(), agent_id.to_string());
        let rows = self
            .with(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT item, source, first_seen, updated_at, removed_at FROM wazuh_agents \
                     WHERE tenant = ?1 AND agent_id = ?2 ORDER BY source",
                )?;
                let rows = stmt.query_map(params![tenant, id], |r| Ok((Stored::read(r)?, Some(r.get::<_, Option<String>>(4)?))))?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter().map(|(s, removed)| s.into_value(removed)).collect()
    }

    /// An agent's FIM files ordered by path (then source).
    pub async fn wazuh_syscheck(&self, tenant: &str, agent_id: &str, after: Option<&str>, limit: usize) -> anyhow::Result<WazuhPage> {
        let [path, source] = cursor(after)?;
        let limit = page_limit(limit);
        let (tenant, id) = (tenant.to_string(), agent_id.to_string());
        let rows = self
            .with(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT item, source, first_seen, updated_at, path FROM wazuh_files \
                     WHERE tenant = ?1 AND agent_id = ?2 AND (path, source) > (?3, ?4) ORDER BY path, source LIMIT ?5",
                )?;
                let rows = stmt.query_map(params![tenant, id, path, source, limit as i64], |r| {
                    Ok((Stored::read(r)?, None, vec![r.get(4)?, r.get(1)?]))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        page(rows, limit)
    }

    /// An agent's packages ordered by name, version, architecture (then source).
    pub async fn wazuh_packages(&self, tenant: &str, agent_id: &str, after: Option<&str>, limit: usize) -> anyhow::Result<WazuhPage> {
        let [name, version, architecture, source] = cursor(after)?;
        let limit = page_limit(limit);
        let (tenant, id) = (tenant.to_string(), agent_id.to_string());
        let rows = self
            .with(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT item, source, first_seen, updated_at, name, version, architecture FROM wazuh_packages \
                     WHERE tenant = ?1 AND agent_id = ?2 AND (name, version, architecture, source) > (?3, ?4, ?5, ?6) \
                     ORDER BY name, version, architecture, source LIMIT ?7",
                )?;
                let rows = stmt.query_map(params![tenant, id, name, version, architecture, source, limit as i64], |r| {
                    Ok((Stored::read(r)?, None, vec![r.get(4)?, r.get(5)?, r.get(6)?, r.get(1)?]))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        page(rows, limit)
    }

    /// An agent's OS information: a row per source that has it (usually one, or none).
    pub async fn wazuh_os(&self, tenant: &str, agent_id: &str) -> anyhow::Result<Vec<Value>> {
        let (tenant, id) = (tenant.to_string(), agent_id.to_string());
        let rows = self
            .with(move |c| {
                let mut stmt = c.prepare_cached(
                    "SELECT item, source, first_seen, updated_at FROM wazuh_os WHERE tenant = ?1 AND agent_id = ?2 ORDER BY source",
                )?;
                let rows = stmt.query_map(params![tenant, id], Stored::read)?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        rows.into_iter().map(|s| s.into_value(None)).collect()
    }
}

/// The agent a write is about, and its time.
struct Scope<'a> {
    tenant: &'a str,
    source: &'a str,
    agent: &'a str,
    ts: &'a str,
}

fn save_agent(tx: &Transaction, s: &Scope, agent: &Value) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO wazuh_agents (tenant, source, agent_id, name, status, ip, os_platform, last_keep_alive, item, first_seen, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10) \
         ON CONFLICT (tenant, agent_id, source) DO UPDATE SET name = excluded.name, status = excluded.status, ip = excluded.ip, \
         os_platform = excluded.os_platform, last_keep_alive = excluded.last_keep_alive, item = excluded.item, \
         updated_at = excluded.updated_at, removed_at = NULL WHERE item IS NOT excluded.item OR removed_at IS NOT NULL",
    )?
    .execute(params![
        s.tenant,
        s.source,
        s.agent,
        text(agent, "name"),
        text(agent, "status"),
        text(agent, "ip"),
        text(agent, "os.platform"),
        date(agent, "lastKeepAlive"),
        agent.to_string(),
        s.ts
    ])?;
    Ok(())
}

fn save_packages(tx: &Transaction, s: &Scope, listing: &WazuhListing) -> rusqlite::Result<()> {
    let mut seen = HashSet::new();
    let mut upsert = tx.prepare_cached(
        "INSERT INTO wazuh_packages (tenant, source, agent_id, name, version, architecture, item, first_seen, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
         ON CONFLICT (tenant, agent_id, name, version, architecture, source) DO UPDATE SET item = excluded.item, \
         updated_at = excluded.updated_at WHERE item IS NOT excluded.item",
    )?;
    for item in &listing.items {
        let key = [text(item, "name"), text(item, "version"), text(item, "architecture")].map(Option::unwrap_or_default);
        upsert.execute(params![s.tenant, s.source, s.agent, key[0], key[1], key[2], item.to_string(), s.ts])?;
        seen.insert(key);
    }
    if !listing.complete {
        return Ok(());
    }
    let stored: Vec<[String; 3]> = tx
        .prepare_cached("SELECT name, version, architecture FROM wazuh_packages WHERE tenant = ?1 AND agent_id = ?2 AND source = ?3")?
        .query_map(params![s.tenant, s.agent, s.source], |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?]))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = tx.prepare_cached(
        "DELETE FROM wazuh_packages WHERE tenant = ?1 AND agent_id = ?2 AND source = ?3 AND name = ?4 AND version = ?5 \
         AND architecture = ?6",
    )?;
    for key in stored.iter().filter(|k| !seen.contains(*k)) {
        delete.execute(params![s.tenant, s.agent, s.source, key[0], key[1], key[2]])?;
    }
    Ok(())
}

fn save_files(tx: &Transaction, s: &Scope, listing: &WazuhListing) -> rusqlite::Result<()> {
    let mut seen = HashSet::new();
    let mut upsert = tx.prepare_cached(
        "INSERT INTO wazuh_files (tenant, source, agent_id, path, sha256, mtime, item, first_seen, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8) \
         ON CONFLICT (tenant, agent_id, path, source) DO UPDATE SET sha256 = excluded.sha256, mtime = excluded.mtime, \
         item = excluded.item, updated_at = excluded.updated_at WHERE item IS NOT excluded.item",
    )?;
    for item in &listing.items {
        let path = text(item, "file").unwrap_or_default();
        upsert.execute(params![s.tenant, s.source, s.agent, path, text(item, "sha256"), date(item, "mtime"), item.to_string(), s.ts])?;
        seen.insert(path);
    }
    if !listing.complete {
        return Ok(());
    }
    let stored: Vec<String> = tx
        .prepare_cached("SELECT path FROM wazuh_files WHERE tenant = ?1 AND agent_id = ?2 AND source = ?3")?
        .query_map(params![s.tenant, s.agent, s.source], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut delete = tx.prepare_cached("DELETE FROM wazuh_files WHERE tenant = ?1 AND agent_id = ?2 AND source = ?3 AND path = ?4")?;
    for path in stored.iter().filter(|p| !seen.contains(*p)) {
        delete.execute(params![s.tenant, s.agent, s.source, path])?;
    }
    Ok(())
}

fn save_os(tx: &Transaction, s: &Scope, os: Option<&Value>) -> rusqlite::Result<()> {
    let Some(os) = os else {
        tx.prepare_cached("DELETE FROM wazuh_os WHERE tenant = ?1 AND agent_id = ?2 AND source = ?3")?
            .execute(params![s.tenant, s.agent, s.source])?;
        return Ok(());
    };
    tx.prepare_cached(
        "INSERT INTO wazuh_os (tenant, source, agent_id, os_name, os_version, os_platform, architecture, item, first_seen, \
         updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9) \
         ON CONFLICT (tenant, agent_id, source) DO UPDATE SET os_name = excluded.os_name, os_version = excluded.os_version, \
         os_platform = excluded.os_platform, architecture = excluded.architecture, item = excluded.item, \
         updated_at = excluded.updated_at WHERE item IS NOT excluded.item",
    )?
    .execute(params![
        s.tenant,
        s.source,
        s.agent,
        text(os, "os.name"),
        text(os, "os.version"),
        text(os, "os.platform"),
        text(os, "architecture"),
        os.to_string(),
        s.ts
    ])?;
    Ok(())
}

/// A scalar at a dotted path, as text.
fn text(item: &Value, path: &str) -> Option<String> {
    match path.split('.').try_fold(item, |v, k| v.get(k))? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A date field in one form (`…Z`, seconds), whatever offset notation the API used, so that
/// stored dates compare as text.
fn date(item: &Value, path: &str) -> Option<String> {
    let raw = text(item, path)?;
    Some(match DateTime::parse_from_rfc3339(&raw) {
        Ok(t) => t.with_timezone(&Utc).to_rfc3339_opts(SecondsFormat::Secs, true),
        Err(_) => raw,
    })
}

/// A stored row before it becomes JSON.
struct Stored {
    item: String,
    source: String,
    first_seen: String,
    updated_at: String,
}

impl Stored {
    /// The first four columns: item, source, first_seen, updated_at.
    fn read(r: &rusqlite::Row) -> rusqlite::Result<Stored> {
        Ok(Stored { item: r.get(0)?, source: r.get(1)?, first_seen: r.get(2)?, updated_at: r.get(3)? })
    }

    /// `removed`: `Some` for agents (the `removed_at` column).
    fn into_value(self, removed: Option<Option<String>>) -> anyhow::Result<Value> {
        let mut value: Value = serde_json::from_str(&self.item).context("a stored inventory item is not JSON")?;
        let Some(object) = value.as_object_mut() else { bail!("a stored inventory item is not an object") };
        object.insert("sluice_source".into(), self.source.into());
        object.insert("first_seen".into(), self.first_seen.into());
        object.insert("updated_at".into(), self.updated_at.into());
        if let Some(removed) = removed {
            object.insert("removed_at".into(), removed.map_or(Value::Null, Value::from));
        }
        Ok(value)
    }
}

/// The key of an `after` cursor: a JSON array of the previous page's last key. No cursor starts
/// before every key (keys are never empty strings in all their parts).
fn cursor<const N: usize>(after: Option<&str>) -> anyhow::Result<[String; N]> {
    let Some(text) = after else { return Ok(std::array::from_fn(|_| String::new())) };
    let parts: Vec<String> = serde_json::from_str(text).with_context(|| format!("invalid cursor `{text}`"))?;
    parts.try_into().map_err(|_| anyhow::anyhow!("invalid cursor `{text}`"))
}

fn page_limit(limit: usize) -> usize {
    limit.clamp(1, WAZUH_MAX_PAGE)
}

/// Rows with their `removed_at` (agents) and key, to a page whose cursor is the last key.
fn page(rows: Vec<(Stored, Option<Option<String>>, Vec<String>)>, limit: usize) -> anyhow::Result<WazuhPage> {
    let next = if rows.len() == limit { rows.last().map(|(_, _, key)| serde_json::to_string(key)).transpose()? } else { None };
    let items = rows.into_iter().map(|(s, removed, _)| s.into_value(removed)).collect::<anyhow::Result<_>>()?;
    Ok(WazuhPage { items, next })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn agent(id: &str, keepalive: &str) -> Value {
        json!({"id": id, "name": format!("host-{id}"), "status": "active", "ip": "10.0.0.1",
               "os": {"platform": "ubuntu"}, "lastKeepAlive": keepalive})
    }

    fn package(name: &str, version: &str) -> Value {
        json!({"name": name, "version": version, "architecture": "amd64", "source": name})
    }

    fn file(path: &str, sha: &str) -> Value {
        json!({"file": path, "sha256": sha, "mtime": "2024-01-01T00:00:00+00:00"})
    }

    fn inventory(packages: Vec<Value>, files: Vec<Value>, complete: bool) -> Option<WazuhInventory> {
        Some(WazuhInventory {
            packages: WazuhListing { items: packages, complete },
            files: WazuhListing { items: files, complete },
            os: Some(json!({"os": {"name": "Ubuntu", "platform": "ubuntu"}, "architecture": "x86_64"})),
        })
    }

    async fn all_packages(store: &Store, agent: &str, limit: usize) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = store.wazuh_packages("t", agent, after.as_deref(), limit).await.unwrap();
            out.extend(page.items);
            match page.next {
                Some(next) => after = Some(next),
                None => return out,
            }
        }
    }

    #[tokio::test]
    async fn records_are_updated_in_place_and_pruned_after_complete_listings() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let pkgs = vec![package("curl", "8.0"), package("bash", "5.1")];
        let files = vec![file("/etc/passwd", "aa"), file("/etc/hosts", "bb")];
        store.wazuh_save_agent("t", "w", agent("001", "2024-01-01T00:00:00+00:00"), inventory(pkgs, files, true)).await.unwrap();
        let first = store.wazuh_agent("t", "001").await.unwrap();
        let bash_before = all_packages(&store, "001", 10).await.into_iter().find(|p| p["name"] == "bash").unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;

        // Last-seen moved, curl was upgraded, /etc/hosts is gone.
        let pkgs = vec![package("curl", "8.1"), package("bash", "5.1")];
        let files = vec![file("/etc/passwd", "cc")];
        store.wazuh_save_agent("t", "w", agent("001", "2024-01-01T00:05:00Z"), inventory(pkgs, files, true)).await.unwrap();
        let again = store.wazuh_agent("t", "001").await.unwrap();
        assert_eq!(again.len(), 1);
        assert_eq!(again[0]["first_seen"], first[0]["first_seen"]);
        assert_ne!(again[0]["updated_at"], first[0]["updated_at"]);
        assert_eq!(again[0]["removed_at"], Value::Null);
        let packages = all_packages(&store, "001", 1).await;
        let versions: Vec<_> = packages.iter().map(|p| format!("{} {}", p["name"], p["version"])).collect();
        assert_eq!(versions, [r#""bash" "5.1""#, r#""curl" "8.1""#]);
        // The Wazuh item's own `source` field survives next to ours.
        assert_eq!(packages[0]["source"], "bash");
        assert_eq!(packages[0]["sluice_source"], "w");
        assert_eq!(packages[0]["updated_at"], bash_before["updated_at"], "an unchanged package is not rewritten");
        let files = store.wazuh_syscheck("t", "001", None, 10).await.unwrap();
        assert_eq!(files.items.len(), 1);
        assert_eq!(files.items[0]["sha256"], "cc");

        // An incomplete listing adds and updates but deletes nothing.
        store
            .wazuh_save_agent("t", "w", agent("001", "2024-01-01T00:06:00Z"), inventory(vec![package("zsh", "5.9")], vec![], false))
            .await
            .unwrap();
        assert_eq!(all_packages(&store, "001", 10).await.len(), 3);
        assert_eq!(store.wazuh_os("t", "001").await.unwrap()[0]["architecture"], "x86_64");
    }

    #[tokio::test]
    async fn unlisted_agents_are_marked_removed_and_keep_their_inventory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for id in ["000", "001", "002"] {
            store
                .wazuh_save_agent("t", "w", agent(id, "2024-01-01T00:00:00Z"), inventory(vec![package("a", "1")], vec![], true))
                .await
                .unwrap();
        }
        store.wazuh_save_agent("other", "w", agent("002", "2024-01-01T00:00:00Z"), None).await.unwrap();
        assert_eq!(store.wazuh_mark_removed("t", "w", &["000".into(), "001".into()]).await.unwrap(), 1);
        assert_eq!(store.wazuh_mark_removed("t", "w", &["000".into(), "001".into()]).await.unwrap(), 0);
        let removed = &store.wazuh_agent("t", "002").await.unwrap()[0];
        assert!(removed["removed_at"].is_string());
        assert_eq!(all_packages(&store, "002", 10).await.len(), 1);
        assert_eq!(store.wazuh_agent("other", "002").await.unwrap()[0]["removed_at"], Value::Null);
        // Listed again: no longer removed.
        store.wazuh_save_agent("t", "w", agent("002", "2024-01-01T00:00:00Z"), None).await.unwrap();
        assert_eq!(store.wazuh_agent("t", "002").await.unwrap()[0]["removed_at"], Value::Null);
    }

    #[tokio::test]
    async fn pages_follow_the_key_across_sources_and_tenants() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for source in ["a", "b"] {
            for id in ["000", "001", "002"] {
                store.wazuh_save_agent("t", source, agent(id, "2024-01-01T00:00:00Z"), None).await.unwrap();
            }
        }
        store.wazuh_save_agent("u", "a", agent("001", "2024-01-01T00:00:00Z"), None).await.unwrap();
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = store.wazuh_agents("t", after.as_deref(), 4).await.unwrap();
            seen.extend(page.items.iter().map(|a| format!("{}/{}", a["id"].as_str().unwrap(), a["sluice_source"].as_str().unwrap())));
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        assert_eq!(seen, ["000/a", "000/b", "001/a", "001/b", "002/a", "002/b"]);
        assert_eq!(store.wazuh_agent("t", "001").await.unwrap().len(), 2);
        assert!(store.wazuh_agents("t", Some("not a cursor"), 4).await.is_err());
        assert!(store.wazuh_agents("t", Some(r#"["001"]"#), 4).await.is_err());
    }

    #[test]
    fn dates_are_stored_in_one_notation() {
        let item = json!({"a": "2024-05-01T10:00:00+00:00", "b": "2024-05-01T12:00:00+02:00", "c": "yesterday"});
        assert_eq!(date(&item, "a").as_deref(), Some("2024-05-01T10:00:00Z"));
        assert_eq!(date(&item, "b").as_deref(), Some("2024-05-01T10:00:00Z"));
        assert_eq!(date(&item, "c").as_deref(), Some("yesterday"));
        assert_eq!(date(&item, "d"), None);
    }
}
