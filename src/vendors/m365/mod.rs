//! Microsoft 365 (Office 365) Management Activity API audit records (the arrays of a content
//! blob are split into their records).
//!
//! Sign-ins (`UserLoggedIn`, `UserLoginFailed`, Entra ID logon records) are security events in the
//! `Access` categories with the outcome as the action; DLP rule matches (`DLP.All`, record types
//! 11, 13, 33) and security alerts (record type 40) are alerts with the rule's severity; everything
//! else (administration: `Add member to role.`, `Set-Mailbox`, `New-InboxRule` …, and user
//! activity) is audit. `CreationTime` has no offset: it is UTC.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "m365",
    input: "Office 365 Management Activity audit records (a content blob's array is split into records)",
    severity: "DLP rule / alert `Severity` words (medium when absent); failed sign-ins low; other records info",
    normalize,
    split: Some(split),
    text_line: None,
    id_field: Some("Id"),
};

fn split(doc: Value) -> Vec<Value> {
    match doc {
        Value::Array(a) => a,
        other => vec![other],
    }
}

/// Record types (`AuditLogRecordType`) of Entra ID sign-ins.
const SIGN_IN_TYPES: [i64; 2] = [9, 15];
/// Record types of DLP events: Exchange, SharePoint/OneDrive, their classification, endpoint.
const DLP_TYPES: [i64; 4] = [11, 13, 33, 63];
/// `SecurityComplianceAlerts`.
const ALERT_TYPE: i64 = 40;

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let operation = str_at(v, "Operation").ok_or_else(|| NormalizeError::new("Operation", "missing"))?;
    let workload = str_at(v, "Workload").unwrap_or_default();
    let record_type = int_at(v, "RecordType");
    e.product = if workload.is_empty() { "Microsoft 365".into() } else { format!("Microsoft 365 {workload}") };
    if let Some(id) = str_at(v, "Id") {
        e.id = id;
    }
    if let Some(t) = str_at(v, "CreationTime").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    let result = str_at(v, "ResultStatus");
    let rt = |set: &[i64]| record_type.is_some_and(|r| set.contains(&r));
    let sign_in = matches!(operation.as_str(), "UserLoggedIn" | "UserLoginFailed")
        || (workload == "AzureActiveDirectory" && rt(&SIGN_IN_TYPES))
        || operation.starts_with("PasswordLogon");
    let dlp = rt(&DLP_TYPES) || operation.starts_with("DLP") || at(v, "PolicyDetails").is_some();
    let alert = record_type == Some(ALERT_TYPE) || operation.starts_with("AlertTriggered") || operation == "AlertEntityGenerated";
    let user = str_at(v, "UserId");
    e.source = Endpoint {
        ip: str_at(v, "ClientIP").or_else(|| str_at(v, "ClientIPAddress")).and_then(|s| client_ip(&s)),
        user: user.clone(),
        ..Endpoint::default()
    };
    let object = str_at(v, "ObjectId");
    e.rule =
        Some(Rule { id: Some(operation.clone()), name: None, groups: [workload.clone()].into_iter().filter(|w| !w.is_empty()).collect() });
    e.title = format!("{workload} {operation}").trim().to_string();
    e.analyzer = Analyzer {
        name: "m365".into(),
        model: "Microsoft 365 audit log".into(),
        category: "SIEM.LOG",
        data: "Log",
        method: "Monitor",
        hostname: None,
        ip: None,
    };
    if sign_in {
        let failed = operation == "UserLoginFailed"
            || result.as_deref().is_some_and(|r| matches!(r.to_ascii_lowercase().as_str(), "failed" | "failure" | "false"));
        e.kind = Kind::SecurityEvent;
        e.category = if failed { "Access.Forced" } else { "Access.Authorized" };
        e.action = Some(if failed { "failure" } else { "success" }.into());
        e.severity = Severity { level: if failed { Level::Low } else { Level::Info }, original: result.clone().unwrap_or_default() };
        e.target = Endpoint { user: object.filter(|o| o.contains('@')).or(user), ..Endpoint::default() };
        e.title = format!(
            "{} sign-in {} for {}",
            if workload.is_empty() { "Microsoft 365" } else { workload.as_str() },
            if failed { "failed" } else { "succeeded" },
            e.target.user.as_deref().unwrap_or("unknown user")
        );
        e.description = if failed { login_error(v) } else { None };
        e.analyzer.category = "ID.IAM";
        e.analyzer.data = "Authentication";
    } else if dlp {
        dlp_record(v, e, &operation);
    } else if alert {
        let sev = str_at(v, "Severity").unwrap_or_default();
        e.kind = Kind::Alert;
        e.severity = Severity { level: level_from_word(&sev).unwrap_or(Level::Medium), original: sev };
        e.title = str_at(v, "Name").or_else(|| str_at(v, "AlertName")).unwrap_or(e.title.clone());
        e.description = str_at(v, "Comments").filter(|c| c != "New alert");
        e.category = "Other.Undetermined";
        e.rule = Some(Rule {
            id: str_at(v, "PolicyId").or_else(|| str_at(v, "AlertId")),
            name: str_at(v, "Name"),
            groups: str_at(v, "Category").into_iter().collect(),
        });
        e.analyzer.data = "Alert";
    } else {
        e.kind = Kind::Audit;
        e.severity = Severity { level: Level::Info, original: result.clone().unwrap_or_default() };
        e.action = result.as_deref().map(outcome);
        e.category = admin_category(&operation, v);
        e.target = match &object {
            Some(o) if o.starts_with("http") => Endpoint { url: Some(o.clone()), ..Endpoint::default() },
            _ => Endpoint { user: target_user(v, object.as_deref()), ..Endpoint::default() },
        };
        let params = parameters(v);
        if !params.is_empty() {
            e.description = Some(params);
        } else if let Some(o) = object.filter(|o| !o.starts_with("http") && !o.contains('@')) {
            e.description = Some(format!("Object: {o}"));
        }
    }
    Ok(())
}

