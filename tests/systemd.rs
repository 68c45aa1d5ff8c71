//! sluice under systemd's notify protocol: READY, RELOADING → READY, watchdog pings, STOPPING.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn receive_until(socket: &UnixDatagram, needle: &str, seen: &mut Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = socket.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).to_string();
            seen.push(msg.clone());
            if msg.lines().any(|l| l == needle) {
                return;
            }
        }
    }
    panic!("never received {needle}; got {seen:?}");
}

#[test]
fn notify_protocol_ready_reload_watchdog_stop() {
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let d = dir.path().display();
    std::fs::write(dir.path().join("in.log"), "{\"a\":1}\n").unwrap();
    let config = dir.path().join("sluice.yml");
    std::fs::write(
        &config,
        format!("state_dir: {d}/state\nsinks:\n  out: {{type: file, path: \"{d}/out.jsonl\"}}\ntenants:\n  - name: t\n    sources:\n      - {{name: s, type: file, path: \"{d}/in.log\"}}\n    sinks: [out]\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-c"])
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        .env("WATCHDOG_USEC", "400000")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut seen = Vec::new();
    receive_until(&socket, "READY=1", &mut seen);
    assert!(seen.iter().any(|m| m.contains("STATUS=running: 1 tenant(s), 1 source(s), 1 sink(s)")), "{seen:?}");
    receive_until(&socket, "WATCHDOG=1", &mut seen);

    Command::new("kill").args(["-HUP", &pid]).status().unwrap();
    receive_until(&socket, "RELOADING=1", &mut seen);
    receive_until(&socket, "READY=1", &mut seen);

    Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    receive_until(&socket, "STOPPING=1", &mut seen);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze").arg("--version").output().is_err() {
        panic!("systemd-analyze is needed for this test (Debian package systemd)");
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/systemd/sluice.service")).unwrap();
    // Verify the unit as installed, with the binary it would run.
    let path = dir.path().join("sluice.service");
    std::fs::write(&path, unit.replace("/usr/bin/sluice", env!("CARGO_BIN_EXE_sluice"))).unwrap();
    let out = Command::new("systemd-analyze").arg("verify").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "{stderr}");
}

#[test]
fn log_file_is_written_and_rotated_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let mut lines = String::new();
    for i in 0..200 {
        lines.push_str(&format!("not json {i}\n")); // each invalid line is logged (the first ten, then every thousandth)
    }
    std::fs::write(dir.path().join("in.log"), lines).unwrap();
    let config = dir.path().join("sluice.yml");
    std::fs::write(
        &config,
        format!("state_dir: {d}/state\nlog: {{file: {d}/logs/sluice.log, max_size: 2KiB, max_files: 2}}\nsinks:\n  out: {{type: file, path: \"{d}/out.jsonl\"}}\ntenants:\n  - name: t\n    sources:\n      - {{name: s, type: file, path: \"{d}/in.log\"}}\n    sinks: [out]\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "-c"])
        .arg(&config)
        .args(["--log-level", "debug"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let logs = dir.path().join("logs");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !logs.join("sluice.log.1").exists() {
        assert!(Instant::now() < deadline, "the log file was never rotated");
        std::thread::sleep(Duration::from_millis(50));
    }
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let text = std::fs::read_to_string(logs.join("sluice.log")).unwrap() + &std::fs::read_to_string(logs.join("sluice.log.1")).unwrap();
    assert!(text.contains("sluice"), "{text}");
    assert!(!logs.join("sluice.log.3").exists(), "more files kept than max_files");
}
