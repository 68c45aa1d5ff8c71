//! Encoders: [`Event`] → bytes a sink writes. Pure functions, no I/O. The normalized formats
//! (`event`, `ecs`, `idmefv2`) read only the [`SecurityEvent`](crate::model::SecurityEvent)
//! model.

pub mod cef;
pub mod ecs;
pub mod idmefv2;
pub mod leef;

use serde::{Deserialize, Serialize};

use crate::event::Event;
use crate::{model, normalize};

/// The shape of each line a sink writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// The vendor JSON exactly as received.
    #[default]
    Raw,
    /// sluice's envelope: id, tenant, source, vendor, received_at, the normalized fields
    /// (time, kind, severity, risk_score, category, title, source, target, rule, mitre …) and
    /// the raw event under `event`. Also accepted as `json`.
    #[serde(alias = "json")]
    Event,
    /// Elastic Common Schema 8.x.
    Ecs,
    /// IDMEFv2, draft 2.D.V08.
    Idmefv2,
    /// IDMEFv2, draft 2.D.V04, for receivers that still want the older draft.
    #[serde(rename = "idmefv2_v04")]
    Idmefv2V04,
    /// `{"vendor":"<vendor>","<vendor>":<raw>}`: the line format of the original WithSecure
    /// collector, which existing Wazuh decoders and rules match on.
    VendorWrapped,
    /// ArcSight CEF 0, one record per line.
    Cef,
    /// QRadar LEEF 2.0, tab-delimited, one record per line.
    Leef,
    /// Plain text: `title: description`, for receivers that want words, not fields.
    Text,
}

/// The `event` format: the envelope, then the normalized fields. `source` is the name of the
/// source that read the event; the model's source endpoint is `source_endpoint`.
#[derive(Serialize)]
struct EventDocument<'a> {
    id: &'a str,
    tenant: &'a str,
    source: &'a str,
    vendor: &'a str,
    received_at: String,
    event: &'a serde_json::value::RawValue,
    time: &'a chrono::DateTime<chrono::Utc>,
    kind: model::Kind,
    severity: &'a model::Severity,
    risk_score: u8,
    category: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    action: Option<&'a str>,
    #[serde(skip_serializing_if = "model::Endpoint::is_empty")]
    source_endpoint: &'a model::Endpoint,
    #[serde(skip_serializing_if = "model::Endpoint::is_empty")]
    target: &'a model::Endpoint,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    files: &'a [model::File],
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a model::Rule>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    mitre: &'a [model::Mitre],
    product: &'a str,
    analyzer: &'a model::Analyzer,
}

impl Format {
    /// Appends one encoded line, with its trailing newline, to `out`.
    pub fn encode_line(&self, event: &Event, out: &mut Vec<u8>) {
        self.encode_line_reporting(event, out);
    }

    /// [`Self::encode_line`], also returning why the vendor's decoder failed when a normalized
    /// format had to fall back to the generic mapping.
    pub fn encode_line_reporting(&self, event: &Event, out: &mut Vec<u8>) -> Option<model::NormalizeError> {
        let (model, failure) = if self.is_normalized() {
            let (model, failure) = normalize::normalize_reporting(event);
            (Some(model), failure)
        } else {
            (None, None)
        };
        self.encode_document(event, model.as_ref(), out);
        out.push(b'\n');
        failure
    }

