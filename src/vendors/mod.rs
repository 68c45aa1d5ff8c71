//! Vendors: one module per product whose events sluice understands. Each holds its normalization
//! (vendor JSON → [`SecurityEvent`]), how its lines split into events, its `fixtures/` (real sample
//! events) and `golden/` outputs. [`VENDORS`] registers them; `decoder:`, `sluice convert`, the
//! API's `?decoder=`, the golden tests, the fuzz target and the README's table all read it.

pub mod fields;

mod aws_securityhub;
mod clamav;
mod crowdstrike_alerts;
mod graph_alerts;
mod json;
pub use json::normalize as json_normalize;
mod kismet;
mod m365;
mod modsecurity;
mod okta_logs;
mod prometheus;
mod suricata;
pub mod wazuh;
mod withsecure;
mod zabbix;
mod zoneminder;

use serde_json::Value;

use crate::model::{NormalizeError, SecurityEvent};

/// Every vendor, in the order help texts list them.
pub static VENDORS: &[&Vendor] = &[
    &json::VENDOR,
    &withsecure::VENDOR,
    &suricata::VENDOR,
    &wazuh::VENDOR,
    &clamav::VENDOR,
    &modsecurity::VENDOR,
    &kismet::VENDOR,
    &prometheus::VENDOR,
    &zabbix::VENDOR,
    &zoneminder::VENDOR,
    &okta_logs::VENDOR,
    &crowdstrike_alerts::VENDOR,
    &graph_alerts::VENDOR,
    &aws_securityhub::VENDOR,
    &m365::VENDOR,
];

/// What sluice knows of one vendor's events.
#[derive(Debug)]
pub struct Vendor {
    /// As written in `decoder:`; recorded on every event it decodes.
    pub name: &'static str,
    /// What input it reads, for help texts and the README.
    pub input: &'static str,
    /// How its severities map to the model's levels, for the README.
    pub severity: &'static str,
    /// Fills the model from one vendor document (the model comes with generic defaults).
    pub normalize: fn(&Value, &mut SecurityEvent) -> Result<(), NormalizeError>,
    /// Splits one JSON document into its events (a response holding several alerts).
    pub split: Option<fn(Value) -> Vec<Value>>,
    /// Turns a line that is not JSON into a document (log lines of tools without JSON output).
    pub text_line: Option<fn(&str) -> Option<Value>>,
    /// The top-level field holding the vendor's own event id, when it has one; otherwise the id
    /// is a hash of the event's bytes.
    pub id_field: Option<&'static str>,
}

impl Vendor {
    /// A vendor with one JSON object per line and no id of its own.
    pub const fn object_per_line(
        name: &'static str,
        input: &'static str,
        severity: &'static str,
        normalize: fn(&Value, &mut SecurityEvent) -> Result<(), NormalizeError>,
    ) -> Vendor {
        Vendor { name, input, severity, normalize, split: None, text_line: None, id_field: None }
    }
}

/// The vendor registered under `name`.
pub fn find(name: &str) -> Option<&'static Vendor> {
    VENDORS.iter().copied().find(|v| v.name == name)
}

/// The registered names, comma-separated, for error messages.
pub fn names() -> String {
    VENDORS.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
}

/// The README's decoder table, generated from the registry (a test keeps the README in step).
pub fn markdown_table() -> String {
    let mut out = String::from("| `decoder:` | input | severity mapping |\n|---|---|---|\n");
    for v in VENDORS {
        out.push_str(&format!("| `{}` | {} | {} |\n", v.name, v.input, v.severity));
    }
    out
}

/// The events of one fixture file of a vendor, decoded and normalized as a file source would.
#[cfg(test)]
pub(crate) fn fixture_events(vendor: &str, file: &str) -> Vec<SecurityEvent> {
    use crate::decode::{Decoder, Origin};
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vendors").join(vendor).join("fixtures").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let line = serde_json::from_str::<Value>(&text).unwrap().to_string();
    let origin = Origin { tenant: "acme".into(), source: "s".into(), vendor: vendor.into() };
    Decoder::named(vendor)
        .decode_line(&line, &origin, chrono::Utc::now())
        .unwrap()
        .iter()
        .map(|ev| crate::normalize::normalize(ev).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn readme_decoder_table_is_the_registry() {
        let readme = include_str!("../../README.md");
        let table = super::markdown_table();
        assert!(readme.contains(&table), "README's decoder table differs from the registry; it should read:\n{table}");
    }

    #[test]
    fn every_vendor_but_json_has_fixtures_and_golden_files() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vendors");
        for v in super::VENDORS.iter().filter(|v| v.name != "json") {
            assert!(dir.join(v.name).join("fixtures").is_dir(), "{} has no fixtures/", v.name);
            assert!(dir.join(v.name).join("golden").is_dir(), "{} has no golden/", v.name);
        }
    }
}
