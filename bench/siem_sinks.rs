//! Benchmark: outbox → SIEM sink throughput, next to rsyslog forwarding the same events.
//!
//!   cargo run --release --example siem_sinks -- [--events 200000] [--only hec,es,syslog,rsyslog]
//!
//! For each case the outbox of a fresh store is filled with N Suricata alerts (~900 bytes), then
//! the release `sluice` binary starts with one sink and no sources and drains the outbox to:
//! - the Splunk HEC emulator (in this process, on loopback), format `event` and `raw`;
//! - the Elasticsearch emulator, format `ecs` and `raw`;
//! - rsyslog (`imtcp` → `omfile`), RFC 5424 over TCP with octet counting, format `cef` and `raw`
//!   (the vendor JSON as the message, as rsyslog forwards it).
//!
//! and, as the peer, rsyslog `imfile` → `omfwd` (TCP) → a second rsyslog (`imtcp` → `omfile`)
//! forwards the same events read from a file. Wall time runs from the start of the process
//! under test until the receiver holds all N events; CPU time is that process's user+system time
//! (all threads, from /proc) at that moment. The receivers' own CPU is not counted for anyone.
//! Prints a Markdown table.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice::event::Event;
use sluice::store::Store;
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator};

struct Row {
    case: String,
    events: usize,
    wall: Duration,
    cpu: f64,
}

fn main() {
    let mut events = 200_000;
    let mut only: Option<Vec<String>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => events = args.next().and_then(|v| v.parse().ok()).expect("--events N"),
            "--only" => only = args.next().map(|v| v.split(',').map(str::to_string).collect()),
            other => panic!("unknown argument {other}"),
        }
    }
    let wanted = |case: &str| only.as_ref().is_none_or(|o| o.iter().any(|w| w == case));
    let sluice = sluice_binary();
    let work = PathBuf::from(std::env::var("WORK").unwrap_or_else(|_| "/var/tmp/sluice-bench-siem".into()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    let lines = alerts(events);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let mut rows = Vec::new();

    if wanted("hec") {
        for format in ["event", "raw"] {
            let hec = runtime.block_on(HecEmulator::start(HecConfig::default())).unwrap();
            let sink = format!(
                "type: splunk_hec\n    url: {}\n    token: \"{}\"\n    format: {format}\n    concurrency: 4",
                hec.url(),
                HecConfig::default().token
            );
            let (wall, cpu) = drain(&sluice, &work.join(format!("hec-{format}")), &lines, &sink, || hec.event_count() >= events);
            rows.push(Row { case: format!("sluice → Splunk HEC emulator (format {format})"), events, wall, cpu });
            runtime.block_on(hec.stop());
        }
    }
    if wanted("es") {
        for format in ["ecs", "raw"] {
            let es = runtime.block_on(EsEmulator::start(EsConfig::default())).unwrap();
            let sink = format!("type: elasticsearch\n    url: {}\n    index: bench\n    format: {format}\n    concurrency: 4", es.url());
            let (wall, cpu) = drain(&sluice, &work.join(format!("es-{format}")), &lines, &sink, || es.doc_count() >= events);
            rows.push(Row { case: format!("sluice → Elasticsearch emulator (format {format})"), events, wall, cpu });
            runtime.block_on(es.stop());
        }
    }
    if wanted("syslog") {
        for format in ["cef", "raw"] {
            let dir = work.join(format!("syslog-{format}"));
            let port = free_port();
            let out = dir.join("received.log");
            let _receiver = rsyslog_receiver(&dir, port, &out);
            let sink = format!("type: syslog\n    address: 127.0.0.1:{port}\n    transport: tcp\n    format: {format}");
            let counter = LineCounter::new(&out);
            let (wall, cpu) = drain(&sluice, &dir, &lines, &sink, || counter.count() >= events);
            rows.push(Row { case: format!("sluice → rsyslog, RFC 5424 over TCP (format {format})"), events, wall, cpu });
        }
    }
    if wanted("rsyslog") {
        let dir = work.join("rsyslog-forward");
        let port = free_port();
        let out = dir.join("received.log");
        let _receiver = rsyslog_receiver(&dir, port, &out);
        let counter = LineCounter::new(&out);
        let (wall, cpu) = rsyslog_forward(&dir, &lines, port, || counter.count() >= events);
        rows.push(Row { case: "rsyslog imfile → omfwd (TCP) → rsyslog".into(), events, wall, cpu });
    }

    println!("| case | events | wall s | events/s | CPU s per million events |");
    println!("|---|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} | {:.0} | {:.1} |",
            r.case,
            r.events,
            r.wall.as_secs_f64(),
            r.events as f64 / r.wall.as_secs_f64(),
            r.cpu / r.events as f64 * 1e6
        );
    }
}

