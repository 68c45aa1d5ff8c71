//! Decoders: vendor bytes → [`Event`]. Pure functions, no I/O.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::model::Event;

/// How a source turns one line (or one API item) into an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Decoder {
    /// One JSON object per line; the event id is a hash of the line.
    #[default]
    Json,
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
}

impl Decoder {
    pub fn decode_line(&self, line: &str, origin: &Origin, now: DateTime<Utc>) -> Result<Event, DecodeError> {
        match self {
            Decoder::Json => {
                let line = line.trim();
                let raw: Box<RawValue> =
                    serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))?;
                if !raw.get().starts_with('{') {
                    return Err(DecodeError::NotAnObject(json_kind(raw.get())));
                }
                Ok(Event::hashed(origin.tenant.clone(), origin.source.clone(), origin.vendor.clone(), now, raw))
            }
        }
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

    #[test]
    fn json_object_keeps_raw_bytes_and_hashes_id() {
        let now = Utc::now();
        let a = Decoder::Json.decode_line(r#"{"a": 1}"#, &origin(), now).unwrap();
        let b = Decoder::Json.decode_line(r#"{"a": 1}"#, &origin(), now).unwrap();
        assert_eq!(a.raw.get(), r#"{"a": 1}"#);
        assert_eq!(a.id, b.id, "same bytes give the same id");
        let c = Decoder::Json.decode_line(r#"{"a": 2}"#, &origin(), now).unwrap();
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn bad_lines_say_why() {
        let now = Utc::now();
        assert!(matches!(Decoder::Json.decode_line("{oops", &origin(), now), Err(DecodeError::Json(_))));
        assert_eq!(
            Decoder::Json.decode_line("[1]", &origin(), now).unwrap_err(),
            DecodeError::NotAnObject("an array")
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(line in ".*") {
            let _ = Decoder::Json.decode_line(&line, &origin(), Utc::now());
        }
    }
}
