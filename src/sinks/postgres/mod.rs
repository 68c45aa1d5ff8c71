//! `type: postgres`: one row per event in a PostgreSQL table, one table per source by default.
//!
//! The table keeps the original collectors' columns (`upload_timestamp`, `tenancy`,
//! `json_data`) for the queries written against them, and adds `event_id` with a unique key on
//! (`tenancy`, `event_id`), so a replay after a crash or a timeout is a no-op (`ON CONFLICT DO
//! NOTHING`). A write copies its events per table into a temporary staging table with binary
//! `COPY`, then moves them with one `INSERT … SELECT … ON CONFLICT DO NOTHING` and commits: one
//! transaction per table and write, durable when `write` returns.
//!
//! A row PostgreSQL refuses for good (a data error: a number out of range, an unsupported
//! escape) makes its transaction fail; the events are then halved and written again until the
//! one refused stands alone, and it is dead-lettered with PostgreSQL's reason. Any other error
//! (refused connection, timeout, a missing privilege) fails the write: the events wait in the
//! outbox and the next write connects again.
//!
//! `json_data` holds the event exactly as received. `data` (`jsonb`) holds the same document,
//! except that the escape `\u0000`, which `jsonb` cannot store, is replaced by the text `\u0000`
//! (the JSON string escape `\\u0000`).
//!
//! A snapshot replaces the previous one of its tenant in the table in one transaction: its
//! records are streamed from the spool into the staging table with binary `COPY`, the tenant's
//! rows of any other `upload_id` are deleted, the new rows inserted, and the transaction
//! commits. Readers see the old snapshot until the commit, then the new one; a failure anywhere
//! rolls it all back.

mod config;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashSet};
use std::str::FromStr;

use anyhow::anyhow;
use futures::future::BoxFuture;
use tokio::task::JoinHandle;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

pub use config::{PostgresConfig, TlsMode};

use crate::event::{Batch, Event};
use crate::settings::redact_urls;
use crate::sinks::{Sink, SinkContext, SinkSettings, Written};
use crate::snapshot::Snapshot;

/// PostgreSQL's longest identifier, in bytes (`NAMEDATALEN - 1`); longer ones it cuts silently.
const MAX_IDENTIFIER: usize = 63;

const STAGING: &str = "CREATE TEMPORARY TABLE IF NOT EXISTS sluice_staging (event_id text, tenancy text, source text, vendor text, \
     received_at timestamptz, json_data text, data text) ON COMMIT DELETE ROWS";
const COPY: &str =
    "COPY pg_temp.sluice_staging (event_id, tenancy, source, vendor, received_at, json_data, data) FROM STDIN (FORMAT binary)";
const COPY_TYPES: &[Type] = &[Type::TEXT, Type::TEXT, Type::TEXT, Type::TEXT, Type::TIMESTAMPTZ, Type::TEXT, Type::TEXT];

impl SinkSettings for PostgresConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(PgSink::new(self.clone(), ctx)?))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Err(e) = connection_config(self.url.expose()) {
            out.push(("url", e));
        }
        if let Err(e) = identifier(&self.schema) {
            out.push(("schema", e));
        }
        if let Some(table) = self.table.constant()
            && let Err(e) = identifier(table)
        {
            out.push(("table", e));
        }
        match &self.ca_file {
            Some(_) if self.tls == TlsMode::Disable => out.push(("ca_file", "given with tls: disable".into())),
            Some(path) if !path.is_file() => out.push(("ca_file", format!("{} does not exist", path.display()))),
            _ => {}
        }
        if self.timeout.is_zero() {
            out.push(("timeout", "must be more than 0".into()));
        }
        out
    }
}

/// Parses the URL into a connection config; errors never repeat the URL (it holds the password).
fn connection_config(url: &str) -> Result<tokio_postgres::Config, String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err("expected postgres://user:password@host:port/database".into());
    }
    let config = tokio_postgres::Config::from_str(url).map_err(|e| format!("not a PostgreSQL URL: {}", error_text(&e)))?;
    if config.get_hosts().is_empty() {
        return Err("names no host".into());
    }
    if config.get_dbname().is_none() {
        return Err("names no database (postgres://user:password@host:port/database)".into());
    }
    Ok(config)
}

