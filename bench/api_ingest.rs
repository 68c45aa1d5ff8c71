//! Benchmark: `POST /api/v1/ingest/{source}` and `POST /wazuh-alert` under load from this
//! process, against the release `sluice` binary on loopback, next to a plain axum handler that
//! does no work (the ceiling of HTTP on this machine).
//!
//!   cargo run --release --example api_ingest -- [--seconds 5] [--events-per-request 1]
//!
//! For each target: the maximum rate (64 clients in a closed loop), then an open loop at 50 % and
//! 90 % of that maximum, reporting p50/p99 latency of the answers. sluice answers 200 only once
//! the events are durable (fsynced by its file sink). The original Wazuh-to-MongoDB service (Flask +
//! MongoDB) cannot run here: it needs MongoDB. Prints a Markdown table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

struct Target {
    name: String,
    url: String,
    token: Option<String>,
    /// Body of request `n`.
    body: Arc<dyn Fn(u64) -> String + Send + Sync>,
}

fn main() {
    let mut seconds = 5u64;
    let mut per_request = 1usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).expect("--seconds N"),
            "--events-per-request" => per_request = args.next().and_then(|v| v.parse().ok()).expect("--events-per-request N"),
            other => panic!("unknown argument {other}"),
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let work = PathBuf::from(std::env::var("WORK").unwrap_or_else(|_| "/var/tmp/sluice-bench-api".into()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();

    // The ceiling: an axum handler that reads the body and answers 200.
    let ceiling = runtime.block_on(async {
        let app =
            axum::Router::new().route("/ingest", axum::routing::post(|body: axum::body::Bytes| async move { body.len().to_string() }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        format!("http://{addr}/ingest")
    });
    let (_sluice, url, token) = start_sluice(&work);

    let line = |n: u64| {
        format!(
            "{{\"n\":{n},\"severity\":\"high\",\"title\":\"login failure for admin from 203.0.113.{}\",\"src_ip\":\"203.0.113.{}\",\"user\":\"admin\"}}",
            n % 250,
            n % 250
        )
    };
    let ndjson = Arc::new(move |n: u64| (0..per_request as u64).map(|k| line(n * 1000 + k) + "\n").collect::<String>());
    let alert = Arc::new(|n: u64| {
        format!(
            "{{\"timestamp\":\"2024-02-14T22:02:34.461+0500\",\"rule\":{{\"level\":5,\"description\":\"sshd: Attempt to login using a non-existent user\",\"id\":\"5710\",\"groups\":[\"syslog\",\"sshd\"]}},\"agent\":{{\"id\":\"{:03}\",\"name\":\"web\",\"ip\":\"10.0.1.85\"}},\"manager\":{{\"name\":\"wazuh\"}},\"id\":\"1707930154.{n}\",\"full_log\":\"Failed password for invalid user admin from 123.20.109.89 port 49286 ssh2\",\"data\":{{\"srcip\":\"123.20.109.89\"}},\"location\":\"/var/log/auth.log\"}}",
            n % 100
        )
    });
    let targets = vec![
        Target { name: "plain axum handler (ceiling)".into(), url: ceiling, token: None, body: ndjson.clone() },
        Target {
            name: format!("sluice POST /api/v1/ingest ({per_request} event/request)"),
            url: format!("{url}/api/v1/ingest/bench"),
            token: Some(token.clone()),
            body: ndjson,
        },
        Target { name: "sluice POST /wazuh-alert".into(), url: format!("{url}/wazuh-alert"), token: Some(token), body: alert },
    ];
    let counter = Arc::new(AtomicU64::new(0));
    println!("| target | max requests/s | p50 / p99 at 50 % (ms) | p50 / p99 at 90 % (ms) |");
    println!("|---|---:|---:|---:|");
    for t in &targets {
        let max = runtime.block_on(closed_loop(t, 64, Duration::from_secs(seconds), counter.clone()));
        let half = runtime.block_on(open_loop(t, max * 0.5, Duration::from_secs(seconds), counter.clone()));
        let ninety = runtime.block_on(open_loop(t, max * 0.9, Duration::from_secs(seconds), counter.clone()));
        println!("| {} | {:.0} | {:.2} / {:.2} | {:.2} / {:.2} |", t.name, max, half.0, half.1, ninety.0, ninety.1);
    }
}

async fn send(client: &reqwest::Client, t: &Target, n: u64) -> bool {
    let mut req = client.post(&t.url).header("Content-Type", "application/json").body((t.body)(n));
    if let Some(token) = &t.token {
        req = req.bearer_auth(token);
    }
    matches!(req.send().await, Ok(r) if r.status().is_success())
}

/// Requests per second that `clients` clients in a closed loop get answered.
async fn closed_loop(t: &Target, clients: usize, length: Duration, counter: Arc<AtomicU64>) -> f64 {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (client, done, counter) = (client.clone(), done.clone(), counter.clone());
        let t = Target { name: String::new(), url: t.url.clone(), token: t.token.clone(), body: t.body.clone() };
        tasks.push(tokio::spawn(async move {
            while started.elapsed() < length {
                if send(&client, &t, counter.fetch_add(1, Ordering::Relaxed)).await {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// Sends at a fixed rate whatever the answers' latency; returns (p50, p99) in milliseconds.
/// Latency runs from when a request was due, so requests that queue behind the in-flight cap
/// (512, to stay within open-file limits) count their wait.
async fn open_loop(t: &Target, rate: f64, length: Duration, counter: Arc<AtomicU64>) -> (f64, f64) {
    let client = reqwest::Client::new();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(512));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::new();
    while started.elapsed() < length {
        tick.tick().await;
        let due = Instant::now();
        let permit = in_flight.clone().acquire_owned().await.unwrap();
        let (client, counter) = (client.clone(), counter.clone());
        let t = Target { name: String::new(), url: t.url.clone(), token: t.token.clone(), body: t.body.clone() };
        tasks.push(tokio::spawn(async move {
            let ok = send(&client, &t, counter.fetch_add(1, Ordering::Relaxed)).await;
            drop(permit);
            ok.then(|| due.elapsed())
        }));
    }
    let mut latencies: Vec<Duration> = Vec::new();
    for task in tasks {
        if let Some(l) = task.await.unwrap() {
            latencies.push(l);
        }
    }
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
    };
    (pct(0.50), pct(0.99))
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// sluice with the API on a free port, one tenant, a durable file sink; returns its URL and an
/// ingest token.
fn start_sluice(work: &Path) -> (Killed, String, String) {
    let sluice = std::env::current_exe().unwrap().parent().and_then(Path::parent).unwrap().join("sluice");
    assert!(sluice.exists(), "build it first: cargo build --release");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = work.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {w}/state\napi: {{listen: \"127.0.0.1:{port}\"}}\nsinks:\n  out: {{type: file, path: \"{w}/out.jsonl\"}}\ntenants:\n  - {{name: bench, sinks: [out]}}\n",
            w = work.display()
        ),
    )
    .unwrap();
    let out = Command::new(&sluice).args(["token", "create", "--role", "ingest", "--tenant", "bench", "-c"]).arg(&cfg).output().unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let child = Command::new(&sluice).args(["run", "--log-level", "warn", "-c"]).arg(&cfg).stdout(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "sluice did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Killed(child), format!("http://127.0.0.1:{port}"), token)
}
