//! Okta System Log events (`LogEvent`, as `GET /api/v1/logs` returns them).
//!
//! Sign-ins (`user.session.*`, `user.authentication.*`, `policy.evaluate_sign_on`) are security
//! events in the `Access` categories with the outcome as the action; administration
//! (`user.lifecycle.*`, `group.*`, `application.*` …) is audit; `security.*` threat events are
//! alerts. The model has no geolocation or user-agent fields: they go into the description.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "okta_logs",
    input: "System Log `LogEvent`s (`/api/v1/logs`)",
    severity: "`severity` ERROR→high, WARN→medium, INFO/DEBUG→info",
    normalize,
    split: None,
    text_line: None,
    id_field: Some("uuid"),
};

/// What an Okta event type is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    SignIn,
    Admin,
    Threat,
    Other,
}

fn class(event_type: &str) -> Class {
    let starts = |p: &[&str]| p.iter().any(|p| event_type.starts_with(p));
    if starts(&["user.session.", "user.authentication.", "policy.evaluate_sign_on", "user.mfa.okta_verify.deny_push"]) {
        Class::SignIn
    } else if starts(&["security.threat.", "security.attack.", "security.breached_credential", "user.risk."]) {
        Class::Threat
    } else if starts(&[
        "user.lifecycle.",
        "user.account.",
        "user.mfa.factor.",
        "group.",
        "application.",
        "app.",
        "policy.lifecycle.",
        "policy.rule.",
        "system.",
        "zone.",
        "network_zone.",
        "iam.",
    ]) {
        Class::Admin
    } else {
        Class::Other
    }
}

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let event_type = str_at(v, "eventType").ok_or_else(|| NormalizeError::new("eventType", "missing"))?;
    e.product = "Okta".into();
    if let Some(id) = str_at(v, "uuid") {
        e.id = id;
    }
    if let Some(t) = str_at(v, "published").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    let sev = str_at(v, "severity").unwrap_or_default();
    e.severity = Severity { level: level_from_word(&sev).unwrap_or(Level::Info), original: sev };
    let outcome = str_at(v, "outcome.result").map(|r| r.to_ascii_uppercase());
    e.action = outcome.as_deref().map(str::to_ascii_lowercase);
    let class = class(&event_type);
    (e.kind, e.category) = match class {
        Class::SignIn => (
            Kind::SecurityEvent,
            match outcome.as_deref() {
                Some("SUCCESS" | "ALLOW") => "Access.Authorized",
                Some("FAILURE") => "Access.Forced",
                // Refused by a sign-on policy rather than failed credentials.
                Some("DENY") => "Access.Unauthorized",
                _ => "Access.Other",
            },
        ),
        Class::Threat => (Kind::Alert, "Access.Forced"),
        Class::Admin if event_type.starts_with("user.account.privilege.grant") || event_type.contains("admin_privilege.grant") => {
            (Kind::Audit, "Access.Escalation")
        }
        Class::Admin if event_type == "user.account.lock" => (Kind::Audit, "Access.Lost"),
        Class::Admin => (Kind::Audit, "Operational.Other"),
        Class::Other => (Kind::SecurityEvent, "Other.Uncategorised"),
    };
    // A threat Okta reports at INFO is still worth a look.
    if class == Class::Threat && e.severity.level < Level::Medium {
        e.severity.level = Level::Medium;
    }
    e.title = str_at(v, "displayMessage").unwrap_or_else(|| event_type.clone());
    let actor = str_at(v, "actor.alternateId").or_else(|| str_at(v, "actor.displayName")).filter(|a| a != "unknown");
    let ip = ip_at(v, "client.ipAddress")
        .or_else(|| at(v, "request.ipChain").and_then(Value::as_array).and_then(|c| c.first()).and_then(|hop| ip_at(hop, "ip")));
    e.source = Endpoint { ip, user: actor.clone(), hostname: str_at(v, "device.name"), ..Endpoint::default() };
    let targets: Vec<&Value> = at(v, "target").and_then(Value::as_array).map(|a| a.iter().collect()).unwrap_or_default();
    let target_of = |kinds: &[&str]| {
        targets
            .iter()
            .find(|t| str_at(t, "type").is_some_and(|k| kinds.contains(&k.as_str())))
            .and_then(|t| str_at(t, "alternateId").filter(|a| a != "unknown").or_else(|| str_at(t, "displayName")))
    };
    e.target = Endpoint {
        // Who a sign-in is for is its actor; an administrator's action is on its target user.
        user: target_of(&["User"]).or(if class == Class::SignIn { actor } else { None }),
        url: target_of(&["AppInstance", "PublicClientApp"]).filter(|a| a.starts_with("http")),
        ..Endpoint::default()
    };
    e.rule = Some(Rule { id: Some(event_type.clone()), name: str_at(v, "legacyEventType"), groups: Vec::new() });
    let mut notes = Vec::new();
    if let Some(reason) = str_at(v, "outcome.reason") {
        notes.push(format!("reason: {reason}"));
    }
    let names: Vec<String> = targets
        .iter()
        .filter(|t| str_at(t, "type").as_deref() != Some("User"))
        .filter_map(|t| str_at(t, "displayName").map(|n| format!("{} {n}", str_at(t, "type").unwrap_or_default())))
        .collect();
    if !names.is_empty() {
        notes.push(format!("targets: {}", names.join(", ")));
    }
    let geo: Vec<String> =
        ["city", "state", "country"].iter().filter_map(|k| str_at(v, &format!("client.geographicalContext.{k}"))).collect();
    if !geo.is_empty() {
        notes.push(format!("from: {}", geo.join(", ")));
    }
    if let Some(ua) = str_at(v, "client.userAgent.rawUserAgent").filter(|u| u != "UNKNOWN") {
        notes.push(format!("user agent: {ua}"));
    }
    if let Some(zone) = str_at(v, "client.zone").filter(|z| z != "null") {
        notes.push(format!("zone: {zone}"));
    }
    if !notes.is_empty() {
        e.description = Some(notes.join("; "));
    }
    e.analyzer = Analyzer {
        name: "okta".into(),
        model: "Okta System Log".into(),
        category: "ID.IAM",
        data: if class == Class::SignIn { "Authentication" } else { "Log" },
        method: if event_type.starts_with("policy.") { "Policy" } else { "Monitor" },
        hostname: None,
        ip: None,
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::vendors::fixture_events;

    fn one(file: &str) -> SecurityEvent {
        fixture_events("okta_logs", file).remove(0)
    }

    #[test]
    fn sign_ins_carry_outcome_actor_and_client() {
        let ok = one("user-session-start-success.json");
        assert_eq!(ok.id, "f790999f-fe87-467a-9880-6982a583986c");
        assert_eq!(ok.time.to_rfc3339(), "2024-09-30T22:23:07.777+00:00");
        assert_eq!((ok.kind, ok.category, ok.action.as_deref()), (Kind::SecurityEvent, "Access.Authorized", Some("success")));
        assert_eq!(ok.source.ip, Some("12.97.85.90".parse().unwrap()));
        assert_eq!(ok.source.user.as_deref(), Some("admin@example.com"));
        assert!(ok.description.as_deref().unwrap().contains("from: San Francisco, California, United States"));
        assert_eq!(ok.analyzer.data, "Authentication");

        let failed = one("user-session-start-failure.json");
        assert_eq!((failed.category, failed.action.as_deref()), ("Access.Forced", Some("failure")));
        assert_eq!((failed.severity.level, failed.severity.original.as_str()), (Level::Medium, "WARN"));
        assert!(failed.description.as_deref().unwrap().starts_with("reason: INVALID_CREDENTIALS"));

        let denied = one("policy-evaluate-sign-on-deny.json");
        assert_eq!((denied.kind, denied.action.as_deref()), (Kind::SecurityEvent, Some("deny")));
        assert_eq!(denied.analyzer.method, "Policy");
    }

    #[test]
    fn administration_is_audit_on_the_target_user() {
        let created = one("user-lifecycle-create.json");
        assert_eq!((created.kind, created.severity.level), (Kind::Audit, Level::Info));
        assert_eq!(created.source.user.as_deref(), Some("admin@example.com"));
        assert_eq!(created.target.user.as_deref(), Some("bob.jones@example.com"));
        assert_eq!(created.rule.as_ref().unwrap().id.as_deref(), Some("user.lifecycle.create"));
        assert_eq!(one("user-account-privilege-grant.json").category, "Access.Escalation");
        let group = one("group-user-membership-add.json");
        assert_eq!(group.kind, Kind::Audit);
        assert!(group.description.unwrap().contains("UserGroup Finance"));
    }

    #[test]
    fn threats_are_alerts_without_the_unknown_actor() {
        let threat = one("security-threat-detected.json");
        assert_eq!((threat.kind, threat.severity.level), (Kind::Alert, Level::Medium));
        assert_eq!(threat.source.user, None);
        assert_eq!(threat.source.ip, Some("45.155.205.233".parse().unwrap()));
    }
}
