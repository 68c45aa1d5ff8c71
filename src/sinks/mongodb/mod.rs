//! `type: mongodb`: one document per event in a MongoDB collection, one collection per source by
//! default.
//!
//! A write inserts its events with unordered `insert_many` and `_id` = the event's stable id, so
//! a replay is a no-op: duplicate-key errors (11000) count as delivered. A document the server
//! refuses for good is dead-lettered with the server's reason; any other error fails the write
//! and the events wait in the outbox.
//!
//! A snapshot replaces the tenant's documents in its collection. Where the deployment supports
//! transactions (a replica set, a sharded cluster), the old documents are deleted and the new
//! ones inserted in one transaction. Elsewhere (a standalone server), the new documents are
//! inserted first, then those of the tenant with another `_upload_id` deleted: a reader may
//! briefly see both snapshots, never neither.

mod config;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::str::FromStr;

use anyhow::anyhow;
use futures::future::BoxFuture;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, ConnectionString};
use mongodb::{Client, ClientSession, Collection};
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

pub use config::MongoConfig;

use crate::event::{Batch, Event};
use crate::settings::redact_urls;
use crate::sinks::{Sink, SinkContext, SinkSettings, Written};
use crate::snapshot::Snapshot;

/// Documents per `insert_many` of a snapshot (the driver splits further by message size).
const SNAPSHOT_CHUNK: usize = 1000;

/// MongoDB's code for a duplicate key: the document is there already.
const DUPLICATE_KEY: i32 = 11000;

/// Write errors that say nothing about the document (a failover, a shutdown, a time limit):
/// the write is tried again rather than the document dead-lettered.
const TRANSIENT: &[i32] = &[6, 7, 50, 89, 91, 134, 189, 262, 9001, 10107, 11600, 11602, 13435, 13436];

impl SinkSettings for MongoConfig {
    fn build(&self, ctx: SinkContext) -> anyhow::Result<Box<dyn Sink>> {
        Ok(Box::new(MongoSink::new(self.clone(), ctx)))
    }

    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        // The driver's messages name options, never the password.
        if let Err(e) = ConnectionString::parse(self.url.expose()) {
            out.push(("url", redact_urls(&e.kind.to_string())));
        }
        if let Err(e) = database_name(&self.database) {
            out.push(("database", e));
        }
        if let Some(name) = self.collection.constant()
            && let Err(e) = collection_name(name)
        {
            out.push(("collection", e));
        }
        if self.timeout.is_zero() {
            out.push(("timeout", "must be more than 0".into()));
        }
        out
    }
}

fn database_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 63 || name.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(format!("`{name}` is no database name (1 to 63 bytes, none of / \\ . space \" $)"));
    }
    Ok(())
}

fn collection_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.contains(['$', '\0']) || name.starts_with("system.") {
        return Err(format!("`{name}` is no collection name (not empty, no `$`, not `system.`)"));
    }
    Ok(())
}

pub struct MongoSink {
    config: MongoConfig,
    ctx: SinkContext,
    client: Option<Client>,
}

impl MongoSink {
    pub fn new(config: MongoConfig, ctx: SinkContext) -> Self {
        MongoSink { config, ctx, client: None }
    }

    /// The client, made on first use (it connects and reconnects by itself).
    async fn client(&mut self) -> anyhow::Result<Client> {
        if let Some(client) = &self.client {
            return Ok(client.clone());
        }
        let mut options = tokio::time::timeout(self.config.timeout, ClientOptions::parse(self.config.url.expose()))
            .await
            .map_err(|_| anyhow!("MongoDB url: resolving timed out after {:?}", self.config.timeout))?
            .map_err(|e| anyhow!("MongoDB url: {}", error_text(&e)))?;
        options.connect_timeout = Some(self.config.timeout);
        options.server_selection_timeout = Some(self.config.timeout);
        options.app_name = Some("sluice".into());
        let client = Client::with_options(options).map_err(|e| anyhow!("MongoDB: {}", error_text(&e)))?;
        self.client = Some(client.clone());
        Ok(client)
    }

    async fn collection(&mut self, name: &str) -> anyhow::Result<Collection<Document>> {
        Ok(self.client().await?.database(&self.config.database).collection(name))
    }

