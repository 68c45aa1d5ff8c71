//! The Elasticsearch/OpenSearch emulator over HTTP, as a bulk client sees it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_emulators::elasticsearch::{EsConfig, EsEmulator, EsFaults, Flavor};

const SHARDS: &str = r#"{"total":2,"successful":1,"failed":0}"#;

struct Es {
    emulator: EsEmulator,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("{:?} is not JSON: {e}", self.text))
    }

    /// The bulk answer without `took`, which varies.
    fn items(&self) -> Value {
        assert_eq!(self.status, 200, "{}", self.text);
        let mut body = self.json();
        assert!(body["took"].is_u64());
        body.as_object_mut().unwrap().remove("took");
        body
    }
}

impl Es {
    async fn new(config: EsConfig) -> Es {
        Es { emulator: EsEmulator::start(config).await.unwrap(), http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        Answer { status, headers, text: response.text().await.unwrap() }
    }

    fn bulk_request(&self, path: &str, body: &str) -> reqwest::RequestBuilder {
        self.http.post(self.url(path)).header("Content-Type", "application/x-ndjson").body(body.to_string())
    }

    async fn bulk(&self, body: &str) -> Answer {
        self.send(self.bulk_request("/_bulk", body)).await
    }

    async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(self.url(path))).await
    }
}

fn item(action: &str, index: &str, id: &str, version: u64, result: &str, seq_no: u64, status: u16) -> Value {
    let shards: Value = serde_json::from_str(SHARDS).unwrap();
    json!({action: {"_index": index, "_id": id, "_version": version, "result": result, "_shards": shards,
        "_seq_no": seq_no, "_primary_term": 1, "status": status}})
}

fn error_body(kind: &str, reason: &str, status: u16) -> Value {
    json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status})
}

fn today() -> String {
    chrono::Utc::now().format("%Y.%m.%d").to_string()
}

#[tokio::test]
async fn bulk_index_create_delete() {
    let es = Es::new(EsConfig::default()).await;
    let body = concat!(
        "{\"create\":{\"_index\":\"siem\",\"_id\":\"a\"}}\n{\"n\":1}\n",
        "{\"index\":{\"_index\":\"siem\",\"_id\":\"b\"}}\n{\"n\":2}\n",
        "{\"index\":{\"_index\":\"siem\",\"_id\":\"a\"}}\n{\"n\":3}\n",
        "{\"delete\":{\"_index\":\"siem\",\"_id\":\"b\"}}\n",
        "{\"delete\":{\"_index\":\"siem\",\"_id\":\"zz\"}}\n",
        "{\"create\":{\"_index\":\"siem\"}}\n{\"n\":4}\n",
    );
    let answer = es.bulk(body).await;
    assert_eq!(answer.headers["content-type"], "application/json");
    assert_eq!(answer.headers["x-elastic-product"], "Elasticsearch");
    let mut items = answer.items();
    let generated = items["items"][5]["create"]["_id"].as_str().unwrap().to_string();
    assert_eq!(generated.len(), 20);
    assert_eq!(
        items,
        json!({"errors": false, "items": [
            item("create", "siem", "a", 1, "created", 0, 201),
            item("index", "siem", "b", 1, "created", 1, 201),
            item("index", "siem", "a", 2, "updated", 2, 200),
            item("delete", "siem", "b", 2, "deleted", 3, 200),
            item("delete", "siem", "zz", 1, "not_found", 4, 404),
            item("create", "siem", &generated, 1, "created", 5, 201),
        ]})
    );
    assert_eq!(es.emulator.docs("siem"), [("a".to_string(), json!({"n":3})), (generated.clone(), json!({"n":4}))]);
    assert_eq!((es.emulator.doc_count(), es.emulator.indices(), es.emulator.bulk_requests()), (2, vec!["siem".to_string()], 1));
    // A deleted id comes back with the next version.
    let again = es.bulk("{\"index\":{\"_index\":\"siem\",\"_id\":\"b\"}}\n{\"n\":5}\n").await;
    items = again.items();
    assert_eq!(items["items"][0], item("index", "siem", "b", 3, "created", 6, 201));
}

