//! The CrowdStrike Falcon emulator over HTTP, as falconpy-style clients see it.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_emulators::crowdstrike::{Emulator, Options, sample_alert};

const CID: &str = "92012896127c4948236ba7601b886b00";

struct Falcon {
    emulator: Emulator,
    http: reqwest::Client,
    token: String,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, body: serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?}: {e}")) }
}

impl Falcon {
    async fn new(options: Options) -> Falcon {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
        emulator.add_client("client", "secret", CID);
        let mut falcon = Falcon { emulator, http: reqwest::Client::new(), token: String::new() };
        let token = falcon.token("client", "secret").await;
        assert_eq!(token.status, 201);
        falcon.token = token.body["access_token"].as_str().unwrap().to_string();
        falcon
    }

    async fn token(&self, id: &str, secret: &str) -> Answer {
        let url = format!("{}/oauth2/token", self.emulator.url());
        answer(self.http.post(url).form(&[("client_id", id), ("client_secret", secret)])).await
    }

    async fn get(&self, path_and_query: &str) -> Answer {
        answer(self.http.get(format!("{}{path_and_query}", self.emulator.url())).bearer_auth(&self.token)).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        answer(self.http.post(format!("{}{path}", self.emulator.url())).bearer_auth(&self.token).json(&body)).await
    }
}

#[tokio::test]
async fn token_is_201_and_expired_tokens_get_401() {
    let falcon = Falcon::new(Options { token_ttl: Duration::from_secs(600), ..Options::default() }).await;
    let token = falcon.token("client", "secret").await;
    assert_eq!(token.body["token_type"], "bearer");
    assert_eq!(token.body["expires_in"], 600);
    assert!(token.headers.get("x-cs-region").is_none());
    assert_eq!(token.headers["x-ratelimit-limit"], "6000");
    assert_eq!(falcon.token("client", "wrong").await.status, 403);

    falcon.emulator.set_hosts(CID, 3);
    assert_eq!(falcon.get("/devices/queries/devices/v1").await.status, 200);
    falcon.emulator.expire_tokens();
    let denied = falcon.get("/devices/queries/devices/v1").await;
    assert_eq!(denied.status, 401);
    assert_eq!(denied.body["errors"][0]["message"], "access denied, invalid bearer token");
    assert!(denied.headers.contains_key("x-ratelimit-remaining"));
    let statuses: Vec<Option<u16>> = falcon.emulator.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(201), Some(201), Some(403), Some(200), Some(401)]);
    assert!(falcon.emulator.requests()[3].header("authorization").unwrap().starts_with("Bearer "));
}

#[tokio::test]
async fn hosts_page_by_next_offset_and_details_cover_every_id() {
    let falcon = Falcon::new(Options::default()).await;
    falcon.emulator.set_hosts(CID, 1234);
    let (mut offset, mut ids) = (0, Vec::new());
    loop {
        let page = falcon.get(&format!("/devices/queries/devices/v1?offset={offset}&limit=500")).await;
        assert_eq!(page.status, 200);
        let pagination = &page.body["meta"]["pagination"];
        assert_eq!(pagination["total"], 1234);
        ids.extend(page.body["resources"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()));
        offset = pagination["offset"].as_u64().unwrap();
        assert_eq!(offset as usize, ids.len(), "the offset of the next page");
        if offset >= 1234 {
            break;
        }
    }
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 1234);

    let mut asked = ids[..500].to_vec();
    asked.push("ffffffffffffffffffffffffffffffff".into());
    let details = falcon.post("/devices/entities/devices/v2", json!({"ids": asked})).await;
    let devices = details.body["resources"].as_array().unwrap();
    assert_eq!(devices.len(), 500);
    assert_eq!(devices[0]["device_id"], ids[0].as_str());
    assert_eq!(devices[0]["cid"], CID);
    assert!(devices[0]["hostname"].is_string() && devices[0]["device_policies"].is_object());

    let query: String = ids[..100].iter().map(|id| format!("ids={id}&")).collect();
    let zta = falcon.get(&format!("/zero-trust-assessment/entities/assessments/v1?{query}")).await;
    let found: Vec<&str> = zta.body["resources"].as_array().unwrap().iter().map(|r| r["aid"].as_str().unwrap()).collect();
    assert!(found.len() < 100 && found.len() > 50, "some hosts have no assessment: {}", found.len());
    assert!(found.iter().all(|aid| ids[..100].iter().any(|id| id == aid)));

    assert_eq!(falcon.get("/devices/queries/devices/v1?offset=10000&limit=10").await.status, 400);
    assert_eq!(falcon.get("/devices/queries/devices/v1?limit=5001").await.status, 400);
}

#[tokio::test]
async fn scroll_pages_past_ten_thousand() {
    let falcon = Falcon::new(Options::default()).await;
    falcon.emulator.set_hosts(CID, 25_000);
    let (mut token, mut seen) = (String::new(), HashSet::new());
    loop {
        let page = falcon.get(&format!("/devices/queries/devices-scroll/v1?limit=10000&offset={token}")).await;
        let resources = page.body["resources"].as_array().unwrap();
        if resources.is_empty() {
            break;
        }
        seen.extend(resources.iter().map(|v| v.as_str().unwrap().to_string()));
        token = page.body["meta"]["pagination"]["offset"].as_str().unwrap().to_string();
    }
    assert_eq!(seen.len(), 25_000);
}

