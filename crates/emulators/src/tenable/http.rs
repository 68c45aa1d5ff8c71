//! The emulator's state and endpoints: API keys, per-container counts, export jobs and their
//! state machine, chunk rendering, and Tenable's error bodies.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::{Value, json};

use super::records::{self, VULNS_PER_ASSET};
use super::{ExportKind, Options};
use crate::vendor::{Api, Fault, Limiter, Reply, Request, hash, mix};

/// Exports a container may run at once; more answer 429.
const MAX_RUNNING: usize = 10;

/// Where each kind's status, chunks and cancel live, and how its request sizes chunks.
struct Route {
    prefix: &'static str,
    kind: ExportKind,
}

const ROUTES: &[Route] = &[
    Route { prefix: "/vulns/export", kind: ExportKind::Vulns },
    Route { prefix: "/assets/export", kind: ExportKind::Assets },
    Route { prefix: "/compliance/export", kind: ExportKind::Compliance },
    Route { prefix: "/was/v1/export/vulns", kind: ExportKind::WasVulns },
];

impl ExportKind {
    /// Records per chunk from the request body: the size field, its default and the clamp.
    fn per_chunk(self, body: &Value) -> u64 {
        let (field, default, min, max) = match self {
            ExportKind::Vulns | ExportKind::WasVulns => ("num_assets", 500, 50, 5000),
            ExportKind::Assets => ("chunk_size", 1000, 100, 10_000),
            ExportKind::Compliance => ("num_findings", 5000, 50, 10_000),
        };
        let size = body.get(field).and_then(Value::as_u64).unwrap_or(default).clamp(min, max);
        match self {
            ExportKind::Vulns | ExportKind::WasVulns => size * VULNS_PER_ASSET,
            _ => size,
        }
    }

    fn render(self) -> fn(&mut String, u64, u64) {
        match self {
            ExportKind::Vulns => records::vulnerability,
            ExportKind::Assets => records::asset,
            ExportKind::Compliance => records::compliance,
            ExportKind::WasVulns => records::was_vulnerability,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Phase {
    Queued,
    Processing,
    Finished,
    Error,
    Cancelled,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Queued => "QUEUED",
            Phase::Processing => "PROCESSING",
            Phase::Finished => "FINISHED",
            Phase::Error => "ERROR",
            Phase::Cancelled => "CANCELLED",
        }
    }
}

struct Job {
    uuid: String,
    kind: ExportKind,
    access_key: String,
    /// The request body, for spotting duplicates.
    body: Value,
    count: u64,
    per_chunk: u64,
    /// Chunk ids in the order they become available (a scrambled 1..=n, plus the empty one).
    order: Vec<u32>,
    /// How many of `order` the last status poll reported.
    available: usize,
    empty_chunk: Option<u32>,
    polls: u32,
    phase: Phase,
    fails: bool,
    expire_after: Option<Duration>,
    /// When a status poll first said `FINISHED`.
    finished_at: Option<Instant>,
    created: i64,
}

impl Job {
    fn running(&self) -> bool {
        matches!(self.phase, Phase::Queued | Phase::Processing)
    }

    fn total_chunks(&self) -> usize {
        self.order.len()
    }

    /// One status poll moves the job on.
    fn poll(&mut self, options: &Options) {
        if !self.running() {
            return;
        }
        self.polls += 1;
        let (queued, processing) = (options.queued_polls, options.processing_polls);
        if self.polls <= queued {
            return;
        }
        if self.polls <= queued + processing {
            self.phase = Phase::Processing;
            let step = (self.polls - queued) as usize;
            let share = self.total_chunks() * step / (processing as usize + 1);
            self.available = if self.fails { share.min(self.total_chunks() / 2) } else { share };
            return;
        }
        if self.fails {
            self.phase = Phase::Error;
            self.available = self.available.max(self.total_chunks() / 2);
        } else {
            self.phase = Phase::Finished;
            self.available = self.total_chunks();
            self.finished_at = Some(Instant::now());
        }
    }