/// A schema or table name as PostgreSQL will store it: folded to lower case, as PostgreSQL folds
/// unquoted names (so queries need no quotes), and checked to be usable.
pub fn identifier(name: &str) -> Result<String, String> {
    let name = name.to_lowercase();
    if name.is_empty() {
        return Err("an empty name".into());
    }
    if name.len() > MAX_IDENTIFIER {
        return Err(format!("`{name}` is longer than {MAX_IDENTIFIER} bytes, PostgreSQL's limit"));
    }
    if name.contains('\0') {
        return Err("a name cannot hold NUL".into());
    }
    Ok(name)
}

/// `name` quoted as an SQL identifier: in double quotes, inner double quotes doubled. Every name
/// sluice puts in SQL goes through here.
pub fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The name of the unique index of `table`: `<table>_event_key`, or a cut name with a hash when
/// that would pass PostgreSQL's limit (index names are unique per schema).
fn index_name(table: &str) -> String {
    let name = format!("{table}_event_key");
    if name.len() <= MAX_IDENTIFIER {
        return name;
    }
    let mut cut = 40;
    while !table.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{:08x}_event_key", &table[..cut], xxhash_rust::xxh3::xxh3_64(table.as_bytes()) as u32)
}

/// The document for the `jsonb` column when `raw` holds the escape `\u0000` (NUL, which
/// PostgreSQL's `text` and `jsonb` cannot hold): each one becomes `\\u0000`, the six characters
/// `\u0000` as text. `None` when there is none (the common case: `json_data` serves).
pub fn jsonb_text(raw: &str) -> Option<String> {
    if !raw.contains("\\u0000") {
        return None;
    }
    let bytes = raw.as_bytes();
    let mut out = String::with_capacity(raw.len() + 8);
    let mut start = 0;
    let mut i = 0;
    // Every backslash in JSON starts an escape of two characters or more: stepping over whole
    // escapes keeps `\\u0000` (an escaped backslash, then `u0000`) as it is.
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes[i + 1..].starts_with(b"u0000") {
                out.push_str(&raw[start..i]);
                out.push_str("\\\\u0000");
                i += 6;
                start = i;
            } else {
                i += 2;
            }
        } else {
            i += 1;
        }
    }
    out.push_str(&raw[start..]);
    Some(out)
}

/// The text of a PostgreSQL error, with its causes and SQLSTATE, never a password.
fn error_text(e: &tokio_postgres::Error) -> String {
    let text = match e.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
            if let Some(detail) = db.detail() {
                text.push_str(&format!("; {detail}"));
            }
            text
        }
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(&format!(": {s}"));
                source = s.source();
            }
            text
        }
    };
    redact_urls(&text)
}

/// An error that PostgreSQL will give again for the same rows: a data exception (class 22) or a
/// limit passed (class 54, e.g. a value too large).
fn refused_for_good(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| matches!(&db.code().code()[..2], "22" | "54"))
}

/// An error that says the table or schema is gone (dropped while sluice ran): create it again.
fn table_missing(e: &tokio_postgres::Error) -> bool {
    e.as_db_error().is_some_and(|db| matches!(db.code().code(), "42P01" | "3F000" | "42703" | "42P10"))
}

/// One connection; its task ends with it.
struct Connection {
    client: Client,
    task: JoinHandle<()>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why a transaction failed.
enum Failure {
    /// PostgreSQL refuses (one of) these rows for good.
    Refused(String),
    /// The server, the connection or the setup: try the whole write again later.
    Other(anyhow::Error),
}

pub struct PgSink {
    config: PostgresConfig,
    ctx: SinkContext,
    pg: tokio_postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// `host:port/database`, for messages.
    target: String,
    schema: String,
    connection: Option<Connection>,
    /// Tables whose schema, table and index this process has made sure of.
    created: HashSet<String>,
}

impl PgSink {
    pub fn new(config: PostgresConfig, ctx: SinkContext) -> anyhow::Result<Self> {
        let mut pg = connection_config(config.url.expose()).map_err(|e| anyhow!("url: {e}"))?;
        pg.connect_timeout(config.timeout)
            .keepalives(true)
            .keepalives_idle(std::time::Duration::from_secs(60))
            .application_name("sluice")
            .ssl_mode(match config.tls {
                TlsMode::Disable => tokio_postgres::config::SslMode::Disable,
                TlsMode::Require | TlsMode::VerifyFull => tokio_postgres::config::SslMode::Require,
            });
        let tls = match config.tls {
            TlsMode::Disable => None,
            mode => Some(tokio_postgres_rustls::MakeRustlsConnect::new(crate::settings::tls::chain_verified_client(
                config.ca_file.as_deref(),
                mode == TlsMode::VerifyFull,
            )?)),
        };
        let host = match pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => String::new(),
        };
        let port = pg.get_ports().first().copied().unwrap_or(5432);
        let target = format!("{host}:{port}/{}", pg.get_dbname().unwrap_or(""));
        let schema = identifier(&config.schema).map_err(|e| anyhow!("schema: {e}"))?;
        Ok(PgSink { config, ctx, pg, tls, target, schema, connection: None, created: HashSet::new() })
    }