#[tokio::test]
async fn url_index_is_the_default_and_refresh_is_reported() {
    let es = Es::new(EsConfig::default()).await;
    let body = "{\"index\":{\"_id\":\"1\"}}\n{\"a\":1}\n{\"index\":{\"_index\":\"other\",\"_id\":\"1\"}}\n{\"a\":2}\n";
    let answer = es.send(es.bulk_request("/events/_bulk?refresh=true", body)).await;
    let items = answer.items();
    assert_eq!(items["items"][0]["index"]["_index"], "events");
    assert_eq!(items["items"][0]["index"]["forced_refresh"], true);
    assert_eq!(items["items"][1]["index"]["_index"], "other");
    assert_eq!(es.emulator.indices(), ["events", "other"]);
}

#[tokio::test]
async fn create_replays_conflict() {
    let es = Es::new(EsConfig::default()).await;
    let body =
        "{\"create\":{\"_index\":\"logs\",\"_id\":\"abc\"}}\n{\"m\":1}\n{\"create\":{\"_index\":\"logs\",\"_id\":\"def\"}}\n{\"m\":2}\n";
    assert_eq!(es.bulk(body).await.items()["errors"], false);
    let replay = es.bulk(body).await.items();
    assert_eq!(replay["errors"], true);
    let uuid = replay["items"][0]["create"]["error"]["index_uuid"].as_str().unwrap().to_string();
    assert_eq!(uuid.len(), 22);
    let conflict = |id: &str| {
        json!({"create": {"_index": "logs", "_id": id, "status": 409, "error": {
            "type": "version_conflict_engine_exception",
            "reason": format!("[{id}]: version conflict, document already exists (current version [1])"),
            "index_uuid": uuid, "shard": "0", "index": "logs"}}})
    };
    assert_eq!(replay["items"], json!([conflict("abc"), conflict("def")]));
    assert_eq!((es.emulator.conflicts(), es.emulator.doc_count()), (2, 2));
}

#[tokio::test]
async fn data_streams() {
    let es = Es::new(EsConfig::default()).await;
    let backing = format!(".ds-logs-sluice-default-{}-000001", today());
    let body = concat!(
        "{\"create\":{\"_index\":\"logs-sluice-default\",\"_id\":\"e1\"}}\n{\"@timestamp\":\"2024-05-01T00:00:00Z\",\"m\":1}\n",
        "{\"index\":{\"_index\":\"logs-sluice-default\",\"_id\":\"e2\"}}\n{\"@timestamp\":\"2024-05-01T00:00:00Z\"}\n",
        "{\"index\":{\"_index\":\"logs-sluice-default\"}}\n{\"@timestamp\":\"2024-05-01T00:00:00Z\"}\n",
        "{\"create\":{\"_index\":\"logs-sluice-default\",\"_id\":\"e3\"}}\n{\"m\":3}\n",
        "{\"create\":{\"_index\":\"logs-sluice-default\",\"_id\":\"e4\"}}\n{\"@timestamp\":[1,2]}\n",
        "{\"delete\":{\"_index\":\"logs-sluice-default\",\"_id\":\"e1\"}}\n",
    );
    let items = es.bulk(body).await.items();
    let only_create = json!({"type":"illegal_argument_exception",
        "reason":"only write ops with an op_type of create are allowed in data streams"});
    let timestamp = |column: u64, cause: &str| {
        json!({"type":"document_parsing_exception","reason":format!("[1:{column}] failed to parse: {cause}"),
            "caused_by":{"type":"illegal_argument_exception","reason":cause}})
    };
    assert_eq!(
        items,
        json!({"errors": true, "items": [
            item("create", &backing, "e1", 1, "created", 0, 201),
            {"index": {"_index": "logs-sluice-default", "_id": "e2", "status": 400, "error": only_create}},
            {"index": {"_index": "logs-sluice-default", "_id": null, "status": 400, "error": only_create}},
            {"create": {"_index": backing, "_id": "e3", "status": 400,
                "error": timestamp(8, "data stream timestamp field [@timestamp] is missing")}},
            {"create": {"_index": backing, "_id": "e4", "status": 400,
                "error": timestamp(21, "data stream timestamp field [@timestamp] encountered multiple values")}},
            {"delete": {"_index": "logs-sluice-default", "_id": "e1", "status": 400, "error": only_create}},
        ]})
    );
    assert_eq!(es.emulator.indices(), ["logs-sluice-default"]);
    assert_eq!(es.emulator.docs("logs-sluice-default"), [("e1".to_string(), json!({"@timestamp":"2024-05-01T00:00:00Z","m":1}))]);
    assert_eq!(es.emulator.docs(&backing).len(), 1);
    let doc = es.get("/logs-sluice-default/_doc/e1").await;
    assert_eq!(doc.json()["_index"], backing.as_str());
}

