//! Microsoft Graph security alerts (`/security/alerts_v2`: Defender XDR, Defender for
//! Endpoint/Office 365/Identity/Cloud Apps, Entra ID Protection …); a `{"value": [...]}` page is
//! split into its alerts.
//!
//! An alert comes back each time it changes (status, assignment, new evidence), under the same
//! `id`. The model's id is `id@lastUpdateDateTime`, so each version is its own event (and gets its
//! own IDMEFv2 message id) while a version read twice keeps one id; there is no `id_field`, since
//! `id` alone would make every update a duplicate of the first.

use std::net::IpAddr;

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "graph_alerts",
    input: "Microsoft Graph security `alerts_v2` alerts (a `value` page is split into alerts)",
    severity: "`severity` high→high, medium→medium, low→low, informational→info, unknown→medium",
    normalize,
    split: Some(split),
    text_line: None,
    id_field: None,
};

/// A `{"value": [...]}` page gives its alerts; anything else is one alert.
fn split(doc: Value) -> Vec<Value> {
    match doc {
        Value::Object(mut o) if o.get("value").is_some_and(Value::is_array) && !o.contains_key("id") => match o.remove("value") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        Value::Array(a) => a,
        other => vec![other],
    }
}

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let id = str_at(v, "id").ok_or_else(|| NormalizeError::new("id", "missing"))?;
    let updated = str_at(v, "lastUpdateDateTime");
    e.id = match &updated {
        Some(u) => format!("{id}@{u}"),
        None => id.clone(),
    };
    if let Some(t) =
        ["createdDateTime", "firstActivityDateTime", "lastUpdateDateTime"].iter().find_map(|k| str_at(v, k).and_then(|s| parse_time(&s)))
    {
        e.time = t;
    }
    e.kind = Kind::Alert;
    let sev = str_at(v, "severity").unwrap_or_default();
    e.severity = Severity {
        level: match sev.as_str() {
            "high" => Level::High,
            "low" => Level::Low,
            "informational" => Level::Info,
            // `medium`, `unknown`, `unknownFutureValue`, or none: an alert all the same.
            _ => Level::Medium,
        },
        original: sev,
    };
    let source = str_at(v, "serviceSource").unwrap_or_default();
    e.product = product(&source).into();
    e.title = str_at(v, "title").unwrap_or_else(|| format!("{} alert", e.product));
    e.description = str_at(v, "description");
    // The alert's state in the portal: new, inProgress, resolved.
    e.action = str_at(v, "status");
    let category = str_at(v, "category");
    let tactic = category.as_deref().and_then(tactic_name);
    e.category = idmef_category(category.as_deref().unwrap_or_default());
    e.rule = Some(Rule {
        id: str_at(v, "detectorId"),
        name: str_at(v, "threatDisplayName").or_else(|| str_at(v, "title")),
        groups: [category, str_at(v, "detectionSource")].into_iter().flatten().collect(),
    });
    let techniques = strings_at(v, "mitreTechniques");
    for t in &techniques {
        e.mitre.push(Mitre { technique_id: Some(t.clone()), technique: None, tactic: tactic.map(str::to_string) });
    }
    if techniques.is_empty()
        && let Some(t) = tactic
    {
        e.mitre.push(Mitre { tactic: Some(t.to_string()), ..Mitre::default() });
    }
    evidence(v, e);
    e.analyzer = Analyzer {
        name: "microsoft-graph".into(),
        model: e.product.clone(),
        category: analyzer_category(&source),
        data: "Alert",
        method: match str_at(v, "detectionSource").as_deref() {
            Some("antivirus") => "Signature",
            Some("customDetection" | "customTi") => "Rule-based",
            Some("microsoftThreatExperts") => "Threat Intelligence",
            Some("automatedInvestigation") => "Correlation",
            _ => "Behavioral",
        },
        hostname: None,
        ip: None,
    };
    Ok(())
}

