//! Parsing a bulk body the way Elasticsearch's `BulkRequestParser` does: line by line, blank
//! action lines skipped, a trailing action without its source line dropped, a body not ending in
//! a newline refused, then the request validated as a whole. Sources are only probed (is it a JSON
//! object, which of the interesting top-level fields it has), outside the store's lock.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::net::{JsonStr, RawEntries};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    Index,
    Create,
    Update,
    Delete,
}

impl Action {
    pub(super) fn name(self) -> &'static str {
        match self {
            Action::Index => "index",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VersionType {
    Internal,
    External,
    ExternalGte,
}

/// One operation of a bulk, after validation.
pub(super) struct Op<'a> {
    pub action: Action,
    pub index: Cow<'a, str>,
    pub id: Option<Cow<'a, str>>,
    pub if_seq_no: Option<i64>,
    pub if_primary_term: Option<i64>,
    pub version: Option<(i64, VersionType)>,
    /// `index` and `create`: the document line.
    pub doc: Option<Doc<'a>>,
    pub update: Option<Update>,
}

/// A document line and what Elasticsearch's document parser would make of it.
pub(super) struct Doc<'a> {
    pub source: &'a str,
    pub failure: Option<DocFailure>,
    pub timestamp: Timestamp,
    /// Column just past the document, where "field missing" errors point.
    pub end_column: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum DocFailure {
    Malformed { column: usize, message: String },
    Empty,
    NotAnObject,
    Metadata { field: String, column: usize },
    Rejected { field: String, preview: String, column: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timestamp {
    Missing,
    Single,
    Multiple,
}

/// The body of an `update` line.
pub(super) struct Update {
    pub doc: Option<Map<String, Value>>,
    pub upsert: Option<Map<String, Value>>,
    pub doc_as_upsert: bool,
    pub detect_noop: bool,
    pub script: bool,
}

/// A whole-request 400: Elasticsearch's exception type and reason.
#[derive(Debug, PartialEq)]
pub(super) struct BulkError {
    pub kind: &'static str,
    pub reason: String,
}

fn illegal(reason: String) -> BulkError {
    BulkError { kind: "illegal_argument_exception", reason }
}

fn x_content(error: &serde_json::Error) -> BulkError {
    BulkError { kind: "x_content_parse_exception", reason: format!("[{}:{}] {}", error.line(), error.column(), message(error)) }
}

/// serde's message without its " at line L column C" suffix.
fn message(error: &serde_json::Error) -> String {
    let text = error.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Fields Elasticsearch manages itself, refused inside a document.
const METADATA_FIELDS: &[&str] =
    &["_id", "_index", "_routing", "_source", "_seq_no", "_primary_term", "_version", "_ignored", "_field_names", "_tier"];

/// The parser's name for the token a JSON value starts with.
fn token(raw: &str) -> &'static str {
    match raw.as_bytes().first() {
        Some(b'{') => "START_OBJECT",
        Some(b'[') => "START_ARRAY",
        Some(b'"') => "VALUE_STRING",
        Some(b't' | b'f') => "VALUE_BOOLEAN",
        Some(b'n') => "VALUE_NULL",
        _ => "VALUE_NUMBER",
    }
}

/// A scalar's text, as the parser's `text()` gives it: strings unquoted, others verbatim.
fn text(raw: &RawValue) -> Cow<'_, str> {
    match serde_json::from_str::<JsonStr<'_>>(raw.get()) {
        Ok(JsonStr(s)) => s,
        Err(_) => Cow::Borrowed(raw.get()),
    }
}

fn long(raw: &RawValue) -> Result<i64, BulkError> {
    let t = text(raw);
    t.trim().parse().map_err(|_| illegal(format!("For input string: \"{t}\"")))
}

/// One action line, before its source line is read.
struct Meta<'a> {
    action: Action,
    index: Option<Cow<'a, str>>,
    id: Option<Cow<'a, str>>,
    op_type: Option<Cow<'a, str>>,
    version: Option<i64>,
    version_type: VersionType,
    if_seq_no: Option<i64>,
    if_primary_term: Option<i64>,
}

