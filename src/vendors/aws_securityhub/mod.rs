//! AWS Security Hub findings in the AWS Security Finding Format (ASFF), as `GetFindings`
//! returns them; a `{"Findings": [...]}` response is split into its findings.
//!
//! The kind follows the finding's `Types` namespace: threats (`TTPs/…`, `Effects/…`,
//! `Unusual Behaviors/…`, `Sensitive Data Identifications/…`) are alerts, control checks (a
//! `Compliance` block) compliance checks, `Software and Configuration Checks/Vulnerabilities/…`
//! risk assessments. A `TTPs/<tactic>/…` type names an ATT&CK tactic.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "aws_securityhub",
    input: "Security Hub ASFF findings (`GetFindings`; a response is split into its `Findings`)",
    severity: "`Severity.Label` CRITICAL/HIGH/MEDIUM/LOW/INFORMATIONAL, else `Severity.Normalized` ≥90 critical, ≥70 high, ≥40 medium, ≥1 low",
    normalize,
    split: Some(split),
    text_line: None,
    id_field: Some("Id"),
};

/// A `{"Findings": [...]}` response gives its findings; anything else is one finding.
fn split(doc: Value) -> Vec<Value> {
    match doc {
        Value::Object(mut o) if o.get("Findings").is_some_and(Value::is_array) && !o.contains_key("Id") => match o.remove("Findings") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        Value::Array(a) => a,
        other => vec![other],
    }
}

