//! User-defined mappings in VRL (the Vector Remap Language): a tool sluice has no decoder for
//! needs no Rust code. The program sees the vendor JSON as `.` and leaves in `.` the model fields
//! it knows (any subset):
//!
//! ```text
//! title, description, severity (info|low|medium|high|critical), kind, category (IDMEFv2 V08),
//! time (RFC 3339 or epoch), action, product,
//! source / target: {ip, port, hostname, user, url, process, protocol, mac},
//! rule: {id, name}, mitre: {technique_id, technique, tactic}
//! ```
//!
//! The raw event is never changed; the mapping's result travels beside it.

use std::sync::Arc;

use serde_json::Value;
use vrl::compiler::{Context, Program, TargetValue, TimeZone, state::RuntimeState};
use vrl::value::Secrets;

use crate::model::{Endpoint, Kind, Mitre, Rule, SecurityEvent};
use crate::vendors::fields::{int_at, level_from_word, parse_time, str_at};

/// A compiled mapping. Equal when their source text is equal (for config reloads).
#[derive(Clone)]
pub struct Mapping {
    source: Arc<str>,
    program: Arc<Program>,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping").field("source", &self.source).finish()
    }
}

impl PartialEq for Mapping {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Mapping {
    /// Compiles a VRL program; the error shows each problem with its line and column.
    pub fn compile(source: &str) -> Result<Mapping, String> {
        let functions = vrl::stdlib::all();
        match vrl::compiler::compile(source, &functions) {
            Ok(result) => Ok(Mapping { source: source.into(), program: Arc::new(result.program) }),
            Err(diagnostics) => Err(vrl::diagnostic::Formatter::new(source, diagnostics).to_string()),
        }
    }

    /// Runs the program on a vendor event and returns what it left in `.`.
    pub fn apply(&self, raw: &Value) -> Result<Value, String> {
        let mut target =
            TargetValue { value: raw.clone().into(), metadata: vrl::value::Value::Object(Default::default()), secrets: Secrets::default() };
        let mut state = RuntimeState::default();
        let timezone = TimeZone::default();
        let mut ctx = Context::new(&mut target, &mut state, &timezone);
        self.program.resolve(&mut ctx).map_err(|e| e.to_string())?;
        let out: Value = target.value.try_into().map_err(|e| format!("mapping result is not JSON: {e:?}"))?;
        if out.is_object() { Ok(out) } else { Err("the mapping must leave an object in `.`".into()) }
    }
}

/// Applies a mapping's result over the decoder's fields.
pub fn apply_overrides(m: &Value, e: &mut SecurityEvent) {
    if let Some(t) = str_at(m, "title") {
        e.title = t;
    }
    if let Some(d) = str_at(m, "description") {
        e.description = Some(d);
    }
    if let Some(s) = str_at(m, "severity")
        && let Some(level) = level_from_word(&s)
    {
        e.severity.level = level;
        e.severity.original = s;
    }
    if let Some(k) = str_at(m, "kind").and_then(|k| serde_json::from_value::<Kind>(Value::String(k)).ok()) {
        e.kind = k;
    }
    if let Some(c) = str_at(m, "category").and_then(|c| crate::model::known_category(&c)) {
        e.category = c;
    }
    if let Some(t) = str_at(m, "time").and_then(|t| parse_time(&t)) {
        e.time = t;
    }
    if let Some(a) = str_at(m, "action") {
        e.action = Some(a);
    }
    if let Some(p) = str_at(m, "product") {
        e.product = p;
    }
    for (key, side) in [("source", &mut e.source), ("target", &mut e.target)] {
        if let Some(v) = m.get(key) {
            overlay(v, side);
        }
    }
    if m.get("rule").is_some() {
        let rule = e.rule.get_or_insert_with(Rule::default);
        rule.id = str_at(m, "rule.id").or(rule.id.take());
        rule.name = str_at(m, "rule.name").or(rule.name.take());
    }
    if m.get("mitre").is_some() {
        e.mitre = vec![Mitre {
            technique_id: str_at(m, "mitre.technique_id"),
            technique: str_at(m, "mitre.technique"),
            tactic: str_at(m, "mitre.tactic"),
        }];
    }
}

fn overlay(v: &Value, ep: &mut Endpoint) {
    if let Some(ip) = str_at(v, "ip").and_then(|s| s.parse().ok()) {
        ep.ip = Some(ip);
    }
    if let Some(port) = int_at(v, "port").and_then(|p| u16::try_from(p).ok()).filter(|p| *p > 0) {
        ep.port = Some(port);
    }
    for (key, field) in [
        ("hostname", &mut ep.hostname),
        ("user", &mut ep.user),
        ("url", &mut ep.url),
        ("process", &mut ep.process),
        ("protocol", &mut ep.protocol),
        ("mac", &mut ep.mac),
    ] {
        if let Some(s) = str_at(v, key) {
            *field = Some(s);
        }
    }
}
