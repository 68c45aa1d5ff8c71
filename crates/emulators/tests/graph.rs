//! The Microsoft Graph `alerts_v2` emulator over HTTP, as a `lastUpdateDateTime` poller sees it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};
use sluice_emulators::graph::{Emulator, Options};

const TENANT: &str = "b3c1b5fc-828c-45fa-a1e1-10d74f6d6e9c";

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}")) }
}

async fn graph(options: Options) -> Emulator {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    emulator.add_app(TENANT, "app", "secret");
    emulator
}

async fn token(emulator: &Emulator, scope: &str) -> Answer {
    let form = [("grant_type", "client_credentials"), ("client_id", "app"), ("client_secret", "secret"), ("scope", scope)];
    answer(reqwest::Client::new().post(format!("{}/{TENANT}/oauth2/v2.0/token", emulator.url())).form(&form)).await
}

async fn bearer(emulator: &Emulator) -> String {
    token(emulator, "https://graph.microsoft.com/.default").await.body["access_token"].as_str().unwrap().to_string()
}

async fn get(url: &str, token: &str) -> Answer {
    answer(reqwest::Client::new().get(url).bearer_auth(token)).await
}

fn list(emulator: &Emulator, query: &[(&str, &str)]) -> String {
    let mut q = form_urlencoded_pairs(query);
    if !q.is_empty() {
        q.insert(0, '?');
    }
    format!("{}/v1.0/security/alerts_v2{q}", emulator.url())
}

fn form_urlencoded_pairs(query: &[(&str, &str)]) -> String {
    let url = reqwest::Url::parse_with_params("http://x/", query).unwrap();
    url.query().unwrap_or_default().to_string()
}

fn time(alert: &Value, field: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(alert[field].as_str().unwrap()).unwrap().to_utc()
}

#[tokio::test]
async fn pages_newest_first_to_the_end_without_duplicates() {
    let graph = graph(Options::default()).await;
    let start = Utc::now() - TimeDelta::hours(3);
    graph.generate_alerts(TENANT, 230, start, start + TimeDelta::hours(2));
    let token = bearer(&graph).await;
    let mut url = list(&graph, &[("$top", "50")]);
    let (mut ids, mut pages, mut last) = (HashSet::new(), 0, None::<DateTime<Utc>>);
    loop {
        let page = get(&url, &token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page.body["@odata.context"].as_str().unwrap().ends_with("$metadata#security/alerts_v2"));
        pages += 1;
        for alert in page.body["value"].as_array().unwrap() {
            assert!(ids.insert(alert["id"].as_str().unwrap().to_string()));
            let created = time(alert, "createdDateTime");
            assert!(last.is_none_or(|l| l >= created), "newest first");
            last = Some(created);
            assert!(alert["mitreTechniques"].as_array().is_some_and(|m| !m.is_empty()));
            assert!(alert["evidence"][0]["@odata.type"].as_str().unwrap().starts_with("#microsoft.graph.security."));
        }
        match page.body["@odata.nextLink"].as_str() {
            Some(next) => {
                assert!(next.starts_with(&graph.url()) && next.contains("skiptoken="), "{next}");
                url = next.to_string();
            }
            None => break,
        }
    }
    assert_eq!((ids.len(), pages), (230, 5));
    let big = get(&list(&graph, &[("$top", "2001")]), &token).await;
    assert_eq!((big.status, big.body["error"]["code"].as_str()), (400, Some("BadRequest")));
}

#[tokio::test]
async fn filters_and_updates() {
    let graph = graph(Options::default()).await;
    let start = Utc::now() - TimeDelta::hours(3);
    graph.generate_alerts(TENANT, 100, start, start + TimeDelta::hours(2));
    let token = bearer(&graph).await;
    let alerts = graph.alerts(TENANT);
    let mut updates: Vec<DateTime<Utc>> = alerts.iter().map(|a| time(a, "lastUpdateDateTime")).collect();
    updates.sort();
    let pivot = updates[60];
    let text = pivot.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    let ge = get(&list(&graph, &[("$filter", &format!("lastUpdateDateTime ge {text}"))]), &token).await;
    let gt = get(&list(&graph, &[("$filter", &format!("lastUpdateDateTime gt {text}"))]), &token).await;
    let expected_ge = updates.iter().filter(|t| **t >= pivot).count();
    assert_eq!(ge.body["value"].as_array().unwrap().len(), expected_ge);
    assert_eq!(gt.body["value"].as_array().unwrap().len(), updates.iter().filter(|t| **t > pivot).count());

    let source = alerts[0]["serviceSource"].as_str().unwrap();
    let both = format!("lastUpdateDateTime ge {text} and serviceSource eq '{source}'");
    let filtered = get(&list(&graph, &[("$filter", &both), ("$count", "true")]), &token).await;
    for alert in filtered.body["value"].as_array().unwrap() {
        assert_eq!(alert["serviceSource"], source);
        assert!(time(alert, "lastUpdateDateTime") >= pivot);
    }
    assert_eq!(filtered.body["@odata.count"].as_u64().unwrap() as usize, filtered.body["value"].as_array().unwrap().len());

    let bad = get(&list(&graph, &[("$filter", "title eq 'x'")]), &token).await;
    assert_eq!(bad.status, 400);

    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let since_now = list(&graph, &[("$filter", &format!("lastUpdateDateTime gt {now}"))]);
    assert_eq!(get(&since_now, &token).await.body["value"].as_array().unwrap().len(), 0);
    let id = alerts[5]["id"].as_str().unwrap();
    assert!(graph.update_alert(TENANT, id, json!({"status": "resolved", "classification": "truePositive"})));
    let moved = get(&since_now, &token).await;
    assert_eq!(moved.body["value"][0]["id"], id);
    assert_eq!(moved.body["value"][0]["status"], "resolved");
    let one = get(&format!("{}/v1.0/security/alerts_v2/{id}", graph.url()), &token).await;
    assert_eq!(one.body["classification"], "truePositive");
}

#[tokio::test]
async fn tokens_and_throttling() {
    let graph = graph(Options { rate_limit_per_minute: 2, enforce_rate_limit: true, ..Options::default() }).await;
    let wrong = token(&graph, "https://manage.office.com/.default").await;
    assert_eq!((wrong.status, wrong.body["error"].as_str()), (400, Some("invalid_scope")));
    let token = bearer(&graph).await;
    let url = list(&graph, &[]);
    assert_eq!(get(&url, "nope").await.body["error"]["code"], "InvalidAuthenticationToken");
    assert_eq!(get(&url, &token).await.status, 200);
    assert_eq!(get(&url, &token).await.status, 200);
    let limited = get(&url, &token).await;
    assert_eq!((limited.status, limited.body["error"]["code"].as_str()), (429, Some("TooManyRequests")));
    let retry: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));

    let graph = self::graph(Options::default()).await;
    let token = bearer(&graph).await;
    let url = list(&graph, &[]);
    graph.throttle_next(1, Duration::from_secs(7));
    let throttled = get(&url, &token).await;
    assert_eq!((throttled.status, throttled.headers["retry-after"].to_str().unwrap()), (429, "7"));
    graph.fail_next(1, 503);
    assert_eq!(get(&url, &token).await.status, 503);
    graph.expire_tokens();
    let expired = get(&url, &token).await;
    assert_eq!((expired.status, expired.body["error"]["message"].as_str()), (401, Some("Access token has expired or is not yet valid.")));
    graph.reset_next(1);
    assert!(reqwest::Client::new().get(&url).send().await.is_err());
}