/// ASFF's own mapping of `Severity.Normalized` (0–100) to labels.
pub fn level_of_normalized(n: i64) -> Level {
    match n {
        90.. => Level::Critical,
        70..=89 => Level::High,
        40..=69 => Level::Medium,
        1..=39 => Level::Low,
        _ => Level::Info,
    }
}

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let id = str_at(v, "Id").ok_or_else(|| NormalizeError::new("Id", "missing"))?;
    e.id = id;
    e.product = match (str_at(v, "CompanyName"), str_at(v, "ProductName")) {
        (Some(c), Some(p)) if !p.starts_with(&c) => format!("{c} {p}"),
        (_, Some(p)) => p,
        _ => str_at(v, "ProductArn")
            .and_then(|a| Some(a.rsplit_once("product/")?.1.to_string()))
            .unwrap_or_else(|| "AWS Security Hub".into()),
    };
    if let Some(t) = ["UpdatedAt", "LastObservedAt", "CreatedAt"].iter().find_map(|k| str_at(v, k).and_then(|s| parse_time(&s))) {
        e.time = t;
    }
    let label = str_at(v, "Severity.Label");
    let normalized = int_at(v, "Severity.Normalized");
    e.severity = Severity {
        level: label
            .as_deref()
            .and_then(level_from_word)
            .or(normalized.map(level_of_normalized))
            .or_else(|| str_at(v, "Severity.Original").and_then(|o| level_from_word(&o)))
            .unwrap_or(Level::Info),
        original: label.or_else(|| normalized.map(|n| n.to_string())).unwrap_or_default(),
    };
    let types = strings_at(v, "Types");
    let namespace = |ns: &str| types.iter().any(|t| t.starts_with(ns));
    let compliance = str_at(v, "Compliance.Status");
    e.kind =
        if namespace("TTPs/") || namespace("Effects/") || namespace("Unusual Behaviors/") || namespace("Sensitive Data Identifications/") {
            Kind::Alert
        } else if compliance.is_some() || namespace("Software and Configuration Checks/Industry and Regulatory Standards") {
            Kind::ComplianceCheck
        } else if namespace("Software and Configuration Checks/Vulnerabilities") {
            Kind::RiskAssessment
        } else {
            Kind::SecurityEvent
        };
    let tactics: Vec<&str> =
        types.iter().filter_map(|t| t.strip_prefix("TTPs/")).map(|rest| rest.split('/').next().unwrap_or(rest)).collect();
    for t in &tactics {
        let technique_id = types
            .iter()
            .filter_map(|ty| ty.strip_prefix("TTPs/")?.strip_prefix(t)?.strip_prefix('/'))
            .find(|c| is_attack_technique(c))
            .map(str::to_string);
        let m = Mitre { technique_id, technique: None, tactic: Some(t.to_string()) };
        if !e.mitre.contains(&m) {
            e.mitre.push(m);
        }
    }
    e.category = category(&types, &tactics, compliance.as_deref());
    e.title = str_at(v, "Title").unwrap_or_else(|| "Security Hub finding".into());
    let mut notes: Vec<String> = str_at(v, "Description").into_iter().collect();
    let resources: &[Value] = at(v, "Resources").and_then(Value::as_array).map_or(&[], Vec::as_slice);
    let listed: Vec<String> = resources
        .iter()
        .filter_map(|r| {
            let id = str_at(r, "Id")?;
            let ty = str_at(r, "Type").unwrap_or_default();
            Some(match str_at(r, "Region") {
                Some(region) => format!("{ty} {id} ({region})"),
                None => format!("{ty} {id}"),
            })
        })
        .collect();
    if !listed.is_empty() {
        notes.push(format!("Resources: {}", listed.join(", ")));
    }
    let state: Vec<String> = [
        ("Account", str_at(v, "AwsAccountId")),
        ("Region", str_at(v, "Region")),
        ("Workflow", str_at(v, "Workflow.Status").or_else(|| str_at(v, "WorkflowState"))),
        ("Record", str_at(v, "RecordState")),
        ("Compliance", compliance.clone()),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some(format!("{k}: {}", v?)))
    .collect();
    if !state.is_empty() {
        notes.push(state.join(", "));
    }
    e.description = Some(notes.join("\n")).filter(|d| !d.is_empty());
    // A control's verdict (passed, failed …) is what the check did.
    e.action = compliance.map(|c| c.to_ascii_lowercase());
    e.rule = Some(Rule {
        id: str_at(v, "Compliance.SecurityControlId").or_else(|| str_at(v, "GeneratorId")),
        name: str_at(v, "Title"),
        groups: types.clone(),
    });
    let first = resources.first();
    let detail = |path: &str| first.and_then(|r| str_at(r, path));
    e.target = Endpoint {
        hostname: detail("Details.AwsEc2Instance.PrivateDnsName").or_else(|| detail("Id")),
        ip: first
            .and_then(|r| at(r, "Details.AwsEc2Instance.IpV4Addresses"))
            .and_then(Value::as_array)
            .and_then(|a| a.iter().filter_map(Value::as_str).find_map(|s| s.parse().ok())),
        user: resources.iter().find_map(|r| {
            str_at(r, "Details.AwsIamAccessKey.PrincipalName")
                .or_else(|| str_at(r, "Details.AwsIamAccessKey.UserName"))
                .or_else(|| str_at(r, "Details.AwsIamUser.UserName"))
        }),
        ..Endpoint::default()
    };
    let remote =
        ["NetworkConnectionAction", "AwsApiCallAction"].iter().find_map(|a| ip_at(v, &format!("Action.{a}.RemoteIpDetails.IpAddressV4")));
    e.source = Endpoint {
        ip: remote.or_else(|| {
            at(v, "Action.PortProbeAction.PortProbeDetails")
                .and_then(Value::as_array)
                .and_then(|d| d.first())
                .and_then(|d| ip_at(d, "RemoteIpDetails.IpAddressV4"))
        }),
        port: port_at(v, "Action.NetworkConnectionAction.RemotePortDetails.Port"),
        protocol: str_at(v, "Action.NetworkConnectionAction.Protocol").map(|p| p.to_ascii_lowercase()),
        ..Endpoint::default()
    };
    let product_arn = str_at(v, "ProductArn").unwrap_or_default();
    e.analyzer = Analyzer {
        name: "aws-securityhub".into(),
        model: e.product.clone(),
        category: if e.kind == Kind::Alert {
            "CLD.CWPP"
        } else if e.kind == Kind::RiskAssessment {
            "VM.VULN-SCANNER"
        } else {
            "CLD.CSPM"
        },
        data: if e.kind == Kind::Alert { "Alert" } else { "Reporting" },
        method: if e.kind == Kind::ComplianceCheck {
            "Policy"
        } else if product_arn.contains("/guardduty") {
            "Threat Intelligence"
        } else {
            "Monitor"
        },
        hostname: None,
        ip: None,
    };
    Ok(())
}

