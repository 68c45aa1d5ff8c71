//! A full state disk stops intake without losing or repeating anything, and everything resumes
//! by itself when space returns. The state directory is a 4 MiB tmpfs (needs root; skipped
//! without it unless SLUICE_REQUIRE_TMPFS=1, as in CI).

mod common;

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Sluice, wait_until};

struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(std::env::var_os("SLUICE_REQUIRE_TMPFS").is_none(), "cannot mount a tmpfs at {}", path.display());
            eprintln!("skipped: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(path.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(&self.0).status().unwrap();
        assert!(ok.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[test]
fn a_full_state_disk_stops_intake_and_nothing_is_repeated() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let Some(tmpfs) = Tmpfs::mount(&state, "4m") else { return };
    const LINES: usize = 50_000;
    let input = dir.path().join("in.jsonl");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&input).unwrap());
    for i in 0..LINES {
        writeln!(f, r#"{{"n":{i},"msg":"{}"}}"#, "y".repeat(180)).unwrap();
    }
    f.flush().unwrap();
    drop(f);
    // A Splunk HEC sink that refuses connections: its events go to the outbox on the small disk.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let out = dir.path().join("out.jsonl");
    let cfg = dir.path().join("sluice.yml");
    let api = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {state}\napi: {{listen: \"{api}\"}}\nsinks:\n  archive: {{type: file, path: \"{out}\", format: raw}}\n  splunk:\n    type: splunk_hec\n    url: {dead_url}\n    token: \"00000000-0000-0000-0000-000000000000\"\n    retry: {{max_attempts: 1, initial_backoff: 10ms, max_backoff: 50ms}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: in, type: file, path: \"{input}\"}}\n    sinks: [archive, splunk]\n",
            state = state.display(),
            out = out.display(),
            input = input.display()
        ),
    )
    .unwrap();
    let daemon = Sluice::start(&cfg, &dir.path().join("run.log"));
    daemon.wait_log("disk is full");
    // Intake stopped: the file sink's output does not move, and holds no line twice.
    std::thread::sleep(Duration::from_secs(2));
    let stalled = common::count_lines(&out);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(common::count_lines(&out), stalled, "intake went on while the store could not take events");
    assert!(stalled < LINES, "the disk never filled ({stalled} lines out)");
    let health = get(api, "/health");
    assert!(health.contains(r#""status":"failed""#) && health.contains("cannot store events"), "{health}");
    let restarts = daemon.log_text().matches("source failed").count();
    assert_eq!(restarts, 0, "the source failed and restarted:\n{}", daemon.log_text());

    tmpfs.resize("256m");
    wait_until(
        Duration::from_secs(60),
        || common::count_lines(&out) == LINES,
        || format!("{} of {LINES} lines after space returned:\n{}", common::count_lines(&out), daemon.log_text()),
    );
    daemon.wait_log("room again");
    assert!(!get(api, "/health").contains("cannot store events"));
    let text = std::fs::read_to_string(&out).unwrap();
    let distinct: HashSet<&str> = text.lines().collect();
    assert_eq!(distinct.len(), LINES, "every line exactly once");
    assert_eq!(daemon.log_text().matches("disk is full:").count(), 1, "one clear error, not one per attempt");
    assert_eq!(daemon.terminate(), 0);
}

/// The body of a plain HTTP GET.
fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use std::io::Read;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or(text)
}
