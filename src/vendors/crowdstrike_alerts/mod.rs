//! CrowdStrike Falcon alerts (the objects of `POST /alerts/entities/alerts/v2` and
//! `/alerts/combined/alerts/v1`; a whole response is split into its `resources`).
//!
//! CrowdStrike's own tactic and technique ids (`CSTA0004`, `CST0000`, as for machine-learning
//! detections) are not ATT&CK: they stay in the rule's groups, and only ATT&CK ids (`TA0002`,
//! `T1059.001`) become MITRE references.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "crowdstrike_alerts",
    input: "Falcon alerts (`/alerts/entities/alerts/v2` objects; a response is split into its `resources`)",
    severity: "`severity_name`, else `severity` 0–100: ≥90 critical, ≥70 high, ≥40 medium, ≥20 low, else info",
    normalize,
    split: Some(split),
    text_line: None,
    id_field: Some("composite_id"),
};

/// A `{"resources": [...]}` response gives its alerts; anything else is one alert.
fn split(doc: Value) -> Vec<Value> {
    match doc {
        Value::Object(mut o) if o.get("resources").is_some_and(Value::is_array) && !o.contains_key("composite_id") => {
            match o.remove("resources") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            }
        }
        Value::Array(a) => a,
        other => vec![other],
    }
}

/// CrowdStrike's 0–100 severity, bucketed as the Falcon console names it.
pub fn level(severity: i64) -> Level {
    match severity {
        90.. => Level::Critical,
        70..=89 => Level::High,
        40..=69 => Level::Medium,
        20..=39 => Level::Low,
        _ => Level::Info,
    }
}

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let name = str_at(v, "display_name")
        .or_else(|| str_at(v, "name"))
        .ok_or_else(|| NormalizeError::new("name", "missing (neither `display_name` nor `name`)"))?;
    e.product = "CrowdStrike Falcon".into();
    if let Some(id) = str_at(v, "composite_id").or_else(|| str_at(v, "id")) {
        e.id = id;
    }
    if let Some(t) = ["timestamp", "created_timestamp", "updated_timestamp"].iter().find_map(|k| str_at(v, k).and_then(|s| parse_time(&s)))
    {
        e.time = t;
    }
    e.kind = Kind::Alert;
    let number = int_at(v, "severity");
    let named = str_at(v, "severity_name").and_then(|n| level_from_word(&n));
    e.severity = Severity {
        level: named.or(number.map(level)).unwrap_or(Level::Medium),
        original: number.map(|n| n.to_string()).or_else(|| str_at(v, "severity_name")).unwrap_or_default(),
    };
    e.title = name.clone();
    let mut description = str_at(v, "description");
    if let Some(cmd) = str_at(v, "cmdline") {
        let d = description.get_or_insert_default();
        if !d.is_empty() {
            d.push('\n');
        }
        d.push_str(&format!("Command line: {cmd}"));
    }
    e.description = description;
    let (tactic, technique) = (str_at(v, "tactic"), str_at(v, "technique"));
    let (tactic_id, technique_id) = (str_at(v, "tactic_id"), str_at(v, "technique_id"));
    e.rule = Some(Rule {
        id: str_at(v, "pattern_id"),
        name: str_at(v, "name"),
        groups: [&tactic, &technique].into_iter().flatten().cloned().collect(),
    });
    let attack_tactic = tactic_id.as_deref().is_some_and(is_attack_tactic);
    let attack_technique = technique_id.as_deref().is_some_and(is_attack_technique);
    if attack_tactic || attack_technique {
        e.mitre.push(Mitre {
            technique_id: technique_id.filter(|_| attack_technique),
            technique: technique.clone().filter(|_| attack_technique),
            tactic: tactic.clone().filter(|_| attack_tactic),
        });
    }
    e.action = action(v);
    e.category = category(&[&tactic, &technique, &Some(name), &str_at(v, "scenario")]);
    e.target = Endpoint {
        hostname: str_at(v, "device.hostname"),
        ip: ip_at(v, "device.local_ip").or_else(|| ip_at(v, "device.external_ip")),
        mac: str_at(v, "device.mac_address"),
        user: str_at(v, "user_name"),
        process: str_at(v, "filename"),
        ..Endpoint::default()
    };
    e.source = Endpoint { process: str_at(v, "parent_details.filename"), ..Endpoint::default() };
    let mut hashes = Vec::new();
    for algo in ["sha256", "sha1", "md5"] {
        if let Some(h) = str_at(v, algo).and_then(|h| hex_hash(&h)) {
            hashes.push((algo.to_string(), h));
        }
    }
    let path = str_at(v, "filepath").or_else(|| str_at(v, "filename"));
    if path.is_some() || !hashes.is_empty() {
        e.files.push(File { path, size: None, hashes, detections: Vec::new() });
    }
    let ml = tactic.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("machine learning"));
    let product = str_at(v, "product").unwrap_or_default();
    e.analyzer = Analyzer {
        name: "crowdstrike".into(),
        model: "CrowdStrike Falcon".into(),
        // `product`: epp (endpoint), idp (identity), cwpp (cloud workloads), ngsiem, xdr …
        category: match product.as_str() {
            "idp" => "ID.UEBA",
            "cwpp" => "CLD.CWPP",
            "ngsiem" | "xdr" | "thirdparty" => "SIEM.SIEM",
            _ => "END.EDR",
        },
        data: if product == "idp" { "Authentication" } else { "Host" },
        method: if ml { "AI" } else { "Behavioral" },
        hostname: str_at(v, "device.hostname"),
        ip: None,
    };
    Ok(())
}

