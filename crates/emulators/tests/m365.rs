//! The Office 365 Management Activity emulator over HTTP, as a content-listing poller sees it.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use serde_json::Value;
use sluice_emulators::m365::{Emulator, Options, sample_record};

const TENANT: &str = "f28ab78a-d401-4060-8012-736e373933eb";
const OTHER: &str = "0d6a1c33-5a0e-4d3b-9a63-5b8a1f5b5f01";

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    let text = response.text().await.unwrap();
    let body = if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}")) };
    Answer { status, headers, body }
}

async fn m365(options: Options) -> Emulator {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    emulator.add_app(TENANT, "app", "secret");
    emulator.add_app(OTHER, "app", "other-secret");
    emulator
}

async fn token(emulator: &Emulator, tenant: &str, secret: &str) -> Answer {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", "app"),
        ("client_secret", secret),
        ("scope", "https://manage.office.com/.default"),
    ];
    answer(reqwest::Client::new().post(format!("{}/{tenant}/oauth2/v2.0/token", emulator.url())).form(&form)).await
}

async fn bearer(emulator: &Emulator, tenant: &str, secret: &str) -> String {
    let token = token(emulator, tenant, secret).await;
    assert_eq!(token.status, 200, "{}", token.body);
    token.body["access_token"].as_str().unwrap().to_string()
}

fn feed(emulator: &Emulator, rest: &str) -> String {
    format!("{}/api/v1.0/{TENANT}/activity/feed/{rest}", emulator.url())
}

async fn get(url: &str, token: &str) -> Answer {
    answer(reqwest::Client::new().get(url).bearer_auth(token)).await
}

async fn post(url: &str, token: &str) -> Answer {
    answer(reqwest::Client::new().post(url).bearer_auth(token)).await
}

#[tokio::test]
async fn tokens_v2_and_v1_and_their_errors() {
    let m365 = m365(Options { token_ttl: Duration::from_secs(600), ..Options::default() }).await;
    let v2 = token(&m365, TENANT, "secret").await;
    assert_eq!((v2.body["token_type"].as_str(), v2.body["expires_in"].as_u64()), (Some("Bearer"), Some(600)));
    let bad = token(&m365, TENANT, "nope").await;
    assert_eq!((bad.status, bad.body["error"].as_str()), (401, Some("invalid_client")));
    assert!(bad.body["error_description"].as_str().unwrap().starts_with("AADSTS7000215"));

    let form = [("grant_type", "client_credentials"), ("resource", "https://manage.office.com")];
    let v1 =
        answer(reqwest::Client::new().post(format!("{}/{TENANT}/oauth2/token", m365.url())).basic_auth("app", Some("secret")).form(&form))
            .await;
    assert_eq!(v1.status, 200);
    assert_eq!((v1.body["expires_in"].as_str(), v1.body["resource"].as_str()), (Some("600"), Some("https://manage.office.com")));
    assert!(v1.body["expires_on"].as_str().unwrap().parse::<i64>().is_ok());

    let token = bearer(&m365, TENANT, "secret").await;
    assert_eq!(get(&feed(&m365, "subscriptions/list"), &token).await.status, 200);
    m365.advance_clock(TimeDelta::seconds(601));
    let expired = get(&feed(&m365, "subscriptions/list"), &token).await;
    assert_eq!(expired.status, 401, "tokens expire by the emulator's clock");
    let token = bearer(&m365, TENANT, "secret").await;
    assert_eq!(get(&feed(&m365, "subscriptions/list"), &token).await.status, 200);
    m365.expire_tokens();
    assert_eq!(get(&feed(&m365, "subscriptions/list"), &token).await.status, 401);

    let other = bearer(&m365, OTHER, "other-secret").await;
    let mismatch = get(&feed(&m365, "subscriptions/list"), &other).await;
    assert_eq!((mismatch.status, mismatch.body["error"]["code"].as_str()), (401, Some("AF20010")));
}