/// `ClientIP` with its port or brackets removed (`1.2.3.4:5678`, `[fdfd::555]:12346`).
fn client_ip(text: &str) -> Option<std::net::IpAddr> {
    let t = text.trim();
    if let Ok(ip) = t.parse() {
        return Some(ip);
    }
    if let Some(rest) = t.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    t.rsplit_once(':').and_then(|(host, _)| host.parse().ok())
}

/// `Succeeded`, `Success`, `True` → success; `Failed`, `False` → failure; other values as written.
fn outcome(result: &str) -> String {
    match result.to_ascii_lowercase().as_str() {
        "succeeded" | "success" | "true" | "partiallysucceeded" => "success".into(),
        "failed" | "failure" | "false" => "failure".into(),
        other => other.to_string(),
    }
}

/// Why a sign-in failed: `LogonError`, or the `LoginError`/`ResultStatusDetail` extended property.
fn login_error(v: &Value) -> Option<String> {
    if let Some(err) = str_at(v, "LogonError") {
        return Some(format!("Logon error: {err}"));
    }
    let props = at(v, "ExtendedProperties")?.as_array()?;
    props
        .iter()
        .find(|p| str_at(p, "Name").is_some_and(|n| n == "LoginError" || n == "ResultStatusDetail"))
        .and_then(|p| str_at(p, "Value"))
        .map(|err| format!("Logon error: {err}"))
}

