//! The building blocks of every component's settings: config errors with their YAML paths,
//! durations, secrets (and the redaction of those inside URLs), TLS and path templates. A leaf:
//! it imports nothing of the components, so any source, sink or the API can use it without
//! reaching the whole config.

pub mod duration;
pub mod error;
pub mod redact;
pub mod secret;
pub mod template;
pub mod tls;

pub use error::{ConfigError, parse_at};
pub use redact::redact_urls;
pub use secret::Secret;

/// Checks a URL option: http or https.
pub fn url_problem(url: &str) -> Option<String> {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => None,
        Ok(u) => Some(format!("scheme `{}` is not http or https", u.scheme())),
        Err(e) => Some(format!("not a URL: {e}")),
    }
}

/// What the registries need of any component's settings besides its own trait: comparing two of
/// them behind `dyn` (a reload restarts only what changed) and downcasting (tests, the API's
/// view of a sink). Implemented for every `PartialEq` type; nothing to write per component.
pub trait AnySettings: std::any::Any {
    fn as_any(&self) -> &dyn std::any::Any;
    fn eq_any(&self, other: &dyn std::any::Any) -> bool;
}

impl<T: std::any::Any + PartialEq> AnySettings for T {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn eq_any(&self, other: &dyn std::any::Any) -> bool {
        other.downcast_ref::<T>() == Some(self)
    }
}
