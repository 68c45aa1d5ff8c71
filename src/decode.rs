//! Decoders: bytes read by a source → [`Event`]s. Pure functions, no I/O. The vendor a decoder
//! names is recorded on each event; the normalized model is built from it by
//! [`crate::normalize`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::model::{Event, compact_raw, content_id};

/// How a source turns one line into events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// One JSON object per line; the event id is a hash of the line.
    #[default]
    Json,
    Withsecure,
    Suricata,
    Wazuh,
    /// clamd metadata JSON, or clamd log lines ending in `FOUND`.
    Clamav,
    Modsecurity,
    /// An alert object, or an `all_alerts.json` array of them.
    Kismet,
    /// An alert, an Alertmanager webhook payload or an `/api/v1/alerts` response.
    Prometheus,
    Zabbix,
    Zoneminder,
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
    /// The vendor name recorded on the events (`json` for the generic decoder).
    pub fn vendor(&self) -> &'static str {
        match self {
            Decoder::Json => "json",
            Decoder::Withsecure => "withsecure",
            Decoder::Suricata => "suricata",
            Decoder::Wazuh => "wazuh",
            Decoder::Clamav => "clamav",
            Decoder::Modsecurity => "modsecurity",
            Decoder::Kismet => "kismet",
            Decoder::Prometheus => "prometheus",
            Decoder::Zabbix => "zabbix",
            Decoder::Zoneminder => "zoneminder",
        }
    }

    pub fn parse(name: &str) -> Option<Decoder> {
        serde_json::from_value(Value::String(name.to_string())).ok()
    }

    /// Decodes one line into its events (documents holding several alerts give several).
    pub fn decode_line(&self, line: &str, origin: &Origin, now: DateTime<Utc>) -> Result<Vec<Event>, DecodeError> {
        let line = line.trim();
        if *self == Decoder::Clamav && !line.starts_with('{') {
            let doc = crate::normalize::clamav_log_line(line).ok_or(DecodeError::NotADetection)?;
            return Ok(vec![self.event(compact_raw(&doc), origin, now, None)]);
        }
        let raw: Box<RawValue> = serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))?;
        match (self, raw.get().as_bytes().first()) {
            (Decoder::Kismet | Decoder::Prometheus, Some(b'[' | b'{')) => {
                let doc: Value = serde_json::from_str(raw.get()).map_err(|e| DecodeError::Json(e.to_string()))?;
                let items = if *self == Decoder::Prometheus {
                    crate::normalize::prometheus_alerts(doc)
                } else if let Value::Array(items) = doc {
                    items
                } else {
                    vec![doc]
                };
                items
                    .into_iter()
                    .map(|item| {
                        if !item.is_object() {
                            return Err(DecodeError::NotAnObject(json_kind(&item.to_string())));
                        }
                        Ok(self.event(compact_raw(&item), origin, now, None))
                    })
                    .collect()
            }
            (_, Some(b'{')) => {
                let vendor_id = self.vendor_id(raw.get());
                Ok(vec![self.event(raw, origin, now, vendor_id)])
            }
            _ => Err(DecodeError::NotAnObject(json_kind(raw.get()))),
        }
    }

    /// The vendor's own event id, for vendors that have one.
    fn vendor_id(&self, raw: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Id {
            id: Option<Value>,
        }
        match self {
            Decoder::Withsecure | Decoder::Wazuh => match serde_json::from_str::<Id>(raw).ok()?.id? {
                Value::String(s) if !s.is_empty() => Some(s),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            },
            _ => None,
        }
    }

    fn event(&self, raw: Box<RawValue>, origin: &Origin, now: DateTime<Utc>, id: Option<String>) -> Event {
        let id = id.unwrap_or_else(|| content_id(raw.get().as_bytes()));
        let vendor: Arc<str> = if *self == Decoder::Json { origin.vendor.clone() } else { self.vendor().into() };
        Event { id, tenant: origin.tenant.clone(), source: origin.source.clone(), vendor, received_at: now, raw, mapped: None }
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
        let a = one(Decoder::Json, r#"{"a": 1}"#);
        let b = one(Decoder::Json, r#"{"a": 1}"#);
        assert_eq!(a.raw.get(), r#"{"a": 1}"#);
        assert_eq!(a.id, b.id, "same bytes give the same id");
        assert_ne!(a.id, one(Decoder::Json, r#"{"a": 2}"#).id);
    }

    #[test]
    fn vendor_ids_and_names() {
        let w = one(Decoder::Wazuh, r#"{"id": "1744794177.4870", "rule": {"level": 3}}"#);
        assert_eq!(w.id, "1744794177.4870");
        assert_eq!(&*w.vendor, "wazuh");
    }

    #[test]
    fn documents_with_several_alerts_are_split() {
        let prom = r#"{"status":"success","data":{"alerts":[{"labels":{"alertname":"A"}},{"labels":{"alertname":"B"}}]}}"#;
        assert_eq!(Decoder::Prometheus.decode_line(prom, &origin(), Utc::now()).unwrap().len(), 2);
        let kismet = r#"[{"kismet.alert.header":"x"},{"kismet.alert.header":"y"},{"kismet.alert.header":"z"}]"#;
        assert_eq!(Decoder::Kismet.decode_line(kismet, &origin(), Utc::now()).unwrap().len(), 3);
    }

    #[test]
    fn clamav_log_lines() {
        let e = one(Decoder::Clamav, "Mon Jun  2 10:32:20 2025 -> /home/u/eicar.com: Eicar-Signature FOUND");
        let v: Value = serde_json::from_str(e.raw.get()).unwrap();
        assert_eq!(v["FileName"], "/home/u/eicar.com");
        assert_eq!(v["Viruses"][0], "Eicar-Signature");
        assert_eq!(Decoder::Clamav.decode_line("/tmp/x: OK", &origin(), Utc::now()).unwrap_err(), DecodeError::NotADetection);
    }

    #[test]
    fn bad_lines_say_why() {
        let now = Utc::now();
        assert!(matches!(Decoder::Json.decode_line("{oops", &origin(), now), Err(DecodeError::Json(_))));
        assert_eq!(Decoder::Json.decode_line("[1]", &origin(), now).unwrap_err(), DecodeError::NotAnObject("an array"));
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in ".*", which in 0usize..10) {
            let decoders = [Decoder::Json, Decoder::Withsecure, Decoder::Suricata, Decoder::Wazuh, Decoder::Clamav,
                Decoder::Modsecurity, Decoder::Kismet, Decoder::Prometheus, Decoder::Zabbix, Decoder::Zoneminder];
            let _ = decoders[which].decode_line(&line, &origin(), Utc::now());
        }
    }
}