#[tokio::test]
async fn subscriptions_then_content_pages_to_the_end() {
    let m365 = m365(Options { content_page_size: 7, records_per_blob: 10, ..Options::default() }).await;
    let token = bearer(&m365, TENANT, "secret").await;
    let ct = "Audit.AzureActiveDirectory";
    let start = Utc::now() - TimeDelta::hours(10);
    m365.generate_records(TENANT, ct, 500, start, start + TimeDelta::hours(5));

    let list = feed(&m365, &format!("subscriptions/content?contentType={ct}"));
    let before = get(&list, &token).await;
    assert_eq!((before.status, before.body["error"]["code"].as_str()), (400, Some("AF20022")));
    let started = post(&feed(&m365, &format!("subscriptions/start?contentType={ct}")), &token).await;
    assert_eq!((started.status, started.body["status"].as_str()), (200, Some("enabled")));
    let again = post(&feed(&m365, &format!("subscriptions/start?contentType={ct}")), &token).await;
    assert_eq!((again.status, again.body["error"]["code"].as_str()), (400, Some("AF20024")));
    let subscriptions = get(&feed(&m365, "subscriptions/list"), &token).await;
    assert_eq!(subscriptions.body[0]["contentType"], ct);

    let (s, e) = ((start - TimeDelta::minutes(1)).format("%Y-%m-%dT%H:%M:%S"), (start + TimeDelta::hours(6)).format("%Y-%m-%dT%H:%M:%S"));
    let mut url = format!("{list}&startTime={s}&endTime={e}&PublisherIdentifier={TENANT}");
    let (mut blobs, mut records, mut pages) = (HashSet::new(), HashSet::new(), 0);
    let mut failures = 0;
    loop {
        let page = get(&url, &token).await;
        assert_eq!(page.status, 200, "{}", page.body);
        pages += 1;
        for blob in page.body.as_array().unwrap() {
            assert!(blobs.insert(blob["contentId"].as_str().unwrap().to_string()), "no duplicate blobs");
            let created = chrono::DateTime::parse_from_rfc3339(blob["contentCreated"].as_str().unwrap()).unwrap();
            let expires = chrono::DateTime::parse_from_rfc3339(blob["contentExpiration"].as_str().unwrap()).unwrap();
            assert_eq!(expires - created, TimeDelta::days(7));
            let content = get(blob["contentUri"].as_str().unwrap(), &token).await;
            for record in content.body.as_array().unwrap() {
                assert!(records.insert(record["Id"].as_str().unwrap().to_string()));
                failures += usize::from(record["Operation"] == "UserLoginFailed");
            }
        }
        match page.headers.get("nextpageuri") {
            Some(next) => {
                let next = next.to_str().unwrap().to_string();
                assert!(next.contains(&format!("startTime={s}")) && next.contains("nextPage="), "{next}");
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(records.len(), 500);
    assert_eq!(pages, blobs.len().div_ceil(7));
    assert!(failures > 0, "sign-in failures are generated");

    let default_window = get(&list, &token).await;
    assert_eq!(default_window.body.as_array().unwrap().len(), 7);
    let next = default_window.headers["nextpageuri"].to_str().unwrap();
    assert!(next.contains("startTime=") && next.contains("endTime="), "the 24-h window is written out: {next}");
}

#[tokio::test]
async fn time_windows_are_checked() {
    let m365 = m365(Options::default()).await;
    m365.start_subscription(TENANT, "Audit.Exchange");
    let token = bearer(&m365, TENANT, "secret").await;
    let now = Utc::now();
    let fmt = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%dT%H:%M").to_string();
    let query = |s: String, e: String| feed(&m365, &format!("subscriptions/content?contentType=Audit.Exchange&startTime={s}&endTime={e}"));
    let long = get(&query(fmt(now - TimeDelta::hours(30)), fmt(now)), &token).await;
    assert_eq!(long.body["error"]["code"], "AF20030");
    let old = get(&query(fmt(now - TimeDelta::days(8)), fmt(now - TimeDelta::days(8) + TimeDelta::hours(1))), &token).await;
    assert_eq!((old.status, old.body["error"]["code"].as_str()), (400, Some("AF20055")));
    let only_start = get(&feed(&m365, &format!("subscriptions/content?contentType=Audit.Exchange&startTime={}", fmt(now))), &token).await;
    assert_eq!(only_start.body["error"]["code"], "AF20030");
    let date = |t: chrono::DateTime<Utc>| t.format("%Y-%m-%d").to_string();
    let days = get(&query(date(now - TimeDelta::days(2)), date(now - TimeDelta::days(1))), &token).await;
    assert_eq!(days.status, 200, "dates alone, 24 h apart: {}", days.body);
    let bad_type = get(&feed(&m365, "subscriptions/content?contentType=Audit.Nope"), &token).await;
    assert_eq!(bad_type.body["error"]["code"], "AF20020");
    let bad_page = get(&format!("{}&nextPage=zzz", query(fmt(now - TimeDelta::hours(1)), fmt(now))), &token).await;
    assert_eq!(bad_page.body["error"]["code"], "AF20031");
}

#[tokio::test]
async fn blobs_expire() {
    let m365 = m365(Options::default()).await;
    let token = bearer(&m365, TENANT, "secret").await;
    let at = Utc::now() - TimeDelta::hours(2);
    let ids = m365.add_records(TENANT, "Audit.SharePoint", vec![(at, sample_record(TENANT, "Audit.SharePoint", 1, at))]);
    let ids2 = m365.add_records(TENANT, "DLP.All", vec![(at, sample_record(TENANT, "DLP.All", 1, at))]);
    let blob = |id: &str| feed(&m365, &format!("audit/{id}"));
    let ok = get(&blob(&ids[0]), &token).await;
    assert_eq!(ok.body[0]["Workload"], "SharePoint");
    assert!(m365.expire_blob(TENANT, &ids[0]));
    let gone = get(&blob(&ids[0]), &token).await;
    assert_eq!((gone.status, gone.body["error"]["code"].as_str()), (400, Some("AF20051")));
    assert_eq!(get(&blob(&ids2[0]), &token).await.body[0]["Operation"], "DLPRuleMatch");
    m365.advance_clock(TimeDelta::days(7));
    let token = bearer(&m365, TENANT, "secret").await;
    assert_eq!(get(&blob(&ids2[0]), &token).await.body["error"]["code"], "AF20051", "7 days after contentCreated");
    assert_eq!(get(&blob("1$2$nope"), &token).await.body["error"]["code"], "AF20050");
}

#[tokio::test]
async fn throttling_and_faults() {
    let m365 = m365(Options { rate_limit_per_minute: 3, ..Options::default() }).await;
    let token = bearer(&m365, TENANT, "secret").await;
    let url = feed(&m365, "subscriptions/list");
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(get(&url, &token).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(get(&url, &token).await.body["error"]["code"], "AF429");
    let other = bearer(&m365, OTHER, "other-secret").await;
    let other_url = format!("{}/api/v1.0/{OTHER}/activity/feed/subscriptions/list", m365.url());
    assert_eq!(get(&other_url, &other).await.status, 200, "throttling is per tenant");

    let m365 = self::m365(Options { throttle_status: 403, ..Options::default() }).await;
    let token = bearer(&m365, TENANT, "secret").await;
    let url = feed(&m365, "subscriptions/list");
    m365.throttle_next(1);
    let throttled = get(&url, &token).await;
    assert_eq!((throttled.status, throttled.body["error"]["code"].as_str()), (403, Some("AF429")));
    m365.fail_next(1, 503);
    assert_eq!(get(&url, &token).await.body["error"]["code"], "AF50000");
    m365.reset_next(1);
    assert!(reqwest::Client::new().get(&url).bearer_auth(&token).send().await.is_err());
    assert_eq!(m365.max_requests_in_any_minute("app"), 4);
}
