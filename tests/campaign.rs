//! Reliability campaign: for each kind of pipeline, the real binary is killed with `kill -9` at
//! random moments while events flow, restarted each time, and finally left to finish. Then every
//! destination is counted: no event may be missing, and the duplicates must stay within the bound
//! the README promises (after a crash a sink repeats at most `concurrency × batch.max_events`
//! events for HTTP sinks, one queued group for the file sink; an ingest client may resend a
//! request that was not answered 200).
//!
//! `SLUICE_CAMPAIGN_KILLS` sets the kills per pipeline (default 10, with data to match; the full
//! campaign is 100), `SLUICE_CAMPAIGN_SEED` replays the random kill moments of an earlier run,
//! `SLUICE_CAMPAIGN_EVENTS_PER_KILL` changes how many events arrive between two kills, and
//! `SLUICE_CAMPAIGN_VERBOSE=1` prints a line per kill. Each test prints one summary line
//! (`cargo test --test campaign -- --nocapture` shows it).

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::Sluice;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator, EsFaults};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator, HecFaults};
use sluice_emulators::withsecure::{Emulator, Options};

/// One pipeline at a time: the kill moments mean something only if the daemon is not starved of
/// CPU by the other pipelines' daemons.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The file source's read size and the batches it leaves unacknowledged (src/sources/file/tailer.rs).
const READ_CHUNK: u64 = 256 * 1024;
const FILE_IN_FLIGHT: u64 = 4;
/// Events per WithSecure page.
const WITHSECURE_PAGE: u64 = 200;

fn env_number(name: &str) -> Option<u64> {
    let text = std::env::var(name).ok()?;
    Some(text.trim().parse().unwrap_or_else(|e| panic!("{name}={text:?}: {e}")))
}

/// The campaign's settings for one pipeline, from the environment.
struct Plan {
    pipeline: &'static str,
    kills: usize,
    per_kill: u64,
    seed: u64,
    /// A kill comes up to this long after the restarted daemon delivered its first event.
    max_delay: Duration,
}

impl Plan {
    fn new(pipeline: &'static str, default_per_kill: u64, max_delay_ms: u64) -> Plan {
        let kills = env_number("SLUICE_CAMPAIGN_KILLS").unwrap_or(10) as usize;
        let per_kill = env_number("SLUICE_CAMPAIGN_EVENTS_PER_KILL").unwrap_or(default_per_kill).max(64);
        let seed = env_number("SLUICE_CAMPAIGN_SEED").unwrap_or_else(rand::random);
        println!("campaign {pipeline}: seed {seed} (SLUICE_CAMPAIGN_SEED={seed} replays its kill moments), {kills} kills");
        Plan { pipeline, kills, per_kill, seed, max_delay: Duration::from_millis(max_delay_ms) }
    }

    /// Events produced in all: `per_kill` between two kills, and as many before the last start.
    fn total(&self) -> u64 {
        self.per_kill * (self.kills as u64 + 1)
    }

    /// Each pipeline draws from its own stream, so that one test can be replayed alone.
    fn rng(&self) -> StdRng {
        let salt = self.pipeline.bytes().fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        StdRng::seed_from_u64(self.seed ^ salt)
    }
}

/// What the campaign needs of a pipeline.
trait Pipeline {
    /// Starts the daemon; `round` counts the starts from 0.
    fn start(&mut self, round: usize) -> Sluice;
    /// Makes the next `n` events (numbered from `first`) arrive at the origin.
    fn feed(&mut self, first: u64, n: u64);
    /// Grows with every delivery; cheap enough to poll every few milliseconds.
    fn progress(&self) -> u64;
    /// True when a destination has fewer events than the `produced` so far (checked after a kill).
    fn behind(&self, produced: u64) -> bool;
    /// Every event produced is at every destination.
    fn complete(&self, total: u64) -> bool;
    /// The destinations' counters, for the line printed per kill.
    fn counters(&self) -> String {
        format!("{} bytes delivered", self.progress())
    }
    fn log(&self) -> PathBuf;
}

/// How the kills went.
struct Campaign {
    kills: usize,
    /// Kills after which a destination had fewer events than had arrived at the origin.
    behind: usize,
    total: u64,
    started: Instant,
}

