//! Request parameters as the API's connexion layer checks them against the OpenAPI spec before
//! any controller runs (`strict_validation`): unknown query parameters, type coercion, then the
//! JSON-schema keywords and the API's custom formats (`api/api/validator.py`), query parameters
//! in spec order and then the path's. The messages are jsonschema's, run through the API's
//! `_cleanup_detail_field`.

use std::collections::HashMap;

/// What a parameter must be.
#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Int {
        min: i64,
        max: Option<i64>,
    },
    Str(Option<Format>),
    Enum(&'static [&'static str]),
    /// Comma-separated (or repeated) values, each checked with the format or enum.
    List(Item),
    /// `AgentID`: `minLength: 3`, `format: numbers`.
    AgentId,
}

#[derive(Clone, Copy)]
enum Item {
    Format(Format),
    Enum(&'static [&'static str]),
    AgentId,
}

#[derive(Clone, Copy, PartialEq)]
enum Format {
    Names,
    Alphanumeric,
    Sort,
    Search,
    Timeframe,
    Hash,
    GroupNames,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Names => "names",
            Format::Alphanumeric => "alphanumeric",
            Format::Sort => "sort",
            Format::Search => "search",
            Format::Timeframe => "timeframe",
            Format::Hash => "hash",
            Format::GroupNames => "group_names",
        }
    }

    fn check(self, v: &str) -> bool {
        let word = |c: char| c.is_alphanumeric() || c == '_';
        match self {
            Format::Names => !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || "_-.%".contains(c)),
            Format::Alphanumeric => !v.is_empty() && v.chars().all(|c| word(c) || ",-.+:".contains(c) || c.is_whitespace()),
            Format::Sort => !v.is_empty() && v.chars().all(|c| word(c) || "-,+.".contains(c) || c.is_whitespace()),
            Format::Search => !v.is_empty() && !v.contains([';', '|', '&', '^', '*', '>']),
            Format::Timeframe => {
                let digits = v.bytes().take_while(u8::is_ascii_digit).count();
                digits > 0 && (digits == v.len() || (digits + 1 == v.len() && v.ends_with(['d', 'h', 'm', 's'])))
            }
            Format::Hash => v.is_empty() || (v.bytes().all(|b| b.is_ascii_hexdigit()) && [32, 40, 56, 64, 96, 128].contains(&v.len())),
            Format::GroupNames => {
                !v.is_empty() && !matches!(v, "." | ".." | "all") && v.chars().all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c))
            }
        }
    }
}

/// A parameter: its name, what it must be, and its schema as jsonschema prints it (the items'
/// schema for lists, which is where their errors point).
pub(super) struct Spec {
    name: &'static str,
    kind: Kind,
    schema: &'static str,
}

const fn spec(name: &'static str, kind: Kind, schema: &'static str) -> Spec {
    Spec { name, kind, schema }
}

const STATUSES: &[&str] = &["active", "pending", "never_connected", "disconnected"];
const BOOL: &str = "{'default': False, 'type': 'boolean'}";
const ALNUM: &str = "{'format': 'alphanumeric', 'type': 'string'}";
const AGENT_ID: &str = "{'description': 'Agent ID', 'format': 'numbers', 'minLength': 3, 'type': 'string'}";

const PRETTY: Spec = spec("pretty", Kind::Bool, BOOL);
const WAIT: Spec = spec("wait_for_complete", Kind::Bool, BOOL);
const OFFSET: Spec = spec("offset", Kind::Int { min: 0, max: None }, "{'default': 0, 'format': 'int32', 'minimum': 0, 'type': 'integer'}");
const LIMIT: Spec = spec(
    "limit",
    Kind::Int { min: 1, max: Some(100_000) },
    "{'default': 500, 'format': 'int32', 'maximum': 100000, 'minimum': 1, 'type': 'integer'}",
);
const SELECT: Spec = spec("select", Kind::List(Item::Format(Format::Names)), "{'format': 'names', 'type': 'string'}");
const SORT: Spec = spec("sort", Kind::Str(Some(Format::Sort)), "{'format': 'sort', 'type': 'string'}");
const SEARCH: Spec = spec("search", Kind::Str(Some(Format::Search)), "{'format': 'search', 'type': 'string'}");
const Q: Spec = spec("q", Kind::Str(None), "{'type': 'string'}");
const DISTINCT: Spec = spec("distinct", Kind::Bool, BOOL);

const fn alnum(name: &'static str) -> Spec {
    spec(name, Kind::Str(Some(Format::Alphanumeric)), ALNUM)
}

const fn hash(name: &'static str) -> Spec {
    spec(name, Kind::Str(Some(Format::Hash)), "{'format': 'hash', 'type': 'string'}")
}