/// `n` Suricata alerts of about 900 bytes, each distinct.
fn alerts(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            format!(
                "{{\"timestamp\":\"2024-05-01T10:{:02}:{:02}.{:06}+0000\",\"flow_id\":{},\"in_iface\":\"eth0\",\"event_type\":\"alert\",\"src_ip\":\"10.{}.{}.{}\",\"src_port\":{},\"dest_ip\":\"192.168.{}.{}\",\"dest_port\":443,\"proto\":\"TCP\",\"community_id\":\"1:{:x}\",\"alert\":{{\"action\":\"allowed\",\"gid\":1,\"signature_id\":{},\"rev\":3,\"signature\":\"ET POLICY Suspicious outbound connection to a dynamic DNS domain, possible command and control beacon number {i}\",\"category\":\"Potentially Bad Traffic\",\"severity\":{},\"metadata\":{{\"mitre_technique_id\":[\"T1071\"],\"mitre_tactic_name\":[\"Command_And_Control\"]}}}},\"http\":{{\"hostname\":\"c2.example.net\",\"url\":\"/api/v1/beacon?id={i}\",\"http_user_agent\":\"Mozilla/5.0 (Windows NT 10.0; Win64; x64)\",\"http_method\":\"POST\",\"protocol\":\"HTTP/1.1\",\"status\":200,\"length\":512}},\"app_proto\":\"http\",\"flow\":{{\"pkts_toserver\":12,\"pkts_toclient\":10,\"bytes_toserver\":2048,\"bytes_toclient\":4096,\"start\":\"2024-05-01T10:00:00.000000+0000\"}}}}",
                i / 60 % 60,
                i % 60,
                i % 1_000_000,
                1_000_000_000u64 + i as u64,
                i % 200,
                i / 200 % 250,
                i % 250,
                1024 + i % 60000,
                i / 250 % 250,
                i % 250,
                i,
                2_010_000 + i % 5000,
                1 + i % 3
            )
        })
        .collect()
}

