//! Decoding: a line read by a source → [`Event`]s (the vendor's JSON, split into events, with an
//! id). Pure functions, no I/O. The vendor is recorded on each event; [`crate::normalize`] builds
//! the model from it later, when a format needs it.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use serde_json::Value;
use serde_json::value::RawValue;

use crate::event::{Event, compact_raw, content_id};
use crate::vendors::{self, Vendor};

/// How a source turns one line into events: the vendor registered under the `decoder:` name.
#[derive(Clone, Copy)]
pub struct Decoder(&'static Vendor);

impl Default for Decoder {
    fn default() -> Self {
        Decoder::named("json")
    }
}

impl PartialEq for Decoder {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}
impl Eq for Decoder {}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decoder({})", self.0.name)
    }
}

impl<'de> Deserialize<'de> for Decoder {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Decoder::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown decoder `{name}`, expected one of: {}", vendors::names())))
    }
}

/// Where a decoded event belongs.
#[derive(Debug, Clone)]
pub struct Origin {
    pub tenant: Arc<str>,
    pub source: Arc<str>,
    pub vendor: Arc<str>,
}

/// Why a line could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object, found {0}")]
    NotAnObject(&'static str),
    #[error("not a ClamAV detection (no `<file>: <signature> FOUND`)")]
    NotADetection,
}

impl Decoder {
    /// The decoder of a registered vendor; panics on a name that is not registered (for tests
    /// and constants; input goes through [`Decoder::parse`]).
    pub fn named(name: &str) -> Decoder {
        Decoder::parse(name).unwrap_or_else(|| panic!("no vendor `{name}` is registered"))
    }

    pub fn parse(name: &str) -> Option<Decoder> {
        vendors::find(name).map(Decoder)
    }

    /// The vendor name recorded on the events (`json` for the generic decoder).
    pub fn vendor(&self) -> &'static str {
        self.0.name
    }

    /// Decodes one line into its events (documents holding several alerts give several).
    pub fn decode_line(&self, line: &str, origin: &Origin, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        let line = line.trim();
        if let Some(text_line) = self.0.text_line
            && !line.starts_with('{')
        {
            let doc = text_line(line).ok_or(DecodeError::NotADetection)?;
            return Ok(vec![self.event(compact_raw(&doc), origin, now, None)]);
        }
        let raw: Box<RawValue> = serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))?;
        match (self.0.split, raw.get().as_bytes().first()) {
            (Some(split), Some(b'[' | b'{')) => {
                let doc: Value = serde_json::from_str(raw.get()).map_err(|e| DecodeError::Json(e.to_string()))?;
                split(doc)
                    .into_iter()
                    .map(|item| {
                        if !item.is_object() {
                            return Err(DecodeError::NotAnObject(json_kind(&item.to_string())));
                        }
                        let vendor_id = self.0.id_field.and_then(|field| id_value(item.get(field)?));
                        Ok(self.event(compact_raw(&item), origin, now, vendor_id))
                    })
                    .collect()
            }
            (_, Some(b'{')) => {
                let vendor_id = self.0.id_field.and_then(|field| vendor_id(raw.get(), field));
                Ok(vec![self.event(raw, origin, now, vendor_id)])
            }
            _ => Err(DecodeError::NotAnObject(json_kind(raw.get()))),
        }
    }

    fn event(&self, raw: Box<RawValue>, origin: &Origin, now: DateTime<Utc>, id: Option<String>) -> Event {
        let id = id.unwrap_or_else(|| content_id(raw.get().as_bytes()));
        let vendor: Arc<str> = if self.0.name == "json" { origin.vendor.clone() } else { self.0.name.into() };
        Event { id, tenant: origin.tenant.clone(), source: origin.source.clone(), vendor, received_at: now, raw, mapped: None }
    }
}

/// The vendor's own event id: a non-empty string or a number at the top-level `field`.
fn vendor_id(raw: &str, field: &str) -> Option<String> {
    let doc: serde_json::Map<String, Value> = serde_json::from_str(raw).ok()?;
    id_value(doc.get(field)?)
}

fn id_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn json_kind(text: &str) -> &'static str {
    match text.as_bytes().first() {
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin { tenant: "t".into(), source: "s".into(), vendor: "json".into() }
    }

    fn one(decoder: Decoder, line: &str) -> Event {
        let mut v = decoder.decode_line(line, &origin(), Utc::now()).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn json_object_keeps_raw_bytes_and_hashes_id() {
        let a = one(Decoder::named("json"), r#"{"a": 1}"#);
        let b = one(Decoder::named("json"), r#"{"a": 1}"#);
        assert_eq!(a.raw.get(), r#"{"a": 1}"#);
        assert_eq!(a.id, b.id, "same bytes give the same id");
        assert_ne!(a.id, one(Decoder::named("json"), r#"{"a": 2}"#).id);
    }

    #[test]
    fn vendor_ids_and_names() {
        let w = one(Decoder::named("wazuh"), r#"{"id": "1744794177.4870", "rule": {"level": 3}}"#);
        assert_eq!(w.id, "1744794177.4870");
        assert_eq!(&*w.vendor, "wazuh");
    }

    #[test]
    fn documents_with_several_alerts_are_split() {
        let prom = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"A"}},{"labels":{"alertname":"B"}}]}}"#;
        assert_eq!(Decoder::named("prometheus").decode_line(prom, &origin(), Utc::now()).unwrap().len(), 2);
        let kismet = r#"[{"kismet.alert.header":"x"},{"kismet.alert.header":"y"},{"kismet.alert.header":"z"}]"#;
        assert_eq!(Decoder::named("kismet").decode_line(kismet, &origin(), Utc::now()).unwrap().len(), 3);
    }

    #[test]
    fn clamav_log_lines() {
        let e = one(Decoder::named("clamav"), "Mon Jun  2 10:32:20 2025 -> /home/u/eicar.com: Eicar-Signature FOUND");
        let v: Value = serde_json::from_str(e.raw.get()).unwrap();
        assert_eq!(v["FileName"], "/home/u/eicar.com");
        assert_eq!(v["Viruses"][0], "Eicar-Signature");
        assert_eq!(Decoder::named("clamav").decode_line("/tmp/x: OK", &origin(), Utc::now()).unwrap_err(), DecodeError::NotADetection);
    }

    #[test]
    fn bad_lines_say_why() {
        let now = Utc::now();
        assert!(matches!(Decoder::named("json").decode_line("{oops", &origin(), now), Err(DecodeError::Json(_))));
        assert_eq!(Decoder::named("json").decode_line("[1]", &origin(), now).unwrap_err(), DecodeError::NotAnObject("an array"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in ".*", which in 0..crate::vendors::VENDORS.len()) {
            let vendor = crate::vendors::VENDORS[which];
            let _ = Decoder::named(vendor.name).decode_line(&line, &origin(), Utc::now());
        }
    }
}
