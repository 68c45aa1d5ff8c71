//! `type: http_pull` settings: a declarative description of an HTTP API to collect from — its
//! auth, its data sets, how each is requested, paged and split into records. The built-in
//! vendors (`type: crowdstrike`, `okta` …) are definitions in this same form.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::template::Template;
use crate::settings::tls::TlsConfig;
use crate::settings::{Secret, duration};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpPullConfig {
    /// Scheme, host and optional path prefix every request path is joined to.
    pub base_url: String,
    #[serde(default)]
    pub auth: Auth,
    /// Headers sent with every request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time between runs; a little jitter is added. Ignored when `cron` is set.
    #[serde(default, with = "duration::option")]
    pub interval: Option<Duration>,
    /// A cron expression (`0 */6 * * *`, UTC) instead of `interval`.
    #[serde(default)]
    pub cron: Option<String>,
    /// Client-side limit on every request of this source (token requests included).
    #[serde(default)]
    pub rate_limit_per_minute: Option<NonZeroU32>,
    /// Response headers that announce the server's limit, read after every response.
    #[serde(default)]
    pub rate_limit_headers: Option<RateLimitHeaders>,
    #[serde(default)]
    pub retry: Retry,
    #[serde(default = "default_timeout", with = "duration")]
    pub request_timeout: Duration,
    #[serde(default)]
    pub tls: TlsConfig,
    /// What to collect. Each data set is a snapshot or a stream of its own, named by its `tag`.
    pub datasets: Vec<DataSet>,
}

/// How requests authenticate.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    #[default]
    None,
    Basic {
        #[serde(deserialize_with = "crate::settings::secret::scalar_string")]
        username: String,
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer { token: Secret },
    /// A header with a fixed value: `X-ApiKeys: accessKey=…`, `Authorization: SSWS …`.
    Header { name: String, value: Secret },
    /// OAuth 2 client credentials; the token is renewed before it expires and after a 401.
    Oauth2 {
        token_url: String,
        #[serde(deserialize_with = "crate::settings::secret::scalar_string")]
        client_id: String,
        client_secret: Secret,
        #[serde(default)]
        scopes: Vec<String>,
        /// Extra form fields of the token request (`member_cid`, `resource`).
        #[serde(default)]
        params: BTreeMap<String, String>,
        /// `body` (form fields, the default) or `basic` (HTTP Basic).
        #[serde(default)]
        credentials: CredentialsIn,
    },
    /// AWS Signature Version 4.
    Sigv4 {
        access_key_id: String,
        secret_access_key: Secret,
        #[serde(default)]
        session_token: Option<Secret>,
        region: String,
        service: String,
    },
}

