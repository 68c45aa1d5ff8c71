//! Slack notifications of collection failures and recoveries, as the original data collectors
//! sent them: `POST <webhook>` with `{"type":"mrkdwn","text":"<icon> <text>"}`. The webhook comes
//! from `SLACK_WEBHOOK` (what the original read) or `SLACK_WEBHOOK_URL` (what its documentation
//! said). Unlike the original, the text never carries a credential: URLs' credentials and the
//! configured secrets are masked, and one key (collector, tenant, data set) is told at most once
//! per [`QUIET`] unless its state changes.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::settings::redact_urls;

/// The shortest time between two messages of one key in one state.
pub const QUIET: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Info,
    Success,
    Warning,
}

impl Level {
    fn icon(self) -> &'static str {
        match self {
            Level::Error => ":x:",
            Level::Info => ":information_source:",
            Level::Success => ":white_check_mark:",
            Level::Warning => ":warning:",
        }
    }
}

pub struct Slack {
    url: String,
    http: reqwest::Client,
    /// Strings never to show (configured secrets).
    secrets: Mutex<Vec<String>>,
    /// Per key: the last level told and when.
    told: Mutex<HashMap<String, (Level, Instant)>>,
}

/// The process's notifier, when a webhook is configured in the environment.
pub fn slack() -> Option<&'static Slack> {
    static SLACK: OnceLock<Option<Slack>> = OnceLock::new();
    SLACK
        .get_or_init(|| {
            let url = ["SLACK_WEBHOOK", "SLACK_WEBHOOK_URL"].iter().find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))?;
            Some(Slack::new(url))
        })
        .as_ref()
}

impl Slack {
    pub fn new(url: String) -> Slack {
        let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("an HTTP client without options builds");
        Slack { url, http, secrets: Mutex::new(Vec::new()), told: Mutex::new(HashMap::new()) }
    }

    /// Secrets to mask in every message from now on.
    pub fn hide(&self, secrets: impl IntoIterator<Item = String>) {
        self.secrets.lock().expect("notifier poisoned").extend(secrets.into_iter().filter(|s| s.len() >= 4));
    }

    /// The text as it would be sent.
    pub fn masked(&self, text: &str) -> String {
        let mut text = redact_urls(text);
        for secret in self.secrets.lock().expect("notifier poisoned").iter() {
            text = text.replace(secret.as_str(), "***");
        }
        text
    }

    /// Tells about `key` unless it was told the same level within [`QUIET`]. A failed post is
    /// logged, never an error: notifications must not stop a collection.
    pub async fn tell(&self, key: &str, level: Level, text: &str) {
        {
            let mut told = self.told.lock().expect("notifier poisoned");
            if let Some((last, at)) = told.get(key)
                && *last == level
                && at.elapsed() < QUIET
            {
                return;
            }
            told.insert(key.to_string(), (level, Instant::now()));
        }
        self.post(level, text).await;
    }

    /// Tells of a recovery only if a failure of `key` was told.
    pub async fn recovered(&self, key: &str, text: &str) {
        let failing = self.told.lock().expect("notifier poisoned").get(key).is_some_and(|(l, _)| *l == Level::Error);
        if failing {
            self.tell(key, Level::Success, text).await;
        }
    }

    pub async fn post(&self, level: Level, text: &str) {
        let body = json!({"type": "mrkdwn", "text": format!("{} {}", level.icon(), self.masked(text))});
        match self.http.post(&self.url).json(&body).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(status = %r.status(), "Slack refused a notification"),
            Err(e) => tracing::warn!(error = %redact_urls(&e.to_string()), "cannot send a Slack notification"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_url_credentials_are_masked() {
        let slack = Slack::new("http://127.0.0.1:9/hook".into());
        slack.hide(["s3cr3t-token".to_string()]);
        let text = slack.masked("okta failed: 401 for https://u:pw@acme.okta.com/api with SSWS s3cr3t-token");
        assert!(!text.contains("s3cr3t-token") && !text.contains(":pw@"), "{text}");
    }
}
