//! The emulator's data: organizations, API clients, each organization's events in keyset order,
//! tokens, the server-side rate limiter, injected faults and the record of every request.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Options;

const MINUTE: Duration = Duration::from_secs(60);

pub struct Org {
    pub name: String,
    pub kind: String,
}

pub struct Client {
    pub secret: String,
    pub own_org: String,
    /// Sorted, so the organizations listing pages in a stable order.
    pub visible: BTreeSet<String>,
}

/// An event with what queries filter and sort on extracted once.
pub struct Stored {
    pub ts: DateTime<Utc>,
    pub id: String,
    /// Lower-cased: `engine` matching is case-insensitive.
    pub engine: String,
    pub severity: String,
    pub value: Value,
}

impl Stored {
    /// Panics without an `id` or an RFC 3339 `persistenceTimestamp`: every real event has both.
    pub fn new(value: Value) -> Stored {
        let ts = value
            .get("persistenceTimestamp")
            .and_then(Value::as_str)
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .expect("emulated events need an RFC 3339 persistenceTimestamp");
        let id = value.get("id").and_then(Value::as_str).expect("emulated events need an id").to_string();
        let text = |key: &str| value.get(key).and_then(Value::as_str).unwrap_or_default().to_string();
        Stored { ts, id, engine: text("engine").to_lowercase(), severity: text("severity"), value }
    }

    pub fn key(&self) -> (DateTime<Utc>, &str) {
        (self.ts, &self.id)
    }
}

/// One organization's events, sorted by (persistenceTimestamp, id): the order of the API's pages
/// and of its keyset anchors.
#[derive(Default)]
pub struct EventLog {
    pub events: Vec<Stored>,
}

impl EventLog {
    pub fn insert(&mut self, mut batch: Vec<Stored>) {
        batch.sort_by(|a, b| a.key().cmp(&b.key()));
        let behind = matches!((self.events.last(), batch.first()), (Some(last), Some(first)) if last.key() > first.key());
        self.events.extend(batch);
        if behind {
            // Two sorted runs: the stable sort merges them in linear time.
            self.events.sort_by(|a, b| a.key().cmp(&b.key()));
        }
    }
}

pub struct Token {
    pub client_id: String,
    pub expires: Instant,
    /// Tokens of an older generation were revoked by `expire_tokens`.
    pub generation: u64,
}

pub enum Fault {
    Status(u16),
    Throttle(u64),
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub at: Instant,
    pub path: String,
    /// From the Basic credentials or the bearer token, when the emulator could tell.
    pub client_id: Option<String>,
    /// The parameters: a POST's form body (then its query string, if any), or a GET's query string.
    pub form: Vec<(String, String)>,
    pub user_agent: Option<String>,
    pub status: u16,
}

pub struct State {
    pub options: Options,
    pub orgs: HashMap<String, Org>,
    pub clients: HashMap<String, Client>,
    pub events: HashMap<String, EventLog>,
    pub tokens: HashMap<String, Token>,
    pub token_generation: u64,
    pub faults: VecDeque<Fault>,
    pub delay: Duration,
    pub requests: Vec<RecordedRequest>,
    /// Events generated so far, so successive `generate` calls keep cycling through the samples.
    pub generated: usize,
    /// Per client, when its requests of the last minute were admitted (the rate limiter's window).
    admitted: HashMap<String, VecDeque<Instant>>,
    transactions: u64,
    transaction_seed: u64,
}

impl State {
    pub fn new(options: Options) -> Self {
        State {
            options,
            orgs: HashMap::new(),
            clients: HashMap::new(),
            events: HashMap::new(),
            tokens: HashMap::new(),
            token_generation: 0,
            faults: VecDeque::new(),
            delay: Duration::ZERO,
            requests: Vec::new(),
            generated: 0,
            admitted: HashMap::new(),
            transactions: 0,
            transaction_seed: uuid::Uuid::new_v4().as_u64_pair().0,
        }
    }

    /// A new id for `X-Transaction` and `transactionId`, shaped like the API's (`0000-<16 hex>`).
    pub fn next_transaction(&mut self) -> String {
        self.transactions += 1;
        // An odd multiplier makes the sequence a permutation: ids look random but never repeat.
        let n = self.transactions.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ self.transaction_seed;
        format!("0000-{n:016x}")
    }

    /// The client a bearer token belongs to if the token is valid now; otherwise the client it was
    /// issued to, if known (for the request record).
    pub fn token_client(&self, token: &str) -> Result<String, Option<String>> {
        match self.tokens.get(token) {
            Some(t) if t.expires > Instant::now() && t.generation == self.token_generation => Ok(t.client_id.clone()),
            Some(t) => Err(Some(t.client_id.clone())),
            None => Err(None),
        }
    }

    /// Counts a request against `client`'s per-minute limit; when it is over, the seconds until a
    /// slot frees (for `Retry-After`). Rejected requests do not use a slot.
    pub fn admit(&mut self, client: &str) -> Result<(), u64> {
        let Some(limit) = self.options.rate_limit_per_minute else { return Ok(()) };
        let now = Instant::now();
        let window = self.admitted.entry(client.to_string()).or_default();
        while window.front().is_some_and(|t| now.duration_since(*t) >= MINUTE) {
            window.pop_front();
        }
        if window.len() >= limit as usize {
            // A limit of 0 admits nothing: wait a whole minute.
            let wait = window.front().map_or(MINUTE, |oldest| MINUTE.saturating_sub(now.duration_since(*oldest)));
            return Err(wait.as_secs_f64().ceil().max(1.0) as u64);
        }
        window.push_back(now);
        Ok(())
    }

    pub fn max_requests_in_any_minute(&self, client: &str) -> usize {
        let times: Vec<Instant> = self.requests.iter().filter(|r| r.client_id.as_deref() == Some(client)).map(|r| r.at).collect();
        let mut best = 0;
        let mut first = 0;
        for last in 0..times.len() {
            while times[last].duration_since(times[first]) >= MINUTE {
                first += 1;
            }
            best = best.max(last - first + 1);
        }
        best
    }
}
