//! The documents, per index or data stream, and the execution of bulk operations against them
//! with Elasticsearch's versioning, sequence numbers, conflicts and per-item failures.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{Map, Value};

use super::bulk::{Action, DocFailure, Op, Timestamp, VersionType};
use super::{EsConfig, EsFaults, Flavor};
use crate::net::{glob_match, json_str};

pub(super) struct Store {
    indices: HashMap<String, Index>,
    pub rng: StdRng,
    /// `create` items refused because the id existed.
    pub conflicts: u64,
    patterns: Vec<String>,
    flavor: Flavor,
}

pub(super) struct Index {
    pub uuid: String,
    /// Where writes land and what items report: the index itself, or a data stream's backing index.
    pub write_name: Arc<str>,
    pub data_stream: bool,
    pub created_ms: i64,
    docs: HashMap<Arc<str>, StoredDoc>,
    /// Ids in insertion order; an entry is stale when its document was deleted or re-created.
    order: Vec<Arc<str>>,
    /// Versions of deleted documents, which the next write of the id continues from.
    tombstones: HashMap<Arc<str>, u64>,
    next_seq_no: u64,
}

pub(super) struct StoredDoc {
    pub version: u64,
    pub seq_no: u64,
    pub source: Box<str>,
    pos: usize,
}

impl Index {
    fn next_seq_no(&mut self) -> u64 {
        self.next_seq_no += 1;
        self.next_seq_no - 1
    }

    pub(super) fn len(&self) -> usize {
        self.docs.len()
    }

    pub(super) fn get(&self, id: &str) -> Option<&StoredDoc> {
        self.docs.get(id)
    }

    fn insert(&mut self, id: Arc<str>, version: u64, source: Box<str>) -> u64 {
        let seq_no = self.next_seq_no();
        let pos = match self.docs.get(&id) {
            Some(existing) => existing.pos,
            None => {
                self.order.push(id.clone());
                self.order.len() - 1
            }
        };
        self.tombstones.remove(&id);
        self.docs.insert(id, StoredDoc { version, seq_no, source, pos });
        seq_no
    }
}

/// What happened to one item.
pub(super) struct Item {
    pub action: Action,
    pub index: Arc<str>,
    pub id: Option<Arc<str>>,
    pub outcome: Outcome,
}

pub(super) enum Outcome {
    Done {
        version: u64,
        result: &'static str,
        status: u16,
        seq_no: u64,
        noop: bool,
    },
    /// `error` is the item's `error` object, as JSON text.
    Failed {
        status: u16,
        error: String,
    },
}