#[tokio::test]
async fn opensearch_flavor() {
    let es = Es::new(EsConfig { flavor: Flavor::OpenSearch, ..EsConfig::default() }).await;
    let root = es.get("/").await;
    assert_eq!(root.status, 200);
    assert!(!root.headers.contains_key("x-elastic-product"));
    assert_eq!(root.headers["content-type"], "application/json; charset=UTF-8");
    let info = root.json();
    assert_eq!(
        (&info["version"]["distribution"], &info["version"]["number"], &info["tagline"]),
        (&json!("opensearch"), &json!("2.17.0"), &json!("The OpenSearch Project: https://opensearch.org/"))
    );
    let body = "{\"create\":{\"_index\":\"logs-a-b\",\"_id\":\"1\"}}\n{\"m\":1}\n{\"create\":{\"_index\":\"logs-a-b\",\"_id\":\"2\"}}\n{\"@timestamp\":1}\n";
    let items = es.bulk(body).await.items();
    assert_eq!(
        items["items"][0],
        json!({"create":{"_index":".ds-logs-a-b-000001","_id":"1","status":400,"error":{"type":"mapper_parsing_exception",
            "reason":"failed to parse","caused_by":{"type":"illegal_argument_exception",
            "reason":"documents must contain a single-valued timestamp field '@timestamp' of date type"}}}})
    );
    assert_eq!(items["items"][1], item("create", ".ds-logs-a-b-000001", "2", 1, "created", 0, 201));
}

#[tokio::test]
async fn malformed_bodies_reject_the_whole_request() {
    let es = Es::new(EsConfig::default()).await;
    let unterminated = es.bulk("{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}").await;
    assert_eq!(unterminated.status, 400);
    assert_eq!(
        unterminated.text,
        r#"{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline [\\n]"}],"type":"illegal_argument_exception","reason":"The bulk request must be terminated by a newline [\\n]"},"status":400}"#
    );
    let broken =
        es.bulk("{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"index\":{\"_index\":\"a\" \"_id\":\"2\"}}\n{}\n").await;
    assert_eq!(broken.status, 400);
    let body = broken.json();
    assert_eq!((&body["error"]["type"], &body["status"]), (&json!("x_content_parse_exception"), &json!(400)));
    assert_eq!(body["error"]["root_cause"][0]["type"], "x_content_parse_exception");
    assert!(body["error"]["reason"].as_str().unwrap().starts_with("[1:"), "{body}");
    let unknown = es.bulk("{\"upsert\":{\"_index\":\"a\"}}\n{}\n").await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (
            400,
            error_body(
                "illegal_argument_exception",
                "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]",
                400
            )
        )
    );
    let not_object = es.bulk("\"index\"\n").await;
    let reason = "Malformed action/metadata line [1], expected START_OBJECT but found [VALUE_STRING]";
    assert_eq!((not_object.status, not_object.json()), (400, error_body("illegal_argument_exception", reason, 400)));
    let no_index = es.bulk("{\"index\":{\"_id\":\"1\"}}\n{}\n").await;
    let reason = "Validation Failed: 1: index is missing;";
    assert_eq!((no_index.status, no_index.json()), (400, error_body("action_request_validation_exception", reason, 400)));
    let empty = es.send(es.http.post(es.url("/_bulk")).header("Content-Type", "application/json")).await;
    assert_eq!((empty.status, empty.json()), (400, error_body("parse_exception", "request body is required", 400)));
    assert_eq!((es.emulator.doc_count(), es.emulator.bulk_requests()), (0, 6));
}