pub(super) const AGENTS: &[Spec] = &[
    PRETTY,
    WAIT,
    spec("agents_list", Kind::List(Item::AgentId), AGENT_ID),
    OFFSET,
    LIMIT,
    SELECT,
    SORT,
    SEARCH,
    spec(
        "status",
        Kind::List(Item::Enum(STATUSES)),
        "{'enum': ['active', 'pending', 'never_connected', 'disconnected'], 'type': 'string'}",
    ),
    Q,
    spec("older_than", Kind::Str(Some(Format::Timeframe)), "{'format': 'timeframe', 'type': 'string'}"),
    alnum("os.platform"),
    alnum("os.version"),
    alnum("os.name"),
    alnum("manager"),
    alnum("version"),
    spec("group", Kind::Str(Some(Format::GroupNames)), "{'description': 'Group name', 'format': 'group_names', 'type': 'string'}"),
    spec("node_name", Kind::Str(Some(Format::Names)), "{'format': 'names', 'type': 'string'}"),
    alnum("name"),
    alnum("ip"),
    alnum("registerIP"),
    spec("group_config_status", Kind::Enum(&["synced", "not synced"]), "{'enum': ['synced', 'not synced'], 'type': 'string'}"),
    DISTINCT,
];

pub(super) const SYSCHECK: &[Spec] = &[
    PRETTY,
    WAIT,
    OFFSET,
    LIMIT,
    SORT,
    SEARCH,
    SELECT,
    spec("file", Kind::Str(None), "{'format': 'paths', 'type': 'string'}"),
    spec("arch", Kind::Enum(&["[x32]", "[x64]"]), "{'enum': ['[x32]', '[x64]'], 'type': 'string'}"),
    alnum("value.name"),
    alnum("value.type"),
    spec(
        "type",
        Kind::Enum(&["file", "registry_key", "registry_value"]),
        "{'enum': ['file', 'registry_key', 'registry_value'], 'type': 'string'}",
    ),
    spec("summary", Kind::Bool, BOOL),
    hash("md5"),
    hash("sha1"),
    hash("sha256"),
    hash("hash"),
    DISTINCT,
    Q,
];

pub(super) const PACKAGES: &[Spec] = &[
    PRETTY,
    WAIT,
    OFFSET,
    LIMIT,
    SORT,
    SEARCH,
    SELECT,
    spec("vendor", Kind::Str(None), "{'type': 'string'}"),
    alnum("name"),
    alnum("architecture"),
    alnum("format"),
    spec("version", Kind::Str(None), "{'type': 'string'}"),
    Q,
    DISTINCT,
];

pub(super) const OS: &[Spec] = &[PRETTY, WAIT, SELECT];

pub(super) const INFO: &[Spec] = &[PRETTY];

pub(super) const LOGIN: &[Spec] = &[spec("raw", Kind::Bool, "{'type': 'boolean'}")];

/// A checked parameter value.
#[derive(Clone, Debug)]
pub(super) enum Param {
    Bool(bool),
    Int(i64),
    Str(String),
    List(Vec<String>),
}

/// The request's parameters once checked, defaults not filled in.
#[derive(Debug, Default)]
pub(super) struct Params(HashMap<&'static str, Param>);

impl Params {
    pub(super) fn bool(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(Param::Bool(true)))
    }

    pub(super) fn int(&self, name: &str, default: i64) -> i64 {
        match self.0.get(name) {
            Some(Param::Int(i)) => *i,
            _ => default,
        }
    }

    pub(super) fn str(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(Param::Str(s)) => Some(s),
            _ => None,
        }
    }

    pub(super) fn list(&self, name: &str) -> Option<&[String]> {
        match self.0.get(name) {
            Some(Param::List(l)) => Some(l),
            _ => None,
        }
    }
}

/// Python's `repr` of a string.
pub(super) fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_list(items: &[&str]) -> String {
    format!("[{}]", items.iter().map(|s| py_repr(s)).collect::<Vec<_>>().join(", "))
}

/// A jsonschema error as `str(ValidationError)` prints it, after the API's cleanup.
fn schema_error(message: String, keyword: &str, spec: &Spec, item: Option<usize>, instance: String) -> String {
    let (schema_path, instance_path) = match item {
        Some(i) => ("schema['items']".to_string(), format!("instance[{i}]")),
        None => ("schema".to_string(), "instance".to_string()),
    };
    format!("{message}. Failed validating '{keyword}' in {schema_path}: {}. On {instance_path}: {instance}", spec.schema)
}

fn check_string(spec: &Spec, value: &str, item: Option<usize>, format: Option<Format>, agent_id: bool) -> Result<(), String> {
    let repr = py_repr(value);
    if agent_id && value.chars().count() < 3 {
        return Err(schema_error(format!("{repr} is too short"), "minLength", spec, item, repr));
    }
    let format = if agent_id { Some(None) } else { format.map(Some) };
    match format {
        // `numbers`, the agent ids' format.
        Some(None) if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) => {
            Err(schema_error(format!("{repr} is not a 'numbers'"), "format", spec, item, repr))
        }
        Some(Some(f)) if !f.check(value) => Err(schema_error(format!("{repr} is not a {}", py_repr(f.name())), "format", spec, item, repr)),
        _ => Ok(()),
    }
}