/// Devices, users, IPs, URLs, processes and files of `evidence[]`, the first of each kind.
fn evidence(v: &Value, e: &mut SecurityEvent) {
    let items: &[Value] = at(v, "evidence").and_then(Value::as_array).map_or(&[], Vec::as_slice);
    for item in items {
        // Not `str_at`: the key itself holds a dot.
        let kind = item.get("@odata.type").and_then(Value::as_str).unwrap_or_default();
        let kind = kind.rsplit('.').next().unwrap_or_default();
        match kind {
            "deviceEvidence" => {
                if e.target.hostname.is_none() {
                    e.target.hostname = str_at(item, "deviceDnsName");
                }
                if e.target.ip.is_none() {
                    e.target.ip = first_ip(item, "ipInterfaces").or_else(|| ip_at(item, "lastIpAddress"));
                }
            }
            "userEvidence" => {
                let upn = str_at(item, "userAccount.userPrincipalName").or_else(|| {
                    let name = str_at(item, "userAccount.accountName")?;
                    Some(match str_at(item, "userAccount.domainName") {
                        Some(d) => format!("{d}\\{name}"),
                        None => name,
                    })
                });
                if e.target.user.is_none() {
                    e.target.user = upn;
                }
            }
            "ipEvidence" => {
                e.source.ip = e.source.ip.or_else(|| ip_at(item, "ipAddress"));
            }
            "urlEvidence" => {
                e.target.url = e.target.url.take().or_else(|| str_at(item, "url"));
            }
            "processEvidence" => {
                if e.target.process.is_none() {
                    e.target.process = str_at(item, "imageFile.fileName");
                }
                if let Some(cmd) = str_at(item, "processCommandLine") {
                    let d = e.description.get_or_insert_default();
                    if !d.is_empty() {
                        d.push('\n');
                    }
                    d.push_str(&format!("Command line: {cmd}"));
                }
                if let Some(user) = str_at(item, "userAccount.userPrincipalName").or_else(|| str_at(item, "userAccount.accountName"))
                    && e.target.user.is_none()
                {
                    e.target.user = Some(user);
                }
            }
            "fileEvidence" => {
                let name = str_at(item, "fileDetails.fileName");
                let path = match (str_at(item, "fileDetails.filePath"), &name) {
                    (Some(dir), Some(n)) => Some(format!("{}\\{n}", dir.trim_end_matches('\\'))),
                    (dir, n) => n.clone().or(dir),
                };
                let mut hashes = Vec::new();
                for algo in ["sha256", "sha1", "md5"] {
                    if let Some(h) = str_at(item, &format!("fileDetails.{algo}")).and_then(|h| hex_hash(&h)) {
                        hashes.push((algo.to_string(), h));
                    }
                }
                let detections = str_at(item, "detectionStatus")
                    .filter(|s| s == "detected" || s == "blocked" || s == "prevented")
                    .and(str_at(v, "threatDisplayName"))
                    .into_iter()
                    .collect();
                let size = int_at(item, "fileDetails.fileSize").and_then(|s| u64::try_from(s).ok());
                e.files.push(File { path, size, hashes, detections });
            }
            _ => {}
        }
    }
}

/// The first routable address of a list (`ipInterfaces` also holds loopback and link-local ones).
fn first_ip(item: &Value, path: &str) -> Option<IpAddr> {
    let ips: Vec<IpAddr> = at(item, path)?.as_array()?.iter().filter_map(Value::as_str).filter_map(|s| s.parse().ok()).collect();
    let local = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_link_local() || v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unicast_link_local() || v6.is_unspecified(),
    };
    ips.iter().find(|ip| !local(ip)).or(ips.first()).copied()
}

fn product(service_source: &str) -> &'static str {
    match service_source {
        "microsoftDefenderForEndpoint" => "Microsoft Defender for Endpoint",
        "microsoftDefenderForIdentity" => "Microsoft Defender for Identity",
        "microsoftDefenderForCloudApps" => "Microsoft Defender for Cloud Apps",
        "microsoftDefenderForOffice365" => "Microsoft Defender for Office 365",
        "microsoft365Defender" => "Microsoft Defender XDR",
        "azureAdIdentityProtection" | "microsoftEntraIdProtection" => "Microsoft Entra ID Protection",
        "microsoftAppGovernance" => "Microsoft App Governance",
        "dataLossPrevention" | "microsoftDataLossPrevention" => "Microsoft Purview Data Loss Prevention",
        "microsoftDefenderForCloud" => "Microsoft Defender for Cloud",
        "microsoftSentinel" => "Microsoft Sentinel",
        "microsoftInsiderRiskManagement" => "Microsoft Purview Insider Risk Management",
        _ => "Microsoft Graph Security",
    }
}

fn analyzer_category(service_source: &str) -> &'static str {
    match service_source {
        "microsoftDefenderForEndpoint" => "END.EDR",
        "microsoftDefenderForIdentity" | "microsoftInsiderRiskManagement" => "ID.UEBA",
        "microsoftDefenderForCloudApps" | "microsoftAppGovernance" => "CLD.CASB",
        "microsoftDefenderForOffice365" => "EMAIL.SEG",
        "azureAdIdentityProtection" | "microsoftEntraIdProtection" => "ID.IAM",
        "dataLossPrevention" | "microsoftDataLossPrevention" => "ID.DLP",
        "microsoftDefenderForCloud" => "CLD.CWPP",
        _ => "SIEM.SIEM",
    }
}