#[tokio::test]
async fn content_type_is_required() {
    let es = Es::new(EsConfig::default()).await;
    let body = "{\"index\":{\"_index\":\"a\"}}\n{}\n";
    let missing = es.send(es.http.post(es.url("/_bulk")).body(body)).await;
    assert_eq!((missing.status, missing.json()), (406, json!({"error":"Content-Type header is missing","status":406})));
    let text = es.send(es.http.post(es.url("/_bulk")).header("Content-Type", "text/plain").body(body)).await;
    assert_eq!((text.status, text.json()), (406, json!({"error":"Content-Type header [text/plain] is not supported","status":406})));
    let json_type = es.send(es.http.post(es.url("/_bulk")).header("Content-Type", "application/json; charset=UTF-8").body(body)).await;
    assert_eq!(json_type.status, 200);
}

#[tokio::test]
async fn gzip_bodies() {
    let es = Es::new(EsConfig::default()).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"{\"create\":{\"_index\":\"z\",\"_id\":\"1\"}}\n{\"zipped\":true}\n").unwrap();
    let request = es
        .http
        .post(es.url("/_bulk"))
        .header("Content-Type", "application/x-ndjson")
        .header("Content-Encoding", "gzip")
        .body(gz.finish().unwrap());
    let items = es.send(request).await.items();
    assert_eq!(items["items"][0], item("create", "z", "1", 1, "created", 0, 201));
    assert_eq!(es.emulator.docs("z"), [("1".to_string(), json!({"zipped":true}))]);
}

#[tokio::test]
async fn item_faults_leave_documents_unstored() {
    let es = Es::new(EsConfig::default()).await;
    es.emulator.set_faults(EsFaults { item_429_rate: 1.0, ..EsFaults::default() });
    let items = es.bulk("{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n").await.items();
    assert_eq!(items["errors"], true);
    let failed = &items["items"][0]["create"];
    assert_eq!((&failed["_index"], &failed["_id"], &failed["status"]), (&json!("a"), &json!("1"), &json!(429)));
    assert_eq!(failed["error"]["type"], "es_rejected_execution_exception");
    assert!(failed["error"]["reason"].as_str().unwrap().starts_with("rejected execution of "));

    es.emulator.set_faults(EsFaults { item_500_rate: 1.0, ..EsFaults::default() });
    let items = es.bulk("{\"index\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{}\n").await.items();
    assert_eq!(items["items"][0]["index"]["status"], 500);
    assert_eq!(es.emulator.doc_count(), 0);

    // About half of each kind, reproducibly: only the successful items are stored.
    es.emulator.set_faults(EsFaults { item_429_rate: 0.25, item_500_rate: 0.25, ..EsFaults::default() });
    let body: String = (0..200).map(|i| format!("{{\"create\":{{\"_index\":\"b\",\"_id\":\"{i}\"}}}}\n{{}}\n")).collect();
    let items = es.bulk(&body).await.items();
    let statuses: Vec<u64> = items["items"].as_array().unwrap().iter().map(|i| i["create"]["status"].as_u64().unwrap()).collect();
    let created = statuses.iter().filter(|s| **s == 201).count();
    assert!(statuses.contains(&429) && statuses.contains(&500) && created > 50, "{statuses:?}");
    assert_eq!(es.emulator.doc_count(), created);
}

#[tokio::test]
async fn request_level_faults() {
    let es = Es::new(EsConfig::default()).await;
    let body = "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n";
    es.emulator.set_faults(EsFaults { request_429_rate: 1.0, ..EsFaults::default() });
    let rejected = es.bulk(body).await;
    let reason = format!(
        "rejected execution of coordinating operation [coordinating_and_primary_bytes=104759862, replica_bytes=0, \
         all_bytes=104759862, coordinating_operation_bytes={}, max_coordinating_and_primary_bytes=107374182]",
        body.len()
    );
    assert_eq!((rejected.status, rejected.json()), (429, error_body("es_rejected_execution_exception", &reason, 429)));
    es.emulator.set_faults(EsFaults { request_503_rate: 1.0, ..EsFaults::default() });
    let unavailable = es.bulk(body).await;
    let reason = "blocked by: [SERVICE_UNAVAILABLE/2/no master];";
    assert_eq!((unavailable.status, unavailable.json()), (503, error_body("cluster_block_exception", reason, 503)));
    assert_eq!((es.emulator.doc_count(), es.emulator.bulk_requests()), (0, 2));
}

