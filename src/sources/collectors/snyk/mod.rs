//! Snyk: organizations, their members, projects and issues, as the original data collector
//! listed them (REST API with `links.next`, the v1 API for members).

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "snyk",
    title: "Snyk",
    link: "https://docs.snyk.io/snyk-api",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "token", env: "SNYK_TOKEN", default: None, secret: true, url: false, help: "an API token" },
        Param {
            name: "endpoint",
            env: "SNYK_ENDPOINT",
            default: Some("https://api.snyk.io"),
            secret: false,
            url: true,
            help: "the region's API host: https://api.eu.snyk.io …",
        },
    ],
};

#[derive(Debug)]
pub struct Snyk;

impl Vendor for Snyk {
    const SPEC: &'static Spec = &SPEC;
}