#[tokio::test]
async fn spotlight_pages_by_after_with_a_constant_total() {
    let falcon = Falcon::new(Options::default()).await;
    falcon.emulator.set_hosts(CID, 50);
    falcon.emulator.set_vulnerabilities(CID, 1001);
    let path = "/spotlight/combined/vulnerabilities/v1";
    assert_eq!(falcon.get(&format!("{path}?limit=400")).await.status, 400, "filter is required");
    let filter = "cve.id:!['']%2Blast_seen_within:'14'";
    let (mut after, mut ids) = (String::new(), HashSet::new());
    loop {
        let page = falcon.get(&format!("{path}?filter={filter}&limit=400&facet=cve&facet=host_info&facet=remediation&after={after}")).await;
        assert_eq!(page.status, 200);
        let pagination = &page.body["meta"]["pagination"];
        assert_eq!(pagination["total"], 1001);
        for v in page.body["resources"].as_array().unwrap() {
            assert!(v["cve"]["id"].is_string() && v["host_info"]["hostname"].is_string() && v["remediation"]["ids"].is_array());
            assert!(ids.insert(v["id"].as_str().unwrap().to_string()));
        }
        after = pagination["after"].as_str().unwrap_or_default().to_string();
        if after.is_empty() {
            break;
        }
    }
    assert_eq!(ids.len(), 1001);
    let plain = falcon.get(&format!("{path}?filter={filter}&limit=1")).await;
    assert!(plain.body["resources"][0].get("cve").is_none(), "facets only when asked for");
}

#[tokio::test]
async fn combined_alerts_filter_on_updated_timestamp_in_ascending_order() {
    let falcon = Falcon::new(Options::default()).await;
    let start = chrono::DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z").unwrap().to_utc();
    let alerts: Vec<Value> = (0..25).map(|n| sample_alert(CID, n, start + chrono::TimeDelta::minutes(n as i64))).collect();
    falcon.emulator.add_alerts(CID, alerts.clone());
    let filter = "updated_timestamp:>'2024-05-01T00:09:30Z'";
    let mut body = json!({"filter": filter, "sort": "updated_timestamp|asc", "limit": 10});
    let mut seen = Vec::new();
    loop {
        let page = falcon.post("/alerts/combined/alerts/v1", body.clone()).await;
        assert_eq!(page.status, 200);
        assert_eq!(page.body["meta"]["pagination"]["total"], 15);
        seen.extend(page.body["resources"].as_array().unwrap().iter().map(|a| a["updated_timestamp"].as_str().unwrap().to_string()));
        match page.body["meta"]["pagination"].get("after") {
            Some(after) => body["after"] = after.clone(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 15);
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(falcon.post("/alerts/combined/alerts/v1", json!({"limit": 1001})).await.status, 400);

    let id = alerts[0]["composite_id"].as_str().unwrap();
    assert!(falcon.emulator.update_alert(CID, id, json!({"status": "closed"})));
    let page = falcon.post("/alerts/combined/alerts/v1", json!({"filter": filter, "sort": "updated_timestamp|asc", "limit": 100})).await;
    let last = page.body["resources"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["composite_id"].as_str(), last["status"].as_str()), (Some(id), Some("closed")));

    let ids = falcon.get("/alerts/queries/alerts/v2?limit=5&sort=updated_timestamp|asc").await;
    assert_eq!(ids.body["meta"]["pagination"]["total"], 25);
    let details = falcon.post("/alerts/entities/alerts/v2", json!({"composite_ids": ids.body["resources"]})).await;
    assert_eq!(details.body["resources"].as_array().unwrap().len(), 5);
}

#[tokio::test]
async fn faults_and_rate_limits() {
    let falcon = Falcon::new(Options { rate_limit_per_minute: 5, ..Options::default() }).await;
    falcon.emulator.set_hosts(CID, 10);
    let path = "/devices/queries/devices/v1";

    falcon.emulator.throttle_next(1, Duration::from_secs(30));
    let throttled = falcon.get(path).await;
    assert_eq!(throttled.status, 429);
    assert_eq!(throttled.body["errors"][0]["message"], "API rate limit exceeded.");
    assert_eq!(throttled.headers["x-ratelimit-remaining"], "0");
    let retry: i64 = throttled.headers["x-ratelimit-retryafter"].to_str().unwrap().parse().unwrap();
    assert!((retry - chrono::Utc::now().timestamp() - 30).abs() <= 1, "absolute epoch seconds");

    falcon.emulator.fail_next(1, 503);
    let failed = falcon.get(path).await;
    assert_eq!((failed.status, failed.body["errors"][0]["code"].as_u64()), (503, Some(503)));

    falcon.emulator.reset_next(1);
    assert!(falcon.http.get(format!("{}{path}", falcon.emulator.url())).bearer_auth(&falcon.token).send().await.is_err());

    // The token request took one slot of five.
    let mut remaining = Vec::new();
    for _ in 0..5 {
        let a = falcon.get(path).await;
        remaining.push(format!("{} {}", a.status, a.headers["x-ratelimit-remaining"].to_str().unwrap()));
    }
    assert_eq!(remaining, ["200 3", "200 2", "200 1", "200 0", "429 0"]);
    assert_eq!(falcon.emulator.max_requests_in_any_minute("client"), 9);
    assert_eq!(falcon.emulator.requests().iter().filter(|r| r.status.is_none()).count(), 1);
}
