//! The Splunk HEC emulator over HTTP, as a HEC client sees it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_emulators::splunk_hec::{HecConfig, HecEmulator, HecFaults};

const TOKEN: &str = "6f1c2b7e-0d3a-4e55-9a41-1c2d3e4f5a6b";
const CHANNEL: &str = "0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba";
const EVENT: &str = "/services/collector/event";

struct Hec {
    emulator: HecEmulator,
    http: reqwest::Client,
}

/// Status, `Content-Type` and parsed body of an answer.
struct Answer {
    status: u16,
    content_type: String,
    body: Value,
}

impl Hec {
    async fn new(config: HecConfig) -> Hec {
        let emulator = HecEmulator::start(HecConfig { token: TOKEN.into(), ..config }).await.unwrap();
        Hec { emulator, http: reqwest::Client::new() }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text:?} is not JSON: {e}"));
        Answer { status, content_type, body }
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.emulator.url()))
    }

    /// An authenticated event POST.
    async fn events(&self, body: &str) -> Answer {
        self.send(self.post(EVENT).header("Authorization", format!("Splunk {TOKEN}")).body(body.to_string())).await
    }

    async fn events_on(&self, channel: &str, body: &str) -> Answer {
        let request = self.post(EVENT).header("Authorization", format!("Splunk {TOKEN}")).header("X-Splunk-Request-Channel", channel);
        self.send(request.body(body.to_string())).await
    }

    async fn acks(&self, channel: &str, ids: &[u64]) -> Answer {
        let request = self.post("/services/collector/ack").header("Authorization", format!("Splunk {TOKEN}"));
        self.send(request.header("X-Splunk-Request-Channel", channel).json(&json!({"acks": ids}))).await
    }

    async fn health(&self, auth: Option<&str>) -> Answer {
        let mut request = self.http.get(format!("{}/services/collector/health", self.emulator.url()));
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        self.send(request).await
    }
}

fn assert_answer(answer: &Answer, status: u16, body: Value) {
    assert_eq!((answer.status, &answer.body), (status, &body));
    assert_eq!(answer.content_type, "application/json; charset=UTF-8");
}

#[tokio::test]
async fn authentication_codes() {
    let hec = Hec::new(HecConfig::default()).await;
    let body = r#"{"event":"x"}"#;
    assert_answer(&hec.send(hec.post(EVENT).body(body)).await, 401, json!({"text":"Token is required","code":2}));
    let bearer = hec.post(EVENT).header("Authorization", format!("Bearer {TOKEN}")).body(body);
    assert_answer(&hec.send(bearer).await, 401, json!({"text":"Invalid authorization","code":3}));
    let wrong = hec.post(EVENT).header("Authorization", "Splunk 00000000-0000-0000-0000-000000000001").body(body);
    assert_answer(&hec.send(wrong).await, 403, json!({"text":"Invalid token","code":4}));
    let query = hec.post(&format!("{EVENT}?token={TOKEN}")).body(body);
    assert_answer(&hec.send(query).await, 400, json!({"text":"Query string authorization is not enabled","code":16}));
    assert_eq!((hec.emulator.requests(), hec.emulator.event_count()), (4, 0));
}