    /// `f` within the timeout, its error as text.
    async fn within<T>(&self, what: &str, f: impl IntoFuture<Output = mongodb::error::Result<T>>) -> anyhow::Result<T> {
        match tokio::time::timeout(self.config.timeout, f.into_future()).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(anyhow!("{what}: {}", error_text(&e))),
            Err(_) => Err(anyhow!("{what}: timed out after {:?}", self.config.timeout)),
        }
    }

    async fn write_events(&mut self, batches: &[Batch]) -> anyhow::Result<Written> {
        let mut written = Written::default();
        let mut collections: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
        let mut name = String::new();
        for event in batches.iter().flat_map(|b| b.iter()) {
            name.clear();
            self.config.collection.render_key(event, &mut name);
            match collection_name(&name) {
                Ok(()) => collections.entry(name.clone()).or_default().push(event),
                Err(e) => self.ctx.dead_letter(event, &format!("no usable collection name: {e}"), &mut written).await?,
            }
        }
        for (name, events) in collections {
            let mut documents = Vec::with_capacity(events.len());
            let mut kept = Vec::with_capacity(events.len());
            for event in events {
                match event_document(event) {
                    Ok(d) => {
                        documents.push(d);
                        kept.push(event);
                    }
                    Err(e) => self.ctx.dead_letter(event, &format!("not convertible to BSON: {e}"), &mut written).await?,
                }
            }
            if documents.is_empty() {
                continue;
            }
            let collection = self.collection(&name).await?;
            let what = format!("inserting into {}.{name}", self.config.database);
            let result = tokio::time::timeout(self.config.timeout, collection.insert_many(documents).ordered(false)).await;
            let error = match result {
                Ok(Ok(_)) => continue,
                Ok(Err(e)) => e,
                Err(_) => return Err(anyhow!("{what}: timed out after {:?}", self.config.timeout)),
            };
            let ErrorKind::InsertMany(failure) = &*error.kind else {
                return Err(anyhow!("{what}: {}", error_text(&error)));
            };
            if let Some(concern) = &failure.write_concern_error {
                return Err(anyhow!("{what}: write concern: {}", concern.message));
            }
            let errors = failure.write_errors.iter().flatten();
            if let Some(transient) = errors.clone().find(|w| TRANSIENT.contains(&w.code)) {
                return Err(anyhow!("{what}: {} (code {})", transient.message, transient.code));
            }
            for refused in errors {
                if refused.code == DUPLICATE_KEY {
                    continue;
                }
                let reason = format!(
                    "MongoDB refused the document for {}.{name}: {} (code {})",
                    self.config.database, refused.message, refused.code
                );
                self.ctx.dead_letter(kept[refused.index], &reason, &mut written).await?;
            }
        }
        Ok(written)
    }

    async fn replace_snapshot(&mut self, snapshot: &Snapshot) -> anyhow::Result<()> {
        let mut name = String::new();
        self.config.collection.render(&snapshot.tenant, &snapshot.tag, snapshot.taken_at, "", &mut name);
        collection_name(&name).map_err(|e| anyhow!("no usable collection name for snapshot `{}`: {e}", snapshot.tag))?;
        let client = self.client().await?;
        let collection = self.collection(&name).await?;
        let target = format!("snapshot `{}` of {} to {}.{name}", snapshot.tag, snapshot.tenant, self.config.database);
        let mut session = self.within(&target, client.start_session()).await?;
        match session.start_transaction().await {
            Ok(()) => {
                let result = self.snapshot_in_transaction(&collection, &mut session, snapshot).await;
                match result {
                    Ok(()) => return self.within(&target, session.commit_transaction()).await,
                    Err(e) => {
                        let _ = session.abort_transaction().await;
                        match e.downcast_ref::<mongodb::error::Error>() {
                            Some(e) if transactions_unusable(e) => {
                                tracing::info!(sink = %self.ctx.name, reason = %error_text(e), "snapshot without a transaction")
                            }
                            _ => return Err(e.context(format!("writing {target}"))),
                        }
                    }
                }
            }
            Err(e) if transactions_unusable(&e) => {}
            Err(e) => return Err(anyhow!("writing {target}: {}", error_text(&e))),
        }
        // Insert the new snapshot, then delete the old: a reader may see both, never neither.
        if let Err(e) = self.insert_snapshot(&collection, snapshot, &target).await {
            // Best effort: what was inserted of this snapshot goes, the previous one stays whole.
            let this = doc! {"_tenancy": &*snapshot.tenant, "_upload_id": snapshot.upload_id.to_string()};
            let _ = tokio::time::timeout(self.config.timeout, collection.delete_many(this).into_future()).await;
            return Err(e);
        }
        let old = doc! {"_tenancy": &*snapshot.tenant, "_upload_id": {"$ne": snapshot.upload_id.to_string()}};
        self.within(&format!("deleting the previous {target}"), collection.delete_many(old)).await?;
        Ok(())
    }

    /// Inserts the snapshot's documents; those there already (an earlier attempt) are skipped.
    async fn insert_snapshot(&self, collection: &Collection<Document>, snapshot: &Snapshot, target: &str) -> anyhow::Result<()> {
        for chunk in snapshot_chunks(snapshot)? {
            let documents = chunk.map_err(|e| e.context(format!("writing {target}")))?;
            match tokio::time::timeout(self.config.timeout, collection.insert_many(documents).ordered(false).into_future()).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) if only_duplicates(&e) => {}
                Ok(Err(e)) => return Err(anyhow!("writing {target}: {}", error_text(&e))),
                Err(_) => return Err(anyhow!("writing {target}: timed out after {:?}", self.config.timeout)),
            }
        }
        Ok(())
    }

    /// Deletes the tenant's documents and inserts the snapshot, in the session's transaction.
    async fn snapshot_in_transaction(
        &self,
        collection: &Collection<Document>,
        session: &mut ClientSession,
        snapshot: &Snapshot,
    ) -> anyhow::Result<()> {
        let timeout = self.config.timeout;
        let step = async |f: BoxFuture<'_, mongodb::error::Result<()>>| -> anyhow::Result<()> {
            tokio::time::timeout(timeout, f).await.map_err(|_| anyhow!("timed out after {timeout:?}"))?.map_err(anyhow::Error::from)
        };
        // All of the tenant's documents, a half-written copy of this snapshot's too: inside the
        // transaction nothing is a duplicate then.
        step(Box::pin(async { collection.delete_many(doc! {"_tenancy": &*snapshot.tenant}).session(&mut *session).await.map(drop) }))
            .await?;
        for chunk in snapshot_chunks(snapshot)? {
            let documents = chunk?;
            step(Box::pin(async { collection.insert_many(documents).session(&mut *session).await.map(drop) })).await?;
        }
        Ok(())
    }
}