/// `Ok(None)` for a blank line.
fn action_line<'a>(line: &'a [u8], n: usize) -> Result<Option<Meta<'a>>, BulkError> {
    let text_line = std::str::from_utf8(line)
        .map_err(|_| BulkError { kind: "x_content_parse_exception", reason: "[1:1] Invalid UTF-8 start byte".into() })?;
    let trimmed = text_line.trim_ascii();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !trimmed.starts_with('{') {
        let mut values = serde_json::Deserializer::from_str(trimmed).into_iter::<&RawValue>();
        return match values.next() {
            Some(Ok(raw)) => {
                Err(illegal(format!("Malformed action/metadata line [{n}], expected START_OBJECT but found [{}]", token(raw.get()))))
            }
            Some(Err(e)) => Err(x_content(&e)),
            None => Ok(None),
        };
    }
    // Trailing data after the object is ignored, as Elasticsearch 8 does (with a warning).
    let mut de = serde_json::Deserializer::from_str(trimmed);
    let RawEntries(entries) = RawEntries::deserialize(&mut de).map_err(|e| x_content(&e))?;
    let Some((action, meta)) = entries.into_iter().next() else {
        return Err(illegal(format!("Malformed action/metadata line [{n}], expected FIELD_NAME but found [END_OBJECT]")));
    };
    let action = match action.as_ref() {
        "index" => Action::Index,
        "create" => Action::Create,
        "update" => Action::Update,
        "delete" => Action::Delete,
        other => {
            return Err(illegal(format!(
                "Malformed action/metadata line [{n}], expected field [create], [delete], [index] or [update] but found [{other}]"
            )));
        }
    };
    if !meta.get().starts_with('{') {
        return Err(illegal(format!(
            "Malformed action/metadata line [{n}], expected START_OBJECT or END_OBJECT but found [{}]",
            token(meta.get())
        )));
    }
    let RawEntries(params) = serde_json::from_str(meta.get()).map_err(|e| x_content(&e))?;
    let mut out = Meta {
        action,
        index: None,
        id: None,
        op_type: None,
        version: None,
        version_type: VersionType::Internal,
        if_seq_no: None,
        if_primary_term: None,
    };
    for (field, value) in params {
        let simple = || {
            illegal(format!(
                "Malformed action/metadata line [{n}], expected a simple value for field [{field}] but found [{}]",
                token(value.get())
            ))
        };
        match token(value.get()) {
            "VALUE_NULL" => continue,
            "START_ARRAY" => return Err(simple()),
            "START_OBJECT" if field == "dynamic_templates" || field == "_source" => continue,
            "START_OBJECT" => return Err(simple()),
            _ => {}
        }
        match field.as_ref() {
            "_index" => out.index = Some(text(value)),
            "_id" => out.id = Some(text(value)),
            "op_type" => out.op_type = Some(text(value)),
            "version" => out.version = Some(long(value)?),
            "version_type" => {
                out.version_type = match text(value).as_ref() {
                    "internal" => VersionType::Internal,
                    "external" | "external_gt" => VersionType::External,
                    "external_gte" => VersionType::ExternalGte,
                    other => return Err(illegal(format!("No version type match [{other}]"))),
                }
            }
            "if_seq_no" => out.if_seq_no = Some(long(value)?),
            "if_primary_term" => out.if_primary_term = Some(long(value)?),
            "retry_on_conflict" => {
                long(value)?;
            }
            // Accepted and of no consequence on one node without pipelines or aliases.
            "routing" | "pipeline" | "_source" | "require_alias" | "require_data_stream" | "list_executed_pipelines" => {}
            _ => return Err(illegal(format!("Action/metadata line [{n}] contains an unknown parameter [{field}]"))),
        }
    }
    if out.action == Action::Update && (out.version.is_some() || out.version_type != VersionType::Internal) {
        return Err(illegal("Update requests do not support versioning. Please use `if_seq_no` and `if_primary_term` instead".into()));
    }
    Ok(Some(out))
}

