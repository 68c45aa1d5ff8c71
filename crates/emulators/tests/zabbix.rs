//! The Zabbix API emulator over HTTP, as the polling connector (7.2, Bearer) and older clients
//! (`auth` member) see it.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use sluice_emulators::zabbix::{Emulator, Options};

async fn zabbix(options: Options) -> Emulator {
    Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap()
}

async fn rpc(emulator: &Emulator, bearer: Option<&str>, body: Value) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api_jsonrpc.php", emulator.url()))
        .header("content-type", "application/json-rpc")
        .body(body.to_string());
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn call(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1})
}

async fn login(emulator: &Emulator, params: Value) -> (u16, Value) {
    rpc(emulator, None, call("user.login", params)).await
}

#[tokio::test]
async fn the_connectors_polling_sequence() {
    let zabbix = zabbix(Options::default()).await;
    let (_, version) = rpc(&zabbix, None, call("apiinfo.version", json!({}))).await;
    assert_eq!(version["result"], "7.2.0");
    let (status, denied) = rpc(&zabbix, None, call("problem.get", json!({"output": ["eventid"]}))).await;
    assert_eq!(status, 200);
    assert_eq!(denied["error"], json!({"code": -32602, "message": "Invalid params.", "data": "Not authorised."}));
    let (_, wrong) = login(&zabbix, json!({"username": "Admin", "password": "nope"})).await;
    assert_eq!(wrong["error"]["code"], -32500);
    let (_, old) = login(&zabbix, json!({"user": "Admin", "password": "zabbix"})).await;
    assert_eq!(old["error"]["code"], -32602, "7.2 takes username, not user");
    let (_, session) = login(&zabbix, json!({"username": "Admin", "password": "zabbix"})).await;
    let token = session["result"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32);

    let existing = zabbix.raise_problem("my-host", "10.0.0.1", "{HOST} is unreachable for 5 minutes", 4);
    let seed_params = json!({"output": ["eventid"], "sortfield": "eventid", "sortorder": "ASC", "recent": true});
    let (_, seed) = rpc(&zabbix, Some(&token), call("problem.get", seed_params)).await;
    assert_eq!(seed["result"], json!([{"eventid": existing}]));

    let fresh: Vec<String> = zabbix.generate_problems(6);
    let poll = json!({"output": "extend", "sortfield": "eventid", "sortorder": "ASC", "recent": true});
    let (_, polled) = rpc(&zabbix, Some(&token), call("problem.get", poll.clone())).await;
    let problems = polled["result"].as_array().unwrap();
    assert_eq!(problems.len(), 7);
    let ids: Vec<u64> = problems.iter().map(|p| p["eventid"].as_str().unwrap().parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending eventids");
    let unseen: HashSet<&str> = problems.iter().map(|p| p["eventid"].as_str().unwrap()).filter(|id| *id != existing).collect();
    assert_eq!(unseen, fresh.iter().map(String::as_str).collect());
    let first = &problems[0];
    assert_eq!(
        (first["name"].as_str(), first["severity"].as_str(), first["r_eventid"].as_str()),
        (Some("my-host is unreachable for 5 minutes"), Some("4"), Some("0"))
    );
    assert!(first["clock"].as_str().unwrap().parse::<i64>().unwrap() > 1_700_000_000);

    let triggerid = first["objectid"].as_str().unwrap();
    let (_, trigger) = rpc(
        &zabbix,
        Some(&token),
        call("trigger.get", json!({"triggerids": [triggerid], "output": ["triggerid"], "selectHosts": ["hostid", "name"]})),
    )
    .await;
    let host = &trigger["result"][0]["hosts"][0];
    assert_eq!(host["name"], "my-host");
    assert_eq!(trigger["result"][0].as_object().unwrap().keys().collect::<Vec<_>>(), ["triggerid", "hosts"]);
    let (_, hosts) = rpc(
        &zabbix,
        Some(&token),
        call("host.get", json!({"hostids": [host["hostid"]], "output": ["hostid"], "selectInterfaces": ["type", "ip", "dns", "port"]})),
    )
    .await;
    assert_eq!(hosts["result"][0]["interfaces"][0], json!({"type": "1", "ip": "10.0.0.1", "dns": "", "port": "10050"}));
    let (_, described) =
        rpc(&zabbix, Some(&token), call("trigger.get", json!({"triggerids": [triggerid], "output": ["description", "priority"]}))).await;
    assert_eq!(described["result"][0]["priority"], "4");

    assert!(zabbix.resolve_problem(&existing));
    let (_, recent) = rpc(&zabbix, Some(&token), call("problem.get", poll)).await;
    let resolved = recent["result"].as_array().unwrap().iter().find(|p| p["eventid"] == existing.as_str()).unwrap().clone();
    assert_ne!(resolved["r_eventid"], "0", "recently resolved problems stay listed with recent");
    let (_, open) = rpc(&zabbix, Some(&token), call("problem.get", json!({"output": ["eventid"]}))).await;
    assert_eq!(open["result"].as_array().unwrap().len(), 6);
    let (_, clock) =
        rpc(&zabbix, Some(&token), call("problem.get", json!({"eventids": [existing], "output": ["clock"], "recent": true}))).await;
    assert!(clock["result"][0]["clock"].is_string());
    let (_, tagged) = rpc(&zabbix, Some(&token), call("problem.get", json!({"eventids": fresh[0], "selectTags": "extend"}))).await;
    assert_eq!(tagged["result"][0]["tags"][0]["tag"], "scope");

    zabbix.logout_all();
    let (_, ended) = rpc(&zabbix, Some(&token), call("host.get", json!({}))).await;
    assert_eq!(ended["error"]["data"], "Session terminated, re-login, please.");
}

#[tokio::test]
async fn auth_member_before_6_4_and_tokens_after() {
    let zabbix = zabbix(Options { version: "6.0.30".into(), ..Options::default() }).await;
    let (_, session) = login(&zabbix, json!({"username": "Admin", "password": "zabbix"})).await;
    let token = session["result"].as_str().unwrap().to_string();
    let mut with_member = call("host.get", json!({"output": "extend"}));
    with_member["auth"] = token.clone().into();
    assert!(rpc(&zabbix, None, with_member).await.1["result"].is_array());
    let (_, bearer) = rpc(&zabbix, Some(&token), call("host.get", json!({}))).await;
    assert_eq!(bearer["error"]["data"], "Not authorised.", "6.0 has no Bearer authentication");
    let mut version = call("apiinfo.version", json!([]));
    version["auth"] = token.into();
    assert_eq!(rpc(&zabbix, None, version).await.1["error"]["code"], -32602);

    let old = self::zabbix(Options { version: "5.0.40".into(), ..Options::default() }).await;
    assert!(login(&old, json!({"user": "Admin", "password": "zabbix"})).await.1["result"].is_string());

    let new = self::zabbix(Options { version: "7.2.0".into(), ..Options::default() }).await;
    new.add_api_token("a".repeat(64).as_str());
    assert!(rpc(&new, Some(&"a".repeat(64)), call("problem.get", json!({}))).await.1["result"].is_array());
    let (_, session) = login(&new, json!({"username": "Admin", "password": "zabbix"})).await;
    let mut member = call("problem.get", json!({}));
    member["auth"] = session["result"].clone();
    assert_eq!(rpc(&new, None, member).await.1["error"]["data"], "Not authorised.", "7.2 dropped the auth member");
}

#[tokio::test]
async fn protocol_errors_and_faults() {
    let zabbix = zabbix(Options::default()).await;
    let url = format!("{}/api_jsonrpc.php", zabbix.url());
    let http = reqwest::Client::new();
    let wrong_type = http.post(&url).header("content-type", "text/plain").body("{}").send().await.unwrap();
    assert_eq!(wrong_type.status().as_u16(), 412);
    let parse = http.post(&url).header("content-type", "application/json-rpc").body("{not json").send().await.unwrap();
    let parse: Value = parse.json().await.unwrap();
    assert_eq!((parse["error"]["code"].as_i64(), parse["id"].is_null()), (Some(-32700), true));
    let (_, invalid) = rpc(&zabbix, None, json!({"method": "host.get"})).await;
    assert_eq!(invalid["error"]["code"], -32600);
    let (_, unknown) = rpc(&zabbix, None, call("nope.get", json!({}))).await;
    assert_eq!(unknown["error"]["code"], -32601);
    let (_, batch) = rpc(&zabbix, None, json!([call("apiinfo.version", json!({})), call("host.get", json!({}))])).await;
    assert_eq!((batch[0]["result"].as_str(), batch[1]["error"]["code"].as_i64()), (Some("7.2.0"), Some(-32602)));

    zabbix.fail_next(1, 500);
    assert_eq!(http.post(&url).header("content-type", "application/json").body("{}").send().await.unwrap().status().as_u16(), 500);
    zabbix.throttle_next(1, Duration::from_secs(2));
    let throttled = http.post(&url).header("content-type", "application/json").body("{}").send().await.unwrap();
    assert_eq!((throttled.status().as_u16(), throttled.headers()["retry-after"].to_str().unwrap()), (429, "2"));
    zabbix.reset_next(1);
    assert!(http.post(&url).header("content-type", "application/json").body("{}").send().await.is_err());
}