/// Exchange cmdlet parameters as `-Name Value`, in order.
fn parameters(v: &Value) -> String {
    let Some(params) = at(v, "Parameters").and_then(Value::as_array) else { return String::new() };
    params
        .iter()
        .filter_map(|p| Some(format!("-{} {}", str_at(p, "Name")?, str_at(p, "Value").unwrap_or_default())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The user an administrator's change is about: the cmdlet's `-Identity`, the UPN among an Entra
/// ID change's `Target[]`, or the mailbox of the `ObjectId` (`user@domain\rule`).
fn target_user(v: &Value, object: Option<&str>) -> Option<String> {
    let upn = |s: &str| s.contains('@').then(|| s.split('\\').next().unwrap_or(s).to_string());
    let params = at(v, "Parameters").and_then(Value::as_array);
    params
        .and_then(|ps| ps.iter().find(|p| str_at(p, "Name").as_deref() == Some("Identity")))
        .and_then(|p| str_at(p, "Value"))
        .and_then(|s| upn(&s))
        .or_else(|| at(v, "Target")?.as_array()?.iter().filter_map(|t| str_at(t, "ID")).find_map(|id| upn(&id)))
        .or_else(|| object.and_then(upn))
}

fn admin_category(operation: &str, v: &Value) -> &'static str {
    let op = operation.to_ascii_lowercase();
    let forwards = || {
        at(v, "Parameters").and_then(Value::as_array).is_some_and(|ps| {
            ps.iter().any(|p| {
                str_at(p, "Name").is_some_and(|n| n.contains("ForwardTo") || n.contains("RedirectTo") || n == "ForwardingSmtpAddress")
            })
        })
    };
    if op.starts_with("add member to role") || op.contains("add-rolegroupmember") || op.starts_with("add-mailboxpermission") {
        "Access.Escalation"
    } else if (op.contains("inboxrule") || op == "set-mailbox") && forwards() {
        // Mail forwarded out of the organisation: the usual step after a mailbox takeover.
        "Theft.Data"
    } else if op.starts_with("new-")
        || op.starts_with("set-")
        || op.starts_with("remove-")
        || op.starts_with("add ")
        || op.starts_with("update ")
        || op.starts_with("delete ")
        || op.starts_with("reset ")
        || op.starts_with("change ")
    {
        "Operational.Other"
    } else {
        "Other.Uncategorised"
    }
}

/// A DLP rule match: the policy's first matched rule, its severity and actions.
fn dlp_record(v: &Value, e: &mut SecurityEvent, operation: &str) {
    e.kind = Kind::Alert;
    e.category = "Theft.Data";
    let policy = at(v, "PolicyDetails").and_then(Value::as_array).and_then(|p| p.first());
    let rule = policy.and_then(|p| at(p, "Rules")).and_then(Value::as_array).and_then(|r| r.first());
    let sev = rule.and_then(|r| str_at(r, "Severity")).or_else(|| str_at(v, "Severity")).unwrap_or_default();
    e.severity = Severity { level: level_from_word(&sev).unwrap_or(Level::Medium), original: sev };
    let rule_name = rule.and_then(|r| str_at(r, "RuleName"));
    let policy_name = policy.and_then(|p| str_at(p, "PolicyName"));
    e.rule = Some(Rule {
        id: rule.and_then(|r| str_at(r, "RuleId")).or(Some(operation.to_string())),
        name: rule_name.clone(),
        groups: policy_name.clone().into_iter().collect(),
    });
    e.title = match (&policy_name, &rule_name) {
        (Some(p), Some(r)) => format!("DLP policy {p}: rule {r} matched"),
        (Some(p), None) => format!("DLP policy {p} matched"),
        (None, Some(r)) => format!("DLP rule {r} matched"),
        (None, None) => format!("DLP {operation}"),
    };
    let actions: Vec<String> = rule
        .and_then(|r| at(r, "Actions"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    e.action =
        if actions.iter().any(|a| a.contains("Block")) { Some("blocked".into()) } else { actions.first().map(|a| a.to_ascii_lowercase()) };
    let sensitive: Vec<String> = rule
        .and_then(|r| at(r, "ConditionsMatched.SensitiveInformation"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| {
                    Some(format!("{} ×{}", str_at(s, "SensitiveInformationTypeName")?, str_at(s, "Count").unwrap_or_else(|| "?".into())))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut notes = Vec::new();
    if !sensitive.is_empty() {
        notes.push(format!("Sensitive information: {}", sensitive.join(", ")));
    }
    if !actions.is_empty() {
        notes.push(format!("Actions: {}", actions.join(", ")));
    }
    if let Some(subject) = str_at(v, "ExchangeMetaData.Subject") {
        notes.push(format!("Subject: {subject}"));
    }
    e.description = Some(notes.join("\n")).filter(|d| !d.is_empty());
    let sender = str_at(v, "ExchangeMetaData.From").or_else(|| str_at(v, "SharePointMetaData.From"));
    if e.source.user.is_none() || e.source.user.as_deref() == Some("DlpAgent") {
        e.source.user = sender;
    }
    let recipients = strings_at(v, "ExchangeMetaData.To");
    let url = str_at(v, "SharePointMetaData.FilePathUrl");
    e.target = Endpoint { user: recipients.first().cloned(), url: url.clone(), ..Endpoint::default() };
    if let Some(name) = str_at(v, "SharePointMetaData.FileName") {
        e.files.push(File { path: url.or(Some(name)), ..File::default() });
    }
    e.analyzer.category = "ID.DLP";
    e.analyzer.data = "Content";
    e.analyzer.method = "Policy";
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::vendors::fixture_events;

    fn one(file: &str) -> SecurityEvent {
        fixture_events("m365", file).remove(0)
    }

    #[test]
    fn sign_ins_have_an_outcome_and_a_client_ip_without_port() {
        let failed = one("azure-ad-password-logon-failed.json");
        assert_eq!(failed.id, "80c76bd2-9d81-4c57-a97a-accfc3443dca");
        assert_eq!(failed.time.to_rfc3339(), "2015-06-29T20:03:19+00:00", "CreationTime is UTC");
        assert_eq!((failed.kind, failed.category, failed.action.as_deref()), (Kind::SecurityEvent, "Access.Forced", Some("failure")));
        assert!(failed.description.unwrap().contains("PP_E_BAD_PASSWORD"));
        let ok = one("user-logged-in.json");
        assert_eq!((ok.category, ok.action.as_deref()), ("Access.Authorized", Some("success")));
        assert_eq!(ok.source.ip, Some("79.159.10.151".parse().unwrap()));
        let v6 = one("user-login-failed-ipv6.json");
        assert_eq!(v6.source.ip, Some("2001:db8:85a3::8a2e:370:7334".parse().unwrap()));
        assert_eq!(v6.description.as_deref(), Some("Logon error: InvalidUserNameOrPassword"));
    }

    #[test]
    fn admin_actions_are_audit() {
        let role = one("add-member-to-role.json");
        assert_eq!((role.kind, role.category), (Kind::Audit, "Access.Escalation"));
        assert_eq!(role.target.user.as_deref(), Some("helpdesk.temp@contoso.com"));
        let blob = fixture_events("m365", "exchange-admin-blob.json");
        assert_eq!(blob.len(), 3);
        assert_eq!((blob[0].category, blob[0].action.as_deref()), ("Theft.Data", Some("success")));
        assert_eq!(blob[0].target.user.as_deref(), Some("finance@contoso.com"));
        assert!(blob[0].description.as_deref().unwrap().contains("-ForwardTo acct.payable@freemail.example"));
        assert_eq!(blob[1].target.user.as_deref(), Some("finance@contoso.com"));
        assert_eq!((blob[2].category, blob[2].action.as_deref()), ("Operational.Other", Some("failure")));
        let page = one("sharepoint-page-viewed.json");
        assert_eq!((page.kind, page.action.as_deref()), (Kind::Audit, None));
        assert!(page.target.url.is_some());
    }

    #[test]
    fn dlp_matches_are_alerts_with_the_rule_severity() {
        let mail = one("dlp-exchange-rule-match.json");
        assert_eq!((mail.kind, mail.severity.level, mail.action.as_deref()), (Kind::Alert, Level::High, Some("blocked")));
        assert_eq!(mail.target.user.as_deref(), Some("partner@external.example"));
        assert!(mail.description.unwrap().contains("Credit Card Number ×27"));
        let file = one("dlp-sharepoint-no-severity.json");
        assert_eq!((file.severity.level, file.severity.original.as_str()), (Level::Medium, ""));
        assert_eq!(file.source.user.as_deref(), Some("m.chen@contoso.com"));
        assert_eq!(file.files.len(), 1);
    }
}
