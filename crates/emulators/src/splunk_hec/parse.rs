//! Validation of an event request body: concatenated JSON envelopes, checked one by one as
//! Splunk does, stopping at the first invalid one. Envelopes are kept as their raw text (one
//! allocation each) and only turned into values when a test reads them back.

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::net::JsonStr;

/// An indexed envelope, as received.
#[derive(Clone)]
pub(super) struct Indexed {
    raw: Box<str>,
    /// Receipt time, epoch seconds: the event's time when the envelope has none.
    received: f64,
}

/// Why envelope number `k` (zero-based) was refused: a HEC code among 6, 7, 12, 13, 15.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Invalid {
    pub code: u16,
    pub event_number: usize,
}

/// The valid prefix of a body, and what stopped it, if anything did.
pub(super) struct Batch {
    pub valid: Vec<Indexed>,
    pub invalid: Option<Invalid>,
}

/// The envelope keys HEC interprets; others are ignored, as Splunk ignores them.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    event: Option<&'a RawValue>,
    #[serde(borrow, default)]
    fields: Option<&'a RawValue>,
    #[serde(borrow, default)]
    time: Option<&'a RawValue>,
    #[serde(borrow, default)]
    index: Option<JsonStr<'a>>,
    #[serde(borrow, default, rename = "host")]
    _host: Option<JsonStr<'a>>,
    #[serde(borrow, default, rename = "source")]
    _source: Option<JsonStr<'a>>,
    #[serde(borrow, default, rename = "sourcetype")]
    _sourcetype: Option<JsonStr<'a>>,
}

pub(super) fn parse(body: &[u8], allowed_indexes: &[String], received: f64) -> Batch {
    let mut valid = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(body).into_iter::<Envelope<'_>>();
    let mut start = 0;
    let invalid = |code, event_number| Some(Invalid { code, event_number });
    loop {
        let k = valid.len();
        let envelope = match stream.next() {
            None => return Batch { valid, invalid: None },
            Some(Err(_)) => return Batch { valid, invalid: invalid(6, k) },
            Some(Ok(e)) => e,
        };
        let end = stream.byte_offset();
        let text = body[start..end].trim_ascii_start();
        start = end;
        // Serde would also read a struct from a JSON array; HEC wants objects.
        if !text.starts_with(b"{") {
            return Batch { valid, invalid: invalid(6, k) };
        }
        if let Err(code) = check(&envelope, allowed_indexes) {
            return Batch { valid, invalid: invalid(code, k) };
        }
        let Ok(text) = std::str::from_utf8(text) else { return Batch { valid, invalid: invalid(6, k) } };
        valid.push(Indexed { raw: text.into(), received });
    }
}

fn check(envelope: &Envelope<'_>, allowed_indexes: &[String]) -> Result<(), u16> {
    match envelope.event {
        None => return Err(12),
        Some(event) if event.get() == "\"\"" => return Err(13),
        Some(_) => {}
    }
    if let Some(time) = envelope.time {
        serde_json::from_str(time.get()).ok().and_then(time_value).ok_or(6u16)?;
    }
    if let Some(fields) = envelope.fields {
        let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.get()) else { return Err(15) };
        let flat = |v: &Value| !matches!(v, Value::Object(_) | Value::Array(_));
        if !fields.values().all(|v| match v {
            Value::Array(items) => items.iter().all(flat),
            v => flat(v),
        }) {
            return Err(15);
        }
    }
    if let Some(index) = &envelope.index
        && !allowed_indexes.is_empty()
        && !allowed_indexes.iter().any(|i| *i == index.0)
    {
        return Err(7);
    }
    Ok(())
}

/// `time` as epoch seconds: a number, or a string holding one.
fn time_value(time: Value) -> Option<Value> {
    match time {
        Value::Number(n) => Some(Value::Number(n)),
        Value::String(s) => {
            let n: serde_json::Number = s.trim().parse().ok()?;
            Some(Value::Number(n))
        }
        _ => None,
    }
}

/// Metadata an envelope gets when it names none.
pub(super) struct Defaults<'a> {
    pub host: &'a str,
    pub source: &'a str,
    pub sourcetype: &'a str,
    pub index: &'a str,
}

