//! The emulator's data: organizations, API clients, events, tokens, injected faults and the
//! record of every request.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::Options;

pub struct Org {
    pub name: String,
    pub kind: String,
}

pub struct Client {
    pub secret: String,
    pub own_org: String,
    pub visible: HashSet<String>,
}

/// An event with its sort key parsed once.
pub struct Stored {
    pub ts: DateTime<Utc>,
    pub id: String,
    pub value: Value,
}

pub struct Token {
    pub client_id: String,
    pub expires: Instant,
    pub generation: u64,
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub at: Instant,
    pub path: String,
    pub client_id: Option<String>,
    pub form: Vec<(String, String)>,
    pub user_agent: Option<String>,
    pub status: u16,
}

pub enum Fault {
    Status(u16),
    Throttle(u64),
}

pub struct State {
    pub options: Options,
    pub orgs: HashMap<String, Org>,
    pub clients: HashMap<String, Client>,
    /// Per organization, sorted by (timestamp, id).
    pub events: HashMap<String, Vec<Stored>>,
    pub tokens: HashMap<String, Token>,
    /// Tokens of an older generation were revoked by `expire_tokens`.
    pub token_generation: u64,
    pub faults: VecDeque<Fault>,
    pub delay: Duration,
    pub requests: Vec<RecordedRequest>,
    pub generated: u64,
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
        }
    }

    pub fn insert_events(&mut self, org: &str, events: impl IntoIterator<Item = Value>) {
        let list = self.events.entry(org.to_string()).or_default();
        for value in events {
            let ts = value
                .get("persistenceTimestamp")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .expect("emulated events need an RFC 3339 persistenceTimestamp");
            let id = value.get("id").and_then(Value::as_str).expect("emulated events need an id").to_string();
            list.push(Stored { ts, id, value });
        }
        list.sort_by(|a, b| (a.ts, &a.id).cmp(&(b.ts, &b.id)));
    }

    /// The client a bearer token belongs to, if it is valid now.
    pub fn token_client(&self, token: &str) -> Result<String, Option<String>> {
        match self.tokens.get(token) {
            Some(t) if t.expires > Instant::now() && t.generation == self.token_generation => Ok(t.client_id.clone()),
            Some(t) => Err(Some(t.client_id.clone())),
            None => Err(None),
        }
    }

    /// Seconds until `client` may send again, if it is over the server-side limit.
    pub fn over_limit(&self, client: &str) -> Option<u64> {
        let limit = self.options.rate_limit_per_minute? as usize;
        let now = Instant::now();
        let recent: Vec<Instant> = self
            .requests
            .iter()
            .filter(|r| r.client_id.as_deref() == Some(client) && r.status != 429 && now.duration_since(r.at) < Duration::from_secs(60))
            .map(|r| r.at)
            .collect();
        if recent.len() < limit {
            return None;
        }
        let oldest = recent[recent.len() - limit];
        Some((Duration::from_secs(60).saturating_sub(now.duration_since(oldest))).as_secs().max(1))
    }

    pub fn max_requests_in_any_minute(&self, client: &str) -> usize {
        let times: Vec<Instant> = self.requests.iter().filter(|r| r.client_id.as_deref() == Some(client)).map(|r| r.at).collect();
        let mut best = 0;
        let mut start = 0;
        for end in 0..times.len() {
            while times[end].duration_since(times[start]) >= Duration::from_secs(60) {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best
    }
}