    /// The open connection, or a new one.
    async fn client(&mut self) -> anyhow::Result<&mut Client> {
        if self.connection.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.connection = None;
        }
        if self.connection.is_none() {
            let connect = async {
                let (client, task) = match &self.tls {
                    None => {
                        let (client, connection) = self.pg.connect(NoTls).await?;
                        (client, tokio::spawn(async move { drop(connection.await) }))
                    }
                    Some(tls) => {
                        let (client, connection) = self.pg.connect(tls.clone()).await?;
                        (client, tokio::spawn(async move { drop(connection.await) }))
                    }
                };
                let connection = Connection { client, task };
                connection.client.batch_execute(STAGING).await?;
                Ok::<_, tokio_postgres::Error>(connection)
            };
            let connection = tokio::time::timeout(self.config.timeout, connect)
                .await
                .map_err(|_| anyhow!("connecting to PostgreSQL at {}: timed out after {:?}", self.target, self.config.timeout))?
                .map_err(|e| anyhow!("connecting to PostgreSQL at {}: {}", self.target, error_text(&e)))?;
            tracing::debug!(sink = %self.ctx.name, target = %self.target, "connected to PostgreSQL");
            self.connection = Some(connection);
        }
        Ok(&mut self.connection.as_mut().expect("connected above").client)
    }

    /// Creates the schema, `table` and its unique index when missing, once per process.
    async fn ensure_table(&mut self, table: &str) -> anyhow::Result<()> {
        if !self.config.create_tables || self.created.contains(table) {
            return Ok(());
        }
        let (schema, qualified) = (quote(&self.schema), format!("{}.{}", quote(&self.schema), quote(table)));
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {qualified} (upload_timestamp timestamp, tenancy varchar, json_data json, event_id text,
                 source text, vendor text, received_at timestamptz, data jsonb, upload_id uuid);
             ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS event_id text, ADD COLUMN IF NOT EXISTS source text,
                 ADD COLUMN IF NOT EXISTS vendor text, ADD COLUMN IF NOT EXISTS received_at timestamptz,
                 ADD COLUMN IF NOT EXISTS data jsonb, ADD COLUMN IF NOT EXISTS upload_id uuid;
             CREATE UNIQUE INDEX IF NOT EXISTS {index} ON {qualified} (tenancy, event_id);",
            index = quote(&index_name(table)),
        );
        let timeout = self.config.timeout;
        let client = self.client().await?;
        let result = tokio::time::timeout(timeout, client.batch_execute(&sql)).await;
        match result {
            Ok(Ok(())) => {
                self.created.insert(table.to_string());
                Ok(())
            }
            Ok(Err(e)) => {
                self.connection = None;
                Err(anyhow!("creating table {qualified}: {}", error_text(&e)))
            }
            Err(_) => {
                self.connection = None;
                Err(anyhow!("creating table {qualified}: timed out after {timeout:?}"))
            }
        }
    }

    /// Copies `rows` of `events` into `table` in one transaction.
    async fn transaction(&mut self, table: &str, events: &[&Event], rows: &[usize]) -> Result<(), Failure> {
        let timeout = self.config.timeout;
        let insert = format!(
            "INSERT INTO {}.{} (upload_timestamp, tenancy, json_data, event_id, source, vendor, received_at, data, upload_id)
             SELECT now() AT TIME ZONE 'UTC', tenancy, json_data::json, event_id, source, vendor, received_at,
                    coalesce(data, json_data)::jsonb, NULL
             FROM pg_temp.sluice_staging ON CONFLICT (tenancy, event_id) DO NOTHING",
            quote(&self.schema),
            quote(table)
        );
        let client = self.client().await.map_err(Failure::Other)?;
        match tokio::time::timeout(timeout, copy_insert(client, &insert, events, rows)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) if refused_for_good(&e) => Err(Failure::Refused(error_text(&e))),
            Ok(Err(e)) => {
                if table_missing(&e) {
                    self.created.remove(table);
                }
                self.connection = None;
                Err(Failure::Other(anyhow!("writing to {}.{} at {}: {}", self.schema, table, self.target, error_text(&e))))
            }
            Err(_) => {
                self.connection = None;
                Err(Failure::Other(anyhow!("writing to {}.{} at {}: timed out after {timeout:?}", self.schema, table, self.target)))
            }
        }
    }

    async fn write_events(&mut self, batches: &[Batch]) -> anyhow::Result<Written> {
        let events: Vec<&Event> = batches.iter().flat_map(|b| b.iter()).collect();
        let mut written = Written::default();
        let mut tables: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut name = String::new();
        for (i, event) in events.iter().enumerate() {
            name.clear();
            self.config.table.render_key(event, &mut name);
            match identifier(&name) {
                Ok(table) => tables.entry(table).or_default().push(i),
                Err(e) => self.ctx.dead_letter(event, &format!("no usable table name: {e}"), &mut written).await?,
            }
        }
        for (table, rows) in tables {
            self.ensure_table(&table).await?;
            let mut todo = vec![rows];
            while let Some(rows) = todo.pop() {
                match self.transaction(&table, &events, &rows).await {
                    Ok(()) => {}
                    Err(Failure::Other(e)) => return Err(e),
                    Err(Failure::Refused(reason)) if rows.len() == 1 => {
                        let reason = format!("PostgreSQL refused the row for {}.{table}: {reason}", self.schema);
                        self.ctx.dead_letter(events[rows[0]], &reason, &mut written).await?;
                    }
                    Err(Failure::Refused(_)) => {
                        // Find the rows refused: each half in a transaction of its own.
                        let mut first = rows;
                        let second = first.split_off(first.len() / 2);
                        todo.push(second);
                        todo.push(first);
                    }
                }
            }
        }
        Ok(written)
    }
}

