//! `type: wazuh_api` settings.

use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use serde::Deserialize;

use crate::settings::tls::TlsConfig;
use crate::settings::url_problem;
use crate::settings::{Secret, duration};

/// The API's own bounds on `limit`.
pub const MAX_PAGE_SIZE: u32 = 100_000;
const MAX_PARALLELISM: usize = 64;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WazuhApiConfig {
    /// The manager's API, e.g. `https://wazuh-manager:55000`.
    pub url: String,
    // Defaults so that a missing one is reported at its own path by `problems`.
    #[serde(default, deserialize_with = "crate::settings::secret::scalar_string")]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// A full collection per interval, counted from the start of the last complete one.
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Agents collected at once.
    #[serde(default = "default_parallelism")]
    pub parallelism: NonZeroUsize,
    /// Every request of this source counts (logins included). The manager's limit is shared by
    /// all its clients (300 by default), so stay below it.
    #[serde(default = "default_rate_limit")]
    pub rate_limit_per_minute: NonZeroU32,
    /// `limit` of each page.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    #[serde(default)]
    pub tls: TlsConfig,
    /// Timeout of each HTTP request.
    #[serde(default = "default_timeout", with = "duration")]
    pub request_timeout: Duration,
}

fn default_interval() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_parallelism() -> NonZeroUsize {
    NonZeroUsize::new(4).unwrap()
}
fn default_rate_limit() -> NonZeroU32 {
    NonZeroU32::new(250).unwrap()
}
fn default_page_size() -> u32 {
    500
}
fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

impl crate::sources::SourceSettings for WazuhApiConfig {
    fn run(&self, ctx: crate::sources::SourceContext) -> futures::future::BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(super::run(self.clone(), ctx))
    }

    /// Checks across fields; returns (field, reason) pairs.
    fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = url_problem(&self.url) {
            out.push(("url", p));
        }
        if self.username.is_empty() {
            out.push(("username", "required".to_string()));
        }
        if self.password.expose().is_empty() {
            out.push(("password", "required".to_string()));
        }
        if self.interval.is_zero() {
            out.push(("interval", "must be greater than zero".to_string()));
        }
        if self.parallelism.get() > MAX_PARALLELISM {
            out.push(("parallelism", format!("at most {MAX_PARALLELISM}")));
        }
        if !(1..=MAX_PAGE_SIZE).contains(&self.page_size) {
            out.push(("page_size", format!("must be between 1 and {MAX_PAGE_SIZE} (the API's bounds)")));
        }
        if self.request_timeout.is_zero() {
            out.push(("request_timeout", "must be greater than zero".to_string()));
        }
        out.extend(self.tls.problems("tls.ca_file"));
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::WazuhApiConfig;
    use crate::config::Config;

    fn config(source: &str) -> Result<Config, Vec<String>> {
        let text = format!(
            "sinks:\n  out: {{type: file, path: out.jsonl}}\ntenants:\n  - name: acme\n    sources:\n      - {{name: wazuh, type: wazuh_api, {source}}}\n    sinks: [out]\n"
        );
        Config::parse(&text, Path::new("."), Path::new("test.yml")).map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults() {
        let c = config("url: \"https://wazuh:55000\", username: reader, password: s3cret").unwrap();
        let w = c.tenants[0].sources[0].settings.downcast_ref::<WazuhApiConfig>().expect("a wazuh_api source");
        assert_eq!(w.interval, std::time::Duration::from_secs(900));
        assert_eq!((w.parallelism.get(), w.rate_limit_per_minute.get(), w.page_size), (4, 250, 500));
        assert!(!w.tls.insecure, "certificates are verified unless turned off");
        assert_eq!(format!("{w:?}").matches("s3cret").count(), 0, "the password is never printed");
    }

    #[test]
    fn errors_name_their_paths() {
        let errs = config("url: \"ftp://wazuh\", username: reader, password: x").unwrap_err();
        assert_eq!(errs, ["tenants[0].sources[0].url: scheme `ftp` is not http or https"]);
        let errs = config("url: not a url, username: reader, password: x").unwrap_err();
        assert!(errs[0].starts_with("tenants[0].sources[0].url: not a URL"), "{errs:?}");
        let errs = config("url: \"https://wazuh:55000\", username: reader").unwrap_err();
        assert_eq!(errs, ["tenants[0].sources[0].password: required"]);
        let errs = config("url: \"https://wazuh:55000\", username: reader, password: \"\"").unwrap_err();
        assert_eq!(errs, ["tenants[0].sources[0].password: required"]);
        let errs = config("username: reader, password: x").unwrap_err();
        assert_eq!(errs, ["tenants[0].sources[0]: missing field `url`"]);
        let errs = config(
            "url: \"https://wazuh:55000\", username: \"\", password: x, page_size: 100001, parallelism: 0, tls: {ca_file: /nonexistent/ca.pem}",
        )
        .unwrap_err();
        assert!(errs[0].starts_with("tenants[0].sources[0].parallelism: invalid value"), "{errs:?}");
        let errs =
            config("url: \"https://wazuh:55000\", username: \"\", password: x, page_size: 100001, tls: {ca_file: /nonexistent/ca.pem}")
                .unwrap_err();
        assert_eq!(
            errs,
            [
                "tenants[0].sources[0].username: required",
                "tenants[0].sources[0].page_size: must be between 1 and 100000 (the API's bounds)",
                "tenants[0].sources[0].tls.ca_file: ca_file /nonexistent/ca.pem does not exist",
            ]
        );
        let errs = config("url: \"https://wazuh:55000\", username: a, password: x, intervall: 5m").unwrap_err();
        assert!(errs[0].starts_with("tenants[0].sources[0].intervall: unknown field"), "{errs:?}");
    }
}