/// The ATT&CK tactic an alert `category` names (`DefenseEvasion` → `Defense Evasion`).
fn tactic_name(category: &str) -> Option<&'static str> {
    Some(match category {
        "Reconnaissance" => "Reconnaissance",
        "ResourceDevelopment" => "Resource Development",
        "InitialAccess" => "Initial Access",
        "Execution" => "Execution",
        "Persistence" => "Persistence",
        "PrivilegeEscalation" => "Privilege Escalation",
        "DefenseEvasion" => "Defense Evasion",
        "CredentialAccess" => "Credential Access",
        "Discovery" => "Discovery",
        "LateralMovement" => "Lateral Movement",
        "Collection" => "Collection",
        "CommandAndControl" => "Command and Control",
        "Exfiltration" => "Exfiltration",
        "Impact" => "Impact",
        _ => return None,
    })
}

fn idmef_category(category: &str) -> &'static str {
    match category {
        "Ransomware" => "Malware.Ransomware",
        "Malware" => "Malware.Other",
        "UnwantedSoftware" => "Malware.Adware",
        "Reconnaissance" | "Discovery" => "Recon.Network",
        "CredentialAccess" | "InitialAccess" | "Execution" | "DefenseEvasion" | "LateralMovement" | "Exploit" => "Access.Compromise",
        "PrivilegeEscalation" => "Access.Escalation",
        "Persistence" | "CommandAndControl" => "Access.Backdoor",
        "Collection" | "Exfiltration" => "Theft.Data",
        "Impact" => "Sabotage.Other",
        "Phishing" | "SuspiciousEmail" => "SocialEng.Phishing",
        "DataLossPrevention" | "InformationProtection" => "Theft.Data",
        "SuspiciousActivity" | "ThreatManagement" => "Other.Undetermined",
        _ => "Other.Uncategorised",
    }
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::vendors::fixture_events;

    #[test]
    fn updates_of_an_alert_are_distinct_events() {
        let first = fixture_events("graph_alerts", "hidden-file-execution.json").remove(0);
        let resolved = fixture_events("graph_alerts", "hidden-file-execution-resolved.json").remove(0);
        assert_eq!(first.id, "da637551227677560813_-961444813@2021-05-02T14:19:01.3266667Z");
        assert_ne!(first.id, resolved.id);
        assert_eq!(first.time, resolved.time, "both versions are of the alert created at the same time");
        assert_eq!((first.action.as_deref(), resolved.action.as_deref()), (Some("new"), Some("resolved")));
        assert_eq!(
            first.mitre,
            [Mitre { technique_id: Some("T1564.001".into()), technique: None, tactic: Some("Defense Evasion".into()) }]
        );
        assert_eq!((first.severity.level, first.target.hostname.as_deref()), (Level::Low, Some("tempDns")));
        assert_eq!(first.analyzer.category, "END.EDR");
    }

    #[test]
    fn evidence_fills_devices_users_ips_processes_and_files() {
        let e = fixture_events("graph_alerts", "mde-credential-theft-evidence.json").remove(0);
        assert_eq!(e.target.hostname.as_deref(), Some("ws-1042.corp.contoso.com"));
        assert_eq!(e.target.ip, Some("10.1.4.42".parse().unwrap()), "not the link-local address listed first");
        assert_eq!(e.target.user.as_deref(), Some("j.doe@contoso.com"));
        assert_eq!(e.target.process.as_deref(), Some("mimi.exe"));
        assert_eq!(e.source.ip, Some("203.0.113.45".parse().unwrap()));
        assert_eq!(e.files[0].path.as_deref(), Some("C:\\Users\\j.doe\\AppData\\Local\\Temp\\mimi.exe"));
        assert_eq!(e.files[0].detections, ["Mimikatz"]);
        assert_eq!(e.mitre.len(), 2);
        assert_eq!((e.category, e.severity.level), ("Access.Compromise", Level::High));
    }

    #[test]
    fn a_page_is_split_into_its_alerts() {
        let events = fixture_events("graph_alerts", "alerts-v2-page.json");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].mitre, [Mitre { tactic: Some("Initial Access".into()), ..Mitre::default() }]);
        assert_eq!(events[0].analyzer.category, "ID.IAM");
        assert_eq!(
            (events[1].severity.level, events[1].target.url.as_deref()),
            (Level::Info, Some("https://login-micros0ft.example/owa/auth"))
        );
    }
}