fn check_enum(spec: &Spec, value: &str, item: Option<usize>, values: &[&str]) -> Result<(), String> {
    if values.contains(&value) {
        return Ok(());
    }
    let repr = py_repr(value);
    Err(schema_error(format!("{repr} is not one of {}", py_list(values)), "enum", spec, item, repr))
}

/// Checks the query string against `specs` and the path's agent id, if any, in connexion's
/// order. The error is the 400 answer's `detail`.
pub(super) fn validate(specs: &[Spec], query: &[(String, String)], agent_id: Option<&str>) -> Result<Params, String> {
    let mut extra: Vec<&str> = query.iter().map(|(k, _)| k.as_str()).filter(|k| !specs.iter().any(|s| s.name == *k)).collect();
    if !extra.is_empty() {
        extra.sort_unstable();
        extra.dedup();
        return Err(format!("Extra query parameter(s) {} not in spec", extra.join(",")));
    }
    let mut params = Params::default();
    for spec in specs {
        let values: Vec<&str> = query.iter().filter(|(k, _)| k == spec.name).map(|(_, v)| v.as_str()).collect();
        let Some(last) = values.last().copied() else { continue };
        let wrong_type = |t: &str| format!("Wrong type, expected '{t}' for query parameter '{}'", spec.name);
        let param = match spec.kind {
            Kind::Bool => match last.to_ascii_lowercase().as_str() {
                "true" => Param::Bool(true),
                "false" => Param::Bool(false),
                _ => return Err(wrong_type("boolean")),
            },
            Kind::Int { min, max } => {
                let n: i64 = last.trim().parse().map_err(|_| wrong_type("integer"))?;
                if n < min {
                    return Err(schema_error(format!("{n} is less than the minimum of {min}"), "minimum", spec, None, n.to_string()));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    return Err(schema_error(format!("{n} is greater than the maximum of {max}"), "maximum", spec, None, n.to_string()));
                }
                Param::Int(n)
            }
            Kind::Str(format) => {
                check_string(spec, last, None, format, false)?;
                Param::Str(last.to_string())
            }
            Kind::Enum(values) => {
                check_enum(spec, last, None, values)?;
                Param::Str(last.to_string())
            }
            Kind::AgentId => {
                check_string(spec, last, None, None, true)?;
                Param::Str(last.to_string())
            }
            Kind::List(item) => {
                let items: Vec<String> = values.iter().flat_map(|v| v.split(',')).map(str::to_string).collect();
                for (i, v) in items.iter().enumerate() {
                    match item {
                        Item::Format(f) => check_string(spec, v, Some(i), Some(f), false)?,
                        Item::Enum(values) => check_enum(spec, v, Some(i), values)?,
                        Item::AgentId => check_string(spec, v, Some(i), None, true)?,
                    }
                }
                Param::List(items)
            }
        };
        params.0.insert(spec.name, param);
    }
    if let Some(id) = agent_id {
        let path = Spec { name: "agent_id", kind: Kind::AgentId, schema: AGENT_ID };
        check_string(&path, id, None, None, true)?;
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn messages() {
        assert_eq!(validate(AGENTS, &q(&[("foo", "1"), ("bar", "2")]), None).unwrap_err(), "Extra query parameter(s) bar,foo not in spec");
        assert_eq!(
            validate(AGENTS, &q(&[("limit", "x")]), None).unwrap_err(),
            "Wrong type, expected 'integer' for query parameter 'limit'"
        );
        assert_eq!(
            validate(AGENTS, &q(&[("limit", "100001")]), None).unwrap_err(),
            "100001 is greater than the maximum of 100000. Failed validating 'maximum' in schema: {'default': 500, 'format': 'int32', 'maximum': 100000, 'minimum': 1, 'type': 'integer'}. On instance: 100001"
        );
        assert_eq!(
            validate(AGENTS, &q(&[("status", "active,gone")]), None).unwrap_err(),
            "'gone' is not one of ['active', 'pending', 'never_connected', 'disconnected']. Failed validating 'enum' in schema['items']: {'enum': ['active', 'pending', 'never_connected', 'disconnected'], 'type': 'string'}. On instance[1]: 'gone'"
        );
        assert_eq!(
            validate(OS, &q(&[]), Some("01")).unwrap_err(),
            "'01' is too short. Failed validating 'minLength' in schema: {'description': 'Agent ID', 'format': 'numbers', 'minLength': 3, 'type': 'string'}. On instance: '01'"
        );
        assert!(validate(OS, &q(&[]), Some("abc")).unwrap_err().starts_with("'abc' is not a 'numbers'"));
        let p = validate(AGENTS, &q(&[("select", "id,name"), ("select", "ip"), ("pretty", "TRUE")]), None).unwrap();
        assert_eq!(p.list("select").unwrap(), ["id", "name", "ip"]);
        assert!(p.bool("pretty"));
        assert_eq!(py_repr("it's"), "\"it's\"");
    }
}