#[tokio::test]
async fn resets_apply_the_bulk_half_of_the_time() {
    let es = Es::new(EsConfig::default()).await;
    es.emulator.set_faults(EsFaults { reset_rate: 1.0, ..EsFaults::default() });
    let bodies: Vec<String> = (0..20).map(|i| format!("{{\"create\":{{\"_index\":\"r\",\"_id\":\"{i}\"}}}}\n{{}}\n")).collect();
    for body in &bodies {
        let error = es.bulk_request("/_bulk", body).send().await.expect_err("no answer");
        assert!(!error.is_status(), "{error:?}");
    }
    let applied = es.emulator.doc_count();
    assert!(applied > 0 && applied < 20, "{applied}");
    // The client's retries meet 409s for what was applied.
    es.emulator.set_faults(EsFaults::default());
    for body in &bodies {
        let items = es.bulk(body).await.items();
        assert!([201, 409].contains(&items["items"][0]["create"]["status"].as_u64().unwrap()));
    }
    assert_eq!((es.emulator.doc_count(), es.emulator.conflicts()), (20, applied as u64));
}

#[tokio::test]
async fn basic_authentication() {
    let config = EsConfig { basic: Some(("elastic".into(), "changeme".into())), ..EsConfig::default() };
    let es = Es::new(config).await;
    let body = "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n";
    let missing = es.bulk(body).await;
    let challenges = json!(["Basic realm=\"security\", charset=\"UTF-8\"", "Bearer realm=\"security\"", "ApiKey"]);
    let refusal = |reason: &str| {
        let cause = json!({"type":"security_exception","reason":reason,"header":{"WWW-Authenticate":challenges}});
        json!({"error":{"root_cause":[cause],"type":"security_exception","reason":reason,
            "header":{"WWW-Authenticate":challenges}},"status":401})
    };
    assert_eq!((missing.status, missing.json()), (401, refusal("missing authentication credentials for REST request [/_bulk]")));
    let sent: Vec<&str> = missing.headers.get_all("www-authenticate").iter().map(|v| v.to_str().unwrap()).collect();
    assert_eq!(json!(sent), challenges);
    let wrong = es.send(es.bulk_request("/_bulk", body).basic_auth("elastic", Some("nope"))).await;
    assert_eq!((wrong.status, wrong.json()), (401, refusal("unable to authenticate user [elastic] for REST request [/_bulk]")));
    let root = es.get("/?pretty").await;
    assert_eq!((root.status, root.json()), (401, refusal("missing authentication credentials for REST request [/?pretty]")));
    let right = es.send(es.bulk_request("/_bulk", body).basic_auth("elastic", Some("changeme"))).await;
    assert_eq!(right.items()["errors"], false);
    let api_key = es.send(es.bulk_request("/_bulk", body).header("Authorization", "ApiKey abc")).await;
    let reason = "unable to authenticate with provided credentials and anonymous access is not allowed for this request";
    assert_eq!((api_key.status, api_key.json()), (401, refusal(reason)));
    assert_eq!((es.emulator.doc_count(), es.emulator.bulk_requests()), (1, 4));
}

