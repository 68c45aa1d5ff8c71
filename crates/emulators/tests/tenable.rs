//! The Tenable Vulnerability Management emulator over HTTP, as pyTenable's export iterator sees it.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_emulators::tenable::{Emulator, ExportKind, Options};

const ACCESS: &str = "access-1";
const SECRET: &str = "secret-1";

struct Tio {
    emulator: Emulator,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{:?}: {e}", self.text))
    }
}

impl Tio {
    async fn new(options: Options) -> Tio {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
        emulator.add_keys(ACCESS, SECRET);
        Tio { emulator, http: reqwest::Client::new() }
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.emulator.url()));
        request = request.header("X-ApiKeys", format!("accessKey={ACCESS}; secretKey={SECRET}"));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        Answer { status, headers, text: response.text().await.unwrap() }
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// pyTenable's loop: poll, download every new chunk, until the job has ended and nothing is left.
    async fn drain(&self, prefix: &str, uuid: &str) -> (Vec<String>, Vec<Value>) {
        let (mut statuses, mut seen, mut items) = (Vec::new(), HashSet::new(), Vec::new());
        loop {
            let status = self.get(&format!("{prefix}/{uuid}/status")).await.json();
            statuses.push(status["status"].as_str().unwrap().to_string());
            for id in status["chunks_available"].as_array().into_iter().flatten() {
                let id = id.as_u64().unwrap();
                if seen.insert(id) {
                    let chunk = self.get(&format!("{prefix}/{uuid}/chunks/{id}")).await;
                    assert_eq!(chunk.status, 200, "chunk {id}: {}", chunk.text);
                    items.extend(chunk.json().as_array().unwrap().iter().cloned());
                }
            }
            if ["FINISHED", "ERROR"].contains(&statuses.last().unwrap().as_str()) {
                return (statuses, items);
            }
        }
    }
}

#[tokio::test]
async fn both_api_key_spellings_and_401() {
    let tio = Tio::new(Options::default()).await;
    let url = format!("{}/vulns/export/status", tio.emulator.url());
    for keys in [format!("accessKey={ACCESS};secretKey={SECRET}"), format!("accessKey={ACCESS}; secretKey={SECRET}")] {
        let response = tio.http.get(&url).header("X-ApiKeys", keys).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().contains_key("x-request-uuid"));
    }
    for keys in [format!("accessKey={ACCESS};secretKey=nope"), String::new()] {
        assert_eq!(tio.http.get(&url).header("X-ApiKeys", keys).send().await.unwrap().status(), 401);
    }
}

