//! File source behaviour, through the real runtime and a real file sink.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::pipeline::runtime::Runtime;

struct Harness {
    dir: tempfile::TempDir,
    runtime: Option<Runtime>,
}

impl Harness {
    /// Starts a runtime whose one source follows `pattern` (relative to the temp dir).
    async fn start(pattern: &str) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let harness = Harness { dir, runtime: None };
        harness.restart(pattern).await
    }

    async fn restart(mut self, pattern: &str) -> Harness {
        if let Some(rt) = self.runtime.take() {
            assert!(rt.shutdown(Duration::from_secs(10)).await);
        }
        let d = self.dir.path().display();
        let text = format!(
            r#"
state_dir: {d}/state
sinks:
  out: {{type: file, path: "{d}/out/%TENANCY.jsonl"}}
tenants:
  - name: t
    sources:
      - {{name: logs, type: file, path: "{d}/{pattern}", poll_interval: 20ms, glob_interval: 50ms, batch_events: 7}}
    sinks: [out]
"#
        );
        let config = Config::parse(&text, Path::new("."), Path::new("t.yml")).unwrap();
        self.runtime = Some(Runtime::start(config).await.unwrap());
        self
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn append(&self, name: &str, text: &str) {
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(self.path(name)).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn output(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("out/t.jsonl")).unwrap_or_default().lines().map(str::to_string).collect()
    }

    /// Waits until the output has `n` lines; fails if it has more or never gets there.
    async fn expect_lines(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let lines = self.output();
            assert!(lines.len() <= n, "expected {n} lines, got {}: duplicates?", lines.len());
            if lines.len() == n {
                // Stay a moment to catch late duplicates.
                tokio::time::sleep(Duration::from_millis(150)).await;
                let lines = self.output();
                assert_eq!(lines.len(), n);
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} lines, got {}", self.output().len());
    }

    async fn stop(mut self) {
        assert!(self.runtime.take().unwrap().shutdown(Duration::from_secs(10)).await);
    }
}

fn lines(prefix: &str, range: std::ops::Range<u32>) -> String {
    range.map(|i| format!("{{\"id\":\"{prefix}{i}\"}}\n")).collect()
}

fn assert_unique(lines: &[String]) {
    let mut sorted = lines.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted.len(), lines.len(), "duplicate lines in output");
}

#[tokio::test]
async fn follows_rotation_by_rename_without_rereading() {
    // The glob also matches the rotated name, so the rotated file must be recognised.
    let h = Harness::start("app.log*").await;
    h.append("app.log", &lines("a", 0..100));
    h.expect_lines(100).await;
    std::fs::rename(h.path("app.log"), h.path("app.log.1")).unwrap();
    h.append("app.log.1", &lines("late", 0..5)); // the writer still had the old file open
    h.append("app.log", &lines("b", 0..50));
    let out = h.expect_lines(155).await;
    assert_unique(&out);
    h.stop().await;
}

#[tokio::test]
async fn rotated_file_outside_the_glob_is_finished() {
    let h = Harness::start("app.log").await;
    h.append("app.log", &lines("a", 0..10));
    h.expect_lines(10).await;
    std::fs::rename(h.path("app.log"), h.path("old.log")).unwrap();
    h.append("old.log", &lines("late", 0..3));
    h.append("app.log", &lines("b", 0..4));
    assert_unique(&h.expect_lines(17).await);
    h.stop().await;
}

#[tokio::test]
async fn follows_truncation() {
    let h = Harness::start("app.log").await;
    h.append("app.log", &lines("a", 0..30));
    h.expect_lines(30).await;
    std::fs::File::create(h.path("app.log")).unwrap(); // truncate in place
    h.append("app.log", &lines("b", 0..5));
    let out = h.expect_lines(35).await;
    assert!(out.last().unwrap().contains("b4"));
    h.stop().await;
}

#[tokio::test]
async fn reads_every_file_of_a_glob() {
    let h = Harness::start("*.json").await;
    for name in ["a", "b", "c"] {
        h.append(&format!("{name}.json"), &lines(name, 0..20));
    }
    h.append("ignored.txt", &lines("x", 0..20));
    let out = h.expect_lines(60).await;
    assert_unique(&out);
    h.append("d.json", &lines("d", 0..3)); // appears later
    h.expect_lines(63).await;
    h.stop().await;
}

#[tokio::test]
async fn partial_last_line_waits_for_its_newline() {
    let h = Harness::start("app.log").await;
    h.append("app.log", "{\"id\":1}\n{\"id\":");
    h.expect_lines(1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(h.output().len(), 1, "half a line must not be emitted");
    h.append("app.log", "2}\n");
    assert_eq!(h.expect_lines(2).await[1], "{\"id\":2}");
    h.stop().await;
}

#[tokio::test]
async fn invalid_lines_are_skipped_and_do_not_block_the_rest() {
    let h = Harness::start("app.log").await;
    h.append("app.log", "{\"id\":1}\nnot json\n[1,2]\n\n{\"id\":2}\r\n{\"id\":3}\n");
    let out = h.expect_lines(3).await;
    assert_eq!(out, ["{\"id\":1}", "{\"id\":2}", "{\"id\":3}"]);
    h.stop().await;
}

#[tokio::test]
async fn restart_resumes_from_the_saved_position() {
    let h = Harness::start("app.log").await;
    h.append("app.log", &lines("a", 0..40));
    h.expect_lines(40).await;
    let h = h.restart("app.log").await;
    h.append("app.log", &lines("b", 0..2));
    assert_unique(&h.expect_lines(42).await);
    h.stop().await;
}

#[tokio::test]
async fn symlinks_matched_by_a_wildcard_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.json"), lines("secret", 0..3)).unwrap();
    let h = Harness::start("logs/*.json").await;
    std::fs::create_dir_all(h.path("logs")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.json"), h.path("logs/link.json")).unwrap();
    h.append("logs/real.json", &lines("r", 0..4));
    let out = h.expect_lines(4).await;
    assert!(out.iter().all(|l| !l.contains("secret")), "{out:?}");
    // Give the glob a few more rounds to pick the link up, if it would.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h.output().len(), 4);
    h.stop().await;
}
