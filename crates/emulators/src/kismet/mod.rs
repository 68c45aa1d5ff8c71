//! A Kismet server emulator for the alerts REST endpoints, written from Kismet's REST
//! documentation (alerts, logins and sessions) and what the IDMEFv2 Kismet connector polls:
//!
//! * `GET /alerts/all_alerts.json` (also `.ekjson`, `.prettyjson`): the alert backlog as a JSON
//!   array of records with Kismet's flat dotted names (`kismet.alert.timestamp` as fractional
//!   Unix seconds, `kismet.alert.header`, `…text`, `…severity` (0 info … 20 critical),
//!   `…class`, `…source_mac`, `…dest_mac`, `…channel`, `…hash`, …), oldest first; only the
//!   newest `backlog` alerts are kept (Kismet's `alertbacklog`, 50 by default).
//! * `GET /alerts/last-time/{ts}/alerts.json`: `{"kismet.alert.timestamp": now,
//!   "kismet.alert.list": [alerts newer than ts]}`; a negative `ts` is relative to now.
//! * Logins as Kismet takes them: HTTP Basic with the server's user and password (answered
//!   with a `Set-Cookie: KISMET=<session>`), that session cookie afterwards, or an API token as
//!   the `KISMET` cookie or `?KISMET=` parameter. Anything else is 401. `GET
//!   /session/check_session` answers 200 when logged in.

mod http;

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle, mix};
use http::State;
pub use http::alert_record;

#[derive(Debug, Clone)]
pub struct Options {
    pub username: String,
    pub password: String,
    /// API tokens accepted as the `KISMET` cookie or parameter.
    pub api_tokens: Vec<String>,
    /// Alerts kept (Kismet's `alertbacklog`).
    pub backlog: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { username: "kismet".into(), password: "kismet".into(), api_tokens: Vec::new(), backlog: 50 }
    }
}

const SAMPLES: [(&str, &str, u32, &str); 6] = [
    ("APSPOOF", "SPOOF", 15, "Unauthorized device advertising for SSID 'corp-wifi', matching APSPOOF rule"),
    ("DEAUTHFLOOD", "DENIAL", 10, "IEEE80211 Access Point sending flood of deauthentication packets"),
    ("BCASTDISCON", "DENIAL", 10, "IEEE80211 Access Point sending broadcast disassociation"),
    ("PROBECHAN", "PROBE", 5, "Probe response seen on a channel other than the advertised one"),
    ("NOCLIENTMFP", "SPOOF", 5, "Client does not support management frame protection"),
    ("DOT11D", "EXPLOIT", 20, "Invalid 802.11d country code in beacon, possible exploit attempt"),
];

/// Alert number `n` raised at `at`, one of the kinds Kismet's IEEE 802.11 checks raise.
pub fn sample_alert(n: u64, at: DateTime<Utc>) -> Value {
    let r = mix(n ^ 0x4b15);
    let (header, class, severity, text) = SAMPLES[(r % SAMPLES.len() as u64) as usize];
    let mac = format!(
        "{:02X}:{:02X}:{:02X}:{:02X}:{:02X}:{:02X}",
        0x02 | (r as u8 & 0xfc),
        r >> 8 & 0xff,
        r >> 16 & 0xff,
        r >> 24 & 0xff,
        r >> 32 & 0xff,
        r >> 40 & 0xff
    );
    alert_record(header, class, severity, text, &mac, at)
}

/// A running emulator; it stops when dropped.
pub struct Emulator {
    handle: Handle<State>,
}

impl Emulator {
    /// Binds `listen` (port 0 picks a free one) and serves in a spawned task.
    pub async fn start(listen: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        Ok(Emulator { handle: Handle::start(listen, State::new(options)).await? })
    }

    /// The server URL, `http://127.0.0.1:PORT` (Kismet's is port 2501).
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Raises an alert now; returns the record as listed.
    pub fn raise_alert(&self, header: &str, severity: u32, text: &str, source_mac: &str) -> Value {
        let alert = alert_record(header, "OTHER", severity, text, source_mac, Utc::now());
        self.add_alert(alert.clone());
        alert
    }

    /// Appends an alert record as given (it needs a numeric `kismet.alert.timestamp`; see
    /// `alert_record` and `sample_alert`), dropping the oldest beyond the backlog.
    pub fn add_alert(&self, alert: Value) {
        self.handle.api().push(alert);
    }

    /// Raises `count` `sample_alert`s spread over the last `over`.
    pub fn generate_alerts(&self, count: u64, over: Duration) {
        let start = Utc::now() - TimeDelta::from_std(over).unwrap_or_default();
        let step = over.as_millis() as i64 / count.max(1) as i64;
        for n in 0..count {
            self.add_alert(sample_alert(n, start + TimeDelta::milliseconds(step * n as i64)));
        }
    }

    /// Every open session ends; its cookie answers 401.
    pub fn logout_all(&self) {
        self.handle.api().logout_all();
    }

    /// The next `n` requests answer `status`.
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 with `Retry-After` (Kismet has no rate limit; a proxy's).
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        self.handle.inject(n, Fault::Throttle(Some(retry_after.as_secs())));
    }

    /// Every request received so far, in arrival order; the credential is the Basic user, or
    /// the session cookie or API token.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests sent with `credential` within any 60 s.
    pub fn max_requests_in_any_minute(&self, credential: &str) -> usize {
        self.handle.max_requests_in_any_minute(credential)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
