//! Realistic `alert` resources (Defender XDR alerts as `alerts_v2` lists them) and the `$filter`
//! subset the API documents for them.

use std::cmp::Ordering;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use crate::entra::ms_time;
use crate::vendor::{mix, uuid_of};

const KINDS: [(&str, &str, &str, &str, &str); 6] = [
    ("Suspicious execution of hidden file", "DefenseEvasion", "T1564.001", "microsoftDefenderForEndpoint", "antivirus"),
    ("Suspicious PowerShell command line", "Execution", "T1059.001", "microsoftDefenderForEndpoint", "microsoftDefenderForEndpoint"),
    (
        "Credential dumping activity observed",
        "CredentialAccess",
        "T1003.001",
        "microsoftDefenderForEndpoint",
        "microsoftDefenderForEndpoint",
    ),
    ("Atypical travel", "InitialAccess", "T1078", "azureAdIdentityProtection", "azureAdIdentityProtection"),
    (
        "Email messages containing malicious URL removed after delivery",
        "InitialAccess",
        "T1566.002",
        "microsoftDefenderForOffice365",
        "microsoftDefenderForOffice365",
    ),
    (
        "Suspected brute-force attack (Kerberos, NTLM)",
        "CredentialAccess",
        "T1110",
        "microsoftDefenderForIdentity",
        "microsoftDefenderForIdentity",
    ),
];

/// Alert number `n` of the tenant, created at `created` and last updated a little later.
pub fn sample_alert(tenant: &str, n: u64, created: DateTime<Utc>) -> Value {
    let r = mix(n ^ crate::vendor::hash(tenant));
    let (title, category, technique, source, detection) = KINDS[(r % KINDS.len() as u64) as usize];
    let id = format!("da{:018}_{}", r % 1_000_000_000_000_000_000, (r >> 20) as i32);
    let severity = ["informational", "low", "medium", "high"][(r >> 4) as usize % 4];
    let status = ["new", "new", "inProgress", "resolved"][(r >> 6) as usize % 4];
    // Never in the future: an alert is updated before anyone can read it.
    let updated = (created + TimeDelta::seconds(30 + (r >> 8) as i64 % 600)).min(Utc::now().max(created));
    let host = format!("ws-{:04}.contoso.com", r % 10_000);
    let user = ["alice", "bob", "carol", "dave"][(r >> 10) as usize % 4];
    let evidence = json!([
        {
            "@odata.type": "#microsoft.graph.security.deviceEvidence",
            "createdDateTime": ms_time(created),
            "verdict": "unknown", "remediationStatus": "none", "roles": ["compromised"], "tags": [],
            "mdeDeviceId": format!("{:040x}", u128::from(r) << 32 | u128::from(mix(r) >> 32)),
            "deviceDnsName": host, "osPlatform": "Windows10", "osBuild": 22631, "healthStatus": "active",
            "riskScore": "medium", "rbacGroupName": "Workstations",
            "loggedOnUsers": [{"accountName": user, "domainName": "CONTOSO"}],
            "ipInterfaces": [format!("10.1.{}.{}", (r >> 12) as u8, (r >> 20) as u8)],
        },
        {
            "@odata.type": "#microsoft.graph.security.userEvidence",
            "createdDateTime": ms_time(created),
            "verdict": "unknown", "remediationStatus": "none", "roles": [], "tags": [],
            "userAccount": {"accountName": user, "domainName": "CONTOSO", "userSid": format!("S-1-5-21-1782978-{}", r % 100_000), "azureAdUserId": uuid_of(r, 1), "userPrincipalName": format!("{user}@contoso.com")},
        },
        {
            "@odata.type": "#microsoft.graph.security.processEvidence",
            "createdDateTime": ms_time(created),
            "verdict": "suspicious", "remediationStatus": "none", "roles": [], "tags": [],
            "processId": 4000 + r % 5000, "processCommandLine": "powershell.exe -nop -w hidden -enc SQBFAFgA",
            "processCreationDateTime": ms_time(created - TimeDelta::seconds(5)),
            "imageFile": {"fileName": "powershell.exe", "filePath": "C:\\Windows\\System32\\WindowsPowerShell\\v1.0", "sha256": format!("{:016x}{:016x}{:016x}{:016x}", r, mix(r), mix(r ^ 1), mix(r ^ 2))},
        },
    ]);
    json!({
        "@odata.type": "#microsoft.graph.security.alert",
        "id": id,
        "providerAlertId": id,
        "incidentId": (20_000 + n).to_string(),
        "status": status,
        "severity": severity,
        "classification": if status == "resolved" { "truePositive" } else { "unknown" },
        "determination": if status == "resolved" { "malware" } else { "unknown" },
        "serviceSource": source,
        "detectionSource": detection,
        "productName": "Microsoft Defender XDR",
        "detectorId": uuid_of(r, 2),
        "tenantId": tenant,
        "title": title,
        "description": format!("{title} on {host}."),
        "recommendedActions": "1. Isolate the device. 2. Review the process tree. 3. Reset the user's credentials.",
        "category": category,
        "assignedTo": if status == "new" { Value::Null } else { "secops@contoso.com".into() },
        "alertWebUrl": format!("https://security.microsoft.com/alerts/{id}?tid={tenant}"),
        "incidentWebUrl": format!("https://security.microsoft.com/incidents/{}?tid={tenant}", 20_000 + n),
        "actorDisplayName": null,
        "threatDisplayName": null,
        "threatFamilyName": null,
        "mitreTechniques": [technique],
        "createdDateTime": ms_time(created),
        "lastUpdateDateTime": ms_time(updated),
        "resolvedDateTime": if status == "resolved" { ms_time(updated).into() } else { Value::Null },
        "firstActivityDateTime": ms_time(created - TimeDelta::seconds(60)),
        "lastActivityDateTime": ms_time(created - TimeDelta::seconds(10)),
        "comments": [],
        "evidence": evidence,
        "systemTags": [],
    })
}