impl PgSink {
    /// Replaces the tenant's rows in the snapshot's table with the snapshot, in one transaction.
    async fn replace_snapshot(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let mut name = String::new();
        self.config.table.render(&snapshot.tenant, &snapshot.tag, snapshot.taken_at, "", &mut name);
        let table = identifier(&name).map_err(|e| anyhow!("no usable table name for snapshot `{}`: {e}", snapshot.tag))?;
        self.ensure_table(&table).await?;
        let qualified = format!("{}.{}", quote(&self.schema), quote(&table));
        // Rows without an upload_id are the original collectors' appended copies: they go too.
        let delete = format!("DELETE FROM {qualified} WHERE tenancy = $1 AND upload_id IS DISTINCT FROM $2");
        let insert = format!(
            "INSERT INTO {qualified} (upload_timestamp, tenancy, json_data, event_id, source, vendor, received_at, data, upload_id)
             SELECT date_trunc('second', $1::timestamptz AT TIME ZONE 'UTC'), tenancy, json_data::json, event_id, source, vendor,
                    received_at, coalesce(data, json_data)::jsonb, $2
             FROM pg_temp.sluice_staging ON CONFLICT (tenancy, event_id) DO NOTHING"
        );
        let timeout = self.config.timeout;
        let client = self.client().await?;
        match copy_snapshot(client, snapshot, &delete, &insert, timeout).await {
            Ok(()) => Ok(()),
            Err(e) => {
                // The transaction rolls back with the connection; the previous snapshot stays.
                self.connection = None;
                let text = match e.downcast_ref::<tokio_postgres::Error>() {
                    Some(pg) => {
                        if table_missing(pg) {
                            self.created.remove(&table);
                        }
                        error_text(pg)
                    }
                    None => format!("{e:#}"),
                };
                Err(anyhow!(
                    "writing snapshot `{}` of {} to {}.{table} at {}: {text}",
                    snapshot.tag,
                    snapshot.tenant,
                    self.schema,
                    self.target
                ))
            }
        }
    }
}

/// Records read from the spool per hand-over to the `COPY`.
const SNAPSHOT_CHUNK: usize = 512;

