//! ArcSight Common Event Format (CEF 0) from the normalized model.
//!
//! `CEF:0|Device Vendor|Device Product|Device Version|Device Event Class ID|Name|Severity|Extension`
//!
//! Escaping follows the CEF implementation standard: in header fields `\` → `\\` and `|` → `\|`;
//! in extension values `\` → `\\`, `=` → `\=`, newline → `\n`, carriage return → `\r`. Header
//! fields may not hold line breaks at all, so CR and LF there become spaces. The output never
//! contains a raw line break, so it is safe in a syslog message or a line-per-event file.

use std::fmt::Write;
use std::net::IpAddr;

use crate::model::{Level, SecurityEvent};

/// CEF severity (0–10) of a level: 0–3 low, 4–6 medium, 7–8 high, 9–10 very high. LEEF's
/// `sev` (1–10) uses the same numbers.
pub fn severity(level: Level) -> u8 {
    match level {
        Level::Info => 1,
        Level::Low => 3,
        Level::Medium => 5,
        Level::High => 7,
        Level::Critical => 10,
    }
}

/// Appends the CEF record of `e` (no trailing newline).
pub fn encode(e: &SecurityEvent, out: &mut String) {
    out.push_str("CEF:0|");
    for field in [&e.vendor, &e.product, env!("CARGO_PKG_VERSION"), &class_id(e), &e.title] {
        escape_header(field, out);
        out.push('|');
    }
    write!(out, "{}|", severity(e.severity.level)).expect("writing to a String cannot fail");
    let mut ext = Extension { out, first: true };
    for (key, value) in extension(e) {
        ext.push(key, &value);
    }
}

/// The Device Event Class ID: the rule's id, else the category.
fn class_id(e: &SecurityEvent) -> String {
    e.rule.as_ref().and_then(|r| r.id.clone()).unwrap_or_else(|| e.category.to_string())
}

/// The extension's key/value pairs, in a stable order, from the model's filled fields.
pub fn extension(e: &SecurityEvent) -> Vec<(&'static str, String)> {
    let mut kv: Vec<(&'static str, String)> = Vec::with_capacity(24);
    kv.push(("rt", e.time.timestamp_millis().to_string()));
    kv.push(("externalId", e.id.clone()));
    kv.push(("cat", e.category.to_string()));
    if let Some(a) = &e.action {
        kv.push(("act", a.clone()));
    }
    kv.push(("msg", e.description.clone().unwrap_or_else(|| e.title.clone())));
    endpoint(&mut kv, &e.source, ["src", "c6a2", "spt", "shost", "suser", "smac", "sproc"]);
    endpoint(&mut kv, &e.target, ["dst", "c6a3", "dpt", "dhost", "duser", "dmac", "dproc"]);
    if kv.iter().any(|(k, _)| *k == "c6a2") {
        kv.push(("c6a2Label", "Source IPv6 Address".into()));
    }
    if kv.iter().any(|(k, _)| *k == "c6a3") {
        kv.push(("c6a3Label", "Destination IPv6 Address".into()));
    }
    if let Some(app) = e.target.protocol.as_ref().or(e.source.protocol.as_ref()) {
        kv.push(("app", app.clone()));
    }
    if let Some(url) = e.target.url.as_ref().or(e.source.url.as_ref()) {
        kv.push(("request", url.clone()));
    }
    if let Some(file) = e.files.first() {
        if let Some(path) = &file.path {
            let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
            kv.push(("fname", name.to_string()));
            kv.push(("filePath", path.clone()));
        }
        if let Some((_, hash)) = file.hashes.first() {
            kv.push(("fileHash", hash.clone()));
        }
        if let Some(size) = file.size {
            kv.push(("fsize", size.to_string()));
        }
    }
    if let Some(host) = &e.analyzer.hostname {
        kv.push(("dvchost", host.clone()));
    }
    match e.analyzer.ip {
        Some(IpAddr::V4(ip)) => kv.push(("dvc", ip.to_string())),
        Some(IpAddr::V6(ip)) => {
            kv.push(("c6a4", ip.to_string()));
            kv.push(("c6a4Label", "Device IPv6 Address".into()));
        }
        None => {}
    }
    kv.push(("cs1", e.tenant.clone()));
    kv.push(("cs1Label", "tenant".into()));
    if let Some(rule) = &e.rule
        && let Some(name) = &rule.name
    {
        kv.push(("cs2", name.clone()));
        kv.push(("cs2Label", "rule".into()));
    }
    let techniques: Vec<&str> = e.mitre.iter().filter_map(|m| m.technique_id.as_deref()).collect();
    if !techniques.is_empty() {
        kv.push(("cs3", techniques.join(",")));
        kv.push(("cs3Label", "mitreTechnique".into()));
    }
    let tactics: Vec<&str> = e.mitre.iter().filter_map(|m| m.tactic.as_deref()).collect();
    if !tactics.is_empty() {
        kv.push(("cs4", tactics.join(",")));
        kv.push(("cs4Label", "mitreTactic".into()));
    }
    kv.push(("cs5", e.severity.original.clone()));
    kv.push(("cs5Label", "vendorSeverity".into()));
    kv.push(("cn1", e.risk_score.to_string()));
    kv.push(("cn1Label", "riskScore".into()));
    kv
}

/// Source or destination keys: IPv4 in `src`/`dst`, IPv6 in the custom IPv6 fields.
fn endpoint(kv: &mut Vec<(&'static str, String)>, ep: &crate::model::Endpoint, keys: [&'static str; 7]) {
    let [v4, v6, port, host, user, mac, process] = keys;
    match ep.ip {
        Some(IpAddr::V4(ip)) => kv.push((v4, ip.to_string())),
        Some(IpAddr::V6(ip)) => kv.push((v6, ip.to_string())),
        None => {}
    }
    if let Some(p) = ep.port {
        kv.push((port, p.to_string()));
    }
    for (key, value) in [(host, &ep.hostname), (user, &ep.user), (mac, &ep.mac), (process, &ep.process)] {
        if let Some(v) = value {
            kv.push((key, v.clone()));
        }
    }
}

/// A header field (CEF and LEEF): `\` and `|` escaped, line breaks made spaces.
pub(super) fn escape_header(s: &str, out: &mut String) {
    if !s.bytes().any(|b| matches!(b, b'\\' | b'|' | b'\r' | b'\n')) {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '|' => out.push_str("\\|"),
            '\r' | '\n' => out.push(' '),
            c => out.push(c),
        }
    }
}