#[tokio::test]
async fn api_key_authentication() {
    let key = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw==";
    let es = Es::new(EsConfig { api_key: Some(key.into()), ..EsConfig::default() }).await;
    let body = "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n";
    let right = es.send(es.bulk_request("/_bulk", body).header("Authorization", format!("ApiKey {key}"))).await;
    assert_eq!(right.items()["errors"], false);
    let wrong = es.send(es.bulk_request("/_bulk", body).header("Authorization", "ApiKey d3Jvbmc6a2V5")).await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.json()["error"]["type"], "security_exception");
    let basic = es.send(es.bulk_request("/_bulk", body).basic_auth("elastic", Some("x"))).await;
    assert_eq!(basic.json()["error"]["reason"], "unable to authenticate user [elastic] for REST request [/_bulk]");
    assert_eq!(es.emulator.doc_count(), 1);
}

#[tokio::test]
async fn content_length_limit() {
    let es = Es::new(EsConfig { max_content_length: 1024, ..EsConfig::default() }).await;
    let body: String = (0..40).map(|i| format!("{{\"create\":{{\"_index\":\"a\",\"_id\":\"{i}\"}}}}\n{{}}\n")).collect();
    assert!(body.len() > 1024);
    let too_large = es.bulk(&body).await;
    assert_eq!((too_large.status, too_large.text.as_str()), (413, ""));
    assert_eq!((es.emulator.doc_count(), es.emulator.bulk_requests()), (0, 1));
    let small: String = (0..5).map(|i| format!("{{\"create\":{{\"_index\":\"a\",\"_id\":\"{i}\"}}}}\n{{}}\n")).collect();
    assert_eq!(es.bulk(&small).await.items()["errors"], false);
}

#[tokio::test]
async fn count_and_get() {
    let es = Es::new(EsConfig::default()).await;
    let body: String = (0..3)
        .map(|i| format!("{{\"index\":{{\"_index\":\"a\",\"_id\":\"{i}\"}}}}\n{{\"i\":{i}}}\n"))
        .chain((0..2).map(|i| format!("{{\"index\":{{\"_index\":\"b\",\"_id\":\"{i}\"}}}}\n{{\"i\":{i}}}\n")))
        .collect();
    es.bulk(&body).await.items();
    let count = |n: u64, shards: u64| json!({"count":n,"_shards":{"total":shards,"successful":shards,"skipped":0,"failed":0}});
    assert_eq!(es.get("/a/_count").await.json(), count(3, 1));
    assert_eq!(es.get("/_count").await.json(), count(5, 2));
    assert_eq!(es.get("/a,b/_count").await.json(), count(5, 2));
    assert_eq!(es.get("/b*/_count").await.json(), count(2, 1));
    let missing = es.get("/nope/_count").await;
    let not_found = json!({"type":"index_not_found_exception","reason":"no such index [nope]","resource.type":"index_or_alias",
        "resource.id":"nope","index_uuid":"_na_","index":"nope"});
    assert_eq!(
        (missing.status, missing.json()),
        (
            404,
            json!({"error":{"root_cause":[not_found],
        "type":"index_not_found_exception","reason":"no such index [nope]","resource.type":"index_or_alias",
        "resource.id":"nope","index_uuid":"_na_","index":"nope"},"status":404})
        )
    );

    let found = es.get("/a/_doc/1").await;
    assert_eq!(
        (found.status, found.json()),
        (200, json!({"_index":"a","_id":"1","_version":1,"_seq_no":1,"_primary_term":1,"found":true,"_source":{"i":1}}))
    );
    let absent = es.get("/a/_doc/9").await;
    assert_eq!((absent.status, absent.json()), (404, json!({"_index":"a","_id":"9","found":false})));
    assert_eq!(es.get("/nope/_doc/1").await.status, 404);
    assert_eq!(es.send(es.http.head(es.url("/a"))).await.status, 200);
    assert_eq!(es.send(es.http.head(es.url("/nope"))).await.status, 404);
}

