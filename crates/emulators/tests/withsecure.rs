//! The WithSecure Elements emulator over HTTP, as clients see it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use sluice_emulators::withsecure::{Emulator, Options};

const EVENTS: &str = "/security-events/v1/security-events";
const ORGANIZATIONS: &str = "/organizations/v1/organizations";
const TOKEN: &str = "/as/token.oauth2";

fn jan1() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0).unwrap()
}

/// An emulator with organizations `org` and `other`, and client `id`/`secret` of `org`.
struct Api {
    emulator: Emulator,
    http: reqwest::Client,
}

impl Api {
    async fn new(options: Options) -> Api {
        let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
        emulator.add_organization("org", "Org", "company");
        emulator.add_organization("other", "Other", "company");
        emulator.add_client("id", "secret", "org", &[]);
        Api { emulator, http: reqwest::Client::builder().user_agent("emulator-test").build().unwrap() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.url())
    }

    async fn token_as(&self, id: &str, secret: &str) -> String {
        let form = [("grant_type", "client_credentials"), ("scope", "connect.api.read")];
        let r = self.http.post(self.url(TOKEN)).basic_auth(id, Some(secret)).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["token_type"], "Bearer");
        body["access_token"].as_str().unwrap().to_string()
    }

    async fn token(&self) -> String {
        self.token_as("id", "secret").await
    }

    async fn events(&self, token: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url(EVENTS)).bearer_auth(token).form(form).send().await.unwrap()
    }

    async fn events_ok(&self, token: &str, form: &[(&str, &str)]) -> Value {
        let r = self.events(token, form).await;
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    /// Follows `nextAnchor` to the end; the ids of every page.
    async fn all_pages(&self, token: &str, form: &[(&str, &str)]) -> Vec<Vec<String>> {
        let mut pages = Vec::new();
        let mut anchor: Option<String> = None;
        loop {
            let mut f = form.to_vec();
            if let Some(a) = &anchor {
                f.push(("anchor", a));
            }
            let body = self.events_ok(token, &f).await;
            pages.push(ids(&body));
            match body.get("nextAnchor") {
                Some(a) => anchor = Some(a.as_str().unwrap().to_string()),
                None => return pages,
            }
        }
    }
}

fn ids(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
}

/// The emulated events of `org` in (persistenceTimestamp, id) order, as the API sorts them.
fn sorted_keys(emulator_ids: &[String], timestamps: impl Fn(usize) -> DateTime<Utc>) -> Vec<String> {
    let mut keyed: Vec<(DateTime<Utc>, &String)> = emulator_ids.iter().enumerate().map(|(i, id)| (timestamps(i), id)).collect();
    keyed.sort();
    keyed.into_iter().map(|(_, id)| id.clone()).collect()
}

async fn error_body(r: reqwest::Response) -> (u16, Option<String>, Value) {
    let status = r.status().as_u16();
    let transaction = r.headers().get("x-transaction").map(|v| v.to_str().unwrap().to_string());
    (status, transaction, r.json().await.unwrap())
}