/// Kills `plan.kills` times at random moments while events arrive, then lets the pipeline finish.
async fn run_campaign(p: &mut impl Pipeline, plan: &Plan) -> Campaign {
    let started = Instant::now();
    let mut rng = plan.rng();
    let total = plan.total();
    // Half of each round's events are there when the daemon starts (they arrived while it was
    // down); the rest trickle in while it runs, so that it is delivering when it is killed.
    let backlog = plan.per_kill / 2;
    let trickle = (plan.per_kill / 128).max(1);
    let mut produced = 0;
    let mut behind = 0;
    let verbose = std::env::var_os("SLUICE_CAMPAIGN_VERBOSE").is_some();
    for round in 0..plan.kills {
        let budget = (round as u64 + 1) * plan.per_kill;
        p.feed(produced, backlog);
        produced += backlog;
        let before = p.progress();
        let sluice = p.start(round);
        let deadline = Instant::now() + Duration::from_secs(60);
        while p.progress() <= before {
            assert!(Instant::now() < deadline, "{}: nothing delivered after start {round}:\n{}", plan.pipeline, tail(&p.log()));
            let n = trickle.min(budget - produced);
            p.feed(produced, n);
            produced += n;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = Duration::from_millis(rng.random_range(0..=plan.max_delay.as_millis() as u64));
        let kill_at = Instant::now() + delay;
        while Instant::now() < kill_at {
            let n = trickle.min(budget - produced);
            p.feed(produced, n);
            produced += n;
            tokio::time::sleep(kill_at.saturating_duration_since(Instant::now()).min(Duration::from_millis(10))).await;
        }
        sluice.kill9();
        let was_behind = p.behind(produced);
        behind += usize::from(was_behind);
        if verbose {
            println!(
                "{} kill {}: {:.2} s after the start, {} ms after the first delivery, {produced} events produced, {}, destination behind: {was_behind}",
                plan.pipeline,
                round + 1,
                started.elapsed().as_secs_f64(),
                delay.as_millis(),
                p.counters()
            );
        }
        // The rest of the round's events arrive while the daemon is down.
        p.feed(produced, budget - produced);
        produced = budget;
    }
    p.feed(produced, total - produced);
    let sluice = p.start(plan.kills);
    // Generous: the debug build delivers a few thousand events a second to the slower sinks.
    let deadline = Instant::now() + Duration::from_secs(120 + total / 500);
    while !p.complete(total) {
        assert!(Instant::now() < deadline, "{}: not every event delivered in the end:\n{}", plan.pipeline, tail(&p.log()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let log = p.log();
    assert_eq!(sluice.terminate(), 0, "{}: SIGTERM after the campaign:\n{}", plan.pipeline, tail(&log));
    Campaign { kills: plan.kills, behind, total, started }
}

/// How often each event number is at a destination.
#[derive(Default)]
struct Tally {
    counts: HashMap<u64, u32>,
    /// Lines that are JSON but not one of the campaign's events.
    foreign: Vec<String>,
    /// Lines that are not JSON: an event cut short by a kill in the middle of the sink's write,
    /// with whatever the sink wrote after the restart on the same line. Holds the number of the
    /// event glued to the end, if there is one. The events of such a line are not counted: a
    /// reader of lines cannot read them.
    torn: Vec<Option<u64>>,
}

impl Tally {
    fn add(&mut self, n: u64) {
        *self.counts.entry(n).or_default() += 1;
    }

    fn lost(&self, total: u64) -> u64 {
        (0..total).filter(|n| !self.counts.contains_key(n)).count() as u64
    }

    fn duplicates(&self) -> u64 {
        self.counts.values().map(|&c| u64::from(c) - 1).sum()
    }

    /// Torn lines, and how many of the events glued to them have no readable copy elsewhere.
    fn torn(&self) -> (u64, u64) {
        let only_there = self.torn.iter().flatten().filter(|n| !self.counts.contains_key(n)).count();
        (self.torn.len() as u64, only_there as u64)
    }

    /// Distinct event numbers.
    fn distinct(&self) -> u64 {
        self.counts.len() as u64
    }

    fn check(&self, what: &str, total: u64) {
        assert!(
            self.foreign.is_empty(),
            "{what}: {} lines that are no event of the campaign, as {:?}",
            self.foreign.len(),
            self.foreign[0]
        );
        assert!(self.counts.keys().all(|&n| n < total), "{what}: an event number that was never produced");
    }
}

/// An output file read as it grows: the tally of its complete lines so far. Each byte is read
/// once, so it can be polled while the file grows to hundreds of thousands of lines.
struct Follower {
    path: PathBuf,
    offset: u64,
    tally: Tally,
}

impl Follower {
    fn new(path: PathBuf) -> Mutex<Follower> {
        Mutex::new(Follower { path, offset: 0, tally: Tally::default() })
    }

    /// Reads the lines appended since the last call (a last line without its newline is still
    /// being written); `number` gives a line's event number.
    fn update(&mut self, number: impl Fn(&serde_json::Value) -> Option<u64>) -> &Tally {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = std::fs::File::open(&self.path) else { return &self.tally };
        f.seek(SeekFrom::Start(self.offset)).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in bytes[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            match serde_json::from_slice::<serde_json::Value>(line) {
                Ok(v) => match number(&v) {
                    Some(n) => self.tally.add(n),
                    None => self.tally.foreign.push(String::from_utf8_lossy(line).into_owned()),
                },
                Err(_) => {
                    // The first `{` after the start from which the rest is one whole event.
                    let glued = (1..line.len())
                        .filter(|&i| line[i] == b'{')
                        .find_map(|i| serde_json::from_slice::<serde_json::Value>(&line[i..]).ok().as_ref().and_then(&number));
                    self.tally.torn.push(glued);
                }
            }
        }
        self.offset += end as u64;
        &self.tally
    }
}

/// Whether every number below `total` is in the tally.
fn all_there(tally: &Tally, total: u64) -> bool {
    tally.distinct() >= total && tally.lost(total) == 0
}

fn field_n(v: &serde_json::Value) -> Option<u64> {
    v["n"].as_u64()
}

fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// One line of the summary, and the assertions of the promises.
struct Summary<'a> {
    plan: &'a Plan,
    campaign: &'a Campaign,
    lost: u64,
    duplicates: u64,
    bound: u64,
    /// Torn lines in file outputs, and the events glued to them that have no other copy (these
    /// are also counted as lost).
    torn: (u64, u64),
    detail: String,
}

impl Summary<'_> {
    fn print_and_check(self) {
        let Summary { plan, campaign: c, lost, duplicates, bound, torn, detail } = self;
        // A kill mid-write leaves a fragment line (its events are written again whole); the next
        // event must start a line of its own, never be glued to the fragment.
        let (torn_lines, glued_only_there) = torn;
        let torn = match torn {
            (0, _) => String::new(),
            (lines, only_there) => format!(", torn lines {lines} (events glued to them and nowhere else: {only_there})"),
        };
        println!(
            "campaign {}: kills {} ({} with a destination behind), events {}, lost {lost}, duplicates {duplicates}, bound {bound}{torn}{detail}, seed {}, {:.1} s",
            plan.pipeline,
            c.kills,
            c.behind,
            c.total,
            plan.seed,
            c.started.elapsed().as_secs_f64()
        );
        assert_eq!(lost, 0, "{}: events lost (seed {})", plan.pipeline, plan.seed);
        assert_eq!(glued_only_there, 0, "{}: events glued to {torn_lines} torn line(s) (seed {})", plan.pipeline, plan.seed);
        assert!(duplicates <= bound, "{}: {duplicates} duplicates, more than the bound {bound} (seed {})", plan.pipeline, plan.seed);
    }
}

// ---------------------------------------------------------------------------------------------
// Files as origin.

/// A log line of event `n`: one JSON object with the number and some padding.
fn line(n: u64) -> String {
    format!("{{\"n\":{n},\"severity\":\"high\",\"title\":\"campaign event {n}\",\"msg\":\"padding to look like a log line, padding\"}}\n")
}

fn append(path: &Path, first: u64, n: u64) {
    if n == 0 {
        return;
    }
    let mut text = String::with_capacity(n as usize * 128);
    (first..first + n).for_each(|i| text.push_str(&line(i)));
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

/// The most events one batch of the file source can hold: `batch_events` less one, plus the
/// lines of one read.
fn max_file_batch(batch_events: u64) -> u64 {
    let shortest = line(0).len() as u64;
    batch_events - 1 + READ_CHUNK.div_ceil(shortest)
}

const FILE_BATCH_EVENTS: u64 = 500;

struct FileToFile {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    input: PathBuf,
    output: PathBuf,
    follower: Mutex<Follower>,
}

impl FileToFile {
    fn new() -> FileToFile {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let cfg = dir.path().join("sluice.yml");
        std::fs::write(
            &cfg,
            format!(
                "state_dir: {d}/state\nshutdown_timeout: 20s\nsinks:\n  out: {{type: file, path: \"{d}/out.jsonl\"}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: logs, type: file, path: \"{d}/in.log\", poll_interval: 20ms, glob_interval: 100ms, batch_events: {FILE_BATCH_EVENTS}}}\n    sinks: [out]\n"
            ),
        )
        .unwrap();
        let (input, output) = (dir.path().join("in.log"), dir.path().join("out.jsonl"));
        let follower = Follower::new(output.clone());
        FileToFile { dir, cfg, input, output, follower }
    }
}

impl Pipeline for FileToFile {
    fn start(&mut self, _round: usize) -> Sluice {
        Sluice::start(&self.cfg, &self.log())
    }
    fn feed(&mut self, first: u64, n: u64) {
        append(&self.input, first, n);
    }
    fn progress(&self) -> u64 {
        size(&self.output)
    }
    fn behind(&self, produced: u64) -> bool {
        self.follower.lock().unwrap().update(field_n).distinct() < produced
    }
    fn complete(&self, total: u64) -> bool {
        all_there(self.follower.lock().unwrap().update(field_n), total)
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("sluice.log")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_file_survives_random_kill_9() {
    let _serial = SERIAL.lock().await;
    let plan = Plan::new("file->file", 5_000, 400);
    let mut p = FileToFile::new();
    let campaign = run_campaign(&mut p, &plan).await;
    let mut follower = p.follower.lock().unwrap();
    let tally = follower.update(field_n);
    tally.check("file sink", campaign.total);
    // One queued group per crash: with one file source, at most its batches in flight.
    let group = FILE_IN_FLIGHT * max_file_batch(FILE_BATCH_EVENTS);
    Summary {
        plan: &plan,
        campaign: &campaign,
        lost: tally.lost(campaign.total),
        duplicates: tally.duplicates(),
        bound: campaign.kills as u64 * group,
        torn: tally.torn(),
        detail: format!(" ({group} per kill: one group of {FILE_IN_FLIGHT} batches of at most {})", max_file_batch(FILE_BATCH_EVENTS)),
    }
    .print_and_check();
}

// ---------------------------------------------------------------------------------------------
// A file to Splunk HEC and Elasticsearch.

const HTTP_CONCURRENCY: u64 = 2;
const HTTP_MAX_EVENTS: u64 = 250;

struct FileToSiems {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    input: PathBuf,
    hec: HecEmulator,
    es: EsEmulator,
}

impl FileToSiems {
    async fn new() -> FileToSiems {
        let hec = HecEmulator::start(HecConfig::default()).await.unwrap();
        // Slow enough that requests are in flight when the daemon dies.
        hec.set_faults(HecFaults { delay: Duration::from_millis(10), ..Default::default() });
        let es = EsEmulator::start(EsConfig::default()).await.unwrap();
        es.set_faults(EsFaults { delay: Duration::from_millis(10), ..Default::default() });
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        let cfg = dir.path().join("sluice.yml");
        let batch = format!("concurrency: {HTTP_CONCURRENCY}\n    batch: {{max_events: {HTTP_MAX_EVENTS}}}\n    format: raw");
        std::fs::write(
            &cfg,
            format!(
                "state_dir: {d}/state\nshutdown_timeout: 20s\nsinks:\n  splunk:\n    type: splunk_hec\n    url: {hec}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    {batch}\n  elastic:\n    type: elasticsearch\n    url: {es}\n    index: campaign\n    {batch}\ntenants:\n  - name: acme\n    sources:\n      - {{name: logs, type: file, path: \"{d}/in.log\", poll_interval: 20ms, glob_interval: 100ms}}\n    sinks: [splunk, elastic]\n",
                hec = hec.url(),
                es = es.url()
            ),
        )
        .unwrap();
        let input = dir.path().join("in.log");
        FileToSiems { dir, cfg, input, hec, es }
    }

    fn hec_tally(&self) -> Tally {
        let mut tally = Tally::default();
        for e in self.hec.events() {
            match e["event"]["n"].as_u64() {
                Some(n) => tally.add(n),
                None => tally.foreign.push(e.to_string()),
            }
        }
        tally
    }

    fn es_tally(&self) -> Tally {
        let mut tally = Tally::default();
        for (_, doc) in self.es.docs("campaign") {
            match doc["n"].as_u64() {
                Some(n) => tally.add(n),
                None => tally.foreign.push(doc.to_string()),
            }
        }
        tally
    }
}

impl Pipeline for FileToSiems {
    fn start(&mut self, _round: usize) -> Sluice {
        Sluice::start(&self.cfg, &self.log())
    }
    fn feed(&mut self, first: u64, n: u64) {
        append(&self.input, first, n);
    }
    fn progress(&self) -> u64 {
        (self.hec.event_count() + self.es.doc_count()) as u64
    }
    /// Elasticsearch's documents are distinct; HEC's count includes repeats, so it may hide a
    /// lag (this only makes the count of kills with a destination behind a lower bound).
    fn behind(&self, produced: u64) -> bool {
        (self.hec.event_count() as u64) < produced || (self.es.doc_count() as u64) < produced
    }
    /// Resent events met by Elasticsearch's 409 show what each kill cost it.
    fn counters(&self) -> String {
        format!(
            "HEC {} events, Elasticsearch {} documents and {} conflicts",
            self.hec.event_count(),
            self.es.doc_count(),
            self.es.conflicts()
        )
    }
    fn complete(&self, total: u64) -> bool {
        self.es.doc_count() as u64 >= total && self.hec.event_count() as u64 >= total && self.hec_tally().lost(total) == 0
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("sluice.log")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_to_hec_and_elasticsearch_survives_random_kill_9() {
    let _serial = SERIAL.lock().await;
    let plan = Plan::new("file->hec+elasticsearch", 3_000, 400);
    let mut p = FileToSiems::new().await;
    let campaign = run_campaign(&mut p, &plan).await;
    let total = campaign.total;
    let (hec, es) = (p.hec_tally(), p.es_tally());
    hec.check("HEC", total);
    es.check("Elasticsearch", total);
    // Elasticsearch recognises a resent event by its _id (409): it never holds a document twice,
    // and what the crashes made sluice send again is counted as conflicts.
    let resent = p.es.conflicts();
    let per_sink = campaign.kills as u64 * HTTP_CONCURRENCY * HTTP_MAX_EVENTS;
    assert_eq!(es.duplicates(), 0, "Elasticsearch holds a document twice");
    assert!(resent <= per_sink, "Elasticsearch was sent {resent} events again, more than the bound {per_sink} (seed {})", plan.seed);
    Summary {
        plan: &plan,
        campaign: &campaign,
        lost: hec.lost(total) + es.lost(total),
        duplicates: hec.duplicates(),
        bound: per_sink,
        torn: (0, 0),
        detail: format!(
            " per sink ({HTTP_CONCURRENCY} × {HTTP_MAX_EVENTS} per kill); HEC lost {} and repeated {}, Elasticsearch lost {}, was sent {resent} again (409) and holds none twice",
            hec.lost(total),
            hec.duplicates(),
            es.lost(total)
        ),
    }
    .print_and_check();
}

// ---------------------------------------------------------------------------------------------
// The WithSecure Elements emulator to files, two tenants.

const WS_TENANTS: [&str; 2] = ["acme", "globex"];
/// Events sharing one persistenceTimestamp, so that pages and rounds split instants.
const WS_PER_MS: u64 = 5;

struct WithSecureToFile {
    dir: tempfile::TempDir,
    emulator: Emulator,
    /// Per tenant: the ids generated, in order (the index is the event's number).
    ids: Vec<Vec<String>>,
    /// Per tenant: id → number.
    numbers: Vec<HashMap<String, u64>>,
    followers: Vec<Mutex<Follower>>,
    /// Per tenant: the timestamp of its next event.
    next_ts: Vec<chrono::DateTime<chrono::Utc>>,
    start_date: chrono::DateTime<chrono::Utc>,
}

impl WithSecureToFile {
    async fn new() -> WithSecureToFile {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), Options::default()).await.unwrap();
        // Each page takes a while, so that a kill can land in the middle of a collection.
        emulator.set_delay(Duration::from_millis(20));
        for t in WS_TENANTS {
            let org = format!("org-{t}");
            emulator.add_organization(&org, t, "company");
            emulator.add_client(&format!("{t}-id"), &format!("{t}-secret"), &org, &[&org]);
        }
        let base = chrono::Utc::now() - chrono::Duration::hours(2);
        let dir = tempfile::tempdir().unwrap();
        let followers = WS_TENANTS.iter().map(|t| Follower::new(dir.path().join(format!("out/{t}.jsonl")))).collect();
        WithSecureToFile {
            dir,
            emulator,
            ids: vec![Vec::new(); WS_TENANTS.len()],
            numbers: vec![HashMap::new(); WS_TENANTS.len()],
            followers,
            next_ts: vec![base; WS_TENANTS.len()],
            start_date: base - chrono::Duration::minutes(1),
        }
    }

    fn output(&self, tenant: &str) -> PathBuf {
        self.dir.path().join(format!("out/{tenant}.jsonl"))
    }

    /// Tenant `t`'s output so far: every event not yet present and every repeat.
    fn with_tally<R>(&self, t: usize, f: impl FnOnce(&Tally) -> R) -> R {
        let numbers = &self.numbers[t];
        let mut follower = self.followers[t].lock().unwrap();
        f(follower.update(|v| v["id"].as_str().and_then(|id| numbers.get(id).copied())))
    }
}

impl Pipeline for WithSecureToFile {
    fn start(&mut self, round: usize) -> Sluice {
        // The first start collects from a fixed date; restarts resume from the saved position,
        // as in production (`fixed` would apply again at every start).
        let start = if round == 0 {
            format!("start_mode: fixed\n        start_date: \"{}\"", self.start_date.to_rfc3339())
        } else {
            "start_mode: state".to_string()
        };
        let d = self.dir.path().display();
        let mut text = format!(
            "state_dir: {d}/state\nshutdown_timeout: 20s\nsinks:\n  out: {{type: file, path: \"{d}/out/%TENANCY.jsonl\"}}\ntenants:\n"
        );
        for t in WS_TENANTS {
            text.push_str(&format!(
                "  - name: {t}\n    sources:\n      - name: ws\n        type: withsecure\n        api_url: {url}\n        client_id: {t}-id\n        client_secret: {t}-secret\n        interval: 100ms\n        request_timeout: 5s\n        rate_limit_per_minute: 60000\n        {start}\n    sinks: [out]\n",
                url = self.emulator.url()
            ));
        }
        let cfg = self.dir.path().join("sluice.yml");
        std::fs::write(&cfg, text).unwrap();
        Sluice::start(&cfg, &self.log())
    }

    /// Events go to the tenants in turn (event `i` to tenant `i % tenants`); each tenant numbers
    /// its own.
    fn feed(&mut self, first: u64, n: u64) {
        let tenants = WS_TENANTS.len() as u64;
        for (t, tenant) in WS_TENANTS.iter().enumerate() {
            // How many of first..first + n are ≡ t modulo the tenants.
            let below = |end: u64| (end + tenants - 1 - t as u64) / tenants;
            let count = below(first + n) - below(first);
            if count == 0 {
                continue;
            }
            // Timestamps only move forward, as the API's do; a new lot may share the last
            // instant of the one before.
            let start = self.next_ts[t];
            let ids = self.emulator.generate(&format!("org-{tenant}"), count as usize, start, WS_PER_MS as usize);
            let last = start + chrono::Duration::milliseconds(((count - 1) / WS_PER_MS) as i64);
            // Continue at the last instant while it holds fewer than WS_PER_MS of this lot.
            let used_at_last = (count - 1) % WS_PER_MS + 1;
            self.next_ts[t] = if used_at_last < WS_PER_MS { last } else { last + chrono::Duration::milliseconds(1) };
            let numbers = &mut self.numbers[t];
            numbers.extend(ids.iter().enumerate().map(|(i, id)| (id.clone(), self.ids[t].len() as u64 + i as u64)));
            self.ids[t].extend(ids);
        }
    }
    fn progress(&self) -> u64 {
        WS_TENANTS.iter().map(|t| size(&self.output(t))).sum()
    }
    fn behind(&self, _produced: u64) -> bool {
        (0..WS_TENANTS.len()).any(|t| self.with_tally(t, |tally| tally.distinct() < self.ids[t].len() as u64))
    }
    fn complete(&self, _total: u64) -> bool {
        (0..WS_TENANTS.len()).all(|t| self.with_tally(t, |tally| all_there(tally, self.ids[t].len() as u64)))
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("sluice.log")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn withsecure_to_file_survives_random_kill_9() {
    let _serial = SERIAL.lock().await;
    let plan = Plan::new("withsecure->file", 2_000, 400);
    let mut p = WithSecureToFile::new().await;
    let campaign = run_campaign(&mut p, &plan).await;
    let (mut lost, mut duplicates, mut torn) = (0, 0, (0, 0));
    let mut detail = String::new();
    // The source keeps one page per tenant in flight, so the file sink's group after a crash
    // holds at most one page of each tenant.
    let per_tenant = campaign.kills as u64 * WITHSECURE_PAGE;
    for (t, tenant) in WS_TENANTS.iter().enumerate() {
        let produced = p.ids[t].len() as u64;
        let (l, d, (lines, only_there)) = p.with_tally(t, |tally| {
            tally.check(tenant, produced);
            (tally.lost(produced), tally.duplicates(), tally.torn())
        });
        torn = (torn.0 + lines, torn.1 + only_there);
        assert!(d <= per_tenant, "{tenant}: {d} duplicates, more than {per_tenant} (one page per kill; seed {})", plan.seed);
        detail.push_str(&format!("; {tenant}: {produced} events, lost {l}, duplicates {d}"));
        lost += l;
        duplicates += d;
    }
    let requests = p.emulator.requests();
    let failed = requests.iter().filter(|r| r.status != 200).count();
    Summary {
        plan: &plan,
        campaign: &campaign,
        lost,
        duplicates,
        bound: per_tenant * WS_TENANTS.len() as u64,
        torn,
        detail: format!(" ({WITHSECURE_PAGE} per tenant per kill){detail}; {} API requests, {failed} not answered 200", requests.len()),
    }
    .print_and_check();
}

// ---------------------------------------------------------------------------------------------
// The ingest API to a file, with clients that send again what was not answered 200.

const INGEST_CLIENTS: u64 = 4;
const INGEST_BATCH: u64 = 50;

/// Event numbers the clients may send so far (raised by the campaign), and the next one to take.
#[derive(Default)]
struct IngestFeed {
    allowed: AtomicU64,
    next: Mutex<u64>,
    /// Requests sent again after an error or an answer other than 200.
    resent: AtomicU64,
    /// Answers other than 200 (connection errors not counted).
    refused: AtomicU64,
    /// Clients done (every number they took was answered 200).
    done: AtomicU64,
}

struct IngestToFile {
    dir: tempfile::TempDir,
    cfg: PathBuf,
    output: PathBuf,
    follower: Mutex<Follower>,
    feed: Arc<IngestFeed>,
}

impl IngestToFile {
    fn new(total: u64) -> IngestToFile {
        assert!(total.is_multiple_of(INGEST_BATCH));
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display();
        // Below the ephemeral range: no other process is given the port while sluice is down.
        let listen = sluice_emulators::ports::outside_ephemeral_range();
        let cfg = dir.path().join("sluice.yml");
        std::fs::write(
            &cfg,
            format!(
                "state_dir: {d}/state\nshutdown_timeout: 20s\napi: {{listen: \"{listen}\"}}\nsinks:\n  out: {{type: file, path: \"{d}/out.jsonl\"}}\ntenants:\n  - {{name: acme, sinks: [out]}}\n"
            ),
        )
        .unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["token", "create", "-c"])
            .arg(&cfg)
            .args(["--role", "ingest", "--tenant", "acme", "--name", "campaign"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
        let feed = Arc::new(IngestFeed::default());
        let url = format!("http://{listen}/api/v1/ingest/app");
        for _ in 0..INGEST_CLIENTS {
            tokio::spawn(ingest_client(url.clone(), token.clone(), feed.clone(), total));
        }
        let output = dir.path().join("out.jsonl");
        let follower = Follower::new(output.clone());
        IngestToFile { dir, cfg, output, follower, feed }
    }
}

/// A client as a real one behaves: posts a batch, and posts the same batch again until it is
/// answered 200.
async fn ingest_client(url: String, token: String, feed: Arc<IngestFeed>, total: u64) {
    let http = reqwest::Client::builder().connect_timeout(Duration::from_secs(1)).timeout(Duration::from_secs(60)).build().unwrap();
    loop {
        let taken = {
            let mut next = feed.next.lock().unwrap();
            if *next >= total {
                break;
            }
            (*next + INGEST_BATCH <= feed.allowed.load(Ordering::SeqCst)).then(|| {
                *next += INGEST_BATCH;
                *next - INGEST_BATCH
            })
        };
        let Some(first) = taken else {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        };
        let body: String = (first..first + INGEST_BATCH).map(line).collect();
        loop {
            match http.post(&url).bearer_auth(&token).body(body.clone()).send().await {
                Ok(r) if r.status() == reqwest::StatusCode::OK => break,
                Ok(_) => {
                    feed.refused.fetch_add(1, Ordering::SeqCst);
                }
                Err(_) => {}
            }
            feed.resent.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    feed.done.fetch_add(1, Ordering::SeqCst);
}

impl Pipeline for IngestToFile {
    fn start(&mut self, _round: usize) -> Sluice {
        Sluice::start(&self.cfg, &self.log())
    }
    fn feed(&mut self, first: u64, n: u64) {
        self.feed.allowed.store(first + n, Ordering::SeqCst);
    }
    fn progress(&self) -> u64 {
        size(&self.output)
    }
    fn behind(&self, produced: u64) -> bool {
        self.follower.lock().unwrap().update(field_n).distinct() < produced
    }
    /// Every client had every batch answered 200: all of it is durable in the output.
    fn complete(&self, _total: u64) -> bool {
        self.feed.done.load(Ordering::SeqCst) == INGEST_CLIENTS
    }
    fn log(&self) -> PathBuf {
        self.dir.path().join("sluice.log")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_api_to_file_survives_random_kill_9() {
    let _serial = SERIAL.lock().await;
    let mut plan = Plan::new("ingest->file", 2_000, 400);
    plan.per_kill = plan.per_kill.next_multiple_of(INGEST_BATCH);
    let mut p = IngestToFile::new(plan.total());
    let campaign = run_campaign(&mut p, &plan).await;
    let mut follower = p.follower.lock().unwrap();
    let tally = follower.update(field_n);
    tally.check("file sink", campaign.total);
    // A kill leaves at most one unanswered request per client, which the client sends again.
    let per_kill = INGEST_CLIENTS * INGEST_BATCH;
    Summary {
        plan: &plan,
        campaign: &campaign,
        lost: tally.lost(campaign.total),
        duplicates: tally.duplicates(),
        bound: campaign.kills as u64 * per_kill,
        torn: tally.torn(),
        detail: format!(
            " ({INGEST_CLIENTS} clients × {INGEST_BATCH} events per unanswered request per kill); {} requests sent again, {} answered other than 200",
            p.feed.resent.load(Ordering::SeqCst),
            p.feed.refused.load(Ordering::SeqCst)
        ),
    }
    .print_and_check();
}

// ---------------------------------------------------------------------------------------------
// A problem the campaign led to, shown on its own.

/// When a `kill -9` cuts a file sink's write short, the file ends in the middle of an event; the
/// first event written after the restart must start a line of its own, not continue the
/// fragment. The campaign met such a cut (one in about 300 kills of file sinks, with 1 KiB
/// WithSecure events); here it is made by hand, as the kill left it.
#[test]
fn after_a_write_cut_short_the_file_sink_starts_a_new_line() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, input, output, log) = common::one_file_pipeline(dir.path());
    std::fs::write(&output, "{\"n\":0,\"msg\":\"cut sh").unwrap();
    std::fs::write(&input, "{\"n\":1}\n").unwrap();
    let sluice = Sluice::start(&cfg, &log);
    let written = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(50));
        std::fs::read_to_string(&output).unwrap_or_default().contains("{\"n\":1}")
    });
    assert_eq!(sluice.terminate(), 0);
    assert!(written, "event 1 never written:\n{}", tail(&log));
    let text = std::fs::read_to_string(&output).unwrap();
    assert!(text.lines().any(|l| l == "{\"n\":1}"), "event 1 is not on a line of its own: {text:?}");
}