/// Fills a fresh store's outbox for sink `out`, runs sluice with that sink until `done`, and
/// returns (wall, CPU seconds) of the sluice process.
fn drain(sluice: &Path, dir: &Path, lines: &[String], sink: &str, done: impl Fn() -> bool) -> (Duration, f64) {
    std::fs::create_dir_all(dir).unwrap();
    let state = dir.join("state");
    let store = Store::open(&state).unwrap();
    let now = chrono::Utc::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    for chunk in lines.chunks(10_000) {
        let events: Vec<Event> = chunk
            .iter()
            .map(|l| {
                Event::hashed(
                    "acme".into(),
                    "eve".into(),
                    "suricata".into(),
                    now,
                    serde_json::value::RawValue::from_string(l.clone()).unwrap(),
                )
            })
            .collect();
        rt.block_on(store.outbox_push("out", &[Arc::new(events)])).unwrap();
    }
    drop(store);
    let cfg = dir.join("sluice.yml");
    std::fs::write(&cfg, format!("state_dir: {}\nsinks:\n  out:\n    {sink}\n", state.display())).unwrap();
    let child = Command::new(sluice)
        .args(["run", "-c"])
        .arg(&cfg)
        .args(["--log-level", "warn"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    measure(child, done)
}

fn measure(mut child: Child, done: impl Fn() -> bool) -> (Duration, f64) {
    let started = Instant::now();
    while !done() {
        assert!(child.try_wait().unwrap().is_none(), "the process under test exited early");
        assert!(started.elapsed() < Duration::from_secs(900), "no result within 15 minutes");
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed();
    let cpu = cpu_seconds(child.id());
    let _ = child.kill();
    let _ = child.wait();
    (wall, cpu)
}

/// User + system time of a process, all threads.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // SAFETY: sysconf has no preconditions.
    ticks / unsafe { libc_sysconf_clk_tck() }
}

unsafe extern "C" {
    fn sysconf(name: i32) -> i64;
}

unsafe fn libc_sysconf_clk_tck() -> f64 {
    const SC_CLK_TCK: i32 = 2;
    // SAFETY: sysconf has no preconditions.
    unsafe { sysconf(SC_CLK_TCK) as f64 }
}

fn rsyslogd() -> PathBuf {
    let p = PathBuf::from("/usr/sbin/rsyslogd");
    assert!(p.exists(), "rsyslogd is needed: apt-get install rsyslog");
    p
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// rsyslog listening on TCP, writing each message's raw text to `out`.
fn rsyslog_receiver(dir: &Path, port: u16, out: &Path) -> Killed {
    let dir = dir.join("receiver");
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{}\" maxMessageSize=\"64k\")\nmodule(load=\"imtcp\")\ntemplate(name=\"raw\" type=\"string\" string=\"%rawmsg%\\n\")\nruleset(name=\"in\") {{ action(type=\"omfile\" file=\"{}\" template=\"raw\" asyncWriting=\"on\" ioBufferSize=\"256k\" flushOnTXEnd=\"off\") }}\ninput(type=\"imtcp\" address=\"127.0.0.1\" port=\"{port}\" ruleset=\"in\")\n",
            dir.display(),
            out.display()
        ),
    )
    .unwrap();
    let child = Command::new(rsyslogd())
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(dir.join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(10), "rsyslog receiver did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Killed(child)
}

/// rsyslog reading `lines` from a file (imfile) and forwarding them over TCP (omfwd).
fn rsyslog_forward(dir: &Path, lines: &[String], port: u16, done: impl Fn() -> bool) -> (Duration, f64) {
    let input = dir.join("input.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let work = dir.join("forwarder");
    std::fs::create_dir_all(&work).unwrap();
    let conf = work.join("rsyslog.conf");
    std::fs::write(
        &conf,
        format!(
            "global(workDirectory=\"{w}\" maxMessageSize=\"64k\")\nmodule(load=\"imfile\" mode=\"inotify\")\nruleset(name=\"fwd\") {{ action(type=\"omfwd\" target=\"127.0.0.1\" port=\"{port}\" protocol=\"tcp\" TCP_Framing=\"octet-counted\" template=\"RSYSLOG_SyslogProtocol23Format\") }}\ninput(type=\"imfile\" file=\"{i}\" tag=\"eve\" ruleset=\"fwd\" freshStartTail=\"off\")\n",
            w = work.display(),
            i = input.display()
        ),
    )
    .unwrap();
    let child = Command::new(rsyslogd())
        .args(["-n", "-f"])
        .arg(&conf)
        .arg("-i")
        .arg(work.join("pid"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    measure(child, done)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Counts the lines of a growing file, reading only what was added since the last call.
struct LineCounter {
    path: PathBuf,
    offset: std::cell::Cell<u64>,
    lines: std::cell::Cell<usize>,
}

impl LineCounter {
    fn new(path: &Path) -> LineCounter {
        LineCounter { path: path.to_path_buf(), offset: 0.into(), lines: 0.into() }
    }

    fn count(&self) -> usize {
        use std::io::{Read, Seek, SeekFrom};
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            let mut buf = Vec::new();
            f.seek(SeekFrom::Start(self.offset.get())).unwrap();
            f.read_to_end(&mut buf).unwrap();
            self.offset.set(self.offset.get() + buf.len() as u64);
            self.lines.set(self.lines.get() + buf.iter().filter(|&&c| c == b'\n').count());
        }
        self.lines.get()
    }
}

/// The release binary next to this example (`target/release/examples/siem_sinks`), or
/// `$SLUICE_BIN`.
fn sluice_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SLUICE_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("sluice");
    assert!(path.exists(), "build it first: cargo build --release");
    path
}
