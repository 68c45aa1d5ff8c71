//! The shipped Wazuh rules are well-formed XML and every rule matches at least one real event.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

/// Flattens an event the way Wazuh's JSON decoder names fields (`withsecure.device.name`).
fn flatten(prefix: &str, value: &Value, out: &mut HashMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&key, v, out);
            }
        }
        Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn samples() -> Vec<HashMap<String, String>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/vendors/withsecure/fixtures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let event: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            // The line sluice writes with format: vendor_wrapped.
            let line = serde_json::json!({"vendor": "withsecure", "withsecure": event});
            let mut fields = HashMap::new();
            flatten("", &line, &mut fields);
            out.push(fields);
        }
    }
    assert_eq!(out.len(), 57);
    out
}

#[test]
fn every_withsecure_rule_matches_a_real_event() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/wazuh/sluice_withsecure_rules.xml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let samples = samples();
    let mut ids = std::collections::HashSet::new();
    let rules: Vec<_> = doc.descendants().filter(|n| n.has_tag_name("rule")).collect();
    assert!(rules.len() > 20);
    for rule in rules {
        let id = rule.attribute("id").unwrap();
        assert!(ids.insert(id), "duplicate rule id {id}");
        let n: u32 = id.parse().unwrap();
        assert!((100000..=120000).contains(&n), "rule {id} outside the local-rules range");
        assert!(rule.children().any(|c| c.has_tag_name("description")), "rule {id} has no description");
        let fields: Vec<(String, regex::Regex)> = rule
            .children()
            .filter(|c| c.has_tag_name("field"))
            .map(|f| {
                assert_eq!(f.attribute("type"), Some("pcre2"), "rule {id}: fields are pcre2");
                (f.attribute("name").unwrap().to_string(), regex::Regex::new(f.text().unwrap()).unwrap())
            })
            .collect();
        assert!(!fields.is_empty(), "rule {id} matches on no field");
        let matched = samples.iter().any(|s| fields.iter().all(|(name, re)| s.get(name).is_some_and(|v| re.is_match(v))));
        assert!(matched, "rule {id} matches none of the sample events");
        // Every `$(field)` in the description names a field the events have.
        let description = rule.children().find(|c| c.has_tag_name("description")).unwrap().text().unwrap();
        for part in description.split("$(").skip(1) {
            let field = part.split(')').next().unwrap();
            assert!(samples.iter().any(|s| s.contains_key(field)), "rule {id} shows $({field}), which no event has");
        }
    }
}

#[test]
fn localfile_snippet_is_well_formed_json_localfile() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/wazuh/ossec-localfile.xml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    let format = doc.descendants().find(|n| n.has_tag_name("log_format")).unwrap();
    assert_eq!(format.text(), Some("json"));
}
