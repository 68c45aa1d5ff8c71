//! A Wazuh server API v4 emulator (the manager's REST API on port 55000), written from the API's
//! own source at tag `v4.14.7` and its OpenAPI spec (documentation.wazuh.com,
//! “Wazuh server API reference”): login with HTTP Basic for an expiring JWT (JSON or `?raw=true`), the blocking of a client
//! after too many failed logins (403), bearer tokens on every other endpoint (401 "No
//! authorization token provided" / "Invalid token"), the global fixed-window rate limit (429,
//! error 6001, no headers), connexion's parameter validation (400 problem+json, unknown
//! parameters included), and the framework's query language on `GET /agents`,
//! `GET /syscheck/{agent_id}` and `GET /syscollector/{agent_id}/packages|os`: `offset`/`limit`,
//! `select`, `sort`, `search`, `q`, legacy filters and `distinct`, with the `affected_items`
//! envelope, `error` 0/1/2 and `failed_items`. Agent 000 is the manager and always listed.
//! Answers are written the way Python's `json.dumps` does (`", "`/`": "` separators, non-ASCII
//! escaped), dates as the API's encoder writes aware datetimes (`…+00:00`).
//!
//! Tests inject 500s ("Wazuh Internal Error", code 1000), connection resets and slowness from a
//! seeded RNG, expire every token at once, and read the request, 429 and token counters.
//!
//! Not emulated: TLS (plain HTTP), the other endpoints (404), RBAC (the user is an administrator),
//! `run_as` and logout. The failed-login counter is kept for all clients together: the emulator
//! is reached over loopback, where every client has the same address.

mod http;
mod params;
mod query;
mod rows;
mod samples;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::net::Server;
use rows::Stored;

/// The manager's API settings (`api.yaml` `access:` and the security configuration).
#[derive(Debug, Clone)]
pub struct WazuhConfig {
    /// The API user and password accepted by `/security/user/authenticate`.
    pub user: String,
    pub password: String,
    /// `auth_token_exp_timeout`: how long a JWT stays valid.
    pub token_lifetime: Duration,
    /// `max_request_per_minute`: requests of all clients together in a fixed 60 s window, logins
    /// and rejected requests included; 0 disables the limit.
    pub max_requests_per_minute: u32,
    /// `max_login_attempts`: failed logins after which the client is blocked for `block_time`.
    pub max_login_attempts: u32,
    /// `block_time`, counted from the first failed login.
    pub block_time: Duration,
    /// Seed of the RNGs behind injected faults and `generate`, so that a run can be replayed.
    pub seed: u64,
}

impl Default for WazuhConfig {
    fn default() -> Self {
        WazuhConfig {
            user: "wazuh".into(),
            password: "wazuh".into(),
            token_lifetime: Duration::from_secs(900),
            max_requests_per_minute: 300,
            max_login_attempts: 50,
            block_time: Duration::from_secs(300),
            seed: 1,
        }
    }
}

/// Faults injected into requests that pass the rate limit, authentication and parameter checks
/// (`delay` applies to every answer). Rates are probabilities in 0..=1; at most one fault hits a
/// request.
#[derive(Clone, Default, Debug)]
pub struct WazuhFaults {
    /// Probability of a 500 problem+json "Wazuh Internal Error" (code 1000).
    pub error_rate: f64,
    /// Added to every response time.
    pub delay: Duration,
    /// Probability that the connection is closed (TCP reset) without an answer.
    pub reset_rate: f64,
}

/// An agent as the manager's global database knows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Agent {
    /// Zero-padded to three digits at least: "001", "1024".
    pub id: String,
    pub name: String,
    pub ip: String,
    /// `active`, `disconnected`, `never_connected` or `pending`. Never-connected agents have
    /// reported nothing (no OS, version or keepalive) and have no FIM or syscollector data
    /// (those endpoints answer 400, error 2007).
    pub status: String,
    /// `ubuntu`, `centos`, `rhel`, `debian`, `amzn`, `windows`, `darwin`…
    pub os_platform: String,
    pub os_name: String,
    pub os_version: String,
    pub last_keep_alive: DateTime<Utc>,
    /// As agents report it: "Wazuh v4.14.7".
    pub version: String,
    pub groups: Vec<String>,
}

/// A package as syscollector reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct Package {
    pub name: String,
    pub version: String,
    pub architecture: String,
    pub vendor: String,
    /// `deb`, `rpm`, `win` or `pkg`.
    pub format: String,
    pub description: String,
}

/// A file in the agent's FIM database.
#[derive(Clone, Debug, PartialEq)]
pub struct FimEntry {
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub md5: String,
    pub sha1: String,
    pub mtime: DateTime<Utc>,
    /// `rw-r--r--` on Linux; a JSON object (Windows ACL) is answered as JSON.
    pub perm: String,
    pub uname: String,
    pub changes: u32,
}

struct Shared {
    config: WazuhConfig,
    faults: Mutex<WazuhFaults>,
    requests: AtomicU64,
    rate_limited: AtomicU64,
    tokens_issued: AtomicU64,
    state: Mutex<State>,
}

struct State {
    /// By numeric id; 0 is the manager.
    agents: BTreeMap<u64, Stored>,
    /// Issued tokens and when each expires.
    tokens: HashMap<String, Instant>,
    /// The rate limiter's window: when it started and the requests counted in it.
    window: Option<(Instant, u64)>,
    /// Failed logins: when the first one happened and how many there were.
    failed_logins: Option<(Instant, u32)>,
    blocked: bool,
    rng: StdRng,
}