#[tokio::test]
async fn vulnerability_export_walks_the_state_machine_and_covers_every_record() {
    let tio = Tio::new(Options { queued_polls: 2, processing_polls: 3, empty_chunk: true, ..Options::default() }).await;
    tio.emulator.set_vulnerabilities(ACCESS, 20_003);
    let body = json!({"num_assets": 1000, "include_unlicensed": true, "filters": {}});
    let created = tio.post("/vulns/export", body.clone()).await;
    assert_eq!(created.status, 200);
    let uuid = created.json()["export_uuid"].as_str().unwrap().to_string();

    let duplicate = tio.post("/vulns/export", body.clone()).await;
    assert_eq!((duplicate.status, duplicate.json()["active_job_id"].as_str()), (409, Some(uuid.as_str())));
    assert_eq!(tio.post("/vulns/export", json!({"num_assets": 50, "filters": {}})).await.status, 200, "another body is another job");

    let first = tio.get(&format!("/vulns/export/{uuid}/status")).await.json();
    assert_eq!((first["status"].as_str(), first["total_chunks"].as_u64()), (Some("QUEUED"), Some(0)));
    let (statuses, items) = tio.drain("/vulns/export", &uuid).await;
    assert_eq!(statuses, ["QUEUED", "PROCESSING", "PROCESSING", "PROCESSING", "FINISHED"]);
    assert_eq!(items.len(), 20_003);
    assert_eq!(items.iter().map(|v| v["finding_id"].as_str().unwrap()).collect::<HashSet<_>>().len(), 20_003);
    assert!(items[0]["asset"]["uuid"].is_string() && items[0]["plugin"]["id"].is_u64());

    let done = tio.get(&format!("/vulns/export/{uuid}/status")).await.json();
    assert_eq!(done["total_chunks"], 7, "six chunks of up to 4000 findings and one empty chunk");
    assert_eq!(done["empty_chunks_count"], 1);
    let ids: Vec<u64> = done["chunks_available"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_ne!(ids, (1..=7).collect::<Vec<_>>(), "chunks become available out of order");
    assert_eq!(tio.post("/vulns/export", body).await.status, 200, "a finished job is no duplicate");
    assert_eq!(tio.get(&format!("/vulns/export/{uuid}/chunks/99")).await.status, 404);
}

#[tokio::test]
async fn partial_chunks_have_gaps_while_processing() {
    let tio = Tio::new(Options { queued_polls: 0, processing_polls: 3, ..Options::default() }).await;
    tio.emulator.set_count(ACCESS, ExportKind::Assets, 40_000);
    let uuid =
        tio.post("/assets/v2/export", json!({"chunk_size": 1000, "filters": {}})).await.json()["export_uuid"].as_str().unwrap().to_string();
    let status = tio.get(&format!("/assets/export/{uuid}/status")).await.json();
    let ids: Vec<u64> = status["chunks_available"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!((status["status"].as_str(), ids.len(), status["total_chunks"].as_u64()), (Some("PROCESSING"), 10, Some(40)));
    assert_ne!(ids, (1..=10).collect::<Vec<_>>());
    let chunk = tio.get(&format!("/assets/export/{uuid}/chunks/{}", ids[0])).await.json();
    assert_eq!(chunk.as_array().unwrap().len(), 1000);
    assert!(chunk[0]["id"].is_string() && chunk[0]["ipv4s"].is_array());
    let hidden = (1..=40).find(|id| !ids.contains(id)).unwrap();
    assert_eq!(tio.get(&format!("/assets/export/{uuid}/chunks/{hidden}")).await.status, 404, "not available yet");
}

#[tokio::test]
async fn compliance_status_objects() {
    let tio = Tio::new(Options { queued_polls: 0, processing_polls: 4, ..Options::default() }).await;
    tio.emulator.set_count(ACCESS, ExportKind::Compliance, 2500);
    let uuid = tio.post("/compliance/export", json!({"num_findings": 1000, "filters": {}})).await.json()["export_uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let first = tio.get(&format!("/compliance/export/{uuid}/status")).await.json();
    assert_eq!(first, json!({"status": "PROCESSING"}));
    let (statuses, items) = tio.drain("/compliance/export", &uuid).await;
    assert_eq!(statuses, ["READY", "READY", "READY", "FINISHED"]);
    assert_eq!(items.len(), 2500);
    assert!(items[0]["check_name"].is_string() && items[0]["reference"].is_array());
}

#[tokio::test]
async fn was_export_flow() {
    let tio = Tio::new(Options::default()).await;
    tio.emulator.set_count(ACCESS, ExportKind::WasVulns, 777);
    let uuid =
        tio.post("/was/v1/export/vulns", json!({"num_assets": 50, "include_unlicensed": true, "filters": {}})).await.json()["export_uuid"]
            .as_str()
            .unwrap()
            .to_string();
    let (_, items) = tio.drain("/was/v1/export/vulns", &uuid).await;
    assert_eq!(items.len(), 777);
    assert_eq!(items.iter().map(|v| v["finding_id"].as_str().unwrap()).collect::<HashSet<_>>().len(), 777);
}

#[tokio::test]
async fn failed_expired_and_cancelled_jobs() {
    let tio = Tio::new(Options { queued_polls: 0, processing_polls: 1, ..Options::default() }).await;
    tio.emulator.set_vulnerabilities(ACCESS, 10_000);
    tio.emulator.fail_next_jobs(1);
    let uuid = tio.post("/vulns/export", json!({"num_assets": 50})).await.json()["export_uuid"].as_str().unwrap().to_string();
    let (statuses, items) = tio.drain("/vulns/export", &uuid).await;
    assert_eq!(statuses.last().unwrap(), "ERROR");
    let status = tio.get(&format!("/vulns/export/{uuid}/status")).await.json();
    assert_eq!(status["chunks_failed"].as_array().unwrap().len() + status["chunks_available"].as_array().unwrap().len(), 50);
    assert_eq!(items.len(), 200 * status["chunks_available"].as_array().unwrap().len());

    tio.emulator.expire_next_job(Duration::ZERO);
    let uuid = tio.post("/vulns/export", json!({"num_assets": 5000})).await.json()["export_uuid"].as_str().unwrap().to_string();
    tio.get(&format!("/vulns/export/{uuid}/status")).await;
    let done = tio.get(&format!("/vulns/export/{uuid}/status")).await.json();
    assert_eq!(done["status"], "FINISHED");
    assert_eq!(tio.get(&format!("/vulns/export/{uuid}/chunks/1")).await.status, 404);

    let uuid = tio.post("/vulns/export", json!({"num_assets": 500})).await.json()["export_uuid"].as_str().unwrap().to_string();
    let cancel = tio.post(&format!("/vulns/export/{uuid}/cancel"), json!({})).await.json();
    assert_eq!(cancel, json!({"status": "CANCELLED"}));
    assert_eq!(tio.get(&format!("/vulns/export/{uuid}/status")).await.json()["status"], "CANCELLED");
    let list = tio.get("/vulns/export/status").await.json();
    assert_eq!(list["exports"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn throttling_faults_and_rate_limit() {
    let tio = Tio::new(Options { rate_limit_per_minute: Some(3), ..Options::default() }).await;
    tio.emulator.throttle_next(1, 30);
    let throttled = tio.get("/vulns/export/status").await;
    assert_eq!((throttled.status, throttled.headers["retry-after"].to_str().unwrap()), (429, "30"));
    tio.emulator.fail_next(1, 502);
    assert_eq!(tio.get("/vulns/export/status").await.json()["statusCode"], 502);
    tio.emulator.reset_next(1);
    assert!(tio.http.get(format!("{}/vulns/export/status", tio.emulator.url())).send().await.is_err());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(tio.get("/vulns/export/status").await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    let limited = tio.get("/vulns/export/status").await;
    let wait: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(tio.emulator.max_requests_in_any_minute(ACCESS), 7);
}
