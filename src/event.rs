//! The envelope: the event as it travels from a source to the sinks, and the batch it travels in.
//! A leaf module: everything imports it, it imports nothing of sluice.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One collected event: the vendor's JSON, untouched, plus what sluice knows about where it came
/// from. Encoders read from here; `raw` is what `format: raw` writes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Stable id: the vendor's id where there is one, else a hash of the raw bytes. A replayed
    /// event keeps its id, so idempotent sinks do not duplicate it.
    pub id: String,
    pub tenant: Arc<str>,
    /// Source name; `%TAG` in path templates.
    pub source: Arc<str>,
    /// Vendor of the payload (`withsecure`, `suricata` …), `json` when unknown.
    pub vendor: Arc<str>,
    /// When sluice read the event. Path templates use it.
    pub received_at: DateTime<Utc>,
    /// The vendor JSON as received, always a single line.
    pub raw: Box<RawValue>,
    /// What the source's `mapping` (VRL) made of `raw`: model fields that override the decoder's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped: Option<Box<RawValue>>,
}

impl Event {
    /// Builds an event whose id is a hash of the raw bytes (for payloads without a vendor id).
    pub fn hashed(tenant: Arc<str>, source: Arc<str>, vendor: Arc<str>, received_at: DateTime<Utc>, raw: Box<RawValue>) -> Self {
        let id = content_id(raw.get().as_bytes());
        Event { id, tenant, source, vendor, received_at, raw, mapped: None }
    }
}

/// Events handed over together; shared by every sink they are routed to.
pub type Batch = Arc<Vec<Event>>;

/// A content hash as a hex id (128-bit xxh3: fast, collisions negligible at any realistic volume).
pub fn content_id(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// Compact single-line JSON for a value that may have come from a pretty-printed document.
pub fn compact_raw(value: &serde_json::Value) -> Box<RawValue> {
    RawValue::from_string(value.to_string()).expect("serde_json output is valid JSON")
}
