//! Benchmark: file → `postgres` sink, next to one `INSERT` per row (what the original collectors
//! did), against the same PostgreSQL in the same run.
//!
//!   cargo build --release --bin sluice --example postgres_sink
//!   target/release/examples/postgres_sink [--events 200000] [--url postgres://postgres@127.0.0.1:5432/postgres]
//!
//! A fresh database is made and dropped at the end. sluice: the release binary reads N lines
//! (~300 bytes) from a file and writes them with its default batch; wall time runs from its
//! start until the table holds N rows. Per row: one client on one connection sends
//! `INSERT INTO t (upload_timestamp, tenancy, json_data) VALUES ($1, $2, $3::json)` for each
//! event, prepared once, each its own transaction (autocommit, as the original had no transaction
//! per upload), for the first 20,000 events; and the same inside one transaction for all N.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

fn main() {
    let mut events = 200_000usize;
    let mut url = "postgres://postgres@127.0.0.1:5432/postgres".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--events" => events = args.next().unwrap().parse().unwrap(),
            "--url" => url = args.next().unwrap(),
            other => panic!("unknown argument {other}"),
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    rt.block_on(run(events, &url));
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.expect("connect to PostgreSQL");
    tokio::spawn(connection);
    client
}

async fn run(events: usize, admin_url: &str) {
    let admin = connect(admin_url).await;
    let db = format!("sluice_bench_{}", uuid::Uuid::new_v4().simple());
    admin.batch_execute(&format!("CREATE DATABASE {db}")).await.unwrap();
    let base = admin_url.rsplit_once('/').unwrap().0;
    let url = format!("{base}/{db}");
    let client = connect(&url).await;

    let lines: Vec<String> = (0..events)
        .map(|n| {
            format!(
                r#"{{"n":{n},"timestamp":"2024-07-15T14:30:{:02}.000Z","severity":"high","host":"host-{}","user":"user{}@example.com","big":1234567890123456789012{n},"message":"event {n} {}","tags":["a","b"],"nested":{{"k":"v","i":{n}}}}}"#,
                n % 60,
                n % 500,
                n % 97,
                "x".repeat(120)
            )
        })
        .collect();

    // sluice: file → postgres.
    let work = tempfile::tempdir().unwrap();
    let d = work.path();
    std::fs::write(d.join("events.jsonl"), lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    std::fs::write(
        d.join("sluice.yml"),
        format!(
            "state_dir: {d}/state\nsinks:\n  pg: {{type: postgres, url: \"{url}\"}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: events, type: file, path: \"{d}/events.jsonl\"}}\n    sinks: [pg]\n",
            d = d.display()
        ),
    )
    .unwrap();
    let began = Instant::now();
    let mut child = Command::new(sluice_binary())
        .args(["run", "-c"])
        .arg(d.join("sluice.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    loop {
        let n: i64 = match client.query_one("SELECT count(*) FROM public.events", &[]).await {
            Ok(row) => row.get(0),
            Err(_) => 0,
        };
        if n as usize >= events {
            break;
        }
        assert!(began.elapsed() < Duration::from_secs(600), "sluice stored {n} of {events}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sluice_wall = began.elapsed();
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();

    // One INSERT per row, autocommit.
    client.batch_execute("CREATE TABLE per_row (upload_timestamp timestamp, tenancy varchar, json_data json)").await.unwrap();
    let insert =
        client.prepare("INSERT INTO per_row (upload_timestamp, tenancy, json_data) VALUES ($1, $2, $3::text::json)").await.unwrap();
    let now = chrono::Utc::now().naive_utc();
    let autocommit_n = events.min(20_000);
    let began = Instant::now();
    for line in &lines[..autocommit_n] {
        client.execute(&insert, &[&now, &"acme", line]).await.unwrap();
    }
    let autocommit_wall = began.elapsed();

    // One INSERT per row, one transaction for all.
    client.batch_execute("TRUNCATE per_row").await.unwrap();
    let began = Instant::now();
    client.batch_execute("BEGIN").await.unwrap();
    for line in &lines {
        client.execute(&insert, &[&now, &"acme", line]).await.unwrap();
    }
    client.batch_execute("COMMIT").await.unwrap();
    let one_tx_wall = began.elapsed();

    drop(client);
    admin.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)")).await.unwrap();

    let rate = |n: usize, wall: Duration| n as f64 / wall.as_secs_f64();
    let sluice_rate = rate(events, sluice_wall);
    println!("| case | events | wall s | events/s | sluice ÷ case |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| sluice file → postgres (COPY + INSERT … ON CONFLICT) | {events} | {:.2} | {sluice_rate:.0} | 1.0 |",
        sluice_wall.as_secs_f64()
    );
    for (case, n, wall) in
        [("one INSERT per row, autocommit", autocommit_n, autocommit_wall), ("one INSERT per row, one transaction", events, one_tx_wall)]
    {
        println!("| {case} | {n} | {:.2} | {:.0} | {:.1} |", wall.as_secs_f64(), rate(n, wall), sluice_rate / rate(n, wall));
    }
}

fn sluice_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("SLUICE_BIN") {
        return bin.into();
    }
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().and_then(Path::parent).unwrap().join("sluice");
    assert!(path.exists(), "build it first: cargo build --release --bin sluice");
    path
}