pub fn time_of(alert: &Value, field: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(alert.get(field)?.as_str()?).ok().map(|t| t.to_utc())
}

enum Clause {
    Time { field: String, op: String, at: DateTime<Utc> },
    Text { field: String, equal: bool, value: Option<String> },
}

/// A conjunction of `field op value` clauses over the filterable properties.
pub struct Filter(Vec<Clause>);

const TIME_FIELDS: [&str; 2] = ["createdDateTime", "lastUpdateDateTime"];
const TEXT_FIELDS: [&str; 6] = ["assignedTo", "classification", "determination", "severity", "serviceSource", "status"];

impl Filter {
    pub fn parse(text: &str) -> Result<Filter, String> {
        let mut clauses = Vec::new();
        let text = text.trim();
        if text.is_empty() {
            return Ok(Filter(clauses));
        }
        for clause in split_and(text) {
            let clause = clause.trim().trim_start_matches('(').trim_end_matches(')').trim();
            let mut parts = clause.splitn(3, ' ');
            let (Some(field), Some(op), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
                return Err(format!("Invalid filter clause: {clause}"));
            };
            let op = op.to_ascii_lowercase();
            let value = value.trim();
            if let Some(field) = TIME_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(field)) {
                if !["eq", "ne", "ge", "gt", "le", "lt"].contains(&op.as_str()) {
                    return Err(format!("Invalid filter clause: unsupported operator '{op}'"));
                }
                let at = DateTime::parse_from_rfc3339(value.trim_matches('\''))
                    .map_err(|_| format!("Invalid filter clause: '{value}' is not a valid DateTimeOffset"))?
                    .to_utc();
                clauses.push(Clause::Time { field: field.to_string(), op, at });
            } else if let Some(field) = TEXT_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(field)) {
                if op != "eq" && op != "ne" {
                    return Err(format!("Invalid filter clause: unsupported operator '{op}' on {field}"));
                }
                let value = if value == "null" {
                    None
                } else {
                    let quoted = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\''));
                    Some(quoted.ok_or_else(|| format!("Invalid filter clause: {value} must be quoted"))?.replace("''", "'"))
                };
                clauses.push(Clause::Text { field: field.to_string(), equal: op == "eq", value });
            } else {
                return Err(format!("Invalid filter clause: filtering on '{field}' is not supported"));
            }
        }
        Ok(Filter(clauses))
    }

    pub fn matches(&self, alert: &Value) -> bool {
        self.0.iter().all(|clause| match clause {
            Clause::Time { field, op, at } => time_of(alert, field).is_some_and(|t| {
                let order = t.cmp(at);
                match op.as_str() {
                    "eq" => order == Ordering::Equal,
                    "ne" => order != Ordering::Equal,
                    "ge" => order != Ordering::Less,
                    "gt" => order == Ordering::Greater,
                    "le" => order != Ordering::Greater,
                    _ => order == Ordering::Less,
                }
            }),
            Clause::Text { field, equal, value } => {
                let actual = alert.get(field.as_str()).and_then(Value::as_str);
                (actual == value.as_deref()) == *equal
            }
        })
    }
}

/// Splits on ` and ` outside quotes, in any case.
fn split_and(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\'' {
            quoted = !quoted;
        } else if !quoted && text[i..].len() >= 5 && text[i..i + 5].eq_ignore_ascii_case(" and ") {
            parts.push(&text[start..i]);
            start = i + 5;
            i += 5;
            continue;
        }
        i += 1;
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let alert = sample_alert("t", 1, Utc::now());
        let updated = alert["lastUpdateDateTime"].as_str().unwrap().to_string();
        let source = alert["serviceSource"].as_str().unwrap().to_string();
        assert!(Filter::parse(&format!("lastUpdateDateTime ge {updated}")).unwrap().matches(&alert));
        assert!(!Filter::parse(&format!("lastUpdateDateTime gt {updated}")).unwrap().matches(&alert));
        assert!(Filter::parse(&format!("lastUpdateDateTime ge {updated} and serviceSource eq '{source}'")).unwrap().matches(&alert));
        assert!(!Filter::parse(&format!("lastUpdateDateTime ge {updated} AND serviceSource eq 'x'")).unwrap().matches(&alert));
        assert!(Filter::parse("title eq 'x'").is_err());
        assert!(Filter::parse("lastUpdateDateTime ge yesterday").is_err());
    }
}