/// What the sensor did, from `pattern_disposition_details` (or its description).
fn action(v: &Value) -> Option<String> {
    let flag = |k: &str| at(v, &format!("pattern_disposition_details.{k}")).and_then(Value::as_bool).unwrap_or(false);
    if flag("process_blocked") || flag("operation_blocked") {
        return Some("blocked".into());
    }
    if flag("kill_process") || flag("kill_parent") || flag("kill_subprocess") {
        return Some("killed".into());
    }
    if flag("quarantine_file") || flag("quarantine_machine") {
        return Some("quarantined".into());
    }
    let text = str_at(v, "pattern_disposition_description")?.to_ascii_lowercase();
    Some(
        if text.contains("blocked") {
            "blocked"
        } else if text.contains("kill") {
            "killed"
        } else if text.contains("quarantin") {
            "quarantined"
        } else {
            "detected"
        }
        .into(),
    )
}

fn category(words: &[&Option<String>]) -> &'static str {
    let text = words.iter().filter_map(|w| w.as_deref()).collect::<Vec<_>>().join(" ").to_ascii_lowercase();
    let has = |k: &str| text.contains(k);
    if has("ransomware") {
        "Malware.Ransomware"
    } else if has("adware") || has("pup") {
        "Malware.Adware"
    } else if has("cryptomin") || has("coinmin") {
        "Malware.Cryptominer"
    } else if has("credential") {
        "Access.Compromise"
    } else if has("privilege escalation") {
        "Access.Escalation"
    } else if has("discovery") || has("reconnaissance") {
        "Recon.Other"
    } else if has("exfiltration") || has("collection") {
        "Theft.Data"
    } else if has("persistence") || has("command and control") {
        "Access.Backdoor"
    } else if has("malware") || has("machine learning") || has("ngav") || has("known malware") {
        "Malware.Other"
    } else if has("initial access") || has("execution") || has("defense evasion") || has("lateral movement") {
        "Access.Compromise"
    } else {
        "Other.Uncategorised"
    }
}

#[cfg(test)]
mod tests {
    use crate::model::*;
    use crate::vendors::fixture_events;

    #[test]
    fn crowdstrike_ids_are_not_mitre_but_attack_ids_are() {
        let ml = fixture_events("crowdstrike_alerts", "ml-adware-pup.json").remove(0);
        assert_eq!(ml.id, "92012896127c4a8236ba7601b886b0:ind:2ce412d17b334ad4adc8c1c54dbfec4b:399748687993-5761-42627600");
        assert!(ml.mitre.is_empty(), "CSTA0004/CST0000 are CrowdStrike's own");
        assert_eq!(ml.rule.as_ref().unwrap().groups, ["Machine Learning", "Adware/PUP"]);
        assert_eq!((ml.category, ml.severity.level, ml.severity.original.as_str()), ("Malware.Adware", Level::Low, "30"));
        assert_eq!(ml.action.as_deref(), Some("blocked"));
        assert_eq!(ml.target.hostname.as_deref(), Some("ABC709-1175"));
        assert_eq!(ml.files[0].hashes[0].0, "sha256");

        let ps = fixture_events("crowdstrike_alerts", "powershell-encoded-command.json").remove(0);
        assert_eq!(
            ps.mitre,
            [Mitre { technique_id: Some("T1059.001".into()), technique: Some("PowerShell".into()), tactic: Some("Execution".into()) }]
        );
        assert_eq!(ps.files[0].hashes[0].1, "de96a6e69944335375dc1ac238336066889d9ffc7d73628ef4fe1b1b160ab32c");
        assert!(ps.description.as_deref().unwrap().contains("Command line: powershell.exe -NoP -W Hidden -Enc"));
        assert_eq!((ps.source.process.as_deref(), ps.action.as_deref()), (Some("WINWORD.EXE"), Some("killed")));
    }

    #[test]
    fn a_response_is_split_and_severity_falls_back_to_the_number() {
        let events = fixture_events("crowdstrike_alerts", "alerts-entities-response.json");
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].severity.level, Level::Critical);
        assert_eq!(events[1].severity.level, Level::Medium, "50 without severity_name");
        assert_eq!(events[1].title, "NetworkShareDiscovery");
        assert_eq!(events[1].action.as_deref(), Some("detected"));
        assert_eq!(super::level(19), Level::Info);
        assert_eq!(super::level(20), Level::Low);
        assert_eq!(super::level(100), Level::Critical);
        let min = fixture_events("crowdstrike_alerts", "minimal-idp-alert.json").remove(0);
        assert_eq!((min.severity.level, min.target.user.as_deref()), (Level::Info, Some("contractor7@example.com")));
    }

    #[test]
    fn split_events_keep_the_composite_id_as_event_id() {
        use crate::decode::{Decoder, Origin};
        let line = r#"{"resources":[{"composite_id":"a:ind:1","name":"x"},{"composite_id":"a:ind:2","name":"y"}]}"#;
        let origin = Origin { tenant: "t".into(), source: "s".into(), vendor: "crowdstrike_alerts".into() };
        let ids: Vec<String> = Decoder::named("crowdstrike_alerts")
            .decode_line(line, &origin, chrono::Utc::now())
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(ids, ["a:ind:1", "a:ind:2"]);
    }
}