    fn status(&self) -> Value {
        let available = &self.order[..self.available];
        let failed: &[u32] = if self.phase == Phase::Error { &self.order[self.available..] } else { &[] };
        let cancelled: &[u32] = if self.phase == Phase::Cancelled { &self.order[self.available..] } else { &[] };
        if self.kind == ExportKind::Compliance {
            // Compliance polls carry the chunk lists only once there are chunks or the job ended.
            let status = match self.phase {
                Phase::Processing if !available.is_empty() => "READY",
                phase => phase.name(),
            };
            if self.running() && available.is_empty() {
                return json!({"status": status});
            }
            return json!({"status": status, "chunks_available": available, "chunks_failed": failed, "chunks_cancelled": cancelled});
        }
        let total = if self.phase == Phase::Queued { 0 } else { self.total_chunks() };
        json!({
            "uuid": self.uuid,
            "status": self.phase.name(),
            "chunks_available": available,
            "chunks_failed": failed,
            "chunks_cancelled": cancelled,
            "total_chunks": total,
            "chunks_available_count": available.len(),
            "empty_chunks_count": usize::from(self.empty_chunk.is_some_and(|c| available.contains(&c))),
            "finished_chunks": available.len(),
            "filters": self.body.get("filters").cloned().unwrap_or_else(|| json!({})),
            "num_assets_per_chunk": self.per_chunk,
            "created": self.created,
        })
    }

    fn expired(&self) -> bool {
        matches!((self.finished_at, self.expire_after), (Some(at), Some(after)) if at.elapsed() >= after)
    }
}

pub struct State {
    options: Options,
    keys: HashMap<String, String>,
    counts: HashMap<(String, ExportKind), u64>,
    jobs: HashMap<String, Job>,
    /// Job ids in creation order, for the listing.
    created: Vec<String>,
    pub failing_jobs: usize,
    pub expiring_jobs: VecDeque<Duration>,
    limiter: Limiter,
}

impl State {
    pub fn new(options: Options) -> State {
        let limiter = Limiter::new(options.rate_limit_per_minute.unwrap_or(u32::MAX), options.rate_limit_per_minute.is_some());
        State {
            options,
            keys: HashMap::new(),
            counts: HashMap::new(),
            jobs: HashMap::new(),
            created: Vec::new(),
            failing_jobs: 0,
            expiring_jobs: VecDeque::new(),
            limiter,
        }
    }

    pub fn add_keys(&mut self, access: &str, secret: &str) {
        self.keys.insert(access.to_string(), secret.to_string());
    }

    pub fn set_count(&mut self, access: &str, kind: ExportKind, count: u64) {
        self.counts.insert((access.to_string(), kind), count);
    }

    /// The access key of valid `X-ApiKeys`.
    fn authenticate(&self, req: &Request) -> Option<String> {
        let (access, secret) = api_keys(req)?;
        (self.keys.get(&access) == Some(&secret)).then_some(access)
    }

    fn create(&mut self, kind: ExportKind, access: &str, req: &Request) -> Reply {
        let body = match req.body.is_empty() {
            true => json!({}),
            false => match req.json_body() {
                Some(b @ Value::Object(_)) => b,
                _ => return error(400, "Bad Request", "Invalid JSON body"),
            },
        };
        let mine = |j: &&Job| j.access_key == access && j.running();
        if let Some(job) = self.jobs.values().filter(mine).find(|j| j.kind == kind && j.body == body) {
            let reason = "Duplicate export not allowed. Please modify request or wait until existing export is complete.";
            return Reply::json(409, &json!({"active_job_id": job.uuid, "failure_reason": reason}));
        }
        if self.jobs.values().filter(mine).count() >= MAX_RUNNING {
            return too_many(30);
        }
        let count = self.counts.get(&(access.to_string(), kind)).copied().unwrap_or(0);
        let per_chunk = kind.per_chunk(&body);
        let uuid = uuid::Uuid::new_v4().to_string();
        let chunks = count.div_ceil(per_chunk) as u32;
        let empty_chunk = self.options.empty_chunk.then_some(chunks + 1);
        let seed = hash(&uuid);
        let mut order: Vec<u32> = (1..=chunks).chain(empty_chunk).collect();
        order.sort_by_key(|&c| mix(seed ^ u64::from(c)));
        let fails = self.failing_jobs > 0;
        self.failing_jobs = self.failing_jobs.saturating_sub(1);
        let job = Job {
            uuid: uuid.clone(),
            kind,
            access_key: access.to_string(),
            body,
            count,
            per_chunk,
            order,
            available: 0,
            empty_chunk,
            polls: 0,
            phase: Phase::Queued,
            fails,
            expire_after: self.expiring_jobs.pop_front(),
            finished_at: None,
            created: chrono::Utc::now().timestamp(),
        };
        self.jobs.insert(uuid.clone(), job);
        self.created.push(uuid.clone());
        Reply::json(200, &json!({"export_uuid": uuid}))
    }

    fn job(&mut self, kind: ExportKind, access: &str, uuid: &str) -> Result<&mut Job, Reply> {
        self.jobs.get_mut(uuid).filter(|j| j.kind == kind && j.access_key == access).ok_or_else(not_found)
    }

