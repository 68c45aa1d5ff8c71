//! KnowBe4 Reporting API: training enrollments, page by page until an empty page.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "knowbe4",
    title: "KnowBe4",
    link: "https://developer.knowbe4.com/rest/reporting",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "token", env: "KNOWBE4_TOKEN", default: None, secret: true, url: false, help: "a Reporting API key" },
        Param {
            name: "endpoint",
            env: "KNOWBE4_ENDPOINT",
            default: Some("https://us.api.knowbe4.com/v1/training/enrollments"),
            secret: false,
            url: true,
            help: "the enrollments URL of the account's region (eu.api.knowbe4.com …)",
        },
    ],
};

#[derive(Debug)]
pub struct KnowBe4;

impl Vendor for KnowBe4 {
    const SPEC: &'static Spec = &SPEC;
}
