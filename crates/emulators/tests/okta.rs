//! The Okta emulator over HTTP, as the Okta SDK and a System Log poller see it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::Value;
use sluice_emulators::okta::{Emulator, Options, sample_log_event};

const TOKEN: &str = "00aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789-_";

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    /// The URL of the `Link` header with this `rel`.
    fn link(&self, rel: &str) -> Option<String> {
        let suffix = format!(r#">; rel="{rel}""#);
        self.headers
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok()?.strip_suffix(&suffix)?.strip_prefix('<').map(str::to_string))
            .next()
    }
}

async fn get(url: &str, token: &str) -> Answer {
    let response = reqwest::Client::new().get(url).header("Authorization", format!("SSWS {token}")).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Answer { status, headers, body: response.json().await.unwrap() }
}

async fn okta(options: Options) -> Emulator {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    emulator.add_token(TOKEN);
    emulator
}

#[tokio::test]
async fn users_page_by_link_next_until_the_last_page() {
    let okta = okta(Options::default()).await;
    okta.set_users(TOKEN, 450, 30);
    let mut url = format!("{}/api/v1/users", okta.url());
    let (mut ids, mut pages) = (HashSet::new(), 0);
    loop {
        let page = get(&url, TOKEN).await;
        assert_eq!(page.status, 200);
        for header in ["x-rate-limit-limit", "x-rate-limit-remaining", "x-rate-limit-reset", "date"] {
            assert!(page.headers.contains_key(header), "{header}");
        }
        assert!(page.link("self").is_some());
        for user in page.body.as_array().unwrap() {
            assert_ne!(user["status"], "DEPROVISIONED");
            assert!(ids.insert(user["id"].as_str().unwrap().to_string()));
        }
        pages += 1;
        match page.link("next") {
            Some(next) => {
                let last = page.body.as_array().unwrap().last().unwrap()["id"].as_str().unwrap().to_string();
                assert_eq!(next, format!("{}/api/v1/users?after={last}&limit=200", okta.url()));
                url = next;
            }
            None => break,
        }
    }
    assert_eq!((ids.len(), pages), (450, 3));

    let filtered = get(&format!("{}/api/v1/users?filter=status+eq+%22DEPROVISIONED%22", okta.url()), TOKEN).await;
    assert_eq!(filtered.body.as_array().unwrap().len(), 30);
    let exact = Emulator::start("127.0.0.1:0".parse().unwrap(), Options::default()).await.unwrap();
    exact.add_token(TOKEN);
    exact.set_users(TOKEN, 400, 0);
    let second = get(&format!("{}/api/v1/users?limit=200", exact.url()), TOKEN).await.link("next").unwrap();
    assert!(get(&second, TOKEN).await.link("next").is_none(), "no next link when the last page is full");
}

#[tokio::test]
async fn bad_tokens_and_rate_limits() {
    let okta = okta(Options { users_rate_limit: 3, enforce_rate_limits: true, ..Options::default() }).await;
    let url = format!("{}/api/v1/users", okta.url());
    let denied = get(&url, "nope").await;
    assert_eq!((denied.status, denied.body["errorCode"].as_str()), (401, Some("E0000011")));
    let mut seen = Vec::new();
    for _ in 0..4 {
        let a = get(&url, TOKEN).await;
        seen.push((a.status, a.headers["x-rate-limit-remaining"].to_str().unwrap().to_string()));
    }
    assert_eq!(seen, [(200, "2".into()), (200, "1".into()), (200, "0".into()), (429, "0".into())]);
    let limited = get(&url, TOKEN).await;
    assert_eq!(limited.body["errorCode"], "E0000047");
    let reset: i64 = limited.headers["x-rate-limit-reset"].to_str().unwrap().parse().unwrap();
    assert!((Utc::now().timestamp()..=Utc::now().timestamp() + 61).contains(&reset));
    assert_eq!(okta.max_requests_in_any_minute(TOKEN), 5);
}

#[tokio::test]
async fn injected_faults() {
    let okta = okta(Options::default()).await;
    let url = format!("{}/api/v1/users", okta.url());
    okta.throttle_next(1, Duration::from_secs(20));
    let throttled = get(&url, TOKEN).await;
    assert_eq!((throttled.status, throttled.headers["x-rate-limit-remaining"].to_str().unwrap()), (429, "0"));
    let reset: i64 = throttled.headers["x-rate-limit-reset"].to_str().unwrap().parse().unwrap();
    assert!((reset - Utc::now().timestamp() - 20).abs() <= 1);
    assert!(throttled.headers.contains_key("date"));
    okta.fail_next(1, 500);
    assert_eq!(get(&url, TOKEN).await.body["errorCode"], "E0000009");
    okta.reset_next(1);
    assert!(reqwest::get(&url).await.is_err());
    let statuses: Vec<Option<u16>> = okta.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(429), Some(500), None]);
}

#[tokio::test]
async fn system_log_polling_always_links_next() {
    let okta = okta(Options::default()).await;
    let start = Utc::now() - TimeDelta::hours(1);
    okta.add_log_events(TOKEN, (0..250).map(|n| sample_log_event(n, start + TimeDelta::seconds(n as i64))).collect());
    let since = (start - TimeDelta::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut url = format!("{}/api/v1/logs?since={since}&sortOrder=ASCENDING&limit=100", okta.url());
    let mut uuids = HashSet::new();
    let mut sizes = Vec::new();
    for _ in 0..4 {
        let page = get(&url, TOKEN).await;
        assert_eq!(page.status, 200);
        let events = page.body.as_array().unwrap();
        sizes.push(events.len());
        uuids.extend(events.iter().map(|e| e["uuid"].as_str().unwrap().to_string()));
        url = page.link("next").expect("polling pages always link next");
    }
    assert_eq!((sizes, uuids.len()), (vec![100, 100, 50, 0], 250));
    assert!(!url.contains("since="));
    okta.add_log_events(TOKEN, vec![sample_log_event(999, Utc::now())]);
    let page = get(&url, TOKEN).await;
    assert_eq!(page.body.as_array().unwrap().len(), 1, "the same next link picks up new events");
    assert!(page.body[0]["actor"]["alternateId"].is_string());

    let until = (Utc::now() + TimeDelta::minutes(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let bounded = format!("{}/api/v1/logs?since={since}&until={until}&limit=200", okta.url());
    let first = get(&bounded, TOKEN).await;
    let second = get(&first.link("next").unwrap(), TOKEN).await;
    assert_eq!(second.body.as_array().unwrap().len(), 51);
    assert!(second.link("next").is_none(), "bounded queries end");
    assert_eq!(get(&format!("{}/api/v1/logs?limit=1001", okta.url()), TOKEN).await.status, 400);
}