/// The snapshot's records as documents, in chunks, each with `_id` = `<upload id>:<n>` (stable:
/// writing the snapshot again inserts nothing twice).
fn snapshot_chunks(snapshot: &Snapshot) -> anyhow::Result<impl Iterator<Item = anyhow::Result<Vec<Document>>>> {
    let upload_id = snapshot.upload_id;
    let mut records = snapshot.records()?.enumerate().peekable();
    Ok(std::iter::from_fn(move || {
        records.peek()?;
        let mut chunk = Vec::with_capacity(SNAPSHOT_CHUNK);
        for (n, record) in records.by_ref().take(SNAPSHOT_CHUNK) {
            let document = record.and_then(|r| document(&r).map_err(|e| anyhow!("record {n}: {e}")));
            match document {
                Ok(mut d) => {
                    d.insert("_id", format!("{upload_id}:{n}"));
                    chunk.push(d);
                }
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(chunk))
    }))
}

/// The deployment cannot run this snapshot as a transaction (a standalone server, or one too
/// large or long for it): write it in the documented order instead.
fn transactions_unusable(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::Transaction { .. } => true,
        // IllegalOperation (no replica set), OperationNotSupportedInTransaction,
        // TransactionTooLarge, TransactionExceededLifetimeLimitSeconds.
        ErrorKind::Command(c) => matches!(c.code, 20 | 263 | 257 | 290),
        _ => false,
    }
}

/// An unordered insert whose only errors are documents that exist already.
fn only_duplicates(e: &mongodb::error::Error) -> bool {
    match &*e.kind {
        ErrorKind::InsertMany(f) => f.write_concern_error.is_none() && f.write_errors.iter().flatten().all(|w| w.code == DUPLICATE_KEY),
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == DUPLICATE_KEY,
        _ => false,
    }
}