/// An `error` object: `{"type","reason"}` and what follows, as JSON text.
pub(super) fn error_object(kind: &str, reason: &str, rest: &str) -> String {
    format!(r#"{{"type":{},"reason":{}{rest}}}"#, json_str(kind), json_str(reason))
}

pub(super) fn index_not_found(name: &str, resource_type: &str) -> String {
    let name = json_str(name);
    let reason = json_str(&format!("no such index [{}]", &name[1..name.len() - 1]));
    format!(
        r#"{{"type":"index_not_found_exception","reason":{reason},"resource.type":"{resource_type}","resource.id":{name},"index_uuid":"_na_","index":{name}}}"#
    )
}

/// Elasticsearch's index-name rules (`MetadataCreateIndexService.validateIndexOrAliasName`).
fn invalid_index_name(name: &str) -> Option<String> {
    let why = if name.is_empty() {
        "must not be empty"
    } else if name != name.to_lowercase() {
        "must be lowercase"
    } else if name.contains('#') {
        "must not contain '#'"
    } else if name.contains(['\\', '/', '*', '?', '"', '<', '>', '|', ' ', ',']) {
        "must not contain the following characters [' ','\"','*',',','/','<','>','?','\\','|']"
    } else if name.starts_with(['_', '-', '+']) {
        "must not start with '_', '-', or '+'"
    } else if name == "." || name == ".." {
        "must not be '.' or '..'"
    } else if name.len() > 255 {
        return Some(format!("Invalid index name [{name}], index name is too long, ({} > 255)", name.len()));
    } else {
        return None;
    };
    Some(format!("Invalid index name [{name}], {why}"))
}

/// An error raised by the shard, which names it.
fn shard_error(index: &Index, kind: &str, reason: String) -> String {
    let rest = format!(r#","index_uuid":{},"shard":"0","index":{}"#, json_str(&index.uuid), json_str(&index.write_name));
    error_object(kind, &reason, &rest)
}

impl Store {
    pub(super) fn new(config: &EsConfig) -> Store {
        Store {
            indices: HashMap::new(),
            rng: StdRng::seed_from_u64(config.seed),
            conflicts: 0,
            patterns: config.data_stream_patterns.clone(),
            flavor: config.flavor,
        }
    }

    /// A random 22-character id in Elasticsearch's url-safe base64, like index and cluster uuids.
    pub(super) fn new_uuid(&mut self) -> String {
        let mut bytes = [0u8; 16];
        self.rng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// A 20-character auto-generated document id.
    fn new_doc_id(&mut self) -> Arc<str> {
        let mut bytes = [0u8; 15];
        self.rng.fill_bytes(&mut bytes);
        URL_SAFE_NO_PAD.encode(bytes).into()
    }

    pub(super) fn doc_count(&self) -> usize {
        self.indices.values().map(Index::len).sum()
    }

    pub(super) fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.indices.keys().cloned().collect();
        names.sort();
        names
    }

    /// An index by its name, or a data stream by its name or its backing index's.
    pub(super) fn resolve(&self, name: &str) -> Option<(&str, &Index)> {
        if let Some((name, index)) = self.indices.get_key_value(name) {
            return Some((name, index));
        }
        self.indices.iter().find(|(_, i)| i.data_stream && &*i.write_name == name).map(|(n, i)| (n.as_str(), i))
    }

    /// Names matching an index expression: comma-separated names and globs, `_all` or `*`.
    pub(super) fn expand(&self, expression: &str) -> Result<Vec<String>, String> {
        let mut names = Vec::new();
        for part in expression.split(',').filter(|p| !p.is_empty()) {
            if part == "_all" || part.contains('*') {
                let pattern = if part == "_all" { "*" } else { part };
                let mut matched: Vec<String> = self.indices.keys().filter(|n| glob_match(pattern, n)).cloned().collect();
                matched.sort();
                names.extend(matched);
            } else {
                match self.resolve(part) {
                    Some((name, _)) => names.push(name.to_string()),
                    None => return Err(index_not_found(part, "index_or_alias")),
                }
            }
        }
        names.dedup();
        Ok(names)
    }

    pub(super) fn index(&self, name: &str) -> Option<&Index> {
        self.indices.get(name)
    }

    /// `(id, source)` in insertion order.
    pub(super) fn raw_docs(&self, name: &str) -> Vec<(String, Box<str>)> {
        let Some((_, index)) = self.resolve(name) else { return Vec::new() };
        let live = |(pos, id): (usize, &Arc<str>)| {
            let doc = index.docs.get(id).filter(|d| d.pos == pos)?;
            Some((id.to_string(), doc.source.clone()))
        };
        index.order.iter().enumerate().filter_map(live).collect()
    }

    fn is_data_stream(&self, name: &str) -> bool {
        self.patterns.iter().any(|p| glob_match(p, name))
    }

    fn index_or_create(&mut self, name: &str) -> &mut Index {
        if !self.indices.contains_key(name) {
            let data_stream = self.is_data_stream(name);
            let now = chrono::Utc::now();
            let write_name: Arc<str> = match (data_stream, self.flavor) {
                (false, _) => name.into(),
                (true, Flavor::Elasticsearch) => format!(".ds-{name}-{}-000001", now.format("%Y.%m.%d")).into(),
                (true, Flavor::OpenSearch) => format!(".ds-{name}-000001").into(),
            };
            let index = Index {
                uuid: self.new_uuid(),
                write_name,
                data_stream,
                created_ms: now.timestamp_millis(),
                docs: HashMap::new(),
                order: Vec::new(),
                tombstones: HashMap::new(),
                next_seq_no: 0,
            };
            self.indices.insert(name.to_string(), index);
        }
        self.indices.get_mut(name).expect("just inserted")
    }

    /// Executes a bulk's operations in order.
    pub(super) fn apply(&mut self, ops: Vec<Op<'_>>, faults: &EsFaults) -> Vec<Item> {
        ops.into_iter().map(|op| self.apply_one(op, faults)).collect()
    }

    fn apply_one(&mut self, op: Op<'_>, faults: &EsFaults) -> Item {
        let given_id: Option<Arc<str>> = op.id.as_deref().map(Arc::from);
        let failed = |index: Arc<str>, id: Option<Arc<str>>, status: u16, error: String| Item {
            action: op.action,
            index,
            id,
            outcome: Outcome::Failed { status, error },
        };
        let name = op.index.as_ref();
        if let Some(reason) = invalid_index_name(name) {
            let rest = format!(r#","index_uuid":"_na_","index":{}"#, json_str(name));
            let error = error_object("invalid_index_name_exception", &reason, &rest);
            return failed(name.into(), given_id, 400, error);
        }
        let external = matches!(op.version, Some((_, VersionType::External | VersionType::ExternalGte)));
        let exists = self.indices.contains_key(name);
        let data_stream = if exists { self.indices[name].data_stream } else { self.is_data_stream(name) };
        if data_stream && op.action != Action::Create {
            let reason = "only write ops with an op_type of create are allowed in data streams";
            return failed(name.into(), given_id, 400, error_object("illegal_argument_exception", reason, ""));
        }
        // Deletes do not create indices (unless externally versioned).
        if op.action == Action::Delete && !exists && !external {
            return failed(name.into(), given_id, 404, index_not_found(name, "index_expression"));
        }
        let id = match given_id {
            Some(id) => id,
            None => self.new_doc_id(),
        };
        let draw: f64 = self.rng.random();
        let flavor = self.flavor;
        let index = self.index_or_create(name);
        let write_name = index.write_name.clone();
        let failed = |status: u16, error: String| failed(write_name.clone(), Some(id.clone()), status, error);
        if draw < faults.item_429_rate {
            let reason = format!(
                "rejected execution of primary operation [shard_detail=[{}][0][C], shard_primary_operation_bytes=1048576, \
                 shard_max_primary_operation_bytes=107374182] on EsThreadPoolExecutor[name = es-emulator/write, \
                 queue capacity = 10000, active threads = 2, queued tasks = 10000]",
                index.write_name
            );
            return failed(429, error_object("es_rejected_execution_exception", &reason, ""));
        }
        if draw < faults.item_429_rate + faults.item_500_rate {
            let reason = format!("[{}][0] primary shard failed while indexing [{id}]", index.write_name);
            return failed(500, error_object("exception", &reason, ""));
        }
        if let Some(doc) = &op.doc {
            if let Some(failure) = &doc.failure {
                return failed(400, parse_failure(flavor, failure, &id));
            }
            if index.data_stream && doc.timestamp != Timestamp::Single {
                let cause = match (flavor, doc.timestamp) {
                    (Flavor::OpenSearch, _) => {
                        "documents must contain a single-valued timestamp field '@timestamp' of date type".to_string()
                    }
                    (Flavor::Elasticsearch, Timestamp::Multiple) => {
                        "data stream timestamp field [@timestamp] encountered multiple values".to_string()
                    }
                    (Flavor::Elasticsearch, _) => "data stream timestamp field [@timestamp] is missing".to_string(),
                };
                return failed(400, mapping_error(flavor, doc.end_column, "failed to parse", &cause));
            }
        }

        let current = index.docs.get(&id).map(|d| (d.version, d.seq_no));
        let tombstone = index.tombstones.get(&id).copied();
        if let Err(reason) = check_versions(&op, &id, current) {
            return failed(409, shard_error(index, "version_conflict_engine_exception", reason));
        }
        let next_version = |current: Option<u64>| match op.version {
            Some((v, VersionType::External | VersionType::ExternalGte)) => v as u64,
            _ => current.or(tombstone).map_or(1, |v| v + 1),
        };
        let done = |version, result, status, seq_no| Item {
            action: op.action,
            index: write_name.clone(),
            id: Some(id.clone()),
            outcome: Outcome::Done { version, result, status, seq_no, noop: false },
        };
        match op.action {
            Action::Create | Action::Index => {
                if op.action == Action::Create
                    && let Some((version, _)) = current
                {
                    self.conflicts += 1;
                    let index = &self.indices[name];
                    let reason = format!("[{id}]: version conflict, document already exists (current version [{version}])");
                    return failed(409, shard_error(index, "version_conflict_engine_exception", reason));
                }
                let source: Box<str> = op.doc.as_ref().map_or("{}", |d| d.source).into();
                let version = next_version(current.map(|c| c.0));
                let seq_no = index.insert(id.clone(), version, source);
                if current.is_some() { done(version, "updated", 200, seq_no) } else { done(version, "created", 201, seq_no) }
            }
            Action::Delete => {
                let version = next_version(current.map(|c| c.0));
                let seq_no = index.next_seq_no();
                index.docs.remove(&id);
                index.tombstones.insert(id.clone(), version);
                if current.is_some() { done(version, "deleted", 200, seq_no) } else { done(version, "not_found", 404, seq_no) }
            }
            Action::Update => {
                let update = op.update.as_ref().expect("update lines are parsed");
                if update.script {
                    let reason = "script updates are not supported by this emulator";
                    return failed(400, error_object("illegal_argument_exception", reason, ""));
                }
                let existing = index.docs.get(&id).map(|d| serde_json::from_str::<Map<String, Value>>(&d.source).unwrap_or_default());
                let (source, created) = match existing {
                    Some(mut source) => {
                        let before = source.clone();
                        merge(&mut source, update.doc.clone().unwrap_or_default());
                        if update.detect_noop && source == before {
                            let (version, seq_no) = current.expect("document exists");
                            let outcome = Outcome::Done { version, result: "noop", status: 200, seq_no, noop: true };
                            return Item { action: op.action, index: write_name.clone(), id: Some(id.clone()), outcome };
                        }
                        (source, false)
                    }
                    None => match (&update.upsert, update.doc_as_upsert) {
                        (Some(upsert), _) => (upsert.clone(), true),
                        (None, true) => (update.doc.clone().unwrap_or_default(), true),
                        (None, false) => {
                            let reason = format!("[{id}]: document missing");
                            return failed(404, shard_error(index, "document_missing_exception", reason));
                        }
                    },
                };
                let version = next_version(current.map(|c| c.0));
                let text = serde_json::to_string(&source).unwrap_or_else(|_| "{}".into());
                let seq_no = index.insert(id.clone(), version, text.into());
                if created { done(version, "created", 201, seq_no) } else { done(version, "updated", 200, seq_no) }
            }
        }
    }
}

/// Optimistic concurrency (`if_seq_no`/`if_primary_term`) and external versions.
fn check_versions(op: &Op<'_>, id: &str, current: Option<(u64, u64)>) -> Result<(), String> {
    if let (Some(seq_no), Some(term)) = (op.if_seq_no, op.if_primary_term) {
        let required = format!("[{id}]: version conflict, required seqNo [{seq_no}], primary term [{term}].");
        return match current {
            None => Err(format!("{required} but no document was found")),
            Some((_, current_seq)) if current_seq as i64 != seq_no || term != 1 => {
                Err(format!("{required} current document has seqNo [{current_seq}] and primary term [1]"))
            }
            Some(_) => Ok(()),
        };
    }
    match (op.version, current) {
        (Some((v, VersionType::External)), Some((cv, _))) if v <= cv as i64 => {
            Err(format!("[{id}]: version conflict, current version [{cv}] is higher or equal to the one provided [{v}]"))
        }
        (Some((v, VersionType::ExternalGte)), Some((cv, _))) if v < cv as i64 => {
            Err(format!("[{id}]: version conflict, current version [{cv}] is higher than the one provided [{v}]"))
        }
        _ => Ok(()),
    }
}

/// Merges a partial document as `update` does: objects recursively, anything else replaced.
fn merge(target: &mut Map<String, Value>, partial: Map<String, Value>) {
    for (key, value) in partial {
        match (target.get_mut(&key), value) {
            (Some(Value::Object(existing)), Value::Object(inner)) => merge(existing, inner),
            (_, value) => {
                target.insert(key, value);
            }
        }
    }
}

/// A document the mapping refuses: Elasticsearch 8 says `document_parsing_exception` and prefixes
/// the position, OpenSearch says `mapper_parsing_exception`.
fn mapping_error(flavor: Flavor, column: usize, reason: &str, cause: &str) -> String {
    let caused_by = format!(r#","caused_by":{}"#, error_object("illegal_argument_exception", cause, ""));
    match flavor {
        Flavor::Elasticsearch => {
            let reason = format!("[1:{column}] {reason}: {cause}");
            error_object("document_parsing_exception", &reason, &caused_by)
        }
        Flavor::OpenSearch => error_object("mapper_parsing_exception", reason, &caused_by),
    }
}

fn parse_failure(flavor: Flavor, failure: &DocFailure, id: &str) -> String {
    match failure {
        DocFailure::Malformed { column, message } => {
            let caused_by = format!(r#","caused_by":{}"#, error_object("json_parse_exception", message, ""));
            match flavor {
                Flavor::Elasticsearch => error_object("document_parsing_exception", &format!("[1:{column}] failed to parse"), &caused_by),
                Flavor::OpenSearch => error_object("mapper_parsing_exception", "failed to parse", &caused_by),
            }
        }
        DocFailure::Empty => plain_mapping_error(flavor, 1, "failed to parse, document is empty"),
        DocFailure::NotAnObject => plain_mapping_error(flavor, 1, "Malformed content, must start with an object"),
        DocFailure::Metadata { field, column } => {
            let reason =
                format!("Field [{field}] is a metadata field and cannot be added inside a document. Use the index API request parameters.");
            plain_mapping_error(flavor, *column, &reason)
        }
        DocFailure::Rejected { field, preview, column } => {
            let preview: String = preview.chars().take(20).collect();
            let cause = format!("For input string: \"{preview}\"");
            let reason =
                format!("failed to parse field [{field}] of type [long] in document with id '{id}'. Preview of field's value: '{preview}'");
            let caused_by = format!(r#","caused_by":{}"#, error_object("illegal_argument_exception", &cause, ""));
            match flavor {
                Flavor::Elasticsearch => error_object("document_parsing_exception", &format!("[1:{column}] {reason}"), &caused_by),
                Flavor::OpenSearch => error_object("mapper_parsing_exception", &reason, &caused_by),
            }
        }
    }
}

fn plain_mapping_error(flavor: Flavor, column: usize, reason: &str) -> String {
    match flavor {
        Flavor::Elasticsearch => error_object("document_parsing_exception", &format!("[1:{column}] {reason}"), ""),
        Flavor::OpenSearch => error_object("mapper_parsing_exception", reason, ""),
    }
}
