//! The Snyk emulator over HTTP, as a REST client following `links.next` sees it.

use std::collections::HashSet;

use serde_json::Value;
use sluice_emulators::snyk::{Emulator, Options};

const TOKEN: &str = "7a1c9e3e-5b2d-4f60-8a9b-0c1d2e3f4a5b";
const ORG: &str = "3f1f2737-d0f0-4222-805d-264bd94b87b0";

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn get(url: &str, authorization: &str) -> Answer {
    let response = reqwest::Client::new().get(url).header("Authorization", authorization).send().await.unwrap();
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    Answer { status, headers, body: response.json().await.unwrap() }
}

async fn start(options: Options) -> Emulator {
    let emulator = Emulator::start("127.0.0.1:0".parse().unwrap(), options).await.unwrap();
    emulator.add_org(TOKEN, ORG, "Acme Corp");
    emulator.add_org(TOKEN, "other-org", "Other");
    emulator
}

/// Follows `links.next` from `path` the way the collector does (host + link), collecting ids.
async fn collect(emulator: &Emulator, path: &str) -> (Vec<String>, usize) {
    let (mut url, mut ids, mut pages) = (format!("{}{path}", emulator.url()), Vec::new(), 0);
    loop {
        let page = get(&url, &format!("token {TOKEN}")).await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(page.headers["content-type"], "application/vnd.api+json");
        assert_eq!(page.body["jsonapi"]["version"], "1.0");
        ids.extend(page.body["data"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap().to_string()));
        pages += 1;
        match page.body["links"]["next"].as_str() {
            Some(next) => {
                assert!(next.starts_with("/rest/") && next.contains("starting_after="), "{next}");
                url = format!("{}{next}", emulator.url());
            }
            None => return (ids, pages),
        }
    }
}

#[tokio::test]
async fn rest_pages_follow_links_next_until_it_is_absent() {
    let snyk = start(Options::default()).await;
    snyk.set_projects(ORG, 235);
    snyk.set_issues(ORG, 1000);
    let (projects, pages) = collect(&snyk, &format!("/rest/orgs/{ORG}/projects?version=2024-08-25&limit=100")).await;
    assert_eq!((projects.len(), pages), (235, 3));
    assert_eq!(projects.iter().collect::<HashSet<_>>().len(), 235);
    let (issues, pages) = collect(&snyk, &format!("/rest/orgs/{ORG}/issues?version=2024-08-25&limit=100")).await;
    assert_eq!((issues.iter().collect::<HashSet<_>>().len(), pages), (1000, 10));
    let (orgs, _) = collect(&snyk, "/rest/orgs?version=2024-08-25&limit=10").await;
    assert_eq!(orgs, [ORG, "other-org"]);

    let page = get(&format!("{}/rest/orgs/{ORG}/issues?version=2024-09-01&limit=10", snyk.url()), TOKEN).await;
    assert_eq!(page.headers["snyk-version-requested"], "2024-09-01");
    assert_eq!(page.headers["snyk-version-served"], "2024-08-25");
    assert!(page.headers.contains_key("snyk-request-id"));
    let issue = &page.body["data"][0];
    assert_eq!(issue["type"], "issue");
    assert!(issue["attributes"]["effective_severity_level"].is_string());
    assert_eq!(issue["relationships"]["organization"]["data"]["id"], ORG);
}

#[tokio::test]
async fn version_and_limit_are_validated() {
    let snyk = start(Options::default()).await;
    let base = format!("{}/rest/orgs/{ORG}/projects", snyk.url());
    let missing = get(&format!("{base}?limit=10"), TOKEN).await;
    assert_eq!(missing.status, 400);
    assert_eq!(missing.body["errors"][0]["status"], "400");
    assert_eq!(missing.body["errors"][0]["source"]["parameter"], "version");
    for limit in ["5", "15", "110", "x"] {
        assert_eq!(get(&format!("{base}?version=2024-08-25&limit={limit}"), TOKEN).await.status, 400, "limit {limit}");
    }
    assert_eq!(get(&format!("{base}?version=2024-08-25"), TOKEN).await.status, 200, "limit defaults to 10");
    assert_eq!(get(&format!("{}/rest/orgs/unknown/projects?version=2024-08-25", snyk.url()), TOKEN).await.status, 404);
}

#[tokio::test]
async fn tokens_with_and_without_the_scheme() {
    let url_of = |e: &Emulator| format!("{}/rest/orgs?version=2024-08-25", e.url());
    let both = start(Options::default()).await;
    assert_eq!(get(&url_of(&both), TOKEN).await.status, 200);
    assert_eq!(get(&url_of(&both), &format!("token {TOKEN}")).await.status, 200);
    assert_eq!(get(&url_of(&both), "token wrong").await.status, 401);
    let strict = start(Options { accept_raw_token: false, ..Options::default() }).await;
    assert_eq!(get(&url_of(&strict), TOKEN).await.status, 401);
    assert_eq!(get(&url_of(&strict), &format!("token {TOKEN}")).await.status, 200);
}

#[tokio::test]
async fn v1_members_are_a_bare_array() {
    let snyk = start(Options::default()).await;
    snyk.set_members(ORG, 7);
    let members = get(&format!("{}/v1/org/{ORG}/members?includeGroupAdmins=true", snyk.url()), TOKEN).await;
    let members = members.body.as_array().unwrap().clone();
    assert_eq!(members.len(), 7);
    assert!(members.iter().all(|m| m["email"].is_string() && m["role"].is_string()));
    let denied = get(&format!("{}/v1/org/{ORG}/members", snyk.url()), "nope").await;
    assert_eq!((denied.status, denied.body["error"].as_str()), (401, Some("Not authorised")));
}

#[tokio::test]
async fn throttling_has_no_headers_and_lasts_until_traffic_stops() {
    let snyk = start(Options { rate_limit_per_minute: Some(2), ..Options::default() }).await;
    let url = format!("{}/rest/orgs?version=2024-08-25", snyk.url());
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let a = get(&url, TOKEN).await;
        assert!(!a.headers.keys().any(|k| k.as_str().contains("ratelimit") || k.as_str().contains("retry")));
        statuses.push(a.status);
    }
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(snyk.max_requests_in_any_minute(TOKEN), 4);

    let open = start(Options::default()).await;
    open.throttle_next(1);
    open.fail_next(1, 500);
    open.reset_next(1);
    let url = format!("{}/rest/orgs?version=2024-08-25", open.url());
    assert_eq!(get(&url, TOKEN).await.status, 429);
    assert_eq!(get(&url, TOKEN).await.body["errors"][0]["status"], "500");
    assert!(reqwest::get(&url).await.is_err());
    assert_eq!(get(&url, TOKEN).await.status, 200);
}
