//! The KnowBe4 Reporting API emulator over HTTP, as a `page=N` client sees it.

use std::collections::HashSet;

use serde_json::Value;
use sluice_emulators::knowbe4::{Emulator, Options};

const KEY: &str = "eyJhbGciOiJIUzI1NiJ9.reporting-key";

async fn start(options: Options) -> Emulator {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    emulator.add_key(KEY);
    emulator
}

async fn get(emulator: &Emulator, query: &str, key: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let url = format!("{}/v1/training/enrollments{query}", emulator.url());
    let response = reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, headers, response.json().await.unwrap())
}

#[tokio::test]
async fn pages_until_an_empty_array() {
    let kb4 = start(Options::default()).await;
    kb4.set_enrollments(KEY, 250);
    let (mut ids, mut page) = (HashSet::new(), 1);
    loop {
        let (status, headers, body) = get(&kb4, &format!("?page={page}"), KEY).await;
        assert_eq!(status, 200);
        assert!(headers.contains_key("x-request-id"));
        let items = body.as_array().unwrap();
        if items.is_empty() {
            break;
        }
        assert!(items.len() <= 100);
        assert!(items.iter().all(|e| e["user"]["email"].is_string() && e["status"].is_string()));
        ids.extend(items.iter().map(|e| e["enrollment_id"].as_u64().unwrap()));
        page += 1;
    }
    assert_eq!((ids.len(), page), (250, 4));
    let (_, _, big) = get(&kb4, "?page=1&per_page=1000", KEY).await;
    assert_eq!(big.as_array().unwrap().len(), 250, "per_page is capped at 500");
    let (_, _, second) = get(&kb4, "?page=2&per_page=200", KEY).await;
    assert_eq!(second.as_array().unwrap().len(), 50);
}

#[tokio::test]
async fn bad_keys_faults_and_throttling() {
    let kb4 = start(Options { rate_limit_per_minute: Some(2), ..Options::default() }).await;
    let (status, headers, _) = get(&kb4, "", "wrong").await;
    assert_eq!(status, 401);
    assert!(headers.contains_key("x-request-id"));
    kb4.fail_next(1, 503);
    assert_eq!(get(&kb4, "", KEY).await.0, 503);
    kb4.reset_next(1);
    assert!(reqwest::get(format!("{}/v1/training/enrollments", kb4.url())).await.is_err());
    kb4.throttle_next(1);
    let (status, headers, _) = get(&kb4, "", KEY).await;
    assert_eq!(status, 429);
    assert!(headers.get("retry-after").is_none());
    let statuses = [get(&kb4, "", KEY).await.0, get(&kb4, "", KEY).await.0, get(&kb4, "", KEY).await.0];
    assert_eq!(statuses, [200, 200, 429]);
    assert_eq!(kb4.max_requests_in_any_minute(KEY), 5);

    let hinted = start(Options { retry_after: Some(60), ..Options::default() }).await;
    hinted.throttle_next(1);
    assert_eq!(get(&hinted, "", KEY).await.1["retry-after"], "60");
}
