//! The floor for decoder→encoder benchmarks: parse each line into a `serde_json::Value` and
//! serialize it again, nothing else. `cargo run --release --example json_floor < FILE`.

use std::io::{BufRead, Write};

// The same allocator as the sluice binary, so the floor is a fair one.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let stdin = std::io::stdin().lock();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let line = line.expect("readable input");
        let value: serde_json::Value = serde_json::from_str(&line).expect("JSON lines");
        serde_json::to_writer(&mut out, &value).expect("stdout");
        out.write_all(b"\n").expect("stdout");
    }
}