/// One transaction: the records streamed into the staging table, the tenant's other snapshots
/// deleted, the new rows inserted, commit. `timeout` bounds each step, not the whole load: a
/// large snapshot may take longer, a stalled server may not.
async fn copy_snapshot(
    client: &mut Client,
    snapshot: &Snapshot,
    delete: &str,
    insert: &str,
    timeout: std::time::Duration,
) -> anyhow::Result<()> {
    async fn step<T, E: Into<anyhow::Error>>(timeout: std::time::Duration, f: impl Future<Output = Result<T, E>>) -> anyhow::Result<T> {
        tokio::time::timeout(timeout, f).await.map_err(|_| anyhow!("timed out after {timeout:?}"))?.map_err(Into::into)
    }
    // The spool is read on a blocking thread; the bounded channel keeps memory to a few chunks.
    let records = snapshot.records()?;
    let (chunks, mut received) = tokio::sync::mpsc::channel::<anyhow::Result<Vec<Box<serde_json::value::RawValue>>>>(4);
    let reader = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK);
        for record in records {
            match record {
                Ok(r) => chunk.push(r),
                Err(e) => {
                    let _ = chunks.blocking_send(Err(e));
                    return;
                }
            }
            if chunk.len() == SNAPSHOT_CHUNK
                && chunks.blocking_send(Ok(std::mem::replace(&mut chunk, Vec::with_capacity(SNAPSHOT_CHUNK)))).is_err()
            {
                return;
            }
        }
        if !chunk.is_empty() {
            let _ = chunks.blocking_send(Ok(chunk));
        }
    });
    let _stop_reader = AbortOnDrop(reader);

    let tx = step(timeout, client.transaction()).await?;
    let sink = step(timeout, tx.copy_in(COPY)).await?;
    let writer = BinaryCopyInWriter::new(sink, COPY_TYPES);
    futures::pin_mut!(writer);
    let (tenant, tag, upload_id) = (&*snapshot.tenant, &*snapshot.tag, snapshot.upload_id);
    let mut n: u64 = 0;
    while let Some(chunk) = received.recv().await {
        let chunk = chunk?;
        step(timeout, async {
            for record in &chunk {
                // Stable per record of this snapshot: writing it again inserts nothing twice.
                let id = format!("{upload_id}:{n}");
                n += 1;
                let data = jsonb_text(record.get());
                let row: [&(dyn ToSql + Sync); 7] = [&id, &tenant, &tag, &"json", &snapshot.taken_at, &record.get(), &data];
                writer.as_mut().write(&row).await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        })
        .await?;
    }
    step(timeout, writer.finish()).await?;
    step(timeout, tx.execute(delete, &[&tenant, &upload_id])).await?;
    step(timeout, tx.execute(insert, &[&snapshot.taken_at, &upload_id])).await?;
    step(timeout, tx.commit()).await
}

/// Aborts a task when dropped (a blocking one stops at its next send, its receiver gone).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `COPY` into the staging table, `INSERT … SELECT` into the table, commit.
async fn copy_insert(client: &mut Client, insert: &str, events: &[&Event], rows: &[usize]) -> Result<(), tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let sink = tx.copy_in(COPY).await?;
    let writer = BinaryCopyInWriter::new(sink, COPY_TYPES);
    futures::pin_mut!(writer);
    for &i in rows {
        let event = events[i];
        let data = jsonb_text(event.raw.get());
        let row: [&(dyn ToSql + Sync); 7] =
            [&event.id, &&*event.tenant, &&*event.source, &&*event.vendor, &event.received_at, &event.raw.get(), &data];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    tx.execute(insert, &[]).await?;
    tx.commit().await
}

impl Sink for PgSink {
    /// One transaction at a time, of at most one batch.
    fn events_in_flight(&self) -> Option<usize> {
        Some(self.ctx.policy.batch.max_events.get())
    }

    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        Box::pin(self.write_events(batches))
    }

    fn write_snapshot<'a>(&'a mut self, snapshot: &'a Snapshot) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.replace_snapshot(snapshot))
    }

    /// `SELECT 1`: the server answers and takes the credentials; writes nothing.
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let timeout = self.config.timeout;
            let client = self.client().await?;
            let result = tokio::time::timeout(timeout, client.simple_query("SELECT 1")).await;
            match result {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => {
                    self.connection = None;
                    Err(anyhow!("SELECT 1 at {}: {}", self.target, error_text(&e)))
                }
                Err(_) => {
                    self.connection = None;
                    Err(anyhow!("SELECT 1 at {}: timed out after {timeout:?}", self.target))
                }
            }
        })
    }
}
