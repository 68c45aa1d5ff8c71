//! `sluice convert`: decodes lines and prints them encoded, to try a decoder, a format or a
//! mapping without the daemon.

use std::path::Path;
use std::process::ExitCode;

use super::EXIT_INVALID_CONFIG;

/// Exit 0 when every line converted, 1 when some could not (each reported on stderr).
pub fn convert(decoder: &str, format: &str, file: Option<&Path>) -> ExitCode {
    use std::io::{BufRead, Write};
    let Some(decoder) = crate::decode::Decoder::parse(decoder) else {
        eprintln!("unknown decoder `{decoder}`; known: {}", crate::vendors::names());
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    let Ok(format) = serde_json::from_value::<crate::encode::Format>(serde_json::Value::String(format.to_string())) else {
        eprintln!("unknown format `{format}`; known: raw, event, ecs, idmefv2, idmefv2_v04, vendor_wrapped, cef, leef, text");
        return ExitCode::from(EXIT_INVALID_CONFIG);
    };
    let input: Box<dyn BufRead> = match file {
        Some(path) => match std::fs::File::open(path) {
            Ok(f) => Box::new(std::io::BufReader::new(f)),
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => Box::new(std::io::stdin().lock()),
    };
    let origin = crate::decode::Origin { tenant: "default".into(), source: "convert".into(), vendor: decoder.vendor().into() };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = 0;
    let mut buf = Vec::new();
    for (n, line) in input.lines().enumerate() {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                eprintln!("line {}: {e}", n + 1);
                failed += 1;
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match decoder.decode_line(&line, &origin, chrono::Utc::now()) {
            Ok(events) => {
                for event in &events {
                    buf.clear();
                    // Raw formats do not run the vendor's decoder, so check it here; the others
                    // report its failure themselves.
                    let failure = if format.is_normalized() {
                        format.encode_line_reporting(event, &mut buf)
                    } else {
                        format.encode_line(event, &mut buf);
                        crate::normalize::normalize(event).err()
                    };
                    if let Some(e) = failure {
                        eprintln!("line {}: {} decoder: {e} (written with the generic mapping)", n + 1, decoder.vendor());
                        failed += 1;
                    }
                    if out.write_all(&buf).is_err() {
                        return ExitCode::FAILURE;
                    }
                }
            }
            Err(e) => {
                eprintln!("line {}: {e}", n + 1);
                failed += 1;
            }
        }
    }
    let _ = out.flush();
    if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
