//! `decoder: json`: any JSON object, with what can be guessed from common field names. Also the
//! fallback for an event its vendor's normalization cannot read.

use serde_json::Value;

use super::Vendor;
use crate::model::*;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor::object_per_line("json", "any JSON object per line", "`severity`/`level` words if present", normalize);

pub fn normalize(raw: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    if let Some(t) = ["@timestamp", "timestamp", "time", "ts"].iter().find_map(|k| str_at(raw, k).and_then(|s| parse_time(&s))) {
        e.time = t;
    }
    e.title = ["message", "msg", "title", "description"].iter().find_map(|k| str_at(raw, k)).unwrap_or_default();
    e.severity.original = ["severity", "level"].iter().find_map(|k| str_at(raw, k)).unwrap_or_default();
    e.severity.level = level_from_word(&e.severity.original).unwrap_or(Level::Info);
    Ok(())
}
