//! ClamAV: clamd's `GenerateMetadataJson` documents, and clamd log lines with `FOUND` (turned
//! into `{"FileName", "Viruses"}` by the line decoder).

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor {
    name: "clamav",
    input: "clamd metadata JSON, or clamd log lines ending in `FOUND`",
    severity: "detection → high",
    normalize,
    split: None,
    text_line: Some(from_log_line),
    id_field: None,
};

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    e.product = "ClamAV".into();
    let mut viruses = Vec::new();
    collect_viruses(v, &mut viruses);
    let file = str_at(v, "FileName").or_else(|| str_at(v, "FilePath"));
    if file.is_none() && viruses.is_empty() {
        return Err(NormalizeError::new("FileName", "missing (neither a clamd metadata document nor a FOUND line)"));
    }
    if let Some(t) = str_at(v, "time").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    let infected = !viruses.is_empty();
    e.kind = if infected { Kind::Alert } else { Kind::Telemetry };
    e.severity = Severity { level: if infected { Level::High } else { Level::Info }, original: String::new() };
    e.category = if infected { "Malware.Virus" } else { "Other.Uncategorised" };
    e.title = if infected { format!("Virus found: {}", viruses.join(", ")) } else { "File scanned, nothing found".into() };
    e.action = str_at(v, "action");
    let hashes = str_at(v, "FileMD5").map(|h| vec![("md5".to_string(), h.to_ascii_lowercase())]).unwrap_or_default();
    e.files.push(File { path: file, size: int_at(v, "FileSize").map(|s| s as u64), hashes, detections: viruses });
    e.analyzer = Analyzer {
        name: "clamav".into(),
        model: "ClamAV Antivirus".into(),
        category: "END.AV",
        data: "File",
        method: "Signature",
        hostname: str_at(v, "host"),
        ip: None,
    };
    Ok(())
}

/// Virus names anywhere in the (nested) metadata document, depth first.
fn collect_viruses(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, item) in map {
                if k == "Viruses" {
                    if let Some(list) = item.as_array() {
                        out.extend(list.iter().filter_map(|x| x.as_str().map(str::to_string)));
                    }
                } else {
                    collect_viruses(item, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_viruses(i, out)),
        _ => {}
    }
}

/// `/path/to/file: Eicar-Signature FOUND` → `{"FileName": …, "Viruses": [...], "log": line}`.
pub fn from_log_line(line: &str) -> Option<Value> {
    let body = line.trim().strip_suffix("FOUND")?.trim_end();
    // clamd log lines may start with a timestamp and "->"; the path ends at the last ": ".
    let body = body.rsplit_once(" -> ").map_or(body, |(_, rest)| rest);
    let (path, signature) = body.rsplit_once(": ")?;
    Some(serde_json::json!({"FileName": path.trim(), "Viruses": [signature.trim()], "log": line.trim()}))
}
