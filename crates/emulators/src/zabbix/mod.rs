//! A Zabbix API emulator, written from Zabbix's API manual (JSON-RPC 2.0 at
//! `POST /api_jsonrpc.php`, `user.login`, `apiinfo.version`, `problem.get`, `trigger.get`,
//! `host.get`, authentication by version) and what the IDMEFv2 Zabbix connector sends
//! (`user.login {username,password}`, then `Authorization: Bearer <session>`; `problem.get` with
//! `recent`, `sortfield: eventid`, `sortorder`, `output`, `eventids`; `trigger.get` with
//! `triggerids` and `selectHosts`; `host.get` with `hostids` and `selectInterfaces`):
//!
//! * `Content-Type` `application/json-rpc` (or `application/json`, `application/jsonrequest`),
//!   else HTTP 412. Every JSON-RPC answer is HTTP 200, errors included: `-32700` parse error,
//!   `-32600` invalid request, `-32601` unknown method, `-32602` `Invalid params.` with data
//!   `Not authorised.` (no or unknown credentials) or `Session terminated, re-login, please.`
//!   (a session ended by `user.logout` or `logout_all`), `-32500` for a wrong password.
//!   Batches (arrays of calls) are answered as arrays.
//! * Authentication follows `version`: the `auth` member before 7.2, `Authorization: Bearer`
//!   (sessions and API tokens) from 6.4; `user.login` takes `username` from 5.4 and `user`
//!   before, refusing the other; `user.login` and `apiinfo.version` refuse credentials.
//! * `problem.get` lists unresolved problems, plus those resolved within `ok_period` when
//!   `recent` is true; filters `eventids`, `objectids`, `hostids`, `severities`,
//!   `eventid_from`/`eventid_till`, `time_from`/`time_till`; `sortfield` `eventid`|`clock`,
//!   `sortorder`, `limit`, `countOutput`, `selectTags`, `output` (`extend` or field names).
//!   `event.get` answers the same. Every id and number in results is a string, as Zabbix sends.

mod http;

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::vendor::RecordedRequest;
use crate::vendor::{Fault, Handle, mix};
use http::State;

#[derive(Debug, Clone)]
pub struct Options {
    /// The frontend user `user.login` accepts (Zabbix's default is `Admin` / `zabbix`).
    pub username: String,
    pub password: String,
    /// What `apiinfo.version` answers; it also decides the authentication rules.
    pub version: String,
    /// How long resolved problems stay listed with `recent: true` (Zabbix's default 5 minutes).
    pub ok_period: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options { username: "Admin".into(), password: "zabbix".into(), version: "7.2.0".into(), ok_period: Duration::from_secs(300) }
    }
}

/// A running emulator; it stops when dropped.
pub struct Emulator {
    handle: Handle<State>,
}

const SAMPLES: [(&str, u8); 5] = [
    ("{HOST} is unreachable for 5 minutes", 4),
    ("High CPU utilization (over 90% for 5m) on {HOST}", 3),
    ("Load average is too high on {HOST}", 2),
    ("{HOST} has been restarted", 1),
    ("Disk space is critically low on {HOST}", 5),
];

impl Emulator {
    /// Binds `listen` (port 0 picks a free one) and serves in a spawned task.
    pub async fn start(listen: SocketAddr, options: Options) -> std::io::Result<Emulator> {
        Ok(Emulator { handle: Handle::start(listen, State::new(options)).await? })
    }

    /// The frontend URL, `http://127.0.0.1:PORT`; the API is `/api_jsonrpc.php` under it.
    pub fn url(&self) -> String {
        self.handle.url()
    }

    /// Another user `user.login` accepts.
    pub fn add_user(&self, user: &str, password: &str) {
        self.handle.api().add_user(user, password);
    }

    /// An API token (sent as `Authorization: Bearer`, from 6.4), of the configured user.
    pub fn add_api_token(&self, token: &str) {
        self.handle.api().add_api_token(token);
    }

    /// A problem on `host` (created with agent interface `ip`:10050 if new) from the trigger
    /// `description` (created if new) with `severity` 0–5, now; returns its eventid.
    pub fn raise_problem(&self, host: &str, ip: &str, description: &str, severity: u8) -> String {
        self.raise_problem_with_tags(host, ip, description, severity, &[])
    }

    /// `raise_problem` with problem tags.
    pub fn raise_problem_with_tags(&self, host: &str, ip: &str, description: &str, severity: u8, tags: &[(&str, &str)]) -> String {
        let mut api = self.handle.api();
        let hostid = api.host(host, ip);
        let triggerid = api.trigger(hostid, description, severity);
        let name = description.replace("{HOST}", host).replace("{HOST.NAME}", host);
        let tags = tags.iter().map(|(t, v)| (t.to_string(), v.to_string())).collect();
        api.raise(triggerid, &name, severity, tags).to_string()
    }

    /// `count` problems of typical kinds over hosts `host-0`…, 10.0.0.x.
    pub fn generate_problems(&self, count: u64) -> Vec<String> {
        (0..count)
            .map(|n| {
                let r = mix(n ^ 0x2abb);
                let (description, severity) = SAMPLES[(r % SAMPLES.len() as u64) as usize];
                let host = format!("host-{}", r >> 8 & 15);
                self.raise_problem_with_tags(
                    &host,
                    &format!("10.0.0.{}", (r >> 8 & 15) + 1),
                    description,
                    severity,
                    &[("scope", "availability")],
                )
            })
            .collect()
    }

    /// The problem is resolved now (a recovery event); false if unknown or already resolved.
    pub fn resolve_problem(&self, eventid: &str) -> bool {
        eventid.parse().is_ok_and(|id| self.handle.api().resolve(id))
    }

    /// Every session ends: its id answers `Session terminated, re-login, please.`.
    pub fn logout_all(&self) {
        self.handle.api().logout_all();
    }

    /// The next `n` requests answer `status` with an HTML error page (as PHP or a proxy would).
    pub fn fail_next(&self, n: usize, status: u16) {
        self.handle.inject(n, Fault::Status(status));
    }

    /// The next `n` requests have their connection reset, unanswered.
    pub fn reset_next(&self, n: usize) {
        self.handle.inject(n, Fault::Reset);
    }

    /// The next `n` requests answer 429 with `Retry-After` (Zabbix has no rate limit; a proxy's).
    pub fn throttle_next(&self, n: usize, retry_after: Duration) {
        self.handle.inject(n, Fault::Throttle(Some(retry_after.as_secs())));
    }

    /// Every request received so far, in arrival order; the credential is the user (of the login
    /// or of the session or token), or the unknown token itself.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.handle.requests()
    }

    /// The most requests `user` sent within any 60 s.
    pub fn max_requests_in_any_minute(&self, user: &str) -> usize {
        self.handle.max_requests_in_any_minute(user)
    }

    /// Stops serving and frees the port.
    pub async fn stop(self) {
        self.handle.stop().await;
    }
}