/// The next line ending at a `\n` from `from`: `Ok(None)` at the end of the body.
fn next_line(data: &[u8], from: usize) -> Result<Option<(usize, usize)>, BulkError> {
    match data[from..].iter().position(|&b| b == b'\n') {
        Some(at) => Ok(Some((from, from + at))),
        None if from == data.len() => Ok(None),
        None => Err(illegal("The bulk request must be terminated by a newline [\\n]".into())),
    }
}

/// Parses and validates a bulk body (not empty: the caller answers that case).
pub(super) fn parse<'a>(data: &'a [u8], default_index: Option<&'a str>, reject: Option<&str>) -> Result<Vec<Op<'a>>, BulkError> {
    let mut ops = Vec::new();
    let mut pending: Vec<(Meta<'a>, Option<&'a [u8]>)> = Vec::new();
    let mut from = 0;
    let mut n = 0;
    while let Some((start, end)) = next_line(data, from)? {
        n += 1;
        from = end + 1;
        let Some(meta) = action_line(&data[start..end], n)? else { continue };
        if meta.action == Action::Delete {
            pending.push((meta, None));
            continue;
        }
        // An action whose source line never comes is dropped, as Elasticsearch drops it.
        let Some((start, end)) = next_line(data, from)? else { break };
        n += 1;
        from = end + 1;
        let line = &data[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pending.push((meta, Some(line)));
    }

    let mut problems = Vec::new();
    for (meta, line) in pending {
        let index = meta.index.or_else(|| default_index.map(Cow::Borrowed));
        let action = match (meta.action, meta.op_type.as_deref()) {
            (Action::Index, Some("create")) => Action::Create,
            (action, _) => action,
        };
        if index.is_none() {
            problems.push("index is missing".to_string());
        }
        if matches!(action, Action::Delete | Action::Update) && meta.id.is_none() {
            problems.push("id is missing".to_string());
        }
        if let Some(id) = meta.id.as_deref().filter(|id| id.len() > 512) {
            problems.push(format!("id [{id}] is too long, must be no longer than 512 bytes but was: {}", id.len()));
        }
        if action == Action::Create && meta.version_type != VersionType::Internal {
            problems.push("create operations only support internal versioning. use index instead".to_string());
        }
        if action == Action::Create && meta.if_seq_no.is_some() {
            problems.push("create operations do not support compare and set. use index instead".to_string());
        }
        if meta.version.is_some() && meta.version_type == VersionType::Internal {
            problems.push(
                "internal versioning can not be used for optimistic concurrency control. \
                 Please use `if_seq_no` and `if_primary_term` instead"
                    .to_string(),
            );
        }
        match (meta.if_seq_no, meta.if_primary_term) {
            (Some(_), None) => problems.push("ifSeqNo is set, but primary term is [0]".to_string()),
            (None, Some(term)) => problems.push(format!("ifSeqNo is unassigned, but primary term is [{term}]")),
            _ => {}
        }
        let mut op = Op {
            action,
            index: index.unwrap_or_default(),
            id: meta.id,
            if_seq_no: meta.if_seq_no,
            if_primary_term: meta.if_primary_term,
            version: meta.version.map(|v| (v, meta.version_type)),
            doc: None,
            update: None,
        };
        match (action, line) {
            (Action::Update, Some(line)) => {
                let update = update_body(line)?;
                if update.doc.is_none() && !update.script {
                    problems.push("script or doc is missing".to_string());
                }
                op.update = Some(update);
            }
            (Action::Index | Action::Create, Some(line)) => op.doc = Some(probe(line, reject)),
            _ => {}
        }
        ops.push(op);
    }
    if ops.is_empty() {
        problems.push("no requests added".to_string());
    }
    if problems.is_empty() {
        return Ok(ops);
    }
    let listed: String = problems.iter().enumerate().map(|(i, p)| format!("{}: {p};", i + 1)).collect();
    Err(BulkError { kind: "action_request_validation_exception", reason: format!("Validation Failed: {listed}") })
}

fn update_body(line: &[u8]) -> Result<Update, BulkError> {
    let value: Value = serde_json::from_slice(line).map_err(|e| x_content(&e))?;
    let Value::Object(fields) = value else {
        return Err(BulkError { kind: "x_content_parse_exception", reason: "[1:1] [UpdateRequest] Expected START_OBJECT".into() });
    };
    let mut update = Update { doc: None, upsert: None, doc_as_upsert: false, detect_noop: true, script: false };
    for (field, value) in fields {
        let object = |value: Value| match value {
            Value::Object(map) => Ok(map),
            _ => Err(BulkError {
                kind: "x_content_parse_exception",
                reason: format!("[1:2] [UpdateRequest] failed to parse field [{field}]"),
            }),
        };
        match field.as_str() {
            "doc" => update.doc = Some(object(value)?),
            "upsert" => update.upsert = Some(object(value)?),
            "doc_as_upsert" => update.doc_as_upsert = value.as_bool().unwrap_or(false),
            "detect_noop" => update.detect_noop = value.as_bool().unwrap_or(true),
            "script" => update.script = true,
            "scripted_upsert" | "_source" => {}
            _ => {
                return Err(BulkError {
                    kind: "x_content_parse_exception",
                    reason: format!("[1:2] [UpdateRequest] unknown field [{field}]"),
                });
            }
        }
    }
    Ok(update)
}

/// What indexing `line` would run into, short of the mapping itself.
pub(super) fn probe<'a>(line: &'a [u8], reject: Option<&str>) -> Doc<'a> {
    let failed = |failure| Doc { source: "", failure: Some(failure), timestamp: Timestamp::Missing, end_column: 1 };
    let Ok(text) = std::str::from_utf8(line) else {
        return failed(DocFailure::Malformed { column: 1, message: "Invalid UTF-8 middle byte".into() });
    };
    let text = text.trim_ascii();
    if text.is_empty() {
        return failed(DocFailure::Empty);
    }
    if !text.starts_with('{') {
        return failed(DocFailure::NotAnObject);
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = match RawEntries::deserialize(&mut de).and_then(|e| de.end().map(|()| e)) {
        Ok(RawEntries(entries)) => entries,
        Err(e) => return failed(DocFailure::Malformed { column: e.column(), message: message(&e) }),
    };
    let mut doc = Doc { source: text, failure: None, timestamp: Timestamp::Missing, end_column: text.chars().count() + 1 };
    let column = |raw: &RawValue| raw.get().as_ptr() as usize - text.as_ptr() as usize + 1;
    for (field, value) in entries {
        if METADATA_FIELDS.contains(&field.as_ref()) {
            doc.failure = Some(DocFailure::Metadata { field: field.into_owned(), column: column(value) });
            return doc;
        }
        if reject == Some(field.as_ref()) {
            let preview = text_preview(value);
            doc.failure = Some(DocFailure::Rejected { field: field.into_owned(), preview, column: column(value) });
            return doc;
        }
        if field == "@timestamp" {
            doc.timestamp = match value.get().as_bytes()[0] {
                b'n' => Timestamp::Missing,
                b'[' => match serde_json::from_str::<Vec<&RawValue>>(value.get()).map(|v| v.len()).unwrap_or(0) {
                    0 => Timestamp::Missing,
                    1 => Timestamp::Single,
                    _ => Timestamp::Multiple,
                },
                _ => Timestamp::Single,
            };
        }
    }
    doc
}