impl Auth {
    /// The secret values, to keep them out of notifications.
    pub fn secrets(&self) -> Vec<String> {
        match self {
            Auth::None => Vec::new(),
            Auth::Basic { password, .. } => vec![password.expose().to_string()],
            Auth::Bearer { token } => vec![token.expose().to_string()],
            Auth::Header { value, .. } => vec![value.expose().to_string()],
            Auth::Oauth2 { client_secret, .. } => vec![client_secret.expose().to_string()],
            Auth::Sigv4 { secret_access_key, session_token, .. } => {
                std::iter::once(secret_access_key).chain(session_token).map(|s| s.expose().to_string()).collect()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsIn {
    #[default]
    Body,
    Basic,
}

/// Names of the headers in which a server announces its rate limit.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitHeaders {
    /// Requests left in the window; at 0 the source waits for the reset.
    pub remaining: String,
    /// When the window resets.
    pub reset: String,
    /// `epoch` (seconds since 1970, Okta's `X-Rate-Limit-Reset`) or `seconds` (from now).
    #[serde(default)]
    pub reset_kind: ResetKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetKind {
    #[default]
    Epoch,
    Seconds,
}

/// Retries of one request: 5xx answers, resets and timeouts up to `max_attempts`; 429 answers
/// wait what the server asks (`Retry-After`, or the rate-limit reset header) up to
/// `max_throttled` times.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retry {
    pub max_attempts: u32,
    pub max_throttled: u32,
    #[serde(with = "duration")]
    pub initial_backoff: Duration,
    #[serde(with = "duration")]
    pub max_backoff: Duration,
    /// A header that says until when to wait after a 429, as epoch seconds (CrowdStrike's
    /// `X-RateLimit-RetryAfter`); `Retry-After` is always understood.
    pub retry_after_epoch_header: Option<String>,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            max_attempts: 5,
            max_throttled: 30,
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            retry_after_epoch_header: None,
        }
    }
}

/// One data set: what is requested and how its records are found.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSet {
    /// The data set's name: `%TAG` in paths, the table name, the checkpoint's key.
    pub tag: String,
    #[serde(default)]
    pub mode: Mode,
    /// Run this data set once per record of another listing (`{{parent/…}}` in templates).
    #[serde(default)]
    pub for_each: Option<Listing>,
    /// The listing's request; not with `export`, which has its own.
    #[serde(default)]
    pub request: Option<Request>,
    /// JSON pointer to the array of records in a response; empty: the body is the array.
    #[serde(default)]
    pub records: String,
    #[serde(default)]
    pub paging: Paging,
    /// JSON pointer to an error the API reports in a successful answer (JSON-RPC's `error`):
    /// when present and not null, the run fails with it.
    #[serde(default)]
    pub error: Option<String>,
    /// For listings that return ids: a second request per page that turns them into records
    /// (`{{ids}}` in its templates).
    #[serde(default)]
    pub expand: Option<Expand>,
    /// An asynchronous export job (start, poll, download chunks) instead of plain paging.
    #[serde(default)]
    pub export: Option<Export>,
    /// Keep only these members, renamed: `{name: /json/pointer}`, nested objects allowed.
    #[serde(default)]
    pub fields: Option<Value>,
    /// Stream mode: where the source resumes.
    #[serde(default)]
    pub cursor: Option<Cursor>,
    /// JSON pointer to a record's unique id, or a list of pointers whose values together are
    /// (`[/id, /lastUpdateDateTime]`: each update of an alert is an event of its own). Streams
    /// and polls use it for event ids and to recognise records already delivered.
    #[serde(default)]
    pub id: Option<IdPointers>,
    /// Poll mode: what to do with the records listed by the very first run. `deliver` (the
    /// default) sends them; `skip` only remembers them, as the original connectors did, which
    /// sent only alerts raised after they started.
    #[serde(default)]
    pub existing_at_start: ExistingAtStart,
    /// Stream mode: the decoder of the events (`json` when unset).
    #[serde(default)]
    pub decoder: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The whole current state, replacing the previous one at the sinks.
    #[default]
    Snapshot,
    /// New records since the saved cursor, delivered as events.
    Stream,
    /// The current list (firing alerts) read whole every run; records not delivered before
    /// (by `id`) are delivered as events. What was delivered is remembered across restarts.
    Poll,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum IdPointers {
    One(String),
    Many(Vec<String>),
}

impl IdPointers {
    pub fn pointers(&self) -> &[String] {
        match self {
            IdPointers::One(p) => std::slice::from_ref(p),
            IdPointers::Many(ps) => ps,
        }
    }

