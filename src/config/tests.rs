use std::path::Path;

use super::*;

fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
    Config::parse(text, Path::new("."), Path::new("test.yml"))
}

fn errors(text: &str) -> Vec<String> {
    parse(text).unwrap_err().iter().map(ToString::to_string).collect()
}

const MINIMAL: &str = r#"
sinks:
  archive: {type: file, path: "out/%TENANCY/%TAG.jsonl"}
tenants:
  - name: acme
    sources:
      - {name: eve, type: file, path: eve.json}
    sinks: [archive]
"#;

#[test]
fn the_quickstart_and_the_issue_example_load() {
    let quickstart = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/quickstart.yml");
    Config::load(&quickstart).unwrap_or_else(|e| panic!("{e}"));
    let c = parse(MINIMAL).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("./data/state"));
    assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
    assert_eq!(c.tenants[0].sources[0].name, "eve");
}

#[test]
fn unknown_key_names_its_full_path() {
    let text = MINIMAL.replace("path: eve.json}", "path: eve.json, intervall: 5}");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("tenants[0].sources[0].intervall: unknown field, expected one of"), "{}", errs[0]);
}

#[test]
fn wrong_type_names_its_path() {
    let text = MINIMAL.replace("path: eve.json}", "path: eve.json, batch_events: many}");
    let errs = errors(&text);
    assert!(errs[0].starts_with("tenants[0].sources[0].batch_events: invalid type"), "{errs:?}");
}

#[test]
fn missing_environment_variable_is_named() {
    let text = MINIMAL.replace("path: eve.json}", "path: \"${SLUICE_TEST_NOT_SET_ANYWHERE}\"}");
    let errs = errors(&text);
    assert_eq!(errs, ["tenants[0].sources[0].path: environment variable `SLUICE_TEST_NOT_SET_ANYWHERE` is not set"]);
}

#[test]
fn whole_reference_expands_to_a_number() {
    // SAFETY: no other test reads this variable.
    unsafe { std::env::set_var("SLUICE_TEST_BATCH", "17") };
    let text = MINIMAL.replace("path: eve.json}", "path: eve.json, batch_events: \"${SLUICE_TEST_BATCH}\"}");
    let c = parse(&text).unwrap();
    let f = c.tenants[0].sources[0].settings.downcast_ref::<crate::sources::file::FileSourceConfig>().expect("a file source");
    assert_eq!(f.batch_events, 17);
}

#[test]
fn bad_duration_says_how_to_write_one() {
    let errs = errors(&format!("shutdown_timeout: 5 parsecs\n{MINIMAL}"));
    assert!(errs[0].starts_with("shutdown_timeout: invalid duration `5 parsecs`"), "{errs:?}");
    let c = parse(&format!("shutdown_timeout: 1m 30s\n{MINIMAL}")).unwrap();
    assert_eq!(c.shutdown_timeout, Duration::from_secs(90));
}

#[test]
fn path_traversal_tenant_is_rejected() {
    let errs = errors(&MINIMAL.replace("name: acme", "name: ../etc"));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("tenants[0].name: invalid tenant name"), "{errs:?}");
}

#[test]
fn every_error_is_reported_at_once() {
    let text = r#"
sinks:
  archive: {type: fiel, path: x}
tenants:
  - name: a/b
    sources:
      - {name: eve, type: file}
    sinks: [nope]
"#;
    let errs = errors(text);
    let expected = [
        "sinks.archive.type: unknown sink type `fiel`",
        "tenants[0].name: invalid tenant name",
        "tenants[0].sources[0]: missing field `path`",
        "tenants[0].sinks[0]: unknown sink `nope`",
    ];
    for (want, got) in expected.iter().zip(&errs) {
        assert!(got.starts_with(want), "want {want}, got {got}");
    }
    assert_eq!(errs.len(), expected.len(), "{errs:?}");
}

#[test]
fn secrets_from_files_and_bad_templates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dir_name"), "out\n").unwrap();
    let text = MINIMAL.replace("\"out/%TENANCY/%TAG.jsonl\"", "\"${file:dir_name}/%TENANCY.jsonl\"");
    let c = Config::parse(&text, dir.path(), Path::new("x.yml")).unwrap();
    assert_eq!(
        c.sinks["archive"].settings.downcast_ref(),
        Some(&crate::sinks::file::FileSinkConfig {
            path: crate::settings::template::PathTemplate::parse("out/%TENANCY.jsonl").unwrap(),
            format: Default::default(),
            max_open_files: std::num::NonZeroUsize::new(256).unwrap(),
        })
    );
    let errs = errors(&MINIMAL.replace("%TAG.jsonl", "%DATE.jsonl"));
    assert!(errs[0].starts_with("sinks.archive.path: unknown variable at `%DATE"), "{errs:?}");
}

#[test]
fn invalid_yaml_is_an_error_not_a_panic() {
    let errs = errors("tenants: [unclosed");
    assert!(errs[0].starts_with("invalid YAML"), "{errs:?}");
}