#[tokio::test]
async fn cluster_info_and_health() {
    let es = Es::new(EsConfig::default()).await;
    let root = es.get("/").await;
    assert_eq!((root.status, &root.headers["x-elastic-product"]), (200, &"Elasticsearch".parse::<reqwest::header::HeaderValue>().unwrap()));
    let info = root.json();
    assert_eq!(info["version"]["number"], "8.15.0");
    assert_eq!(info["version"]["build_flavor"], "default");
    assert_eq!(info["tagline"], "You Know, for Search");
    assert_eq!(info["cluster_uuid"].as_str().unwrap().len(), 22);
    assert!(root.text.contains("\"tagline\" : \"You Know, for Search\""), "pretty by default: {}", root.text);
    let health = es.get("/_cluster/health").await.json();
    assert_eq!((&health["status"], &health["number_of_nodes"]), (&json!("green"), &json!(1)));

    es.emulator.set_faults(EsFaults { red: true, ..EsFaults::default() });
    assert_eq!(es.get("/_cluster/health").await.json()["status"], "red");
    let down = es.get("/").await;
    let reason = "blocked by: [SERVICE_UNAVAILABLE/2/no master];";
    assert_eq!((down.status, down.json()), (503, error_body("cluster_block_exception", reason, 503)));
}

#[tokio::test]
async fn rejected_field_is_a_mapping_error() {
    let es = Es::new(EsConfig::default()).await;
    es.emulator.set_faults(EsFaults { reject_field: Some("severity".into()), ..EsFaults::default() });
    let body = "{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"m\":1,\"severity\":\"high\"}\n{\"create\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"m\":2}\n";
    let items = es.bulk(body).await.items();
    assert_eq!(
        items["items"][0],
        json!({"create":{"_index":"a","_id":"1","status":400,"error":{"type":"document_parsing_exception",
            "reason":"[1:19] failed to parse field [severity] of type [long] in document with id '1'. Preview of field's value: 'high'",
            "caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"high\""}}}})
    );
    assert_eq!(items["items"][1]["create"]["status"], 201);
    assert_eq!(es.emulator.docs("a"), [("2".to_string(), json!({"m":2}))]);
}

#[tokio::test]
async fn updates_and_optimistic_concurrency() {
    let es = Es::new(EsConfig::default()).await;
    es.bulk("{\"index\":{\"_index\":\"u\",\"_id\":\"1\"}}\n{\"a\":{\"b\":1},\"c\":1}\n").await.items();
    let body = concat!(
        "{\"update\":{\"_index\":\"u\",\"_id\":\"1\"}}\n{\"doc\":{\"a\":{\"d\":2}}}\n",
        "{\"update\":{\"_index\":\"u\",\"_id\":\"1\"}}\n{\"doc\":{\"c\":1}}\n",
        "{\"update\":{\"_index\":\"u\",\"_id\":\"2\"}}\n{\"doc\":{\"x\":1}}\n",
        "{\"update\":{\"_index\":\"u\",\"_id\":\"3\"}}\n{\"doc\":{\"x\":1},\"doc_as_upsert\":true}\n",
        "{\"index\":{\"_index\":\"u\",\"_id\":\"1\",\"if_seq_no\":0,\"if_primary_term\":1}}\n{}\n",
    );
    let items = es.bulk(body).await.items();
    let uuid = items["items"][2]["update"]["error"]["index_uuid"].clone();
    assert_eq!(items["items"][0], item("update", "u", "1", 2, "updated", 1, 200));
    assert_eq!(
        items["items"][1],
        json!({"update":{"_index":"u","_id":"1","_version":2,"result":"noop","_shards":{"total":0,"successful":0,"failed":0},
            "_seq_no":1,"_primary_term":1,"status":200}})
    );
    assert_eq!(
        items["items"][2],
        json!({"update":{"_index":"u","_id":"2","status":404,"error":{"type":"document_missing_exception",
            "reason":"[2]: document missing","index_uuid":uuid,"shard":"0","index":"u"}}})
    );
    assert_eq!(items["items"][3], item("update", "u", "3", 1, "created", 2, 201));
    assert_eq!(
        items["items"][4]["index"]["error"]["reason"],
        "[1]: version conflict, required seqNo [0], primary term [1]. current document has seqNo [1] and primary term [1]"
    );
    assert_eq!(es.emulator.docs("u")[0].1, json!({"a":{"b":1,"d":2},"c":1}));
    assert_eq!(es.emulator.conflicts(), 0);
}

