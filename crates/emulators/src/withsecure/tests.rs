use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::Value;

use super::*;

async fn emulator(options: Options) -> (Emulator, reqwest::Client) {
    let e = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    e.add_organization("org", "Org", "company");
    e.add_organization("other", "Other", "company");
    e.add_client("id", "secret", "org", &[]);
    (e, reqwest::Client::builder().user_agent("test").build().unwrap())
}

async fn token(e: &Emulator, http: &reqwest::Client) -> String {
    let r: Value = http
        .post(format!("{}/as/token.oauth2", e.url()))
        .basic_auth("id", Some("secret"))
        .form(&[("grant_type", "client_credentials"), ("scope", "connect.api.read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["token_type"], "Bearer");
    r["access_token"].as_str().unwrap().to_string()
}

async fn page(e: &Emulator, http: &reqwest::Client, token: &str, form: &[(&str, &str)]) -> reqwest::Response {
    http.post(format!("{}/security-events/v1/security-events", e.url())).bearer_auth(token).form(form).send().await.unwrap()
}

#[tokio::test]
async fn pages_return_every_event_once_in_order_across_shared_timestamps() {
    let (e, http) = emulator(Options::default()).await;
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    let ids = e.generate("org", 500, start, 170); // 3 timestamps shared across page boundaries
    let token = token(&e, &http).await;
    let mut seen = Vec::new();
    let mut anchor: Option<String> = None;
    loop {
        let mut form = vec![("engineGroup", "epp"), ("order", "asc"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
        if let Some(a) = &anchor {
            form.push(("anchor", a));
        }
        let body: Value = page(&e, &http, &token, &form).await.json().await.unwrap();
        seen.extend(body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()));
        match body.get("nextAnchor").and_then(Value::as_str) {
            Some(a) => anchor = Some(a.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.sort_by_key(|id| id.rsplit('_').next().unwrap().parse::<usize>().unwrap());
    let mut got = seen.clone();
    got.sort_by_key(|id| id.rsplit('_').next().unwrap().parse::<usize>().unwrap());
    assert_eq!(got, expected);
    assert_eq!(seen.len(), 500);
}

#[tokio::test]
async fn exclusive_start_excludes_the_start_instant() {
    let (e, http) = emulator(Options::default()).await;
    let start = Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap();
    e.generate("org", 10, start, 5);
    let token = token(&e, &http).await;
    let form = |excl: &'static str| vec![("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00.000Z"), ("exclusiveStart", excl)];
    let all: Value = page(&e, &http, &token, &form("false")).await.json().await.unwrap();
    let after: Value = page(&e, &http, &token, &form("true")).await.json().await.unwrap();
    assert_eq!(all["items"].as_array().unwrap().len(), 10);
    assert_eq!(after["items"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn rejects_what_the_api_rejects() {
    let (e, http) = emulator(Options { token_ttl: Duration::from_millis(300), ..Options::default() }).await;
    let no_ua = reqwest::Client::new().post(format!("{}/as/token.oauth2", e.url())).send().await.unwrap();
    assert_eq!(no_ua.status(), 400);
    let token = token(&e, &http).await;
    let form = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    assert_eq!(page(&e, &http, &token, &[("persistenceTimestampStart", "2024-01-01T00:00:00Z")]).await.status(), 400);
    assert_eq!(page(&e, &http, &token, &[("engineGroup", "epp"), ("persistenceTimestampStart", "x"), ("limit", "201")]).await.status(), 400);
    let forbidden = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z"), ("organizationId", "other")];
    assert_eq!(page(&e, &http, &token, &forbidden).await.status(), 403);
    e.throttle_next(1, 7);
    let throttled = page(&e, &http, &token, &form).await;
    assert_eq!(throttled.status(), 429);
    assert_eq!(throttled.headers()["retry-after"], "7");
    e.fail_next(1, 503);
    assert_eq!(page(&e, &http, &token, &form).await.status(), 503);
    assert_eq!(page(&e, &http, &token, &form).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = page(&e, &http, &token, &form).await;
    assert_eq!(expired.status(), 401);
    assert_eq!(expired.json::<Value>().await.unwrap()["code"], 401000);
    assert!(e.requests().iter().all(|r| r.path.starts_with('/')));
}

#[tokio::test]
async fn server_side_rate_limit_answers_429_with_retry_after() {
    let (e, http) = emulator(Options { rate_limit_per_minute: Some(3), ..Options::default() }).await;
    let token = token(&e, &http).await;
    let form = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    assert_eq!(page(&e, &http, &token, &form).await.status(), 200);
    assert_eq!(page(&e, &http, &token, &form).await.status(), 200);
    let r = page(&e, &http, &token, &form).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(e.max_requests_in_any_minute("id"), 4);
}

#[tokio::test]
async fn organizations_are_paged() {
    let (e, http) = emulator(Options::default()).await;
    let visible: Vec<String> = (0..250).map(|i| format!("c{i:03}")).collect();
    for o in &visible {
        e.add_organization(o, o, "company");
    }
    let refs: Vec<&str> = visible.iter().map(String::as_str).collect();
    e.add_client("id", "secret", "org", &refs);
    let token = token(&e, &http).await;
    let mut count = 0;
    let mut anchor = None::<String>;
    loop {
        let mut q = vec![("limit", "200".to_string())];
        if let Some(a) = &anchor {
            q.push(("anchor", a.clone()));
        }
        let body: Value = http.get(format!("{}/organizations/v1/organizations", e.url())).bearer_auth(&token).query(&q).send().await.unwrap().json().await.unwrap();
        count += body["items"].as_array().unwrap().len();
        match body.get("nextAnchor").and_then(Value::as_str) {
            Some(a) => anchor = Some(a.to_string()),
            None => break,
        }
    }
    assert_eq!(count, 251);
}