fn error_text(e: &mongodb::error::Error) -> String {
    redact_urls(&e.to_string())
}

/// An event's document: its vendor JSON, with `_id` = the event id, `_tenancy` and
/// `_received_at`. An `_id` of the vendor's own is kept as `_vendor_id`.
pub fn event_document(event: &Event) -> anyhow::Result<Document> {
    let mut d = document(&event.raw)?;
    if let Some(own) = d.remove("_id") {
        d.insert("_vendor_id", own);
    }
    d.insert("_id", event.id.as_str());
    d.insert("_tenancy", &*event.tenant);
    d.insert("_received_at", mongodb::bson::DateTime::from_millis(event.received_at.timestamp_millis()));
    Ok(d)
}

/// A JSON document as BSON; anything but an object becomes `{"value": …}`.
pub fn document(raw: &RawValue) -> anyhow::Result<Document> {
    match to_bson(raw.get())? {
        Bson::Document(d) => Ok(d),
        other => Ok(doc! {"value": other}),
    }
}

/// JSON text as BSON, exactly: integers are Int32/Int64 when they fit, else Decimal128 (34
/// digits), else the number's text; a key's NUL, which BSON cannot hold, becomes the text
/// `\u0000`; a string that is not valid Unicode (a lone surrogate escape) keeps its escapes.
pub fn to_bson(text: &str) -> anyhow::Result<Bson> {
    let text = text.trim();
    Ok(match text.as_bytes().first() {
        Some(b'{') => {
            let mut d = Document::new();
            for (key, value) in serde_json::Deserializer::from_str(text).deserialize_map(Entries)? {
                d.insert(key.replace('\0', "\\u0000"), to_bson(value.get())?);
            }
            Bson::Document(d)
        }
        Some(b'[') => {
            let items: Vec<Box<RawValue>> = serde_json::from_str(text)?;
            Bson::Array(items.iter().map(|v| to_bson(v.get())).collect::<anyhow::Result<_>>()?)
        }
        Some(b'"') => Bson::String(serde_json::from_str(text).unwrap_or_else(|_| text[1..text.len() - 1].to_string())),
        Some(b't' | b'f') => Bson::Boolean(serde_json::from_str(text)?),
        Some(b'n') => Bson::Null,
        _ => number(text),
    })
}

fn number(text: &str) -> Bson {
    if !text.contains(['.', 'e', 'E']) {
        if let Ok(i) = text.parse::<i32>() {
            return Bson::Int32(i);
        }
        if let Ok(i) = text.parse::<i64>() {
            return Bson::Int64(i);
        }
    } else if let Ok(f) = text.parse::<f64>()
        && f.is_finite()
    {
        return Bson::Double(f);
    }
    let digits = text.trim_start_matches('-').bytes().take_while(u8::is_ascii_digit).count();
    match mongodb::bson::Decimal128::from_str(text) {
        Ok(d) if digits <= 34 => Bson::Decimal128(d),
        _ => Bson::String(text.to_string()),
    }
}

/// A JSON object's members in order, each value as raw text.
struct Entries;

impl<'de> Visitor<'de> for Entries {
    type Value = Vec<(String, Box<RawValue>)>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(entry) = map.next_entry::<String, Box<RawValue>>()? {
            out.push(entry);
        }
        Ok(out)
    }
}

impl Sink for MongoSink {
    /// One `insert_many` at a time, of at most one batch.
    fn events_in_flight(&self) -> Option<usize> {
        Some(self.ctx.policy.batch.max_events.get())
    }

    fn write<'a>(&'a mut self, batches: &'a [Batch]) -> BoxFuture<'a, anyhow::Result<Written>> {
        Box::pin(self.write_events(batches))
    }

    fn write_snapshot<'a>(&'a mut self, snapshot: &'a Snapshot) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(self.replace_snapshot(snapshot))
    }

    /// `ping`: the server answers and takes the credentials; writes nothing.
    fn check(&mut self) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            let db = self.client().await?.database(&self.config.database);
            self.within("ping", db.run_command(doc! {"ping": 1})).await.map(drop)
        })
    }
}