fn category(types: &[String], tactics: &[&str], compliance: Option<&str>) -> &'static str {
    let has = |ns: &str| types.iter().any(|t| t.starts_with(ns));
    if let Some(t) = tactics.first() {
        return match t.to_ascii_lowercase().as_str() {
            "discovery" | "reconnaissance" => "Recon.Network",
            "privilege escalation" => "Access.Escalation",
            "persistence" | "command and control" => "Access.Backdoor",
            "impact" => "Sabotage.Other",
            "exfiltration" | "data exfiltration" | "collection" => "Theft.Data",
            _ => "Access.Compromise",
        };
    }
    if has("Effects/Data Exfiltration") {
        "Theft.Data"
    } else if has("Effects/Resource Consumption") {
        "Availability.Overload"
    } else if has("Effects/Data Destruction") {
        "Sabotage.Data"
    } else if has("Sensitive Data Identifications/") {
        "Theft.PII"
    } else if has("Unusual Behaviors/") || has("Effects/") {
        "Other.Undetermined"
    } else if matches!(compliance, Some("FAILED" | "WARNING")) {
        "Operational.Policy Violation"
    } else if has("Software and Configuration Checks/Vulnerabilities") {
        "Other.Uncategorised"
    } else if has("Software and Configuration Checks/") && compliance.is_none() {
        "Availability.Misconfiguration"
    } else {
        "Other.Uncategorised"
    }
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::vendors::fixture_events;

    #[test]
    fn control_findings_are_compliance_checks() {
        let e = fixture_events("aws_securityhub", "config-1-failed.json").remove(0);
        assert!(e.id.ends_with("security-control/Config.1/finding/2a55570b-f5d6-4c1f-9a0a-4d1f0d3a9f10"));
        assert_eq!((e.kind, e.category, e.action.as_deref()), (Kind::ComplianceCheck, "Operational.Policy Violation", Some("failed")));
        assert_eq!((e.severity.level, e.severity.original.as_str()), (Level::Medium, "MEDIUM"));
        assert_eq!(e.rule.as_ref().unwrap().id.as_deref(), Some("Config.1"));
        assert_eq!(e.time.to_rfc3339(), "2024-05-09T10:00:05.123+00:00");
        assert!(
            e.description.unwrap().contains("Account: 111111111111, Region: us-east-1, Workflow: NEW, Record: ACTIVE, Compliance: FAILED")
        );
    }

    #[test]
    fn ttps_types_give_attack_tactics() {
        let e = fixture_events("aws_securityhub", "guardduty-ssh-bruteforce.json").remove(0);
        assert_eq!((e.kind, e.category), (Kind::Alert, "Access.Compromise"));
        assert_eq!(e.mitre, [Mitre { tactic: Some("Initial Access".into()), ..Mitre::default() }]);
        assert_eq!((e.source.ip, e.source.port), (Some("203.0.113.88".parse().unwrap()), Some(49822)));
        assert_eq!(e.target.ip, Some("54.216.10.25".parse().unwrap()));
        assert_eq!(e.product, "Amazon GuardDuty");
        let exfil = fixture_events("aws_securityhub", "guardduty-credential-exfiltration-normalized-only.json").remove(0);
        assert_eq!((exfil.severity.level, exfil.severity.original.as_str()), (Level::High, "80"));
        assert_eq!(exfil.target.user.as_deref(), Some("ec2-app-role"));
    }

    #[test]
    fn vulnerabilities_and_a_response() {
        let cve = fixture_events("aws_securityhub", "inspector-cve.json").remove(0);
        assert_eq!((cve.kind, cve.severity.level), (Kind::RiskAssessment, Level::Critical));
        let events = fixture_events("aws_securityhub", "get-findings-response.json");
        assert_eq!(events.len(), 2);
        assert_eq!(
            (events[0].kind, events[0].severity.level, events[0].action.as_deref()),
            (Kind::ComplianceCheck, Level::Info, Some("passed"))
        );
        assert_eq!((events[1].kind, events[1].category), (Kind::Alert, "Theft.PII"));
        assert_eq!(super::level_of_normalized(0), Level::Info);
        assert_eq!(super::level_of_normalized(39), Level::Low);
    }
}