#[tokio::test]
async fn indexes_concatenated_envelopes_with_defaults() {
    let hec = Hec::new(HecConfig::default()).await;
    let body = concat!(
        r#"{"time":1426279439.123,"host":"web01","source":"sluice","sourcetype":"_json","index":"main","event":{"message":"x"},"fields":{"vendor":"withsecure","tags":["a","b"]}}"#,
        "\n\n",
        r#"{"time":"1426279440","event":"second event as string"}"#,
        "  ",
    );
    let before = chrono::Utc::now().timestamp() as f64;
    assert_answer(&hec.events(body).await, 200, json!({"text":"Success","code":0}));
    assert_answer(&hec.events(r#"{"event":3}"#).await, 200, json!({"text":"Success","code":0}));
    let events = hec.emulator.events();
    assert_eq!(hec.emulator.event_count(), 3);
    assert_eq!(
        events[0],
        json!({"time":1426279439.123,"host":"web01","source":"sluice","sourcetype":"_json","index":"main",
            "event":{"message":"x"},"fields":{"vendor":"withsecure","tags":["a","b"]}})
    );
    assert_eq!(
        events[1],
        json!({"time":1426279440,"host":"hec-emulator","source":"http:sluice","sourcetype":"httpevent","index":"main",
            "event":"second event as string","fields":{}})
    );
    // Without `time`, the receipt time.
    let received = events[2]["time"].as_f64().unwrap();
    assert!(received >= before && received < before + 60.0, "{received}");
    assert_eq!(events[2]["event"], 3);
}

#[tokio::test]
async fn every_event_endpoint_and_unknown_paths() {
    let hec = Hec::new(HecConfig::default()).await;
    for path in ["/services/collector", "/services/collector/event", "/services/collector/event/1.0"] {
        let request = hec.post(path).header("Authorization", format!("Splunk {TOKEN}")).body(r#"{"event":"e"}"#);
        assert_answer(&hec.send(request).await, 200, json!({"text":"Success","code":0}));
    }
    assert_eq!(hec.emulator.event_count(), 3);
    let not_found = json!({"text":"The requested URL was not found on this server.","code":404});
    let raw = hec.post("/services/collector/raw").header("Authorization", format!("Splunk {TOKEN}")).body("x");
    assert_answer(&hec.send(raw).await, 404, not_found.clone());
    let get = hec.http.get(format!("{}{EVENT}", hec.emulator.url())).header("Authorization", format!("Splunk {TOKEN}"));
    assert_answer(&hec.send(get).await, 404, not_found);
}

#[tokio::test]
async fn no_data() {
    let hec = Hec::new(HecConfig::default()).await;
    assert_answer(&hec.events("").await, 400, json!({"text":"No data","code":5}));
    assert_answer(&hec.events(" \n\t").await, 400, json!({"text":"No data","code":5}));
    assert_eq!(hec.emulator.event_count(), 0);
}

#[tokio::test]
async fn invalid_envelopes_are_numbered_and_the_prefix_is_indexed() {
    let hec = Hec::new(HecConfig { allowed_indexes: vec!["main".into(), "security".into()], ..HecConfig::default() }).await;
    let cases: [(&str, Value); 5] = [
        (r#"{"event":"a0"}{"event":"a1"}{"event":"a2""#, json!({"text":"Invalid data format","code":6,"invalid-event-number":2})),
        (r#"{"event":"b0"}{"time":5}{"event":"b2"}"#, json!({"text":"Event field is required","code":12,"invalid-event-number":1})),
        (r#"{"event":""}"#, json!({"text":"Event field cannot be blank","code":13,"invalid-event-number":0})),
        (
            r#"{"event":"d0","fields":{"ok":"1"}}{"event":"d1","fields":{"nested":{"a":1}}}"#,
            json!({"text":"Error in handling indexed fields","code":15,"invalid-event-number":1}),
        ),
        (
            r#"{"event":"e0","index":"security"}{"event":"e1"}{"event":"e2","index":"other"}{"event":"e3"}"#,
            json!({"text":"Incorrect index","code":7,"invalid-event-number":2}),
        ),
    ];
    for (body, expected) in cases {
        assert_answer(&hec.events(body).await, 400, expected);
    }
    let indexed: Vec<Value> = hec.emulator.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(indexed, ["a0", "a1", "b0", "d0", "e0", "e1"]);
    let indexes: Vec<Value> = hec.emulator.events().iter().map(|e| e["index"].clone()).collect();
    assert_eq!(indexes, ["main", "main", "main", "main", "security", "main"]);
    let array = hec.events(r#"[{"event":"x"}]"#).await;
    assert_answer(&array, 400, json!({"text":"Invalid data format","code":6,"invalid-event-number":0}));
    let fields_array = hec.events(r#"{"event":"x","fields":{"list":[{"a":1}]}}"#).await;
    assert_answer(&fields_array, 400, json!({"text":"Error in handling indexed fields","code":15,"invalid-event-number":0}));
}

#[tokio::test]
async fn gzip_bodies() {
    let hec = Hec::new(HecConfig::default()).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"event":"zipped 1"} {"event":"zipped 2"}"#).unwrap();
    let request =
        hec.post(EVENT).header("Authorization", format!("Splunk {TOKEN}")).header("Content-Encoding", "gzip").body(gz.finish().unwrap());
    assert_answer(&hec.send(request).await, 200, json!({"text":"Success","code":0}));
    let events: Vec<Value> = hec.emulator.events().iter().map(|e| e["event"].clone()).collect();
    assert_eq!(events, ["zipped 1", "zipped 2"]);
    let corrupt = hec.post(EVENT).header("Authorization", format!("Splunk {TOKEN}")).header("Content-Encoding", "gzip").body("not gzip");
    assert_answer(&hec.send(corrupt).await, 400, json!({"text":"Invalid data format","code":6,"invalid-event-number":0}));
}

#[tokio::test]
async fn indexer_acknowledgement() {
    let config = HecConfig { ack: true, ack_delay: Duration::from_millis(300), ..HecConfig::default() };
    let hec = Hec::new(config).await;
    let event = r#"{"event":"acked"}"#;
    assert_answer(&hec.events(event).await, 400, json!({"text":"Data channel is missing","code":10}));
    assert_answer(&hec.events_on("not-a-guid", event).await, 400, json!({"text":"Invalid data channel","code":11}));
    assert_eq!(hec.emulator.event_count(), 0);

    assert_answer(&hec.events_on(CHANNEL, event).await, 200, json!({"text":"Success","code":0,"ackId":0}));
    assert_answer(&hec.events_on(CHANNEL, event).await, 200, json!({"text":"Success","code":0,"ackId":1}));
    // `?channel=` works too, and every channel counts from 0.
    let other = "1d7b5c4a-9e8f-4a3b-8c2d-0e1f2a3b4c5d";
    let query = hec.post(&format!("{EVENT}?channel={other}")).header("Authorization", format!("Splunk {TOKEN}")).body(event);
    assert_answer(&hec.send(query).await, 200, json!({"text":"Success","code":0,"ackId":0}));
    assert_eq!(hec.emulator.pending_acks(), 3);

    assert_answer(&hec.acks(CHANNEL, &[0, 1, 7]).await, 200, json!({"acks":{"0":false,"1":false,"7":false}}));
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_answer(&hec.acks(CHANNEL, &[0, 1, 7]).await, 200, json!({"acks":{"0":true,"1":true,"7":false}}));
    assert_eq!(hec.emulator.pending_acks(), 1);
    // Reported true once, then forgotten.
    assert_answer(&hec.acks(CHANNEL, &[0, 1]).await, 200, json!({"acks":{"0":false,"1":false}}));

    let no_channel = hec.post("/services/collector/ack").header("Authorization", format!("Splunk {TOKEN}")).json(&json!({"acks":[0]}));
    assert_answer(&hec.send(no_channel).await, 400, json!({"text":"Data channel is missing","code":10}));
    let bad_body = hec
        .post("/services/collector/ack")
        .header("Authorization", format!("Splunk {TOKEN}"))
        .header("X-Splunk-Request-Channel", CHANNEL)
        .body("{\"acks\":\"all\"}");
    assert_answer(&hec.send(bad_body).await, 400, json!({"text":"Invalid data format","code":6}));
    let unauthenticated = hec.post("/services/collector/ack").header("X-Splunk-Request-Channel", CHANNEL).json(&json!({"acks":[0]}));
    assert_answer(&hec.send(unauthenticated).await, 401, json!({"text":"Token is required","code":2}));
}

#[tokio::test]
async fn lost_acks_never_turn_true() {
    let config = HecConfig { ack: true, ack_delay: Duration::from_millis(10), ..HecConfig::default() };
    let hec = Hec::new(config).await;
    hec.emulator.set_faults(HecFaults { lose_acks_rate: 1.0, ..HecFaults::default() });
    assert_answer(&hec.events_on(CHANNEL, r#"{"event":"e"}"#).await, 200, json!({"text":"Success","code":0,"ackId":0}));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_answer(&hec.acks(CHANNEL, &[0]).await, 200, json!({"acks":{"0":false}}));
    assert_eq!((hec.emulator.pending_acks(), hec.emulator.event_count()), (1, 1));
}

#[tokio::test]
async fn ack_endpoint_without_ack() {
    let hec = Hec::new(HecConfig::default()).await;
    assert_answer(&hec.acks(CHANNEL, &[0]).await, 400, json!({"text":"ACK is disabled","code":14}));
    // Without acknowledgement, no channel is needed and no ackId is given.
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 200, json!({"text":"Success","code":0}));
}

#[tokio::test]
async fn health() {
    let hec = Hec::new(HecConfig::default()).await;
    let healthy = json!({"text":"HEC is healthy","code":17});
    assert_answer(&hec.health(None).await, 200, healthy.clone());
    assert_answer(&hec.health(Some(&format!("Splunk {TOKEN}"))).await, 200, healthy.clone());
    let one_oh = hec.http.get(format!("{}/services/collector/health/1.0", hec.emulator.url()));
    assert_answer(&hec.send(one_oh).await, 200, healthy);
    assert_answer(&hec.health(Some("Splunk 99999999-0000-0000-0000-000000000000")).await, 400, json!({"text":"Invalid token","code":21}));

    hec.emulator.set_faults(HecFaults { unhealthy: true, ..HecFaults::default() });
    assert_answer(&hec.health(None).await, 503, json!({"text":"HEC is unhealthy, queues are full","code":18}));
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 503, json!({"text":"Server is busy","code":9}));
    assert_eq!(hec.emulator.event_count(), 0);
}

#[tokio::test]
async fn busy_and_error_faults_index_nothing() {
    let hec = Hec::new(HecConfig::default()).await;
    hec.emulator.set_faults(HecFaults { busy_rate: 1.0, ..HecFaults::default() });
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 503, json!({"text":"Server is busy","code":9}));
    hec.emulator.set_faults(HecFaults { error_rate: 1.0, ..HecFaults::default() });
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 500, json!({"text":"Internal server error","code":8}));
    // Authentication is checked before the server is found busy.
    let anonymous = hec.post(EVENT).body(r#"{"event":"e"}"#);
    assert_answer(&hec.send(anonymous).await, 401, json!({"text":"Token is required","code":2}));
    assert_eq!((hec.emulator.event_count(), hec.emulator.requests()), (0, 3));
    hec.emulator.set_faults(HecFaults::default());
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 200, json!({"text":"Success","code":0}));
}

#[tokio::test]
async fn reset_closes_without_an_answer() {
    let hec = Hec::new(HecConfig::default()).await;
    hec.emulator.set_faults(HecFaults { reset_rate: 1.0, ..HecFaults::default() });
    let request = hec.post(EVENT).header("Authorization", format!("Splunk {TOKEN}")).body(r#"{"event":"e"}"#);
    let error = request.send().await.expect_err("no answer");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    assert_eq!((hec.emulator.event_count(), hec.emulator.requests()), (0, 1));
    hec.emulator.set_faults(HecFaults::default());
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 200, json!({"text":"Success","code":0}));
}

#[tokio::test]
async fn delay_applies_to_every_answer() {
    let hec = Hec::new(HecConfig::default()).await;
    hec.emulator.set_faults(HecFaults { delay: Duration::from_millis(200), ..HecFaults::default() });
    let started = Instant::now();
    assert_answer(&hec.events(r#"{"event":"e"}"#).await, 200, json!({"text":"Success","code":0}));
    assert_answer(&hec.health(None).await, 200, json!({"text":"HEC is healthy","code":17}));
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn seeded_faults_replay() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let hec = Hec::new(HecConfig { seed, ..HecConfig::default() }).await;
        hec.emulator.set_faults(HecFaults { busy_rate: 0.3, error_rate: 0.2, ..HecFaults::default() });
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(hec.events(r#"{"event":"e"}"#).await.status);
        }
        assert_eq!(hec.emulator.event_count(), statuses.iter().filter(|s| **s == 200).count());
        statuses
    }
    let first = statuses(7).await;
    assert_eq!(first, statuses(7).await);
    assert!(first.contains(&200) && first.contains(&503) && first.contains(&500), "{first:?}");
}

#[tokio::test]
async fn concurrent_requests_do_not_interleave() {
    let hec = Hec::new(HecConfig::default()).await;
    let mut tasks = Vec::new();
    for request in 0..16 {
        let http = hec.http.clone();
        let url = format!("{}{EVENT}", hec.emulator.url());
        let body: String = (0..200).map(|i| format!(r#"{{"event":{{"request":{request},"i":{i}}}}}"#)).collect();
        tasks.push(tokio::spawn(async move {
            let response = http.post(url).header("Authorization", format!("Splunk {TOKEN}")).body(body).send().await.unwrap();
            assert_eq!(response.status(), 200);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let events = hec.emulator.events();
    assert_eq!(events.len(), 16 * 200);
    for chunk in events.chunks(200) {
        let request = &chunk[0]["event"]["request"];
        for (i, event) in chunk.iter().enumerate() {
            assert_eq!((&event["event"]["request"], event["event"]["i"].as_u64()), (request, Some(i as u64)));
        }
    }
}

#[tokio::test]
async fn stop_releases_the_port() {
    let addr = sluice_emulators::ports::outside_ephemeral_range();
    let emulator = HecEmulator::start_on(addr, HecConfig::default()).await.unwrap();
    assert_eq!(reqwest::get(format!("{}/services/collector/health", emulator.url())).await.unwrap().status(), 200);
    emulator.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    tokio::net::TcpListener::bind(addr).await.expect("the port is free again");
}

#[tokio::test]
async fn the_binary_serves_until_terminated() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hec-emulator"))
        .args(["--listen", "127.0.0.1:0", "--token", TOKEN, "--ack", "--index", "main"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect(&line).to_string();
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{url}{EVENT}"))
        .header("Authorization", format!("Splunk {TOKEN}"))
        .header("X-Splunk-Request-Channel", CHANNEL)
        .body(r#"{"event":"e","index":"main"}{"event":"f"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"text":"Success","code":0,"ackId":0}));
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "requests 1, events indexed 2, acks pending 1\n");
}

/// Loopback throughput, for `cargo test --release -- --ignored throughput --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn throughput() {
    let hec = Hec::new(HecConfig::default()).await;
    let event = r#"{"time":1714000000.123,"host":"web01","source":"sluice","sourcetype":"_json","index":"main","event":{"id":"0c4b2fe9-c1d7-36d5-bec0-ad6ffb896669_46","severity":"high","engine":"edr","message":"Suspicious process launched by Office application","device":{"name":"laptop-17","ip":"10.1.2.3"}},"fields":{"vendor":"withsecure","org_id":"4de5"}}"#;
    let body: String = std::iter::repeat_n(event, 500).collect::<Vec<_>>().join("\n");
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (http, url, body) = (hec.http.clone(), format!("{}{EVENT}", hec.emulator.url()), body.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..150 {
                let r = http.post(&url).header("Authorization", format!("Splunk {TOKEN}")).body(body.clone()).send().await.unwrap();
                assert_eq!(r.status(), 200);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let rate = hec.emulator.event_count() as f64 / started.elapsed().as_secs_f64();
    println!("HEC: {} events in {:?}: {rate:.0} events/s", hec.emulator.event_count(), started.elapsed());
}
