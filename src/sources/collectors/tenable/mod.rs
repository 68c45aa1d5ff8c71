//! Tenable Vulnerability Management (Tenable.io): compliance findings, assets, web-app findings
//! and vulnerabilities, each through the vendor's asynchronous export jobs. Chunks are handed on
//! as they are listed, so an export of millions of records never sits in memory (the original
//! collector buffered all of it).

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "tenable",
    title: "Tenable Vulnerability Management",
    link: "https://developer.tenable.com/",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "access_key", env: "TIO_ACCESS_KEY", default: None, secret: true, url: false, help: "API access key" },
        Param { name: "secret_key", env: "TIO_SECRET_KEY", default: None, secret: true, url: false, help: "API secret key" },
        Param {
            name: "base_url",
            env: "TIO_URL",
            default: Some("https://cloud.tenable.com"),
            secret: false,
            url: true,
            help: "the API URL (https://fedcloud.tenable.com for FedRAMP)",
        },
    ],
};

#[derive(Debug)]
pub struct Tenable;

impl Vendor for Tenable {
    const SPEC: &'static Spec = &SPEC;
}