#[tokio::test]
async fn filter_path_shrinks_the_answer() {
    let es = Es::new(EsConfig::default()).await;
    let body = "{\"create\":{\"_index\":\"f\",\"_id\":\"1\"}}\n{}\n{\"create\":{\"_index\":\"f\",\"_id\":\"1\"}}\n{}\n";
    let answer = es.send(es.bulk_request("/_bulk?filter_path=errors,items.*.error.type,items.*.status", body)).await;
    assert_eq!(
        answer.json(),
        json!({"errors":true,"items":[{"create":{"status":201}},
            {"create":{"status":409,"error":{"type":"version_conflict_engine_exception"}}}]})
    );
}

#[tokio::test]
async fn unknown_routes_and_methods() {
    let es = Es::new(EsConfig::default()).await;
    let unknown = es.get("/_nodes/stats/everything").await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (400, json!({"error":"no handler found for uri [/_nodes/stats/everything] and method [GET]","status":400}))
    );
    let wrong_method = es.get("/_bulk").await;
    assert_eq!(
        (wrong_method.status, wrong_method.json()),
        (405, json!({"error":"Incorrect HTTP method for uri [/_bulk] and method [GET], allowed: [POST, PUT]","status":405}))
    );
}

#[tokio::test]
async fn stop_releases_the_port() {
    let addr = sluice_emulators::ports::outside_ephemeral_range();
    let emulator = EsEmulator::start_on(addr, EsConfig::default()).await.unwrap();
    assert_eq!(reqwest::get(format!("{}/", emulator.url())).await.unwrap().status(), 200);
    emulator.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    tokio::net::TcpListener::bind(addr).await.expect("the port is free again");
}

#[tokio::test]
async fn delay_applies() {
    let es = Es::new(EsConfig::default()).await;
    es.emulator.set_faults(EsFaults { delay: Duration::from_millis(150), ..EsFaults::default() });
    let started = Instant::now();
    assert_eq!(es.get("/_cluster/health").await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test]
async fn the_binary_serves_until_terminated() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_es-emulator"))
        .args(["--listen", "127.0.0.1:0", "--flavor", "opensearch", "--user", "admin:secret", "--data-stream", "ds-*"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect(&line).to_string();
    let body =
        "{\"create\":{\"_index\":\"ds-x\",\"_id\":\"1\"}}\n{\"@timestamp\":1}\n{\"create\":{\"_index\":\"logs-a-b\",\"_id\":\"1\"}}\n{}\n";
    let response = reqwest::Client::new()
        .post(format!("{url}/_bulk"))
        .basic_auth("admin", Some("secret"))
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let items: Value = response.json().await.unwrap();
    assert_eq!(items["items"][0]["create"]["_index"], ".ds-ds-x-000001");
    assert_eq!(items["items"][1]["create"]["_index"], "logs-a-b");
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "bulk requests 1, documents 2, conflicts 0, indices ds-x,logs-a-b\n");
}

/// Loopback throughput, for `cargo test --release -- --ignored throughput --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let es = Es::new(EsConfig::default()).await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for task in 0..4 {
        let (http, url) = (es.http.clone(), es.url("/_bulk"));
        tasks.push(tokio::spawn(async move {
            for batch in 0..150 {
                let body: String = (0..500)
                    .map(|i| {
                        format!(
                            "{{\"create\":{{\"_index\":\"logs-sluice-default\",\"_id\":\"ws-{task}-{batch}-{i}\"}}}}\n\
                             {{\"@timestamp\":\"2024-05-01T11:28:16.808Z\",\"event\":{{\"kind\":\"alert\",\"severity\":73}},\
                             \"message\":\"Suspicious process launched by Office application\",\"host\":{{\"name\":\"laptop-17\",\
                             \"ip\":\"10.1.2.3\"}},\"organization\":{{\"id\":\"4de5\"}}}}\n"
                        )
                    })
                    .collect();
                let r = http.post(&url).header("Content-Type", "application/x-ndjson").body(body).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let _ = r.bytes().await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = es.emulator.doc_count() as f64 / started.elapsed().as_secs_f64();
    println!("ES: {} docs in {:?}: {rate:.0} docs/s", es.emulator.doc_count(), started.elapsed());
}
