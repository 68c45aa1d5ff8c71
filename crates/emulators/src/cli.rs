//! What the emulator binaries share: reading flag values, and waiting for Ctrl-C or SIGTERM.

/// A flag's value parsed as `T`, or an error naming the flag.
pub fn num<T: std::str::FromStr>(flag: &str, value: &str) -> Result<T, String> {
    value.parse().map_err(|_| format!("{flag}: invalid value {value:?}"))
}

/// A flag's value as a probability (0–1).
pub fn rate(flag: &str, value: &str) -> Result<f64, String> {
    let p: f64 = num(flag, value)?;
    if (0.0..=1.0).contains(&p) { Ok(p) } else { Err(format!("{flag}: {value} is not a probability")) }
}

/// Ctrl-C, or SIGTERM as sent by scripts and service managers.
pub async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
