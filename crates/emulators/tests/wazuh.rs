//! The Wazuh server API emulator over HTTP, as an API client sees it.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sluice_emulators::wazuh::{Agent, FimEntry, Package, WazuhConfig, WazuhEmulator, WazuhFaults};

const LOGIN: &str = "/security/user/authenticate";
const JSON: &str = "application/json";
const PROBLEM: &str = "application/problem+json; charset=utf-8";

struct Api {
    emulator: WazuhEmulator,
    http: reqwest::Client,
}

/// Status, `Content-Type`, raw text and parsed body of an answer.
struct Answer {
    status: u16,
    content_type: String,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

impl Api {
    async fn new(config: WazuhConfig) -> Api {
        Api { emulator: WazuhEmulator::start(config).await.unwrap(), http: reqwest::Client::new() }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.emulator.url())
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer { status, content_type, headers, text, body }
    }

    async fn login_as(&self, user: &str, password: &str) -> Answer {
        self.send(self.http.post(self.url(LOGIN)).basic_auth(user, Some(password))).await
    }

    async fn token(&self) -> String {
        let answer = self.login_as("wazuh", "wazuh").await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.body["data"]["token"].as_str().unwrap().to_string()
    }

    async fn get(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Answer {
        self.send(self.http.get(self.url(path)).bearer_auth(token).query(query)).await
    }

    /// A 200 answer's body.
    async fn ok(&self, token: &str, path: &str, query: &[(&str, &str)]) -> Value {
        let answer = self.get(token, path, query).await;
        assert_eq!((answer.status, answer.content_type.as_str()), (200, JSON), "{}", answer.text);
        answer.body
    }
}

fn assert_problem(answer: &Answer, status: u16, body: Value) {
    assert_eq!((answer.status, &answer.body), (status, &body), "{}", answer.text);
    assert_eq!(answer.content_type, PROBLEM);
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn claims(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(), 132);
    let decode = |p: &str| serde_json::from_slice::<Value>(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap();
    (decode(parts[0]), decode(parts[1]))
}

fn ubuntu_agent() -> Agent {
    Agent {
        id: "001".into(),
        name: "web-01".into(),
        ip: "10.0.0.5".into(),
        status: "active".into(),
        os_platform: "ubuntu".into(),
        os_name: "Ubuntu".into(),
        os_version: "20.04.6 LTS".into(),
        last_keep_alive: at("2024-05-01T10:00:00Z"),
        version: "Wazuh v4.14.7".into(),
        groups: vec!["default".into(), "web".into()],
    }
}

fn packages() -> Vec<Package> {
    let p = |name: &str, version: &str, description: &str| Package {
        name: name.into(),
        version: version.into(),
        architecture: "amd64".into(),
        vendor: "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>".into(),
        format: "deb".into(),
        description: description.into(),
    };
    vec![
        p("openssh-client", "1:8.2p1-4ubuntu0.2", "secure shell (SSH) client, for secure access to remote machines"),
        p("libquadmath0", "8.4.0-1ubuntu1~18.04", "GCC Quad-Precision Math Library"),
        p("curl", "7.68.0-1ubuntu2.22", "command line tool for transferring data with URL syntax"),
    ]
}

fn fim() -> Vec<FimEntry> {
    let f = |file: &str, mtime: &str, size: u64| FimEntry {
        file: file.into(),
        size,
        sha256: "50f35af8ac4a5df3690991a4b428fa49d56580b0020fcc6e38283b3b1b2e6c74".into(),
        md5: "731423fa8ba067262f8ef37882d1e742".into(),
        sha1: "b65f7f2af66c53b51765877bbe91a22bc6fca1e2".into(),
        mtime: at(mtime),
        perm: "rw-r--r--".into(),
        uname: "root".into(),
        changes: 1,
    };
    vec![
        f("/etc/passwd", "2024-03-01T00:00:00Z", 2280),
        f("/etc/dpkg/origins/debian", "2009-02-02T23:06:58Z", 82),
        f("/etc/hosts", "2023-01-01T12:00:00Z", 221),
    ]
}

#[tokio::test]
async fn login_answers_a_jwt_as_json_or_raw() {
    let api = Api::new(WazuhConfig::default()).await;
    let answer = api.login_as("wazuh", "wazuh").await;
    assert_eq!((answer.status, answer.content_type.as_str()), (200, JSON));
    // Written by Python's json.dumps.
    assert!(answer.text.starts_with(r#"{"data": {"token": ""#) && answer.text.ends_with(r#""}, "error": 0}"#), "{}", answer.text);
    let token = answer.body["data"]["token"].as_str().unwrap();
    let (header, claims) = claims(token);
    assert_eq!(header, json!({"alg": "ES512", "typ": "JWT"}));
    let nbf = claims["nbf"].as_i64().unwrap();
    assert!((Utc::now().timestamp() - nbf).abs() <= 2);
    assert_eq!(
        claims,
        json!({"iss": "wazuh", "aud": "Wazuh API REST", "nbf": nbf, "exp": nbf + 900, "sub": "wazuh",
               "run_as": false, "rbac_roles": [1], "rbac_mode": "white"})
    );
    assert_eq!(answer.headers["server"], "Wazuh");
    assert!(api.get(token, "/agents", &[]).await.status == 200);

    let raw = api.send(api.http.post(api.url(LOGIN)).query(&[("raw", "true")]).basic_auth("wazuh", Some("wazuh"))).await;
    assert_eq!((raw.status, raw.content_type.as_str()), (200, "text/plain; charset=utf-8"));
    assert_eq!(raw.text.split('.').count(), 3);
    assert_eq!(api.get(&raw.text, "/agents", &[]).await.status, 200);

    // The deprecated GET login still works, and says so.
    let get = api.send(api.http.get(api.url(LOGIN)).basic_auth("wazuh", Some("wazuh"))).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.headers["deprecated"], "true");
    assert!(get.body["data"]["token"].is_string());

    let bad = api.send(api.http.post(api.url(LOGIN)).query(&[("raw", "maybe")]).basic_auth("wazuh", Some("wazuh"))).await;
    assert_problem(&bad, 400, json!({"title": "Bad Request", "detail": "Wrong type, expected 'boolean' for query parameter 'raw'"}));
    assert_eq!(api.emulator.tokens_issued(), 3);
}

#[tokio::test]
async fn wrong_or_missing_credentials_are_401() {
    let api = Api::new(WazuhConfig { user: "sluice".into(), password: "s3cret".into(), ..WazuhConfig::default() }).await;
    let invalid = json!({"title": "Unauthorized", "detail": "Invalid credentials"});
    assert_problem(&api.login_as("sluice", "wrong").await, 401, invalid.clone());
    assert_problem(&api.login_as("wazuh", "wazuh").await, 401, invalid.clone());
    assert_problem(&api.send(api.http.post(api.url(LOGIN))).await, 401, invalid.clone());
    assert_problem(&api.send(api.http.post(api.url(LOGIN)).bearer_auth("x")).await, 401, invalid);
    assert_eq!(api.login_as("sluice", "s3cret").await.status, 200);
    assert_eq!(api.emulator.tokens_issued(), 1);
}

#[tokio::test]
async fn too_many_failed_logins_block_the_client_for_block_time() {
    let config = WazuhConfig { max_login_attempts: 3, block_time: Duration::from_millis(1500), ..WazuhConfig::default() };
    let api = Api::new(config).await;
    for _ in 0..3 {
        assert_eq!(api.login_as("wazuh", "nope").await.status, 401);
    }
    let blocked = json!({"title": "Permission Denied",
        "detail": "Limit of login attempts reached. The current IP has been blocked due to a high number of login attempts"});
    // Even the right credentials are refused while blocked.
    assert_problem(&api.login_as("wazuh", "wazuh").await, 403, blocked.clone());
    assert_problem(&api.send(api.http.get(api.url(LOGIN)).basic_auth("wazuh", Some("wazuh"))).await, 403, blocked);
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(api.login_as("wazuh", "wazuh").await.status, 200);
}

#[tokio::test]
async fn endpoints_need_a_valid_bearer_token() {
    let api = Api::new(WazuhConfig::default()).await;
    let missing = json!({"title": "Unauthorized", "detail": "No authorization token provided"});
    assert_problem(&api.send(api.http.get(api.url("/agents"))).await, 401, missing.clone());
    assert_problem(&api.send(api.http.get(api.url("/")).basic_auth("wazuh", Some("wazuh"))).await, 401, missing.clone());
    assert_problem(&api.send(api.http.get(api.url("/syscheck/001")).header("Authorization", "Bearer")).await, 401, missing);
    let invalid = json!({"title": "Unauthorized", "detail": "Invalid token"});
    assert_problem(&api.get("not.a.token", "/agents", &[]).await, 401, invalid.clone());

    let token = api.token().await;
    assert_eq!(api.get(&token, "/syscollector/000/os", &[]).await.status, 200);
    api.emulator.expire_tokens();
    assert_problem(&api.get(&token, "/agents", &[]).await, 401, invalid.clone());
    // Authentication comes before parameter checks.
    assert_problem(&api.get(&token, "/agents", &[("limit", "0")]).await, 401, invalid);
    let fresh = api.token().await;
    assert_eq!(api.get(&fresh, "/agents", &[]).await.status, 200);
    assert_eq!(api.emulator.tokens_issued(), 2);
}

#[tokio::test]
async fn tokens_expire_after_their_lifetime() {
    let api = Api::new(WazuhConfig { token_lifetime: Duration::from_secs(1), ..WazuhConfig::default() }).await;
    let token = api.token().await;
    let (_, claims) = claims(&token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(), 1);
    assert_eq!(api.get(&token, "/agents", &[]).await.status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_problem(&api.get(&token, "/agents", &[]).await, 401, json!({"title": "Unauthorized", "detail": "Invalid token"}));
}

#[tokio::test]
async fn api_info() {
    let api = Api::new(WazuhConfig::default()).await;
    let token = api.token().await;
    let mut body = api.ok(&token, "/", &[]).await;
    let timestamp = body["data"]["timestamp"].take();
    assert!(DateTime::parse_from_rfc3339(timestamp.as_str().unwrap()).is_ok() && timestamp.as_str().unwrap().ends_with('Z'));
    assert_eq!(
        body,
        json!({"data": {"title": "Wazuh API REST", "api_version": "4.14.7", "revision": "rc1", "license_name": "GPL 2.0",
            "license_url": "https://github.com/wazuh/wazuh/blob/v4.14.7/LICENSE", "hostname": "wazuh-manager",
            "timestamp": null}, "error": 0})
    );
    let pretty = api.get(&token, "/", &[("pretty", "true")]).await;
    assert!(pretty.text.starts_with("{\n   \"data\": {\n      \"title\": \"Wazuh API REST\",\n"), "{}", pretty.text);
}

#[tokio::test]
async fn agents_pages_cover_every_agent_once() {
    let api = Api::new(WazuhConfig::default()).await;
    api.emulator.generate(57, 0, 0);
    let token = api.token().await;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (o, l) = (offset.to_string(), "10".to_string());
        let body = api.ok(&token, "/agents", &[("offset", &o), ("limit", &l), ("select", "id,name")]).await;
        assert_eq!(body["data"]["total_affected_items"], 58);
        assert_eq!(body["message"], "All selected agents information was returned");
        let items = body["data"]["affected_items"].as_array().unwrap();
        if items.is_empty() {
            break;
        }
        seen.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_string()));
        offset += items.len();
    }
    let expected: Vec<String> = (0..=57).map(|i| format!("{i:03}")).collect();
    assert_eq!(seen, expected);

    // The default page is 500 agents; the manager comes first.
    let all = api.ok(&token, "/agents", &[]).await;
    assert_eq!(all["data"]["affected_items"].as_array().unwrap().len(), 58);
    let manager = &all["data"]["affected_items"][0];
    assert_eq!((&manager["id"], &manager["ip"], &manager["status"]), (&json!("000"), &json!("127.0.0.1"), &json!("active")));
    assert_eq!(manager["lastKeepAlive"], "9999-12-31T23:59:59+00:00");
    assert_eq!(manager["registerIP"], "127.0.0.1");

    // The same seed gives the same fleet.
    let again = Api::new(WazuhConfig::default()).await;
    again.emulator.generate(57, 0, 0);
    let other = again.ok(&again.token().await, "/agents", &[("select", "name,ip,os.name")]).await;
    let names = api.ok(&token, "/agents", &[("select", "name,ip,os.name")]).await;
    assert_eq!(names["data"]["affected_items"], other["data"]["affected_items"]);
}

#[tokio::test]
async fn agent_items_have_the_api_shape() {
    let api = Api::new(WazuhConfig::default()).await;
    api.emulator.upsert_agent(ubuntu_agent(), Vec::new(), Vec::new());
    let token = api.token().await;
    let body = api.ok(&token, "/agents", &[("agents_list", "001")]).await;
    let item = &body["data"]["affected_items"][0];
    let keys: HashSet<&str> = item.as_object().unwrap().keys().map(String::as_str).collect();
    let expected: HashSet<&str> = [
        "os",
        "lastKeepAlive",
        "id",
        "dateAdd",
        "configSum",
        "manager",
        "group",
        "registerIP",
        "ip",
        "name",
        "status",
        "mergedSum",
        "version",
        "node_name",
        "group_config_status",
        "status_code",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(
        item["os"],
        json!({"arch": "x86_64", "codename": "Focal Fossa", "major": "20", "minor": "04", "name": "Ubuntu", "platform": "ubuntu",
               "uname": "Linux |web-01 |5.4.0-193-generic |#213-Ubuntu SMP Fri Aug 2 19:14:16 UTC 2024 |x86_64", "version": "20.04.6 LTS"})
    );
    assert_eq!(item["lastKeepAlive"], "2024-05-01T10:00:00+00:00");
    assert_eq!(item["dateAdd"], "2024-05-01T10:00:00+00:00");
    assert_eq!(item["group"], json!(["default", "web"]));
    assert_eq!((&item["ip"], &item["registerIP"], &item["name"]), (&json!("10.0.0.5"), &json!("any"), &json!("web-01")));
    assert_eq!(
        (&item["manager"], &item["node_name"], &item["version"]),
        (&json!("wazuh-manager"), &json!("node01"), &json!("Wazuh v4.14.7"))
    );
    assert_eq!((&item["group_config_status"], &item["status_code"]), (&json!("synced"), &json!(0)));
    assert_eq!(item["configSum"].as_str().unwrap().len(), 32);
    assert_eq!(
        body,
        json!({"data": {"affected_items": [item], "total_affected_items": 1, "total_failed_items": 0, "failed_items": []},
               "message": "All selected agents information was returned", "error": 0})
    );

    // A never-connected agent has reported nothing.
    let never = Agent { id: "002".into(), name: "new".into(), status: "never_connected".into(), ..ubuntu_agent() };
    api.emulator.upsert_agent(never, Vec::new(), Vec::new());
    let body = api.ok(&token, "/agents", &[("agents_list", "002")]).await;
    let item = &body["data"]["affected_items"][0];
    assert_eq!(
        item,
        &json!({"id": "002", "dateAdd": item["dateAdd"], "group": ["default", "web"], "registerIP": "any", "ip": "10.0.0.5",
                "name": "new", "status": "never_connected", "node_name": "unknown", "group_config_status": "not synced", "status_code": 0})
    );

    // Unknown ids in agents_list are failed items; the rest still answer.
    let body = api.ok(&token, "/agents", &[("agents_list", "001,999"), ("select", "name")]).await;
    assert_eq!(
        body,
        json!({"data": {"affected_items": [{"name": "web-01", "id": "001"}], "total_affected_items": 1, "total_failed_items": 1,
            "failed_items": [{"error": {"code": 1701, "message": "Agent does not exist",
                "remediation": "Please, use `GET /agents?select=id,name` to find all available agents"}, "id": ["999"]}]},
            "message": "Some agents information was not returned", "error": 2})
    );

    // touch_agent moves lastKeepAlive only; remove_agent drops the agent.
    api.emulator.touch_agent("001", at("2024-06-01T00:00:00Z"));
    let body = api.ok(&token, "/agents", &[("agents_list", "001"), ("select", "lastKeepAlive,dateAdd")]).await;
    assert_eq!(
        body["data"]["affected_items"][0],
        json!({"lastKeepAlive": "2024-06-01T00:00:00+00:00", "id": "001", "dateAdd": "2024-05-01T10:00:00+00:00"})
    );
    api.emulator.remove_agent("001");
    api.emulator.remove_agent("000");
    let body = api.ok(&token, "/agents", &[("select", "id")]).await;
    assert_eq!(body["data"]["affected_items"], json!([{"id": "000"}, {"id": "002"}]));
}

#[tokio::test]
async fn agents_select_sort_search_q_and_status() {
    let api = Api::new(WazuhConfig::default()).await;
    let now = Utc::now();
    let agent = |id: &str, name: &str, status: &str, platform: &str, ago: i64| Agent {
        id: id.into(),
        name: name.into(),
        status: status.into(),
        os_platform: platform.into(),
        os_name: if platform == "windows" { "Microsoft Windows Server 2019 Datacenter".into() } else { "Ubuntu".into() },
        os_version: if platform == "windows" { "10.0.17763.6293".into() } else { "22.04.4 LTS".into() },
        last_keep_alive: now - chrono::Duration::seconds(ago),
        ..ubuntu_agent()
    };
    api.emulator.upsert_agent(agent("001", "web-01", "active", "ubuntu", 5), Vec::new(), Vec::new());
    api.emulator.upsert_agent(agent("002", "db-01", "disconnected", "ubuntu", 86400 * 3), Vec::new(), Vec::new());
    api.emulator.upsert_agent(agent("003", "WIN-DC-01", "disconnected", "windows", 3600), Vec::new(), Vec::new());
    api.emulator.upsert_agent(agent("004", "new-01", "never_connected", "ubuntu", 0), Vec::new(), Vec::new());
    let token = api.token().await;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]["affected_items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_string()).collect()
    };

    let body = api.ok(&token, "/agents", &[("select", "name,os.platform")]).await;
    assert_eq!(body["data"]["affected_items"][1], json!({"os": {"platform": "ubuntu"}, "id": "001", "name": "web-01"}));
    let body = api.ok(&token, "/agents", &[("sort", "-name"), ("select", "name")]).await;
    assert_eq!(ids(&body), ["001", "000", "004", "002", "003"]);
    let body = api.ok(&token, "/agents", &[("sort", "+id"), ("limit", "2"), ("offset", "1")]).await;
    assert_eq!((ids(&body), body["data"]["total_affected_items"].clone()), (vec!["001".to_string(), "002".into()], json!(5)));
    let body = api.ok(&token, "/agents", &[("status", "disconnected")]).await;
    assert_eq!(ids(&body), ["002", "003"]);
    let body = api.ok(&token, "/agents", &[("status", "never_connected,active")]).await;
    assert_eq!(ids(&body), ["000", "001", "004"]);
    let body = api.ok(&token, "/agents", &[("q", "status=disconnected;os.platform=windows")]).await;
    assert_eq!(ids(&body), ["003"]);
    let body = api.ok(&token, "/agents", &[("q", "name~01;id!=3")]).await;
    assert_eq!(ids(&body), ["001", "002", "004"]);
    let body = api.ok(&token, "/agents", &[("q", "(name=db-01,name=web-01);status=active")]).await;
    assert_eq!(ids(&body), ["001"]);
    let body = api.ok(&token, "/agents", &[("q", "lastKeepAlive>1d")]).await;
    assert_eq!(ids(&body), ["002"]);
    let body = api.ok(&token, "/agents", &[("older_than", "30m")]).await;
    assert_eq!(ids(&body), ["002", "003"]);
    let body = api.ok(&token, "/agents", &[("search", "win-dc")]).await;
    assert_eq!(ids(&body), ["003"]);
    let body = api.ok(&token, "/agents", &[("search", "-web"), ("select", "id")]).await;
    assert_eq!(ids(&body), ["000"]);
    let body = api.ok(&token, "/agents", &[("name", "WEB-01")]).await;
    assert_eq!(ids(&body), ["001"]);
    // Never-connected agents have no OS to match.
    let body = api.ok(&token, "/agents", &[("group", "web"), ("os.platform", "ubuntu")]).await;
    assert_eq!(ids(&body), ["001", "002"]);
    let body = api.ok(&token, "/agents", &[("status", "pending")]).await;
    assert_eq!(
        body,
        json!({"data": {"affected_items": [], "total_affected_items": 0, "total_failed_items": 0, "failed_items": []},
               "message": "No agent information was returned", "error": 0})
    );
    let body = api.ok(&token, "/agents", &[("select", "os.platform"), ("distinct", "true")]).await;
    assert_eq!(body["data"]["affected_items"], json!([{"os": {"platform": "ubuntu"}}, {"os": {"platform": "windows"}}]));

    let bad_select = api.get(&token, "/agents", &[("select", "nope")]).await;
    let allowed = "configSum, dateAdd, disconnection_time, group, group_config_status, id, ip, lastKeepAlive, manager, mergedSum, name, node_name, os.arch, os.build, os.codename, os.major, os.minor, os.name, os.platform, os.uname, os.version, registerIP, status, status_code, version";
    let detail = format!("Not a valid select field: Allowed select fields: {allowed}. Fields: nope");
    assert_problem(
        &bad_select,
        400,
        json!({"title": "Bad Request", "detail": detail, "remediation": "Please, use only allowed select fields",
               "dapi_errors": {"node01": {"error": detail}}, "error": 1724}),
    );
    let bad_q = api.get(&token, "/agents", &[("q", "color=red")]).await;
    let detail = format!("Field does not exist: Available fields: {allowed}. Field: color");
    assert_problem(
        &bad_q,
        400,
        json!({"title": "Bad Request", "detail": detail, "dapi_errors": {"node01": {"error": detail}}, "error": 1408}),
    );
    let bad_sort = api.get(&token, "/agents", &[("sort", "-color")]).await;
    assert_eq!((bad_sort.status, &bad_sort.body["error"]), (400, &json!(1403)));
    let bad_status = api.get(&token, "/agents", &[("status", "gone")]).await;
    assert_problem(
        &bad_status,
        400,
        json!({"title": "Bad Request", "detail": "'gone' is not one of ['active', 'pending', 'never_connected', 'disconnected']. Failed validating 'enum' in schema['items']: {'enum': ['active', 'pending', 'never_connected', 'disconnected'], 'type': 'string'}. On instance[0]: 'gone'"}),
    );
}

#[tokio::test]
async fn syscheck_items_paging_and_filters() {
    let api = Api::new(WazuhConfig::default()).await;
    api.emulator.upsert_agent(ubuntu_agent(), packages(), fim());
    let token = api.token().await;
    let body = api.ok(&token, "/syscheck/001", &[("limit", "1")]).await;
    let date = body["data"]["affected_items"][0]["date"].clone();
    assert!(at(date.as_str().unwrap()) > Utc::now() - chrono::Duration::minutes(1));
    // Sorted by mtime by default.
    assert_eq!(
        body,
        json!({"data": {"affected_items": [{"changes": 1, "date": date, "file": "/etc/dpkg/origins/debian", "gid": "0", "gname": "root",
            "inode": body["data"]["affected_items"][0]["inode"], "md5": "731423fa8ba067262f8ef37882d1e742",
            "mtime": "2009-02-02T23:06:58+00:00", "perm": "rw-r--r--", "sha1": "b65f7f2af66c53b51765877bbe91a22bc6fca1e2",
            "sha256": "50f35af8ac4a5df3690991a4b428fa49d56580b0020fcc6e38283b3b1b2e6c74", "size": 82, "type": "file", "uid": "0",
            "uname": "root", "attributes": ""}],
            "total_affected_items": 3, "total_failed_items": 0, "failed_items": []},
            "message": "FIM findings of the agent were returned", "error": 0})
    );
    assert!(body["data"]["affected_items"][0]["inode"].is_u64());
    let files = |body: &Value| -> Vec<String> {
        body["data"]["affected_items"].as_array().unwrap().iter().map(|i| i["file"].as_str().unwrap().to_string()).collect()
    };
    let page = api.ok(&token, "/syscheck/001", &[("offset", "1"), ("limit", "5"), ("select", "mtime")]).await;
    assert_eq!(files(&page), ["/etc/hosts", "/etc/passwd"]);
    assert_eq!(page["data"]["affected_items"][0], json!({"file": "/etc/hosts", "mtime": "2023-01-01T12:00:00+00:00"}));
    let sorted = api.ok(&token, "/syscheck/001", &[("sort", "-size"), ("select", "size")]).await;
    assert_eq!(files(&sorted), ["/etc/passwd", "/etc/hosts", "/etc/dpkg/origins/debian"]);
    let one = api.ok(&token, "/syscheck/001", &[("file", "/etc/hosts")]).await;
    assert_eq!((files(&one), &one["data"]["total_affected_items"]), (vec!["/etc/hosts".to_string()], &json!(1)));
    let by_hash = api.ok(&token, "/syscheck/001", &[("hash", "731423fa8ba067262f8ef37882d1e742"), ("q", "size>100")]).await;
    assert_eq!(files(&by_hash), ["/etc/hosts", "/etc/passwd"]);
    let summary = api.ok(&token, "/syscheck/001", &[("summary", "true"), ("limit", "1")]).await;
    assert_eq!(
        summary["data"]["affected_items"][0],
        json!({"date": date, "file": "/etc/dpkg/origins/debian", "mtime": "2009-02-02T23:06:58+00:00"})
    );
    let registry = api.ok(&token, "/syscheck/001", &[("type", "registry_key")]).await;
    assert_eq!((&registry["data"]["total_affected_items"], &registry["message"]), (&json!(0), &json!("No FIM information was returned")));
    let manager = api.ok(&token, "/syscheck/000", &[]).await;
    assert_eq!(manager["data"]["total_affected_items"], 0);
}

#[tokio::test]
async fn syscollector_packages_and_os() {
    let api = Api::new(WazuhConfig::default()).await;
    api.emulator.upsert_agent(ubuntu_agent(), packages(), fim());
    let token = api.token().await;
    let body = api.ok(&token, "/syscollector/001/packages", &[("limit", "1")]).await;
    let item = &body["data"]["affected_items"][0];
    let scan_time = item["scan"]["time"].as_str().unwrap();
    assert!(scan_time.ends_with('Z') && DateTime::parse_from_rfc3339(scan_time).is_ok());
    assert_eq!(
        body,
        json!({"data": {"affected_items": [{"scan": {"id": 0, "time": scan_time}, "multiarch": "foreign",
                "description": "secure shell (SSH) client, for secure access to remote machines", "source": "openssh",
                "name": "openssh-client", "architecture": "amd64", "vendor": "Ubuntu Developers <ubuntu-devel-discuss@lists.ubuntu.com>",
                "size": item["size"], "format": "deb", "version": "1:8.2p1-4ubuntu0.2", "section": item["section"],
                "priority": item["priority"], "location": "", "install_time": "", "agent_id": "001"}],
            "total_affected_items": 3, "total_failed_items": 0, "failed_items": []},
            "message": "All specified syscollector information was returned", "error": 0})
    );
    let names = |body: &Value| -> Vec<String> {
        body["data"]["affected_items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_string()).collect()
    };
    let page = api.ok(&token, "/syscollector/001/packages", &[("offset", "1"), ("limit", "2"), ("select", "name,version")]).await;
    assert_eq!(
        page["data"]["affected_items"],
        json!([{"name": "libquadmath0", "version": "8.4.0-1ubuntu1~18.04", "agent_id": "001"}, {"name": "curl", "version": "7.68.0-1ubuntu2.22", "agent_id": "001"}])
    );
    let sorted = api.ok(&token, "/syscollector/001/packages", &[("sort", "name"), ("select", "name")]).await;
    assert_eq!(names(&sorted), ["curl", "libquadmath0", "openssh-client"]);
    let filtered = api.ok(&token, "/syscollector/001/packages", &[("name", "curl")]).await;
    assert_eq!((names(&filtered), &filtered["data"]["total_affected_items"]), (vec!["curl".to_string()], &json!(1)));
    let search = api.ok(&token, "/syscollector/001/packages", &[("search", "quad")]).await;
    assert_eq!(names(&search), ["libquadmath0"]);

    let os = api.ok(&token, "/syscollector/001/os", &[]).await;
    let time = os["data"]["affected_items"][0]["scan"]["time"].clone();
    assert_eq!(
        os,
        json!({"data": {"affected_items": [{"os": {"codename": "focal", "major": "20", "minor": "04", "name": "Ubuntu",
                "platform": "ubuntu", "version": "20.04.6 LTS (Focal Fossa)"}, "scan": {"id": 0, "time": time}, "sysname": "Linux",
                "release": "5.4.0-193-generic", "version": "#213-Ubuntu SMP Fri Aug 2 19:14:16 UTC 2024", "architecture": "x86_64",
                "hostname": "web-01", "agent_id": "001"}],
            "total_affected_items": 1, "total_failed_items": 0, "failed_items": []},
            "message": "All specified syscollector information was returned", "error": 0})
    );
    let selected = api.ok(&token, "/syscollector/001/os", &[("select", "os.name,hostname")]).await;
    assert_eq!(selected["data"]["affected_items"], json!([{"os": {"name": "Ubuntu"}, "hostname": "web-01", "agent_id": "001"}]));
    let paged = api.get(&token, "/syscollector/001/os", &[("limit", "1")]).await;
    assert_problem(&paged, 400, json!({"title": "Bad Request", "detail": "Extra query parameter(s) limit not in spec"}));
}

#[tokio::test]
async fn unknown_and_unscanned_agents() {
    let api = Api::new(WazuhConfig::default()).await;
    let never = Agent { id: "002".into(), status: "never_connected".into(), ..ubuntu_agent() };
    api.emulator.upsert_agent(never, Vec::new(), Vec::new());
    let token = api.token().await;
    let failed = |message: &str| {
        json!({"data": {"affected_items": [], "total_affected_items": 0, "total_failed_items": 1,
            "failed_items": [{"error": {"code": 1701, "message": "Agent does not exist",
                "remediation": "Please, use `GET /agents?select=id,name` to find all available agents"}, "id": ["005"]}]},
            "message": message, "error": 1})
    };
    assert_eq!(api.ok(&token, "/syscollector/005/packages", &[]).await, failed("No syscollector information was returned"));
    assert_eq!(api.ok(&token, "/syscollector/005/os", &[]).await, failed("No syscollector information was returned"));
    // FIM reads the agent's database straight away: there is none.
    for (path, id) in [("/syscheck/005", "005"), ("/syscheck/002", "002"), ("/syscollector/002/packages", "002")] {
        let detail = format!(
            "Error retrieving data from Wazuh DB: There is no database for agent {id}. Please check if the agent has connected to the manager"
        );
        let answer = api.get(&token, path, &[]).await;
        assert_problem(
            &answer,
            400,
            json!({"title": "Bad Request", "detail": detail, "dapi_errors": {"node01": {"error": detail}}, "error": 2007}),
        );
    }
}

#[tokio::test]
async fn bad_parameters_are_400() {
    let api = Api::new(WazuhConfig::default()).await;
    let token = api.token().await;
    let detail = |d: &str| json!({"title": "Bad Request", "detail": d});
    assert_problem(
        &api.get(&token, "/agents", &[("limit", "100001")]).await,
        400,
        detail(
            "100001 is greater than the maximum of 100000. Failed validating 'maximum' in schema: {'default': 500, 'format': 'int32', 'maximum': 100000, 'minimum': 1, 'type': 'integer'}. On instance: 100001",
        ),
    );
    assert_eq!(api.get(&token, "/agents", &[("limit", "100000")]).await.status, 200);
    assert_problem(
        &api.get(&token, "/agents", &[("limit", "0")]).await,
        400,
        detail(
            "0 is less than the minimum of 1. Failed validating 'minimum' in schema: {'default': 500, 'format': 'int32', 'maximum': 100000, 'minimum': 1, 'type': 'integer'}. On instance: 0",
        ),
    );
    assert_problem(
        &api.get(&token, "/agents", &[("offset", "x")]).await,
        400,
        detail("Wrong type, expected 'integer' for query parameter 'offset'"),
    );
    assert_problem(&api.get(&token, "/agents", &[("colour", "red")]).await, 400, detail("Extra query parameter(s) colour not in spec"));
    assert_problem(
        &api.get(&token, "/syscheck/01", &[]).await,
        400,
        detail(
            "'01' is too short. Failed validating 'minLength' in schema: {'description': 'Agent ID', 'format': 'numbers', 'minLength': 3, 'type': 'string'}. On instance: '01'",
        ),
    );
    assert_problem(
        &api.get(&token, "/syscollector/abc/os", &[]).await,
        400,
        detail(
            "'abc' is not a 'numbers'. Failed validating 'format' in schema: {'description': 'Agent ID', 'format': 'numbers', 'minLength': 3, 'type': 'string'}. On instance: 'abc'",
        ),
    );
    assert_problem(
        &api.get(&token, "/agents", &[("select", "id,os name")]).await,
        400,
        detail(
            "'os name' is not a 'names'. Failed validating 'format' in schema['items']: {'format': 'names', 'type': 'string'}. On instance[1]: 'os name'",
        ),
    );
    let bad_q = api.get(&token, "/agents", &[("q", "name<=a")]).await;
    assert_eq!(
        (bad_q.status, &bad_q.body["detail"]),
        (400, &json!("Invalid query operator: Valid operators: =, !=, <, >, ~. Used operator: <="))
    );
    let pretty = api.get(&token, "/agents", &[("colour", "red"), ("pretty", "true")]).await;
    assert_eq!(pretty.text, "{\n   \"title\": \"Bad Request\",\n   \"detail\": \"Extra query parameter(s) colour not in spec\"\n}");
    // Unknown paths and methods need no token.
    assert_problem(&api.send(api.http.get(api.url("/manager/nope"))).await, 404, json!({"title": "Not Found", "detail": "404: Not Found"}));
    assert_problem(
        &api.send(api.http.delete(api.url("/agents"))).await,
        405,
        json!({"title": "Method Not Allowed", "detail": "405: Method Not Allowed"}),
    );
}

#[tokio::test]
async fn the_301st_request_of_a_minute_is_429() {
    let api = Api::new(WazuhConfig { max_requests_per_minute: 10, ..WazuhConfig::default() }).await;
    // The login counts, and so do answers that are errors.
    let token = api.token().await;
    assert_eq!(api.send(api.http.get(api.url("/nope"))).await.status, 404);
    for _ in 0..8 {
        assert_eq!(api.get(&token, "/agents", &[]).await.status, 200);
    }
    let limited = api.get(&token, "/agents", &[]).await;
    assert_problem(
        &limited,
        429,
        json!({"title": "Too Many Requests", "detail": "Maximum number of requests per minute reached",
               "remediation": "This limit can be changed in api.yaml file. More information here: https://documentation.wazuh.com/4.14/user-manual/api/configuration.html#configuration-file",
               "error": 6001}),
    );
    assert!(limited.headers.get("retry-after").is_none());
    assert!(!limited.headers.keys().any(|k| k.as_str().starts_with("x-ratelimit")));
    // Logins are limited too, before their credentials are looked at.
    assert_eq!(api.login_as("wazuh", "wrong").await.status, 429);
    assert_eq!((api.emulator.requests(), api.emulator.rate_limited()), (12, 2));

    let unlimited = Api::new(WazuhConfig { max_requests_per_minute: 0, ..WazuhConfig::default() }).await;
    let token = unlimited.token().await;
    for _ in 0..400 {
        assert_eq!(unlimited.get(&token, "/", &[]).await.status, 200);
    }
    assert_eq!(unlimited.emulator.rate_limited(), 0);
}

#[tokio::test]
async fn injected_faults() {
    let api = Api::new(WazuhConfig::default()).await;
    api.emulator.generate(3, 2, 2);
    let token = api.token().await;
    api.emulator.set_faults(WazuhFaults { error_rate: 1.0, ..WazuhFaults::default() });
    assert_problem(
        &api.get(&token, "/agents", &[]).await,
        500,
        json!({"title": "Wazuh Internal Error", "detail": "Wazuh Internal Error",
               "remediation": "Please, check `WAZUH_HOME/logs/ossec.log`, `WAZUH_HOME/logs/cluster.log` and `WAZUH_HOME/logs/api.log` to get more information about the error",
               "dapi_errors": {"node01": {"error": "Wazuh Internal Error. See log for more detail"}}, "error": 1000}),
    );
    // Faults hit only requests that would otherwise be served.
    assert_eq!(api.send(api.http.get(api.url("/agents"))).await.status, 401);

    api.emulator.set_faults(WazuhFaults { reset_rate: 1.0, ..WazuhFaults::default() });
    assert!(api.http.get(api.url("/agents")).bearer_auth(&token).send().await.is_err());

    api.emulator.set_faults(WazuhFaults { error_rate: 0.3, ..WazuhFaults::default() });
    let mut errors = 0;
    for _ in 0..200 {
        match api.get(&token, "/syscheck/001", &[]).await.status {
            500 => errors += 1,
            200 => {}
            other => panic!("status {other}"),
        }
    }
    assert!((30..=90).contains(&errors), "{errors} errors");

    api.emulator.set_faults(WazuhFaults { delay: Duration::from_millis(200), ..WazuhFaults::default() });
    let started = std::time::Instant::now();
    assert_eq!(api.get(&token, "/", &[]).await.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(200));
}

#[tokio::test]
async fn generated_fleet_has_packages_fim_and_os() {
    let api = Api::new(WazuhConfig { seed: 7, ..WazuhConfig::default() }).await;
    api.emulator.generate(20, 45, 40);
    let token = api.token().await;
    let agents = api.ok(&token, "/agents", &[("select", "status,os.platform,name")]).await;
    let items = agents["data"]["affected_items"].as_array().unwrap();
    assert_eq!(items.len(), 21);
    let names: HashSet<&str> = items.iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 21);
    for item in &items[1..] {
        let id = item["id"].as_str().unwrap();
        let status = item["status"].as_str().unwrap();
        let packages = api.get(&token, &format!("/syscollector/{id}/packages"), &[("limit", "10")]).await;
        let fim = api.get(&token, &format!("/syscheck/{id}"), &[("limit", "100")]).await;
        if status == "never_connected" {
            assert_eq!((packages.status, fim.status), (400, 400));
            continue;
        }
        assert_eq!(packages.body["data"]["total_affected_items"], 45);
        assert_eq!(packages.body["data"]["affected_items"].as_array().unwrap().len(), 10);
        let fim_items = fim.body["data"]["affected_items"].as_array().unwrap();
        assert_eq!(fim_items.len(), 40);
        let files: HashSet<&str> = fim_items.iter().map(|i| i["file"].as_str().unwrap()).collect();
        assert_eq!(files.len(), 40);
        let os = api.ok(&token, &format!("/syscollector/{id}/os"), &[]).await;
        assert_eq!(os["data"]["affected_items"][0]["os"]["platform"].as_str().is_some(), !item["os"]["platform"].eq("windows"));
    }
}

#[tokio::test]
async fn stop_releases_the_port() {
    let addr = sluice_emulators::ports::outside_ephemeral_range();
    let emulator = WazuhEmulator::start_on(addr, WazuhConfig::default()).await.unwrap();
    emulator.stop().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    tokio::net::TcpListener::bind(addr).await.expect("the port is free again");
}

#[tokio::test]
async fn the_binary_serves_until_terminated() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wazuh-emulator"))
        .args(["--listen", "127.0.0.1:0", "--user", "api", "--password", "pw", "--agents", "5", "--packages", "3", "--fim", "2"])
        .args(["--token-lifetime", "60", "--rate-limit", "3"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on http://").expect(&line).to_string();
    let http = reqwest::Client::new();
    let login = http.post(format!("http://{url}{LOGIN}")).basic_auth("api", Some("pw")).send().await.unwrap();
    let token = login.json::<Value>().await.unwrap()["data"]["token"].as_str().unwrap().to_string();
    let (_, claims) = claims(&token);
    assert_eq!(claims["exp"].as_i64().unwrap() - claims["nbf"].as_i64().unwrap(), 60);
    let agents: Value = http.get(format!("http://{url}/agents")).bearer_auth(&token).send().await.unwrap().json().await.unwrap();
    assert_eq!(agents["data"]["total_affected_items"], 6);
    assert_eq!(http.get(format!("http://{url}/")).bearer_auth(&token).send().await.unwrap().status(), 200);
    assert_eq!(http.get(format!("http://{url}/")).bearer_auth(&token).send().await.unwrap().status(), 429);
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest, "requests 4, rate limited 1, tokens issued 1\n");
}

#[test]
fn agent_ids_must_be_zero_padded() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let emulator = runtime.block_on(WazuhEmulator::start(WazuhConfig::default())).unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        emulator.upsert_agent(Agent { id: "1".into(), ..ubuntu_agent() }, Vec::new(), Vec::new())
    }));
    assert!(result.is_err());
}