    fn list(&self, kind: ExportKind, access: &str) -> Reply {
        let exports: Vec<Value> =
            self.created.iter().map(|id| &self.jobs[id]).filter(|j| j.kind == kind && j.access_key == access).map(Job::status).collect();
        Reply::json(200, &json!({"exports": exports}))
    }

    fn chunk(&mut self, kind: ExportKind, access: &str, uuid: &str, id: &str) -> Reply {
        let job = match self.job(kind, access, uuid) {
            Ok(job) => job,
            Err(reply) => return reply,
        };
        let Ok(id) = id.parse::<u32>() else { return not_found() };
        if job.expired() || !job.order[..job.available].contains(&id) {
            return not_found();
        }
        if job.empty_chunk == Some(id) {
            return Reply::raw(200, "application/json", "[]".into());
        }
        let start = u64::from(id - 1) * job.per_chunk;
        let end = (start + job.per_chunk).min(job.count);
        let tag = hash(&job.access_key);
        let render = job.kind.render();
        let mut out = String::with_capacity((end - start) as usize * 900 + 2);
        out.push('[');
        for i in start..end {
            if i > start {
                out.push(',');
            }
            render(&mut out, tag, i);
        }
        out.push(']');
        Reply::raw(200, "application/json", out)
    }
}

/// `X-ApiKeys: accessKey=…;secretKey=…`, any spacing around `;`.
fn api_keys(req: &Request) -> Option<(String, String)> {
    let header = req.header("x-apikeys")?;
    let (mut access, mut secret) = (None, None);
    for part in header.split(';') {
        match part.trim().split_once('=') {
            Some(("accessKey", v)) => access = Some(v.trim().to_string()),
            Some(("secretKey", v)) => secret = Some(v.trim().to_string()),
            _ => {}
        }
    }
    Some((access?, secret?))
}

fn error(status: u16, error: &str, message: &str) -> Reply {
    Reply::json(status, &json!({"statusCode": status, "error": error, "message": message}))
}

fn not_found() -> Reply {
    Reply::json(404, &json!({"error": "Not Found"}))
}

/// Tenable's 429 is an HTML page with `retry-after` in seconds.
fn too_many(retry_after: u64) -> Reply {
    Reply::raw(429, "text/html", "<html><body><h1>429 Too Many Requests</h1></body></html>".into()).header("retry-after", retry_after)
}

impl Api for State {
    fn credential(&self, req: &Request) -> Option<String> {
        api_keys(req).map(|(access, _)| access)
    }

    fn answer(&mut self, req: &Request, _credential: Option<&str>) -> Reply {
        let Some(access) = self.authenticate(req) else { return error(401, "Unauthorized", "Invalid Credentials") };
        let admission = self.limiter.admit(&access);
        if !admission.allowed {
            return too_many(admission.reset_in.as_secs().max(1));
        }
        let post = req.method == Method::POST;
        if req.path == "/assets/v2/export" && post {
            return self.create(ExportKind::Assets, &access, req);
        }
        let Some((route, rest)) = ROUTES.iter().find_map(|r| req.path.strip_prefix(r.prefix).map(|rest| (r, rest))) else {
            return not_found();
        };
        let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
        let kind = route.kind;
        match (post, parts.as_slice()) {
            (true, [""]) => self.create(kind, &access, req),
            (false, ["status"]) => self.list(kind, &access),
            (false, [uuid, "status"]) => {
                let options = self.options.clone();
                match self.job(kind, &access, uuid) {
                    Ok(job) => {
                        job.poll(&options);
                        Reply::json(200, &job.status())
                    }
                    Err(reply) => reply,
                }
            }
            (false, [uuid, "chunks", id]) => self.chunk(kind, &access, uuid, id),
            (true, [uuid, "cancel"]) => match self.job(kind, &access, uuid) {
                Ok(job) => {
                    if job.running() {
                        job.phase = Phase::Cancelled;
                    }
                    Reply::json(200, &json!({"status": job.phase.name()}))
                }
                Err(reply) => reply,
            },
            _ => not_found(),
        }
    }

    fn fault(&mut self, fault: Fault, _credential: Option<&str>) -> Reply {
        match fault {
            Fault::Throttle(secs) => too_many(secs.unwrap_or(1)),
            Fault::Status(status) => {
                let reason = axum::http::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Error");
                error(status, reason, reason)
            }
            Fault::Reset => unreachable!("resets are not answered"),
        }
    }

    fn finish(&mut self, _credential: Option<&str>, reply: &mut Reply) {
        reply.set("x-request-uuid", uuid::Uuid::new_v4().simple());
    }
}