    /// The record's id: the values at the pointers joined with `:`; `None` when one is missing.
    pub fn of(&self, record: &Value) -> Option<String> {
        let mut parts = Vec::new();
        for p in self.pointers() {
            match record.pointer(p)? {
                Value::String(s) => parts.push(s.clone()),
                Value::Null => return None,
                other => parts.push(other.to_string()),
            }
        }
        Some(parts.join(":"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExistingAtStart {
    #[default]
    Deliver,
    Skip,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default = "default_method")]
    pub method: String,
    /// Joined to `base_url`; may hold `{{…}}` placeholders.
    pub path: Template,
    /// A list value is sent as a repeated parameter (`ids=a&ids=b`).
    #[serde(default)]
    pub query: BTreeMap<String, QueryValue>,
    #[serde(default)]
    pub headers: BTreeMap<String, Template>,
    /// A JSON body; string members may hold placeholders (`"{{ids}}"` becomes the list).
    #[serde(default)]
    pub body: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum QueryValue {
    One(Template),
    Many(Vec<Template>),
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listing {
    pub request: Request,
    #[serde(default)]
    pub records: String,
    #[serde(default)]
    pub paging: Paging,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expand {
    pub request: Request,
    #[serde(default)]
    pub records: String,
}

/// How the next page is found. Every style stops at an empty page too.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Paging {
    /// One request.
    #[default]
    None,
    /// `offset`/`limit`: the next offset from `next` (a pointer; CrowdStrike returns it) or
    /// offset + records; stops at `total` when given.
    Offset {
        #[serde(default = "offset_param")]
        param: String,
        #[serde(default)]
        start: u64,
        #[serde(default)]
        next: Option<String>,
        #[serde(default)]
        total: Option<String>,
    },
    /// `page=1,2,3…` until a page is empty.
    Page {
        #[serde(default = "page_param")]
        param: String,
        #[serde(default = "one")]
        start: u64,
    },
    /// A token from the response (`pointer`) sent back as `param` (in the query, or in the
    /// JSON body with `in_body`); stops when it is absent or empty.
    Cursor {
        param: String,
        pointer: String,
        #[serde(default)]
        in_body: bool,
    },
    /// The next page's URL in the body (`links.next`, `@odata.nextLink`); relative ones are
    /// resolved against `base_url`.
    NextUrl { pointer: String },
    /// The `Link: <…>; rel="next"` header (RFC 8288).
    LinkHeader,
}

/// An export job: `start` returns a job id, `status` is polled until the job is finished,
/// and every chunk listed as available is downloaded once, as soon as it is listed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Export {
    pub start: Request,
    /// Pointer to the job id in `start`'s answer.
    pub job_id: String,
    /// Pointer to the id of the job already running in a 409 answer, which is then adopted.
    #[serde(default)]
    pub conflict_job_id: Option<String>,
    /// `{{job}}` in its templates.
    pub status: Request,
    pub state: String,
    pub finished: Vec<String>,
    pub failed: Vec<String>,
    /// Pointer to the list of available chunk ids in the status.
    pub chunks: String,
    /// `{{job}}` and `{{chunk}}` in its templates.
    pub chunk: Request,
    #[serde(default = "default_poll", with = "duration")]
    pub poll_interval: Duration,
    /// A job not finished after this long fails the run.
    #[serde(default = "default_export_timeout", with = "duration")]
    pub timeout: Duration,
}

/// Where a stream resumes: the value of `pointer` in the last delivered record, sent back
/// through `{{cursor}}` in the request templates; before the first run, `initial`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cursor {
    /// Where the position comes from: `record` (the value at `pointer` in the records) or
    /// `next_page` (the URL of the next page, requested as it is on the next run: Okta's System
    /// Log, whose `since` means persistence time and whose `after` links are the position).
    #[serde(default)]
    pub resume: Resume,
    /// With `resume: record`: the member whose value is the position.
    #[serde(default)]
    pub pointer: Option<String>,
    /// A template without state (`{{now-24h}}`): `{{cursor}}` before the first run.
    pub initial: Template,
    /// The order in which the API lists records. `ascending` (oldest first): the position is
    /// saved after every page. `descending` (newest first, Microsoft Graph): only after a run
    /// read every page, since an interrupted run must start over to reach the older records.
    #[serde(default)]
    pub order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    #[default]
    Record,
    NextPage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    #[default]
    Ascending,
    Descending,
}

fn default_method() -> String {
    "GET".into()
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_poll() -> Duration {
    Duration::from_secs(2)
}
fn default_export_timeout() -> Duration {
    Duration::from_secs(6 * 3600)
}
fn offset_param() -> String {
    "offset".into()
}
fn page_param() -> String {
    "page".into()
}
fn one() -> u64 {
    1
}

impl HttpPullConfig {
    /// Time between runs when neither `interval` nor `cron` is set: an hour for snapshots, a
    /// minute for streams.
    pub fn interval_or_default(&self) -> Duration {
        self.interval.unwrap_or_else(|| {
            if self.datasets.iter().all(|d| d.mode == Mode::Snapshot) { Duration::from_secs(3600) } else { Duration::from_secs(60) }
        })
    }

    /// Problems serde cannot see, with the path below this source.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = crate::settings::url_problem(&self.base_url) {
            out.push(("base_url", p));
        }
        if let Some(expr) = &self.cron
            && let Err(e) = <croner::Cron as std::str::FromStr>::from_str(expr)
        {
            out.push(("cron", format!("`{expr}` is not a cron expression: {e}")));
        }
        if self.interval.is_some_and(|i| i.is_zero()) {
            out.push(("interval", "must be greater than zero".into()));
        }
        match &self.auth {
            Auth::Oauth2 { token_url, .. } => {
                if let Some(p) = crate::settings::url_problem(token_url) {
                    out.push(("auth", format!("token_url: {p}")));
                }
            }
            Auth::Header { name, .. } if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() => {
                out.push(("auth", format!("name: `{name}` is not a header name")));
            }
            _ => {}
        }
        out.extend(self.tls.problems("tls"));
        if self.datasets.is_empty() {
            out.push(("datasets", "needs at least one data set".into()));
        }
        let mut tags = std::collections::HashSet::new();
        for (i, ds) in self.datasets.iter().enumerate() {
            if !tags.insert(&ds.tag) {
                out.push(("datasets", format!("[{i}].tag: `{}` is used twice", ds.tag)));
            }
            for p in ds.problems() {
                out.push(("datasets", format!("[{i}].{p}")));
            }
        }
        out
    }
}

impl DataSet {
    fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Err(e) = crate::names::validate(&self.tag) {
            out.push(format!("tag: {e}"));
        }
        let mut pointers: Vec<(&str, &str)> = vec![("records", &self.records)];
        if let Some(l) = &self.for_each {
            pointers.push(("for_each.records", &l.records));
            out.extend(l.request.problems("for_each.request"));
        }
        match (&self.request, &self.export) {
            (Some(r), None) => out.extend(r.problems("request")),
            (None, None) => out.push("request: missing (what to request, unless this is an export)".into()),
            (Some(_), Some(_)) => out.push("request: an export has its own requests (export.start, status, chunk)".into()),
            (None, Some(_)) => {}
        }
        if let Some(e) = &self.expand {
            pointers.push(("expand.records", &e.records));
            out.extend(e.request.problems("expand.request"));
        }
        if let Some(x) = &self.export {
            pointers.extend([("export.job_id", x.job_id.as_str()), ("export.state", &x.state), ("export.chunks", &x.chunks)]);
            if let Some(c) = &x.conflict_job_id {
                pointers.push(("export.conflict_job_id", c));
            }
            out.extend(x.start.problems("export.start"));
            out.extend(x.status.problems("export.status"));
            out.extend(x.chunk.problems("export.chunk"));
            if x.finished.is_empty() {
                out.push("export.finished: name at least one state".into());
            }
            if self.paging != Paging::None {
                out.push("paging: an export downloads chunks; it takes no paging".into());
            }
            if self.expand.is_some() {
                out.push("expand: not available with export".into());
            }
        }
        match &self.paging {
            Paging::Offset { next, total, .. } => {
                pointers.extend(next.iter().map(|p| ("paging.next", p.as_str())));
                pointers.extend(total.iter().map(|p| ("paging.total", p.as_str())));
            }
            Paging::Cursor { pointer, .. } | Paging::NextUrl { pointer } => pointers.push(("paging.pointer", pointer)),
            _ => {}
        }
        if let Some(p) = &self.error {
            pointers.push(("error", p));
        }
        if let Some(id) = &self.id {
            pointers.extend(id.pointers().iter().map(|p| ("id", p.as_str())));
        }
        if self.mode == Mode::Poll && self.id.is_none() {
            out.push("id: a poll recognises records it delivered by their id; name it".into());
        }
        if self.mode != Mode::Poll && self.existing_at_start != ExistingAtStart::Deliver {
            out.push("existing_at_start: only for mode: poll".into());
        }
        match (self.mode, &self.cursor) {
            (Mode::Stream, None) => out.push("cursor: a stream needs a cursor (where it resumes)".into()),
            (Mode::Snapshot | Mode::Poll, Some(_)) => {
                out.push("cursor: only a stream has a cursor; this data set is read whole every run".into())
            }
            (_, Some(c)) => {
                match (c.resume, &c.pointer) {
                    (Resume::Record, Some(p)) => pointers.push(("cursor.pointer", p)),
                    (Resume::Record, None) => out.push("cursor.pointer: where the position is in a record (or resume: next_page)".into()),
                    (Resume::NextPage, Some(_)) => {
                        out.push("cursor.pointer: not with resume: next_page (the position is the next page's URL)".into())
                    }
                    (Resume::NextPage, None) => {}
                }
                if c.resume == Resume::NextPage && !matches!(self.paging, Paging::NextUrl { .. } | Paging::LinkHeader) {
                    out.push("cursor.resume: next_page needs paging by next_url or link_header".into());
                }
                if c.initial.uses_state() {
                    out.push("cursor.initial: may only use {{now}} (there is no state yet)".into());
                }
            }
            _ => {}
        }
        if self.mode != Mode::Snapshot && self.for_each.is_some() {
            out.push("for_each: streams and polls follow one listing; use a snapshot for per-parent listings".into());
        }
        if let Some(fields) = &self.fields {
            fields_problems(fields, "fields", &mut out);
        }
        if let Some(d) = &self.decoder
            && !crate::vendors::VENDORS.iter().any(|v| v.name == d)
        {
            out.push(format!("decoder: unknown decoder `{d}`"));
        }
        for (key, p) in pointers {
            if !p.is_empty() && !p.starts_with('/') {
                out.push(format!("{key}: `{p}` is not a JSON pointer (it starts with `/`, or is empty for the whole body)"));
            }
        }
        out
    }
}

fn fields_problems(fields: &Value, at: &str, out: &mut Vec<String>) {
    match fields {
        Value::String(p) if p.starts_with('/') => {}
        Value::Object(map) => map.iter().for_each(|(k, v)| fields_problems(v, &format!("{at}.{k}"), out)),
        other => out.push(format!("{at}: expected a JSON pointer or an object of them, found {other}")),
    }
}

impl Request {
    fn problems(&self, at: &str) -> Vec<String> {
        let mut out = Vec::new();
        if reqwest::Method::from_bytes(self.method.as_bytes()).is_err() {
            out.push(format!("{at}.method: `{}` is not an HTTP method", self.method));
        }
        if self.path.text().starts_with("http://") || self.path.text().starts_with("https://") {
            out.push(format!("{at}.path: a path below base_url, not a URL"));
        }
        if let Some(body) = &self.body {
            body_problems(body, &format!("{at}.body"), &mut out);
        }
        out
    }
}

fn body_problems(body: &Value, at: &str, out: &mut Vec<String>) {
    match body {
        Value::String(s) => {
            if let Err(e) = Template::parse(s) {
                out.push(format!("{at}: {e}"));
            }
        }
        Value::Array(items) => items.iter().enumerate().for_each(|(i, v)| body_problems(v, &format!("{at}[{i}]"), out)),
        Value::Object(map) => map.iter().for_each(|(k, v)| body_problems(v, &format!("{at}.{k}"), out)),
        _ => {}
    }
}
