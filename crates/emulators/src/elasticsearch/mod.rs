//! An Elasticsearch 8 / OpenSearch 2 emulator of what a log shipper touches, written from the
//! Bulk API documentation and Elasticsearch's own parser (elastic.co, “Bulk API”
//! reference): `_bulk` NDJSON (gzip accepted) with `index`, `create`, `update` and `delete`, per-item
//! results in request order, `create` conflicts (409) on replays, data streams (create only,
//! `@timestamp` required, backing index names in items), Basic and ApiKey authentication,
//! `http.max_content_length` (413), and the cluster info, health, `_count` and get-document
//! endpoints. Tests inject request- and item-level 429s, 5xx, mapping rejections, connection
//! resets (before or after the bulk was applied), slowness and a red cluster, from a seeded RNG.
//!
//! Not emulated: searches (a `_count` query body is ignored: every document counts), ingest
//! pipelines (named ones are accepted and do nothing), routing, mappings and the single-document
//! write APIs. `update` supports partial documents (`doc`, `doc_as_upsert`, `upsert`,
//! `detect_noop`); a `script` update answers its item with 400.

mod bulk;
mod filter;
mod http;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;

use crate::net::Server;
use store::Store;

/// Which product the emulator presents itself as. It changes `GET /`, the `X-elastic-product`
/// header, the name of mapping errors (`document_parsing_exception` in Elasticsearch 8,
/// `mapper_parsing_exception` in OpenSearch) and of backing indices (OpenSearch's carry no date).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Elasticsearch 8.15.0.
    #[default]
    Elasticsearch,
    /// OpenSearch 2.17.0.
    OpenSearch,
}

/// The cluster's settings.
#[derive(Debug, Clone)]
pub struct EsConfig {
    pub flavor: Flavor,
    /// Accepted HTTP Basic credentials (user, password).
    pub basic: Option<(String, String)>,
    /// Accepted `Authorization: ApiKey <value>`, compared verbatim (the base64 of `id:key`).
    /// With neither this nor `basic`, no authentication is required.
    pub api_key: Option<String>,
    /// `http.max_content_length`: a larger request body is answered 413.
    pub max_content_length: usize,
    /// Index names matching one of these globs (`*` = any run of characters) are data streams.
    pub data_stream_patterns: Vec<String>,
    /// Seed of the RNG behind injected faults and generated ids, so that a run can be replayed.
    pub seed: u64,
}

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            flavor: Flavor::Elasticsearch,
            basic: None,
            api_key: None,
            max_content_length: 100 * 1024 * 1024,
            data_stream_patterns: vec!["logs-*-*".into(), "metrics-*-*".into()],
            seed: 1,
        }
    }
}

/// Faults injected into bulk requests that pass authentication (`delay` and `red` apply to every
/// request). Rates are probabilities in 0..=1; at most one request-level fault hits a request.
#[derive(Debug, Clone, Default)]
pub struct EsFaults {
    /// The whole bulk is rejected: HTTP 429 `es_rejected_execution_exception`; nothing is stored.
    pub request_429_rate: f64,
    /// HTTP 503 `cluster_block_exception`; nothing is stored.
    pub request_503_rate: f64,
    /// Per item: status 429 `es_rejected_execution_exception`; the item is not stored.
    pub item_429_rate: f64,
    /// Per item: status 500; the item is not stored.
    pub item_500_rate: f64,
    /// The connection is closed (TCP reset) without a response; half of the time the bulk was
    /// applied first, so that the client's retry meets 409s.
    pub reset_rate: f64,
    /// Added to every request's response time.
    pub delay: Duration,
    /// A document with this top-level field is refused with item status 400 and a mapping error
    /// naming the field, as a field mapped `long` refuses other values.
    pub reject_field: Option<String>,
    /// Cluster health is red and `GET /` answers 503.
    pub red: bool,
}

struct Shared {
    config: EsConfig,
    faults: Mutex<EsFaults>,
    bulk_requests: AtomicU64,
    store: Mutex<Store>,
    cluster_uuid: String,
}

impl Shared {
    /// The store stays usable after a panic elsewhere (a test's assertion, say) poisoned the lock.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> EsFaults {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// A running Elasticsearch/OpenSearch emulator. Dropping it stops accepting connections too,
/// without waiting.
pub struct EsEmulator {
    shared: Arc<Shared>,
    server: Server,
}

impl EsEmulator {
    /// Serves on `127.0.0.1` at a free port.
    pub async fn start(config: EsConfig) -> std::io::Result<EsEmulator> {
        EsEmulator::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    /// Serves on `listen` (port 0 picks a free one).
    pub async fn start_on(listen: SocketAddr, config: EsConfig) -> std::io::Result<EsEmulator> {
        let mut store = Store::new(&config);
        let cluster_uuid = store.new_uuid();
        let shared = Arc::new(Shared {
            config,
            faults: Mutex::new(EsFaults::default()),
            bulk_requests: AtomicU64::new(0),
            store: Mutex::new(store),
            cluster_uuid,
        });
        let server = Server::start(listen, http::router(shared.clone())).await?;
        Ok(EsEmulator { shared, server })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// Replaces the injected faults; requests already being answered keep the old ones.
    pub fn set_faults(&self, faults: EsFaults) {
        *self.shared.faults.lock().unwrap_or_else(PoisonError::into_inner) = faults;
    }

    /// Documents stored, in all indices and data streams.
    pub fn doc_count(&self) -> usize {
        self.shared.store().doc_count()
    }

    /// `(_id, _source)` of the documents of `index` (a data stream's name or its backing
    /// index's) in insertion order; empty if there is no such index.
    pub fn docs(&self, index: &str) -> Vec<(String, Value)> {
        let raw = self.shared.store().raw_docs(index);
        raw.into_iter().map(|(id, source)| (id, serde_json::from_str(&source).unwrap_or(Value::Null))).collect()
    }

    /// Names of the indices and data streams written to (data streams by name, not by backing
    /// index), sorted.
    pub fn indices(&self) -> Vec<String> {
        self.shared.store().names()
    }

    /// `create` items answered 409 because the `_id` existed: replays.
    pub fn conflicts(&self) -> u64 {
        self.shared.store().conflicts
    }

    /// Bulk requests received (`POST`/`PUT` to a `_bulk` path), whatever their outcome: those
    /// refused with 401, 406 or 413 included.
    pub fn bulk_requests(&self) -> u64 {
        self.shared.bulk_requests.load(Ordering::Relaxed)
    }

    /// Stops serving; the port is released when this returns.
    pub async fn stop(self) {
        self.server.stop().await;
    }
}