#[tokio::test]
async fn paging_returns_every_event_once_in_ascending_order_across_shared_timestamps() {
    let api = Api::new(Options::default()).await;
    // 500 events on 3 instants (170, 170, 160): both 200-item page boundaries fall inside one.
    let generated = api.emulator.generate("org", 500, jan1(), 170);
    assert_eq!(api.emulator.event_count("org"), 500);
    let token = api.token().await;
    let form = [("engineGroup", "epp"), ("order", "asc"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    let pages = api.all_pages(&token, &form).await;
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), [200, 200, 100]);
    let seen: Vec<String> = pages.concat();
    let expected = sorted_keys(&generated, |i| jan1() + chrono::Duration::milliseconds((i / 170) as i64));
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn descending_is_the_default_and_pages_the_other_way() {
    let api = Api::new(Options::default()).await;
    let generated = api.emulator.generate("org", 450, jan1(), 100);
    let token = api.token().await;
    let form = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z"), ("limit", "120")];
    let seen = api.all_pages(&token, &form).await.concat();
    let mut expected = sorted_keys(&generated, |i| jan1() + chrono::Duration::milliseconds((i / 100) as i64));
    expected.reverse();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn anchors_stay_exact_when_events_arrive_between_pages() {
    let api = Api::new(Options::default()).await;
    let generated = api.emulator.generate("org", 300, jan1(), 100);
    let token = api.token().await;
    let form = [("engineGroup", "epp"), ("order", "asc"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    let first = api.events_ok(&token, &form).await;
    let anchor = first["nextAnchor"].as_str().unwrap().to_string();
    // Events before the anchor's position (same instant as page 1's last item, smaller id) and
    // after the end arrive meanwhile.
    let last_ts = first["items"][199]["persistenceTimestamp"].as_str().unwrap().to_string();
    let early = json!({"id": "!early", "persistenceTimestamp": last_ts, "engine": "deepGuard", "severity": "info"});
    let late = json!({"id": "late", "persistenceTimestamp": "2024-01-01T00:00:01Z", "engine": "amsi", "severity": "info"});
    api.emulator.push_events("org", vec![early, late]);
    let mut rest = form.to_vec();
    rest.push(("anchor", &anchor));
    let second = api.events_ok(&token, &rest).await;
    assert!(second.get("nextAnchor").is_none());
    let mut seen = ids(&first);
    seen.extend(ids(&second));
    let mut expected = sorted_keys(&generated, |i| jan1() + chrono::Duration::milliseconds((i / 100) as i64));
    expected.push("late".into());
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn invalid_anchors_are_rejected() {
    let api = Api::new(Options::default()).await;
    api.emulator.generate("org", 20, jan1(), 1);
    let token = api.token().await;
    let asc = [("engineGroup", "epp"), ("order", "asc"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z"), ("limit", "5")];
    let anchor = api.events_ok(&token, &asc).await["nextAnchor"].as_str().unwrap().to_string();
    let mut desc = asc.to_vec();
    desc[1] = ("order", "desc");
    desc.push(("anchor", &anchor));
    assert_eq!(api.events(&token, &desc).await.status(), 400, "an ascending anchor replayed descending");
    let mut garbage = asc.to_vec();
    garbage.push(("anchor", "garbage"));
    let (status, _, body) = error_body(api.events(&token, &garbage).await).await;
    assert_eq!((status, body["code"].as_u64()), (400, Some(400_000)));
}

#[tokio::test]
async fn exclusive_start_excludes_the_start_instant_compared_as_instants() {
    let api = Api::new(Options::default()).await;
    api.emulator.generate("org", 10, jan1(), 5); // 5 at .000, 5 at .001
    let token = api.token().await;
    // The same instant written with another offset and more digits.
    let start = "2024-01-01T01:00:00.000000+01:00";
    let inclusive = api.events_ok(&token, &[("engineGroup", "epp"), ("persistenceTimestampStart", start)]).await;
    let exclusive =
        api.events_ok(&token, &[("engineGroup", "epp"), ("persistenceTimestampStart", start), ("exclusiveStart", "true")]).await;
    assert_eq!(ids(&inclusive).len(), 10);
    assert_eq!(ids(&exclusive).len(), 5);
    assert!(exclusive["items"].as_array().unwrap().iter().all(|e| e["persistenceTimestamp"] == "2024-01-01T00:00:00.001Z"));
    let until = api.events_ok(&token, &[("engineGroup", "epp"), ("persistenceTimestampEnd", "2024-01-01T00:00:00Z")]).await;
    assert_eq!(ids(&until).len(), 5, "the end is inclusive");
}

#[tokio::test]
async fn engines_groups_severity_and_get_queries() {
    let api = Api::new(Options::default()).await;
    let event = |id: &str, engine: &str, severity: &str| json!({"id": id, "persistenceTimestamp": "2024-01-01T00:00:00.000Z", "engine": engine, "severity": severity});
    api.emulator.push_events(
        "org",
        vec![
            event("a", "amsi", "warning"),
            event("b", "edr", "critical"),
            event("c", "emailScan", "info"),
            event("d", "xmRecommendation", "info"),
        ],
    );
    let token = api.token().await;
    let start = ("persistenceTimestampStart", "2024-01-01T00:00:00Z");
    let got = |body: Value| {
        let mut v = ids(&body);
        v.sort();
        v
    };
    assert_eq!(got(api.events_ok(&token, &[("engine", "AMSI"), start]).await), ["a"]);
    assert_eq!(api.events_ok(&token, &[("engine", "AMSI"), start]).await["items"][0]["engine"], "amsi");
    assert_eq!(got(api.events_ok(&token, &[("engineGroup", "epp"), ("engineGroup", "edr"), start]).await), ["a", "b"]);
    assert_eq!(got(api.events_ok(&token, &[("engineGroup", "epp,edr,ecp"), start]).await), ["a", "b", "c"]);
    assert_eq!(got(api.events_ok(&token, &[("engineGroup", "xm"), start]).await), ["d"]);
    let severe = [("engineGroup", "epp,edr,ecp,xm"), ("severity", "critical"), ("severity", "warning"), start];
    assert_eq!(got(api.events_ok(&token, &severe).await), ["a", "b"]);
    let by_get = api.http.get(api.url(EVENTS)).bearer_auth(&token).query(&[("engineGroup", "edr"), start]).send().await.unwrap();
    assert_eq!(by_get.status(), 200);
    assert_eq!(got(by_get.json().await.unwrap()), ["b"]);
    // Aggregation mode of the same endpoint.
    let counts: Value = api
        .http
        .post(api.url(EVENTS))
        .bearer_auth(&token)
        .header("Accept", "application/vnd.withsecure.aggr+json")
        .form(&[("engineGroup", "epp,edr,ecp,xm"), ("count", "severity"), start])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(counts["items"][0], json!({"severity": "info", "count": 2}));
}

#[tokio::test]
async fn bad_queries_are_400() {
    let api = Api::new(Options::default()).await;
    let token = api.token().await;
    let start = ("persistenceTimestampStart", "2024-01-01T00:00:00Z");
    for form in [
        vec![start],
        vec![("engineGroup", "epp")],
        vec![("engineGroup", "nope"), start],
        vec![("engineGroup", "epp"), ("persistenceTimestampStart", "yesterday")],
        vec![("engineGroup", "epp"), start, ("limit", "201")],
        vec![("engineGroup", "epp"), start, ("limit", "0")],
        vec![("engineGroup", "epp"), start, ("order", "up")],
    ] {
        let (status, transaction, body) = error_body(api.events(&token, &form).await).await;
        assert_eq!(status, 400, "{form:?}");
        assert_eq!(body["code"], 400_000);
        assert_eq!(body["transactionId"].as_str(), transaction.as_deref());
        assert!(body["message"].is_string());
    }
}

#[tokio::test]
async fn a_missing_user_agent_is_400_and_every_answer_has_a_transaction() {
    let api = Api::new(Options::default()).await;
    let bare = reqwest::Client::new();
    let r = bare.post(api.url(TOKEN)).basic_auth("id", Some("secret")).send().await.unwrap();
    let (status, transaction, body) = error_body(r).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "User-Agent header is required.");
    assert_eq!(body["code"], 400_001);
    assert_eq!(body["transactionId"].as_str(), transaction.as_deref());
    let token = api.token().await;
    let ok = api.events(&token, &[("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")]).await;
    assert!(ok.headers().get("x-transaction").unwrap().to_str().unwrap().starts_with("0000-"));
    let recorded = api.emulator.requests();
    assert_eq!(recorded[0].status, 400);
    assert_eq!(recorded[0].user_agent, None);
    assert_eq!(recorded[0].client_id.as_deref(), Some("id"));
    assert_eq!(recorded[1].user_agent.as_deref(), Some("emulator-test"));
}

#[tokio::test]
async fn the_token_endpoint_takes_basic_credentials_only() {
    let api = Api::new(Options::default()).await;
    let post = |form: Vec<(&'static str, &'static str)>, basic: Option<(&'static str, &'static str)>| {
        let mut r = api.http.post(api.url(TOKEN)).form(&form);
        if let Some((id, secret)) = basic {
            r = r.basic_auth(id, Some(secret));
        }
        r.send()
    };
    let grant = vec![("grant_type", "client_credentials"), ("scope", "connect.api.read")];

    let ok: Value = post(grant.clone(), Some(("id", "secret"))).await.unwrap().json().await.unwrap();
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"], 1799);
    assert!(ok["access_token"].as_str().unwrap().len() >= 32);

    let cases = [
        (grant.clone(), Some(("id", "wrong")), 401, "invalid_client"),
        (grant.clone(), Some(("nobody", "secret")), 401, "invalid_client"),
        (grant.clone(), None, 401, "invalid_client"),
        ([grant.clone(), vec![("client_id", "id"), ("client_secret", "secret")]].concat(), None, 400, "invalid_request"),
        (vec![("grant_type", "password"), ("scope", "connect.api.read")], Some(("id", "secret")), 400, "unsupported_grant_type"),
        (vec![("grant_type", "client_credentials")], Some(("id", "secret")), 400, "invalid_scope"),
    ];
    for (form, basic, status, error) in cases {
        let r = post(form.clone(), basic).await.unwrap();
        assert_eq!(r.status(), status, "{form:?} {basic:?}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], error, "{form:?} {basic:?}");
        assert!(body["error_description"].is_string());
    }
    let two_scopes = vec![("grant_type", "client_credentials"), ("scope", "connect.api.read connect.api.write")];
    assert_eq!(post(two_scopes, Some(("id", "secret"))).await.unwrap().status(), 200);
}

#[tokio::test]
async fn tokens_expire_and_can_be_revoked() {
    let api = Api::new(Options { token_ttl: Duration::from_millis(300), ..Options::default() }).await;
    let form = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    let no_token = api.http.post(api.url(EVENTS)).form(&form).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    let token = api.token().await;
    assert_eq!(api.events(&token, &form).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _, body) = error_body(api.events(&token, &form).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Unauthorized.");
    assert_eq!(body["code"], 401_000);

    let api = Api::new(Options::default()).await;
    let token = api.token().await;
    api.emulator.expire_tokens();
    assert_eq!(api.events(&token, &form).await.status(), 401);
    let fresh = api.token().await;
    assert_eq!(api.events(&fresh, &form).await.status(), 200);
    assert_eq!(api.emulator.requests().last().unwrap().client_id.as_deref(), Some("id"));
}

#[tokio::test]
async fn injected_faults_come_first_then_the_api_answers_again() {
    let api = Api::new(Options::default()).await;
    let token = api.token().await;
    let form = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    api.emulator.throttle_next(2, 7);
    for _ in 0..2 {
        let r = api.events(&token, &form).await;
        assert_eq!(r.status(), 429);
        assert_eq!(r.headers()["retry-after"], "7");
        let (_, transaction, body) = error_body(r).await;
        assert_eq!(body["code"], 429_000);
        assert_eq!(body["transactionId"].as_str(), transaction.as_deref());
    }
    api.emulator.fail_next(1, 503);
    let (status, _, body) = error_body(api.events(&token, &form).await).await;
    assert_eq!((status, body["code"].as_u64()), (503, Some(503_000)));
    // Before the User-Agent check and the token endpoint, too.
    api.emulator.fail_next(1, 502);
    assert_eq!(reqwest::Client::new().post(api.url(TOKEN)).send().await.unwrap().status(), 502);
    assert_eq!(api.events(&token, &form).await.status(), 200);
}

#[tokio::test]
async fn the_server_side_rate_limit_counts_every_request_of_a_client() {
    let api = Api::new(Options { rate_limit_per_minute: Some(3), ..Options::default() }).await;
    let token = api.token().await; // 1
    let form = [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")];
    assert_eq!(api.events(&token, &form).await.status(), 200); // 2
    assert_eq!(api.http.get(api.url("/whoami/v1/whoami")).bearer_auth(&token).send().await.unwrap().status(), 200); // 3
    let r = api.events(&token, &form).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((59..=60).contains(&retry), "{retry}");
    let (_, _, body) = error_body(r).await;
    assert_eq!(body["code"], 429_000);
    // Per client: another one is not affected.
    api.emulator.add_client("id2", "secret2", "org", &[]);
    api.token_as("id2", "secret2").await;
    assert_eq!(api.emulator.max_requests_in_any_minute("id"), 4);
    assert_eq!(api.emulator.max_requests_in_any_minute("id2"), 1);
}

#[tokio::test]
async fn organizations_page_and_partners_read_their_customers() {
    let api = Api::new(Options::default()).await;
    api.emulator.add_organization("partner", "MSP", "partner");
    let customers: Vec<String> = (0..250).map(|i| format!("c{i:03}")).collect();
    for c in &customers {
        api.emulator.add_organization(c, &format!("Customer {c}"), "company");
    }
    let refs: Vec<&str> = customers.iter().map(String::as_str).collect();
    api.emulator.add_client("msp", "msp-secret", "partner", &refs);
    api.emulator.generate("c007", 3, jan1(), 1);
    let token = api.token_as("msp", "msp-secret").await;

    let mut listed = Vec::new();
    let mut anchor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = vec![("limit", "100".to_string())];
        if let Some(a) = &anchor {
            q.push(("anchor", a.clone()));
        }
        let body: Value = api.http.get(api.url(ORGANIZATIONS)).bearer_auth(&token).query(&q).send().await.unwrap().json().await.unwrap();
        pages += 1;
        listed.extend(body["items"].as_array().unwrap().iter().cloned());
        match body.get("nextAnchor") {
            Some(a) => anchor = Some(a.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(listed.len(), 251);
    assert_eq!(listed.iter().map(|o| o["id"].as_str().unwrap()).collect::<HashSet<_>>().len(), 251);
    assert!(listed.contains(&json!({"id": "c007", "name": "Customer c007", "type": "company"})));

    let get = |q: Vec<(&'static str, &'static str)>| api.http.get(api.url(ORGANIZATIONS)).bearer_auth(&token).query(&q).send();
    let partners: Value = get(vec![("type", "partner")]).await.unwrap().json().await.unwrap();
    assert_eq!(partners["items"], json!([{"id": "partner", "name": "MSP", "type": "partner"}]));
    assert_eq!(get(vec![("organizationId", "other")]).await.unwrap().status(), 403);
    assert_eq!(get(vec![("type", "reseller")]).await.unwrap().status(), 400);
    assert_eq!(get(vec![("limit", "201")]).await.unwrap().status(), 400);

    let form = |org| [("engineGroup", "epp"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z"), ("organizationId", org)];
    assert_eq!(ids(&api.events_ok(&token, &form("c007")).await).len(), 3);
    let (status, _, body) = error_body(api.events(&token, &form("other")).await).await;
    assert_eq!((status, body["code"].as_u64()), (403, Some(403_000)));
    let own = api.token().await;
    assert_eq!(api.events(&own, &form("c007")).await.status(), 403);

    let whoami: Value = api.http.get(api.url("/whoami/v1/whoami")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(whoami, json!({"clientId": "msp", "organizationId": "partner"}));
}

#[tokio::test]
async fn generated_events_look_real() {
    let api = Api::new(Options::default()).await;
    let first = api.emulator.generate("org", 60, jan1(), 1);
    let second = api.emulator.generate("org", 60, jan1() + chrono::Duration::seconds(1), 1);
    let all: HashSet<&String> = first.iter().chain(&second).collect();
    assert_eq!(all.len(), 120);
    assert!(first.iter().all(|id| id.rsplit_once('_').is_some_and(|(u, n)| u.len() == 36 && n.parse::<u32>().is_ok())));
    let token = api.token().await;
    let body =
        api.events_ok(&token, &[("engineGroup", "epp"), ("order", "asc"), ("persistenceTimestampStart", "2024-01-01T00:00:00Z")]).await;
    let items = body["items"].as_array().unwrap();
    let engines: HashSet<&str> = items.iter().map(|e| e["engine"].as_str().unwrap()).collect();
    assert!(engines.len() >= 15, "cycles through the samples: {engines:?}");
    assert!(engines.contains("amsi"));
    for e in items {
        assert_eq!(e["organization"], json!({"name": "Org", "id": "org"}));
        assert!(e["details"].as_object().unwrap().values().all(Value::is_string));
    }
    assert_eq!(items[0]["persistenceTimestamp"], "2024-01-01T00:00:00.000Z");
}

#[tokio::test]
async fn a_delay_slows_every_answer() {
    let api = Api::new(Options::default()).await;
    api.emulator.set_delay(Duration::from_millis(200));
    let started = Instant::now();
    api.token().await;
    assert!(started.elapsed() >= Duration::from_millis(200));
    api.emulator.set_delay(Duration::ZERO);
    let started = Instant::now();
    api.token().await;
    assert!(started.elapsed() < Duration::from_millis(200));
}

#[tokio::test]
async fn the_binary_serves_tenants() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_withsecure-emulator"))
        .args(["--listen", "127.0.0.1:0", "--tenants", "2", "--events", "250", "--per-timestamp", "50"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect(&line).to_string();
    let http = reqwest::Client::builder().user_agent("emulator-test").build().unwrap();
    let token: Value = http
        .post(format!("{url}{TOKEN}"))
        .basic_auth("client1", Some("secret1"))
        .form(&[("grant_type", "client_credentials"), ("scope", "connect.api.read")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let body: Value = http
        .get(format!("{url}{EVENTS}"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .query(&[("engineGroup", "epp"), ("persistenceTimestampStart", "2000-01-01T00:00:00Z"), ("limit", "200")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ids(&body).len(), 200);
    assert!(body.get("nextAnchor").is_some());
    assert_eq!(body["items"][0]["organization"]["id"], "tenant1");
}