/// Extension writer: `key=value` pairs separated by single spaces.
struct Extension<'a> {
    out: &'a mut String,
    first: bool,
}

impl Extension<'_> {
    fn push(&mut self, key: &str, value: &str) {
        if !self.first {
            self.out.push(' ');
        }
        self.first = false;
        self.out.push_str(key);
        self.out.push('=');
        if !value.bytes().any(|b| matches!(b, b'\\' | b'=' | b'\r' | b'\n')) {
            self.out.push_str(value);
            return;
        }
        for c in value.chars() {
            match c {
                '\\' => self.out.push_str("\\\\"),
                '=' => self.out.push_str("\\="),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                c => self.out.push(c),
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod parse {
    //! A strict CEF parser for tests: rejects anything the standard does not allow.

    #[derive(Debug, PartialEq)]
    pub struct Record {
        pub header: Vec<String>,
        pub extension: Vec<(String, String)>,
    }

    pub fn parse(line: &str) -> Result<Record, String> {
        if line.contains(['\n', '\r']) {
            return Err("raw line break".into());
        }
        let rest = line.strip_prefix("CEF:").ok_or("no CEF: prefix")?;
        let (header, ext) = header_fields(rest, 7)?;
        Ok(Record { header, extension: parse_extension(ext)? })
    }

    /// The first `n` `|`-terminated header fields (CEF and LEEF escape `\\` and `|` alike), and
    /// what follows them.
    pub fn header_fields(text: &str, n: usize) -> Result<(Vec<String>, &str), String> {
        let mut header = Vec::new();
        let mut field = String::new();
        let mut chars = text.char_indices();
        while header.len() < n {
            match chars.next().ok_or("header ends early")?.1 {
                '\\' => match chars.next().map(|(_, c)| c) {
                    Some(c @ ('\\' | '|')) => field.push(c),
                    other => return Err(format!("bad header escape \\{other:?}")),
                },
                '|' => header.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        let rest = chars.next().map_or("", |(i, _)| &text[i..]);
        Ok((header, rest))
    }

    /// Splits at unescaped `=`: the key is the last space-free word before it.
    fn parse_extension(ext: &str) -> Result<Vec<(String, String)>, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        if ext.is_empty() {
            return Ok(out);
        }
        // Tokens of (raw text between unescaped `=`).
        let mut parts = Vec::new();
        let mut cur = String::new();
        let mut chars = ext.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\\') => cur.push_str("\\\\"),
                    Some('=') => cur.push_str("\\="),
                    Some('n') => cur.push_str("\\n"),
                    Some('r') => cur.push_str("\\r"),
                    other => return Err(format!("bad extension escape \\{other:?}")),
                },
                '=' => parts.push(std::mem::take(&mut cur)),
                c => cur.push(c),
            }
        }
        parts.push(cur);
        let mut key = parts[0].clone();
        if key.contains(' ') || key.is_empty() {
            return Err(format!("bad first key {key:?}"));
        }
        for (i, part) in parts.iter().enumerate().skip(1) {
            let (value, next_key) = if i == parts.len() - 1 {
                (part.as_str(), None)
            } else {
                let at = part.rfind(' ').ok_or_else(|| format!("no key after value {part:?}"))?;
                (&part[..at], Some(part[at + 1..].to_string()))
            };
            out.push((key.clone(), unescape(value)));
            if let Some(k) = next_key {
                if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric()) {
                    return Err(format!("bad key {k:?}"));
                }
                key = k;
            }
        }
        Ok(out)
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some(c) => out.push(c),
                    None => {}
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}