impl State {
    /// The agent with exactly this id: the API compares zero-padded ids as strings.
    fn find(&self, id: &str) -> Option<&Stored> {
        let n: u64 = id.parse().ok()?;
        self.agents.get(&n).filter(|s| s.agent.id == id)
    }
}

impl Shared {
    /// The state stays usable after a panic elsewhere (a test's assertion, say) poisoned the lock.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> WazuhFaults {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// The manager's own entry, agent 000.
fn manager() -> Agent {
    Agent {
        id: "000".into(),
        name: rows::MANAGER_HOST.into(),
        ip: "127.0.0.1".into(),
        status: "active".into(),
        os_platform: "ubuntu".into(),
        os_name: "Ubuntu".into(),
        os_version: "22.04.4 LTS".into(),
        last_keep_alive: DateTime::from_timestamp(rows::MANAGER_KEEPALIVE, 0).expect("valid date"),
        version: rows::MANAGER_VERSION.into(),
        groups: Vec::new(),
    }
}

/// A running Wazuh API emulator. Dropping it stops accepting connections too, without waiting.
pub struct WazuhEmulator {
    shared: Arc<Shared>,
    server: Server,
}

impl WazuhEmulator {
    /// Serves plain HTTP on `127.0.0.1` at a free port.
    pub async fn start(config: WazuhConfig) -> std::io::Result<WazuhEmulator> {
        WazuhEmulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Serves plain HTTP on `listen` (port 0 picks a free one).
    pub async fn start_on(listen: SocketAddr, config: WazuhConfig) -> std::io::Result<WazuhEmulator> {
        let now = Utc::now();
        let mut agents = BTreeMap::new();
        let manager = Stored { agent: manager(), date_add: now, scan_time: now, packages: Vec::new(), fim: Vec::new() };
        agents.insert(0, manager);
        let state = State {
            agents,
            tokens: HashMap::new(),
            window: None,
            failed_logins: None,
            blocked: false,
            rng: StdRng::seed_from_u64(config.seed),
        };
        let shared = Arc::new(Shared {
            config,
            faults: Mutex::new(WazuhFaults::default()),
            requests: AtomicU64::new(0),
            rate_limited: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            state: Mutex::new(state),
        });
        let server = Server::start(listen, http::router(shared.clone())).await?;
        Ok(WazuhEmulator { shared, server })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Replaces the injected faults; requests already being answered keep the old ones.
    pub fn set_faults(&self, faults: WazuhFaults) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Adds (or replaces, by id) an agent with its OS info, packages and FIM entries. Id "000"
    /// replaces the manager's own entry. Panics unless the id is digits zero-padded to three
    /// (`"001"`, `"1024"`), as the API writes them. A replaced agent keeps its registration date.
    pub fn upsert_agent(&self, agent: Agent, packages: Vec<Package>, fim: Vec<FimEntry>) {
        let n: u64 = agent.id.parse().unwrap_or_else(|_| panic!("agent id {:?} is not a number", agent.id));
        assert_eq!(agent.id, format!("{n:03}"), "agent ids are zero-padded to three digits");
        let now = Utc::now();
        let mut st = self.shared.state();
        let date_add = st.agents.get(&n).map_or_else(|| now.min(agent.last_keep_alive), |s| s.date_add);
        st.agents.insert(n, Stored { agent, date_add, scan_time: now, packages, fim });
    }

    /// Removes an agent; the manager (000) cannot be removed.
    pub fn remove_agent(&self, id: &str) {
        if let Ok(n) = id.parse::<u64>()
            && n != 0
        {
            self.shared.state().agents.remove(&n);
        }
    }

    /// Changes an agent's `lastKeepAlive` only; unknown ids are ignored.
    pub fn touch_agent(&self, id: &str, last_keep_alive: DateTime<Utc>) {
        if let Ok(n) = id.parse::<u64>()
            && let Some(s) = self.shared.state().agents.get_mut(&n)
        {
            s.agent.last_keep_alive = last_keep_alive;
        }
    }

    /// Adds (or replaces) agents "001" to `n` with realistic names, OS mix (Ubuntu, Debian,
    /// CentOS, RHEL, Amazon Linux, Windows, macOS), statuses (mostly active), `packages_each`
    /// packages and `fim_each` FIM entries each, the same for the same seed. The manager's entry
    /// is left as it is.
    pub fn generate(&self, n: usize, packages_each: usize, fim_each: usize) {
        let mut rng = StdRng::seed_from_u64(self.shared.config.seed ^ 0x5741_5a55_4845_4d55);
        let now = Utc::now();
        for index in 1..=n {
            let (agent, packages, fim) = samples::agent(&mut rng, index, packages_each, fim_each, now);
            self.upsert_agent(agent, packages, fim);
        }
    }

    /// Requests received, whatever their outcome.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// Requests answered 429 by the rate limit.
    pub fn rate_limited(&self) -> u64 {
        self.shared.rate_limited.load(Ordering::Relaxed)
    }

    /// Tokens issued by successful logins.
    pub fn tokens_issued(&self) -> u64 {
        self.shared.tokens_issued.load(Ordering::Relaxed)
    }

    /// Makes every token issued so far expired now, so that clients must log in again.
    pub fn expire_tokens(&self) {
        let now = Instant::now();
        for expiry in self.shared.state().tokens.values_mut() {
            *expiry = now;
        }
    }

    /// Stops serving; the port is released when this returns.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
