//! ZoneMinder events as written by `zm2json.sh`: `{"ET", "ED", "MN", "EDP"}`.

use serde_json::Value;

use crate::model::*;
use crate::vendors::Vendor;
use crate::vendors::fields::*;

pub static VENDOR: Vendor = Vendor::object_per_line("zoneminder", "`zm2json.sh` lines", "high", normalize);

pub fn normalize(v: &Value, e: &mut SecurityEvent) -> Result<(), NormalizeError> {
    let monitor = str_at(v, "MN").ok_or_else(|| NormalizeError::new("MN", "missing (monitor name)"))?;
    e.product = "ZoneMinder".into();
    if let Some(t) = str_at(v, "ET").and_then(|s| parse_time(&s)) {
        e.time = t;
    }
    e.kind = Kind::Alert;
    e.severity = Severity { level: Level::High, original: String::new() };
    e.category = "Access.Unauthorized";
    let what = str_at(v, "ED").unwrap_or_else(|| "Event".into());
    e.title = format!("{what} on monitor {monitor}");
    e.target = Endpoint { hostname: Some(monitor), ..Endpoint::default() };
    if let Some(dir) = str_at(v, "EDP") {
        e.files.push(File { path: Some(dir), ..File::default() });
    }
    e.analyzer = Analyzer {
        name: "zoneminder".into(),
        model: "ZoneMinder video surveillance".into(),
        category: "PHY.MOT-SEN",
        data: "Images",
        method: "Movement",
        hostname: None,
        ip: None,
    };
    Ok(())
}
