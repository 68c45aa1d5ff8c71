//! A Splunk HTTP Event Collector emulator, written from Splunk's documented wire behaviour (Splunk's
//! “Format events for HTTP Event Collector” and “HEC indexer acknowledgment” documentation): `Authorization: Splunk <token>`, concatenated JSON
//! envelopes (gzip accepted), the `{"text","code"}` answers with `invalid-event-number`, partial
//! indexing of a batch up to its first invalid envelope, indexer acknowledgement per channel, and
//! the health endpoint. Tests inject 503 "Server is busy", 500s, connection resets, slowness, an
//! unhealthy collector and acknowledgements that never turn true, from a seeded RNG.
//!
//! Not emulated: the `/raw` endpoint, query-string tokens (answered with code 16 as on a token
//! that does not allow them) and size limits.

mod http;
mod parse;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::Value;

use crate::net::Server;
use parse::{Defaults, Indexed};

/// The HEC token and the collector's settings.
#[derive(Debug, Clone)]
pub struct HecConfig {
    /// Expected in `Authorization: Splunk <token>`.
    pub token: String,
    /// Indexes the token may write to; empty allows any. An envelope naming another index is
    /// refused with code 7 "Incorrect index". Envelopes without `index` go to the first one
    /// (or to `main` when the list is empty).
    pub allowed_indexes: Vec<String>,
    /// Indexer acknowledgement enabled on the token (`useACK`): every event request then needs a
    /// channel and gets an `ackId`.
    pub ack: bool,
    /// How long after indexing an `ackId` turns true.
    pub ack_delay: Duration,
    /// Seed of the RNG that draws injected faults, so that a run can be replayed.
    pub seed: u64,
}

impl Default for HecConfig {
    fn default() -> Self {
        HecConfig {
            token: "00000000-0000-0000-0000-000000000000".into(),
            allowed_indexes: Vec::new(),
            ack: false,
            ack_delay: Duration::from_millis(50),
            seed: 1,
        }
    }
}

/// Faults injected into event requests that pass authentication (`delay` applies to every
/// request). At most one of busy, error and reset hits a request; rates are probabilities in 0..=1.
#[derive(Debug, Clone, Default)]
pub struct HecFaults {
    /// Probability of 503 `{"text":"Server is busy","code":9}`; nothing is indexed.
    pub busy_rate: f64,
    /// Probability of 500 `{"text":"Internal server error","code":8}`; nothing is indexed.
    pub error_rate: f64,
    /// Probability that the connection is closed (TCP reset) with no HTTP response; nothing is
    /// indexed.
    pub reset_rate: f64,
    /// Added to every request's response time.
    pub delay: Duration,
    /// The health endpoint answers 503 code 18 and event requests get 503 code 9.
    pub unhealthy: bool,
    /// Probability that an indexed request's `ackId` never turns true, so that the client must
    /// resend.
    pub lose_acks_rate: f64,
}

/// Metadata of envelopes that name none: Splunk takes them from the HEC input's settings.
const DEFAULT_HOST: &str = "hec-emulator";
const DEFAULT_SOURCE: &str = "http:sluice";
const DEFAULT_SOURCETYPE: &str = "httpevent";

struct Shared {
    config: HecConfig,
    default_index: String,
    faults: Mutex<HecFaults>,
    requests: AtomicU64,
    state: Mutex<State>,
}

struct State {
    events: Vec<Indexed>,
    channels: HashMap<String, Channel>,
    rng: StdRng,
}

#[derive(Default)]
struct Channel {
    next_ack: u64,
    /// Issued and not yet reported true: when each turns true (`None`: lost, never).
    pending: HashMap<u64, Option<Instant>>,
}

impl Shared {
    /// The state stays usable after a panic elsewhere (a test's assertion, say) poisoned the lock.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> HecFaults {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A running HEC emulator. Dropping it stops accepting connections too, without waiting.
pub struct HecEmulator {
    shared: Arc<Shared>,
    server: Server,
}

impl HecEmulator {
    /// Serves on `127.0.0.1` at a free port.
    pub async fn start(config: HecConfig) -> std::io::Result<HecEmulator> {
        HecEmulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Serves on `listen` (port 0 picks a free one).
    pub async fn start_on(listen: SocketAddr, config: HecConfig) -> std::io::Result<HecEmulator> {
        let default_index = config.allowed_indexes.first().cloned().unwrap_or_else(|| "main".into());
        let state = State { events: Vec::new(), channels: HashMap::new(), rng: StdRng::seed_from_u64(config.seed) };
        let shared = Arc::new(Shared {
            config,
            default_index,
            faults: Mutex::new(HecFaults::default()),
            requests: AtomicU64::new(0),
            state: Mutex::new(state),
        });
        let server = Server::start(listen, http::router(shared.clone())).await?;
        Ok(HecEmulator { shared, server })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Replaces the injected faults; requests already being answered keep the old ones.
    pub fn set_faults(&self, faults: HecFaults) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Every indexed envelope in indexing order, with all of `time`, `host`, `source`,
    /// `sourcetype`, `index`, `event` and `fields` (defaults filled in, `time` a number).
    pub fn events(&self) -> Vec<Value> {
        let events = self.shared.state().events.clone();
        let defaults =
            Defaults { host: DEFAULT_HOST, source: DEFAULT_SOURCE, sourcetype: DEFAULT_SOURCETYPE, index: &self.shared.default_index };
        events.iter().map(|e| e.envelope(&defaults)).collect()
    }

    /// How many envelopes were indexed.
    pub fn event_count(&self) -> usize {
        self.shared.state().events.len()
    }

    /// Event POSTs received, whatever their outcome.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::Relaxed)
    }

    /// `ackId`s issued and not yet reported true to the client, lost ones included.
    pub fn pending_acks(&self) -> usize {
        self.shared.state().channels.values().map(|c| c.pending.len()).sum()
    }

    /// Stops serving; the port is released when this returns.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