    /// Appends the event in this format, without a newline. `model` is the event normalized;
    /// normalized formats compute it when it is not given.
    pub fn encode_document(&self, event: &Event, model: Option<&model::SecurityEvent>, out: &mut Vec<u8>) {
        let computed;
        let model = match model {
            None if self.is_normalized() => {
                computed = normalize::normalize_lossless(event);
                Some(&computed)
            }
            given => given,
        };
        let model = || model.expect("normalized formats have their model");
        match self {
            Format::Raw => out.extend_from_slice(event.raw.get().as_bytes()),
            Format::Event => {
                let m = model();
                let doc = EventDocument {
                    id: &event.id,
                    tenant: &event.tenant,
                    source: &event.source,
                    vendor: &event.vendor,
                    received_at: event.received_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                    event: &event.raw,
                    time: &m.time,
                    kind: m.kind,
                    severity: &m.severity,
                    risk_score: m.risk_score,
                    category: m.category,
                    title: &m.title,
                    description: m.description.as_deref(),
                    action: m.action.as_deref(),
                    source_endpoint: &m.source,
                    target: &m.target,
                    files: &m.files,
                    rule: m.rule.as_ref(),
                    mitre: &m.mitre,
                    product: &m.product,
                    analyzer: &m.analyzer,
                };
                serde_json::to_writer(&mut *out, &doc).expect("writing to a Vec cannot fail");
            }
            Format::Ecs => serde_json::to_writer(&mut *out, &ecs::document(model())).expect("writing to a Vec cannot fail"),
            Format::Idmefv2 => serde_json::to_writer(&mut *out, &idmefv2::message(model())).expect("writing to a Vec cannot fail"),
            Format::Idmefv2V04 => serde_json::to_writer(&mut *out, &idmefv2::message_v04(model())).expect("writing to a Vec cannot fail"),
            Format::Cef | Format::Leef => {
                let mut text = String::with_capacity(512);
                if *self == Format::Cef {
                    cef::encode(model(), &mut text);
                } else {
                    leef::encode(model(), '\t', &mut text);
                }
                out.extend_from_slice(text.as_bytes());
            }
            Format::Text => {
                let m = model();
                let text = match &m.description {
                    Some(d) if *d != m.title => format!("{}: {d}", m.title),
                    _ => m.title.clone(),
                };
                out.extend_from_slice(text.replace(['\r', '\n'], " ").as_bytes());
            }
            Format::VendorWrapped => {
                let vendor = serde_json::to_string(&*event.vendor).expect("a string serializes");
                out.extend_from_slice(b"{\"vendor\":");
                out.extend_from_slice(vendor.as_bytes());
                out.push(b',');
                out.extend_from_slice(vendor.as_bytes());
                out.push(b':');
                out.extend_from_slice(event.raw.get().as_bytes());
                out.push(b'}');
            }
        }
    }

    /// Whether the document is JSON (else a line of text: CEF, LEEF).
    pub fn is_json(&self) -> bool {
        !matches!(self, Format::Cef | Format::Leef | Format::Text)
    }

    /// Whether the format reads the normalized model (and so runs the vendor's decoder).
    pub fn is_normalized(&self) -> bool {
        matches!(self, Format::Event | Format::Ecs | Format::Idmefv2 | Format::Idmefv2V04 | Format::Cef | Format::Leef | Format::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> Event {
        let raw = serde_json::value::RawValue::from_string(r#"{"id":"x_1","n":1}"#.into()).unwrap();
        Event {
            id: "x_1".into(),
            tenant: "acme".into(),
            source: "eve".into(),
            vendor: "withsecure".into(),
            received_at: chrono::Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            raw,
            mapped: None,
        }
    }

    fn line(format: Format) -> String {
        let mut out = Vec::new();
        format.encode_line(&event(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn raw_is_the_vendor_json() {
        assert_eq!(line(Format::Raw), "{\"id\":\"x_1\",\"n\":1}\n");
    }

    #[test]
    fn vendor_wrapped_matches_the_original_collector() {
        assert_eq!(line(Format::VendorWrapped), "{\"vendor\":\"withsecure\",\"withsecure\":{\"id\":\"x_1\",\"n\":1}}\n");
    }

    #[test]
    fn event_envelope_has_every_field() {
        let v: serde_json::Value = serde_json::from_str(&line(Format::Event)).unwrap();
        assert_eq!(v["id"], "x_1");
        assert_eq!(v["tenant"], "acme");
        assert_eq!(v["source"], "eve");
        assert_eq!(v["received_at"], "2025-01-02T03:04:05.000000Z");
        assert_eq!(v["event"]["n"], 1);
    }
}
