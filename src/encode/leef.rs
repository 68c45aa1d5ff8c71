//! IBM QRadar Log Event Extended Format, LEEF 2.0, from the normalized model.
//!
//! `LEEF:2.0|Vendor|Product|Version|EventID|DelimiterCharacter|key=value<delim>key=value…`
//!
//! LEEF has no escape mechanism for attribute values, so the delimiter is chosen per record: the
//! configured one (tab by default) unless a value contains it, else the first of a list of
//! alternatives that no value contains. Header fields escape `\` and `|` with a backslash. Line
//! breaks, which a LEEF record cannot carry, become spaces everywhere.

use std::fmt::Write;

use super::cef::{escape_header, severity};
use crate::model::SecurityEvent;

/// Tried in order when the configured delimiter occurs in a value.
const ALTERNATIVES: &[char] = &['\t', '^', '~', '\u{1f}', '\u{1e}', '\u{b6}', '\u{2021}'];

pub const DEV_TIME_FORMAT: &str = "MMM dd yyyy HH:mm:ss.SSS zzz";

/// Appends the LEEF 2.0 record of `e` (no trailing newline), separating attributes with
/// `delimiter` unless a value contains it.
pub fn encode(e: &SecurityEvent, delimiter: char, out: &mut String) {
    let attrs = attributes(e);
    let delimiter = std::iter::once(delimiter)
        .chain(ALTERNATIVES.iter().copied())
        .find(|d| !attrs.iter().any(|(_, v)| v.contains(*d)))
        .unwrap_or(delimiter);
    out.push_str("LEEF:2.0|");
    for field in [&e.vendor, &e.product, env!("CARGO_PKG_VERSION"), &event_id(e)] {
        escape_header(field, out);
        out.push('|');
    }
    write_delimiter(delimiter, out);
    out.push('|');
    for (i, (key, value)) in attrs.iter().enumerate() {
        if i > 0 {
            out.push(delimiter);
        }
        out.push_str(key);
        out.push('=');
        for c in value.chars() {
            // A value never holds the delimiter here unless all alternatives occur in values.
            out.push(if c == '\r' || c == '\n' || c == delimiter { ' ' } else { c });
        }
    }
}

fn event_id(e: &SecurityEvent) -> String {
    e.rule.as_ref().and_then(|r| r.id.clone()).unwrap_or_else(|| e.category.to_string())
}

/// Printable punctuation as itself; anything else (tab, control and non-ASCII characters, and
/// the header's own `|` and `\`) in the hex form `xHHHH` that LEEF 2.0 allows.
fn write_delimiter(d: char, out: &mut String) {
    if d.is_ascii_punctuation() && d != '|' && d != '\\' {
        out.push(d);
    } else {
        write!(out, "x{:02x}", d as u32).expect("writing to a String cannot fail");
    }
}

/// The attributes, IBM's predefined keys where one fits, in a stable order.
pub fn attributes(e: &SecurityEvent) -> Vec<(&'static str, String)> {
    let mut kv: Vec<(&'static str, String)> = Vec::with_capacity(24);
    kv.push(("devTime", e.time.format("%b %d %Y %H:%M:%S%.3f UTC").to_string()));
    kv.push(("devTimeFormat", DEV_TIME_FORMAT.into()));
    kv.push(("cat", e.category.to_string()));
    kv.push(("sev", severity(e.severity.level).to_string()));
    kv.push(("eventId", e.id.clone()));
    kv.push(("name", e.title.clone()));
    if let Some(d) = &e.description {
        kv.push(("msg", d.clone()));
    }
    if let Some(a) = &e.action {
        kv.push(("action", a.clone()));
    }
    let (s, t) = (&e.source, &e.target);
    for (key, value) in [
        ("src", s.ip.map(|ip| ip.to_string())),
        ("srcPort", s.port.map(|p| p.to_string())),
        ("srcHostName", s.hostname.clone()),
        ("srcMAC", s.mac.clone()),
        ("dst", t.ip.map(|ip| ip.to_string())),
        ("dstPort", t.port.map(|p| p.to_string())),
        ("dstHostName", t.hostname.clone()),
        ("dstMAC", t.mac.clone()),
        ("usrName", s.user.clone().or_else(|| t.user.clone())),
        ("proto", t.protocol.clone().or_else(|| s.protocol.clone())),
        ("url", t.url.clone().or_else(|| s.url.clone())),
        ("identHostName", e.analyzer.hostname.clone()),
    ] {
        if let Some(v) = value {
            kv.push((key, v));
        }
    }
    if let Some(file) = e.files.first() {
        if let Some(path) = &file.path {
            kv.push(("filePath", path.clone()));
        }
        if let Some((_, hash)) = file.hashes.first() {
            kv.push(("fileHash", hash.clone()));
        }
    }
    if let Some(rule) = &e.rule {
        if let Some(id) = &rule.id {
            kv.push(("ruleId", id.clone()));
        }
        if let Some(name) = &rule.name {
            kv.push(("ruleName", name.clone()));
        }
    }
    let techniques: Vec<&str> = e.mitre.iter().filter_map(|m| m.technique_id.as_deref()).collect();
    if !techniques.is_empty() {
        kv.push(("mitreTechnique", techniques.join(",")));
    }
    let tactics: Vec<&str> = e.mitre.iter().filter_map(|m| m.tactic.as_deref()).collect();
    if !tactics.is_empty() {
        kv.push(("mitreTactic", tactics.join(",")));
    }
    kv.push(("tenant", e.tenant.clone()));
    kv.push(("riskScore", e.risk_score.to_string()));
    kv.push(("vendorSeverity", e.severity.original.clone()));
    kv
}

#[cfg(test)]
pub(crate) mod parse {
    //! A strict LEEF 2.0 parser for tests.

    #[derive(Debug, PartialEq)]
    pub struct Record {
        pub header: Vec<String>,
        pub delimiter: char,
        pub attributes: Vec<(String, String)>,
    }

    pub fn parse(line: &str) -> Result<Record, String> {
        if line.contains(['\n', '\r']) {
            return Err("raw line break".into());
        }
        let rest = line.strip_prefix("LEEF:2.0|").ok_or("no LEEF:2.0| prefix")?;
        let (mut header, body) = crate::encode::cef::parse::header_fields(rest, 5)?;
        let spec = header.pop().expect("five fields");
        let delimiter = match spec.strip_prefix("0x").or_else(|| spec.strip_prefix('x')) {
            Some(hex) if (1..=4).contains(&hex.len()) => {
                char::from_u32(u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?).ok_or("bad delimiter code")?
            }
            _ if spec.chars().count() == 1 => spec.chars().next().expect("one char"),
            _ => return Err(format!("bad delimiter {spec:?}")),
        };
        let mut attributes = Vec::new();
        if !body.is_empty() {
            for attr in body.split(delimiter) {
                let (k, v) = attr.split_once('=').ok_or_else(|| format!("attribute without `=`: {attr:?}"))?;
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!("bad key {k:?}"));
                }
                attributes.push((k.to_string(), v.to_string()));
            }
        }
        Ok(Record { header, delimiter, attributes })
    }
}