#[test]
fn original_withsecure_collector_config_yml_loads_unchanged() {
    let text = r#"
clients:
  - name: innovare
    client_id: xxxx
    client_secret: yyyy
    interval: 300
    output_log: output/innovare.log
    rate_limit_per_minute: 60
    start_mode: fixed
    start_date: "2025-01-01T00:00:00.000Z"
  - name: other
    organization_id: "4de503e1-2c58-45c3-89a6-ef3f4a03592b"
    client_id: a
    client_secret: b
    scope: connect.api.read
    interval: 15
"#;
    let c = Config::parse(text, Path::new("/opt/ws"), Path::new("/opt/ws/config.yml")).unwrap();
    assert_eq!(c.state_dir, PathBuf::from("/opt/ws/state"));
    assert_eq!(c.tenants.len(), 2);
    let ws = c.tenants[0].sources[0].settings.downcast_ref::<crate::sources::withsecure::WithSecureConfig>().expect("a withsecure source");
    assert_eq!(ws.interval, Duration::from_secs(300));
    assert_eq!(ws.start_mode, crate::sources::withsecure::StartMode::Fixed);
    assert_eq!(ws.legacy_state_file.as_deref(), Some(Path::new("/opt/ws/state/innovare.json")));
    let out = c.sinks["innovare-output"].settings.downcast_ref::<crate::sinks::file::FileSinkConfig>().expect("a file sink");
    assert_eq!(out.path.constant(), Some("/opt/ws/output/innovare.log"));
    assert_eq!(out.format, crate::encode::Format::VendorWrapped);
    let ws = c.tenants[1].sources[0].settings.downcast_ref::<crate::sources::withsecure::WithSecureConfig>().expect("a withsecure source");
    assert_eq!(ws.organizations, crate::sources::withsecure::Organizations::List(vec!["4de503e1-2c58-45c3-89a6-ef3f4a03592b".into()]));
    assert_eq!(
        c.sinks["other-output"].settings.downcast_ref(),
        Some(&crate::sinks::file::FileSinkConfig {
            path: crate::settings::template::PathTemplate::parse("/opt/ws/events/other.log").unwrap(),
            format: crate::encode::Format::VendorWrapped,
            max_open_files: std::num::NonZeroUsize::new(256).unwrap(),
        })
    );
}

#[test]
fn seed_000_errors_name_the_client() {
    let errs = errors("clients:\n  - {name: a, client_id: x, client_secret: y, start_mode: fixed, intervall: 3}\n");
    assert!(errs.iter().any(|e| e.starts_with("clients[0].intervall: unknown field")), "{errs:?}");
    let errs = errors("clients:\n  - {name: a, client_id: x, client_secret: y, start_mode: fixed}\n");
    assert_eq!(errs, ["clients[0].start_date: required when start_mode is `fixed`"]);
    let errs = errors("clients:\n  - {name: ../x, client_id: x, client_secret: y}\n");
    assert!(errs.iter().any(|e| e.starts_with("clients[0].name: invalid tenant name")), "{errs:?}");
}

#[test]
fn vrl_mapping_errors_are_config_errors_at_their_path() {
    let text = MINIMAL.replace("path: eve.json}", "path: eve.json, mapping: \".title = upcase(.name\"}");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("tenants[0].sources[0].mapping: invalid VRL mapping"), "{}", errs[0]);
    let ok = MINIMAL.replace("path: eve.json}", "path: eve.json, mapping: \". = {\\\"title\\\": .msg}\"}");
    parse(&ok).unwrap();
}

#[test]
fn the_siem_example_loads_with_its_variables_set() {
    // SAFETY: tests in this process do not read these variables concurrently.
    unsafe {
        std::env::set_var("SPLUNK_HEC_URL", "https://splunk.example.org:8088");
        std::env::set_var("SPLUNK_HEC_TOKEN", "11111111-2222-3333-4444-555555555555");
        std::env::set_var("ES_URL", "https://es.example.org:9200");
        std::env::set_var("ES_API_KEY", "a2V5OnNlY3JldA==");
        std::env::set_var("QRADAR_ADDRESS", "qradar.example.org:6514");
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/siem.yml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.sinks["splunk"].policy.batch.max_events.get(), 500);
    assert_eq!(c.sinks["qradar"].policy.filter.kinds, [crate::model::Kind::Alert]);
}

#[test]
fn sink_settings_errors_name_their_paths() {
    let text = r#"
sinks:
  a: {type: splunk_hec, url: "ftp://x", token: ""}
  b: {type: elasticsearch, url: "http://es:9200", index: "Bad-%YYYY", format: cef}
  c: {type: syslog, address: "nohost", transport: tls, framing: newline}
  d: {type: file, path: out.jsonl, batch: {max_events: 0}, retry: {max_attempts: 0}, filter: {min_severity: urgent}}
"#;
    let errs = errors(text);
    for expected in [
        "sinks.a.url: scheme `ftp`",
        "sinks.a.token: must not be empty",
        "sinks.b.index: index names must be lower case",
        "sinks.c.address: `nohost` is not host:port",
        "sinks.c.framing: TLS transport always uses octet counting",
        "sinks.d.batch.max_events:",
        "sinks.d.retry.max_attempts: must be at least 1",
        "sinks.d.filter.min_severity: unknown variant `urgent`",
    ] {
        assert!(errs.iter().any(|e| e.starts_with(expected)), "missing {expected:?} in {errs:#?}");
    }
}

#[test]
fn a_config_that_collects_nothing_is_valid_with_a_warning() {
    let empty = Config::parse("", Path::new("."), Path::new("x.yml")).unwrap();
    assert_eq!(empty.warnings(), ["no tenants: sluice would run and collect nothing"]);
    assert!(parse(MINIMAL).unwrap().warnings().is_empty());
}