impl Indexed {
    /// The envelope as indexed: every metadata key present, defaults filled in.
    pub(super) fn envelope(&self, defaults: &Defaults<'_>) -> Value {
        let mut given: Map<String, Value> = serde_json::from_str(&self.raw).unwrap_or_default();
        let mut take_str = |key: &str, default: &str| match given.remove(key) {
            Some(Value::String(s)) => Value::String(s),
            _ => Value::String(default.to_string()),
        };
        let host = take_str("host", defaults.host);
        let source = take_str("source", defaults.source);
        let sourcetype = take_str("sourcetype", defaults.sourcetype);
        let index = take_str("index", defaults.index);
        let time = given
            .remove("time")
            .and_then(time_value)
            .or_else(|| serde_json::Number::from_f64(self.received).map(Value::Number))
            .unwrap_or(Value::Null);
        let mut out = Map::new();
        out.insert("time".into(), time);
        out.insert("host".into(), host);
        out.insert("source".into(), source);
        out.insert("sourcetype".into(), sourcetype);
        out.insert("index".into(), index);
        out.insert("event".into(), given.remove("event").unwrap_or(Value::Null));
        out.insert("fields".into(), given.remove("fields").unwrap_or_else(|| Value::Object(Map::new())));
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(body: &str, allowed: &[&str]) -> (usize, Option<Invalid>) {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let batch = parse(body.as_bytes(), &allowed, 1.5);
        (batch.valid.len(), batch.invalid)
    }

    fn bad(code: u16, event_number: usize) -> Option<Invalid> {
        Some(Invalid { code, event_number })
    }

    #[test]
    fn concatenated_envelopes() {
        assert_eq!(outcome(r#"{"event":"a"}{"event":{"x":1}} {"event":2}"#, &[]), (3, None));
        assert_eq!(outcome("{\"event\":\"a\"}\n\r\n\t{\"event\":\"b\"}\n", &[]), (2, None));
    }

    #[test]
    fn first_invalid_envelope_stops_the_batch() {
        assert_eq!(outcome(r#"{"event":"a"}{"event":"b"}{"event""#, &[]), (2, bad(6, 2)));
        assert_eq!(outcome(r#"{"event":"a"}garbage{"event":"b"}"#, &[]), (1, bad(6, 1)));
        assert_eq!(outcome(r#"{"event":"a"}["x"]"#, &[]), (1, bad(6, 1)));
        assert_eq!(outcome(r#"{"event":"a"}{"time":1}"#, &[]), (1, bad(12, 1)));
        assert_eq!(outcome(r#"{"event":null}"#, &[]), (0, bad(12, 0)));
        assert_eq!(outcome(r#"{"event":""}"#, &[]), (0, bad(13, 0)));
        assert_eq!(outcome(r#"{"event":"a","fields":{"a":{"b":1}}}"#, &[]), (0, bad(15, 0)));
        assert_eq!(outcome(r#"{"event":"a","fields":{"a":[{"b":1}]}}"#, &[]), (0, bad(15, 0)));
        assert_eq!(outcome(r#"{"event":"a","fields":{"a":["x","y"],"b":1}}"#, &[]), (1, None));
        assert_eq!(outcome(r#"{"event":"a","index":"main"}{"event":"b","index":"x"}"#, &["main"]), (1, bad(7, 1)));
        assert_eq!(outcome(r#"{"event":"a","time":"x"}"#, &[]), (0, bad(6, 0)));
        assert_eq!(outcome(r#"{"event":"a","host":5}"#, &[]), (0, bad(6, 0)));
    }

    #[test]
    fn envelope_gets_defaults() {
        let batch = parse(br#"{"event":{"m":1},"time":"12.5","index":"x"} {"event":"e"}"#, &[], 99.25);
        let defaults = Defaults { host: "h", source: "s", sourcetype: "st", index: "main" };
        let first = batch.valid[0].envelope(&defaults);
        assert_eq!(
            first,
            serde_json::json!({"time":12.5,"host":"h","source":"s","sourcetype":"st","index":"x","event":{"m":1},"fields":{}})
        );
        assert_eq!(batch.valid[1].envelope(&defaults)["time"], 99.25);
    }
}
