//! Durations in the config: a number of seconds (`300`, as the original tools wrote them) or a
//! human string (`30s`, `5m`, `1h 30m`, `250ms`).

use std::time::Duration;

use serde::{Deserialize, Deserializer, de};

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Seconds(u64),
        Fraction(f64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Seconds(s) => Ok(Duration::from_secs(s)),
        Raw::Fraction(f) if f.is_finite() && f >= 0.0 => Ok(Duration::from_secs_f64(f)),
        Raw::Fraction(f) => Err(de::Error::custom(format!("invalid duration `{f}`"))),
        Raw::Text(t) => parse(&t).map_err(de::Error::custom),
    }
}

pub fn parse(text: &str) -> Result<Duration, String> {
    if let Ok(secs) = text.trim().parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text).map_err(|e| format!("invalid duration `{text}` ({e}); use e.g. `30s`, `5m`, `1h` or seconds"))
}

pub mod option {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        super::deserialize(d).map(Some)
    }
}