fn text_preview(raw: &RawValue) -> String {
    text(raw).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(body: &str) -> BulkError {
        match parse(body.as_bytes(), None, None) {
            Ok(_) => panic!("{body:?} parsed"),
            Err(e) => e,
        }
    }

    #[test]
    fn lines_and_actions() {
        let body = "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n\n{\"delete\":{\"_index\":\"a\",\"_id\":\"2\"}}\r\n\
                    {\"create\":{\"_id\":3}}\n{\"x\":2}\r\n{\"index\":{\"op_type\":\"create\"}}\n{}\n{\"index\":{}}\n";
        let ops = parse(body.as_bytes(), Some("d"), None).unwrap();
        let summary: Vec<(Action, &str, Option<&str>)> = ops.iter().map(|o| (o.action, o.index.as_ref(), o.id.as_deref())).collect();
        assert_eq!(
            summary,
            [
                (Action::Index, "a", Some("1")),
                (Action::Delete, "a", Some("2")),
                (Action::Create, "d", Some("3")),
                (Action::Create, "d", None)
            ]
        );
        assert_eq!(ops[2].doc.as_ref().unwrap().source, "{\"x\":2}");
    }

    #[test]
    fn whole_request_errors() {
        assert_eq!(err("{\"index\":{\"_index\":\"a\"}}\n{}"), illegal("The bulk request must be terminated by a newline [\\n]".into()));
        assert_eq!(err("[1]\n").reason, "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]");
        assert_eq!(err("{}\n").reason, "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]");
        assert_eq!(
            err("{\"index\":1}\n{}\n").reason,
            "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_NUMBER]"
        );
        assert_eq!(
            err("{\"index\":{\"_index\":\"a\"}}\n{}\n{\"upsert\":{}}\n{}\n").reason,
            "Malformed action/metadata line [3], expected field [create], [delete], [index] or [update] but found [upsert]"
        );
        assert_eq!(err("{\"index\":{\"_type\":\"doc\"}}\n{}\n").reason, "Action/metadata line [1] contains an unknown parameter [_type]");
        assert_eq!(
            err("{\"index\":{\"_id\":[1]}}\n{}\n").reason,
            "Malformed action/metadata line [1], expected a simple value for field [_id] but found [START_ARRAY]"
        );
        let broken = err("{\"index\":{\"_index\":\"a\"}\n{}\n");
        assert_eq!(broken.kind, "x_content_parse_exception");
        assert!(broken.reason.starts_with("[1:"), "{}", broken.reason);
        let missing = err("{\"index\":{}}\n{}\n{\"delete\":{\"_index\":\"a\"}}\n");
        assert_eq!(missing.kind, "action_request_validation_exception");
        assert_eq!(missing.reason, "Validation Failed: 1: index is missing;2: id is missing;");
        assert_eq!(err("\n").reason, "Validation Failed: 1: no requests added;");
    }

    #[test]
    fn probing_documents() {
        let doc = probe(br#"{"@timestamp":"2024-01-01T00:00:00Z","a":{"b":1}}"#, Some("b"));
        assert_eq!((doc.failure, doc.timestamp), (None, Timestamp::Single));
        let doc = probe(br#"{"a":1,"bad":"x"}"#, Some("bad"));
        assert_eq!(doc.failure, Some(DocFailure::Rejected { field: "bad".into(), preview: "x".into(), column: 14 }));
        assert_eq!(probe(br#"{"a":1}"#, None).timestamp, Timestamp::Missing);
        assert_eq!(probe(br#"{"@timestamp":[1,2]}"#, None).timestamp, Timestamp::Multiple);
        assert!(matches!(probe(br#"{"_id":"x"}"#, None).failure, Some(DocFailure::Metadata { .. })));
        assert!(matches!(probe(br#"{"a":}"#, None).failure, Some(DocFailure::Malformed { .. })));
        assert_eq!(probe(b"[1]", None).failure, Some(DocFailure::NotAnObject));
        assert_eq!(probe(b"  ", None).failure, Some(DocFailure::Empty));
    }
}
