//! Helpers for tests that run the real `sluice` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sluice {
    pub child: Child,
    pub log: PathBuf,
}

impl Sluice {
    pub fn start(config: &Path, log: &Path) -> Sluice {
        Sluice::start_with(config, log, &[])
    }

    /// With more arguments to `sluice run` (`--log-level debug`).
    pub fn start_with(config: &Path, log: &Path, args: &[&str]) -> Sluice {
        let log_file = std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["run", "-c"])
            .arg(config)
            .args(["--log-format", "json"])
            .args(args)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start sluice");
        Sluice { child, log: log.to_path_buf() }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill").args([&format!("-{sig}"), &self.child.id().to_string()]).status().unwrap();
        assert!(ok.success());
    }

    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit code.
    pub fn terminate(mut self) -> i32 {
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "sluice did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str) {
        wait_until(
            Duration::from_secs(20),
            || self.log_text().contains(needle),
            || format!("log never said {needle:?}:\n{}", self.log_text()),
        );
    }
}

impl Drop for Sluice {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool, msg: impl Fn() -> String) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{}", msg());
        std::thread::sleep(Duration::from_millis(25));
    }
}

pub fn count_lines(path: &Path) -> usize {
    std::fs::read(path).map(|b| b.iter().filter(|&&c| c == b'\n').count()).unwrap_or(0)
}

/// `sluice status --json`, keyed by sink name.
pub fn status_json(cfg: &Path) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice")).args(["status", "--json", "-c"]).arg(cfg).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut map = serde_json::Map::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        map.insert(row["sink"].as_str().unwrap().to_string(), row);
    }
    serde_json::Value::Object(map)
}

/// One file followed into one file: the config, input, output and log paths.
pub fn one_file_pipeline(dir: &Path) -> (PathBuf, PathBuf, PathBuf, PathBuf) {
    let d = dir.display();
    let cfg = dir.join("sluice.yml");
    std::fs::write(
        &cfg,
        format!(
            "state_dir: {d}/state\nsinks:\n  out: {{type: file, path: \"{d}/out.jsonl\"}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: logs, type: file, path: \"{d}/in.log\", poll_interval: 20ms}}\n    sinks: [out]\n"
        ),
    )
    .unwrap();
    (cfg, dir.join("in.log"), dir.join("out.jsonl"), dir.join("sluice.log"))
}
