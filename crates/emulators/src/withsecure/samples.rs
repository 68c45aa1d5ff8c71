//! Real WithSecure Elements security events (Apache-2.0, WithSecureOpenSource/elements-api), used
//! as templates so synthetic events have the shapes, engines and string-typed `details` the real
//! API returns.

use std::sync::OnceLock;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{Value, json};

const SAMPLES: &[&str] = &[
    include_str!("../../../../src/vendors/withsecure/fixtures/amsi-infection-block.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/application-control-error-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/application-control-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/application-control-file-access-block-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/application-control-file-access-report-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/application-control-installation-start-block-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/application-control-report-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/connection-control-connection-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/connection-control-page-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/connection-control-remote-access-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/data-guard-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/data-guard-event_ransomware.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/data-guard-v2-report-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/data-guard-v2-vault.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/deep-guard-event-v2.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/deep-guard-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/deep-guard-event_command_line.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/device-control-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/device-control-execution-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-no-subscription-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-sp.evt.fixinf.alert.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-sp.evt.fixinf.riskware.alert.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-sp.evt.oas.alert.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-sp.evt.oas.alert_with_meta.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v1-sp.evt.ods.alert.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v2-file-infection-artificial.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v2-file-infection-on-demand-linux.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v2-spyware-artificial.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/file-scanning-v2-system-infection-artificial.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/firewall-fs_rule_triggered-block.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/integrity-checker-v2-file-modified-action-allow.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/integrity-checker-v2-file-modified-action-deny.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/integrity-checker-v2-process-modifying-file-alert-no-process-path.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/integrity-checker-v2-process-modifying-file-alert.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/manual-scanning-v1-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-category-page-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-category-page-blocked-event_url.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-denied-page-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-denied-page-blocked-event_url.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-event_url.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-harmful-page-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/online-safety-illegal-page-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/product-setting-changed.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/realtime-scanning-v1-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/tamper-protection-file-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/tamper-protection-process-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/tamper-protection-registry-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/tamper-protection-service-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/tamper-protection-service-blocked-event_with_initiator.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/tamper-protection-uninstall-blocked-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/web-traffic-scanning-event-without-alert-source.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/web-traffic-scanning-event.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/web_traffic_scanning_content_type_block.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/web_traffic_scanning_url_block.json"),
    include_str!("../../../../src/vendors/withsecure/fixtures/xfence-blocked.json"),
];

/// A parsed sample and the instant its timestamps are relative to.
pub struct Template {
    pub event: Value,
    persisted: DateTime<Utc>,
}

/// The samples, parsed once.
pub fn templates() -> &'static [Template] {
    static TEMPLATES: OnceLock<Vec<Template>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        SAMPLES
            .iter()
            .map(|text| {
                let event: Value = serde_json::from_str(text).expect("the samples are JSON");
                let persisted =
                    parse(event["persistenceTimestamp"].as_str().unwrap_or_default()).expect("the samples have a persistenceTimestamp");
                Template { event, persisted }
            })
            .collect()
    })
}

impl Template {
    /// A copy of the sample as if it had been persisted at `at` for organization `org`: its other
    /// timestamps move by the same amount, so client time <= server time <= persistence time as in
    /// the real data.
    pub fn instantiate(&self, id: &str, at: DateTime<Utc>, org_id: &str, org_name: &str) -> Value {
        let shift = at - self.persisted;
        let mut event = self.event.clone();
        event["id"] = json!(id);
        event["persistenceTimestamp"] = json!(at.to_rfc3339_opts(SecondsFormat::Millis, true));
        event["organization"] = json!({"name": org_name, "id": org_id});
        for key in ["serverTimestamp", "clientTimestamp"] {
            if let Some(moved) = event[key].as_str().and_then(|t| shift_rfc3339(t, shift)) {
                event[key] = json!(moved);
            }
        }
        // `details` values are strings, epoch milliseconds included.
        if let Some(ms) = event["details"]["clientTimestamp"].as_str().and_then(|t| t.parse::<i64>().ok()) {
            event["details"]["clientTimestamp"] = json!((ms + shift.num_milliseconds()).to_string());
        }
        event
    }
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// Moves an RFC 3339 time, keeping whether it had fractional seconds.
fn shift_rfc3339(text: &str, shift: TimeDelta) -> Option<String> {
    let format = if text.contains('.') { SecondsFormat::Millis } else { SecondsFormat::Secs };
    Some((parse(text)? + shift).to_rfc3339_opts(format, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn every_sample_is_an_event() {
        assert_eq!(templates().len(), 57);
        for t in templates() {
            assert!(t.event["engine"].is_string() && t.event["id"].is_string());
        }
    }

    #[test]
    fn instances_keep_the_engine_and_move_every_timestamp() {
        let at = Utc.with_ymd_and_hms(2025, 3, 1, 12, 0, 0).unwrap();
        let t = templates().iter().find(|t| t.event["engine"] == "deepGuard").unwrap();
        let e = t.instantiate("x_1", at, "org", "Org");
        assert_eq!(e["engine"], "deepGuard");
        assert_eq!(e["persistenceTimestamp"], "2025-03-01T12:00:00.000Z");
        assert_eq!(e["organization"], json!({"name": "Org", "id": "org"}));
        let server = parse(e["serverTimestamp"].as_str().unwrap()).unwrap();
        let client = parse(e["clientTimestamp"].as_str().unwrap()).unwrap();
        assert!(client <= server && server <= at);
        assert!(!e["clientTimestamp"].as_str().unwrap().contains('.'), "keeps the sample's precision");
        let details_ms: i64 = e["details"]["clientTimestamp"].as_str().unwrap().parse().unwrap();
        assert_eq!(details_ms / 1000, client.timestamp(), "the same instant, to the second the top level shows");
    }
}
