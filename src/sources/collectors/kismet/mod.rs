//! Kismet alerts polled from /alerts/all_alerts.json.

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "kismet",
    title: "Kismet alerts polled from /alerts/all_alerts.json",
    link: "https://www.kismetwireless.net/docs/api/alerts/",
    definition: include_str!("definition.yml"),
    params: &[
        Param { name: "url", env: "KISMET_URL", default: None, secret: false, url: true, help: "the Kismet server, http://kismet:2501" },
        Param { name: "username", env: "KISMET_USERNAME", default: None, secret: false, url: false, help: "a Kismet login" },
        Param { name: "password", env: "KISMET_PASSWORD", default: None, secret: true, url: false, help: "its password" },
        Param {
            name: "existing_at_start",
            env: "KISMET_EXISTING_AT_START",
            default: Some("deliver"),
            secret: false,
            url: false,
            help: "skip: alerts present at the first start are not sent",
        },
    ],
};

#[derive(Debug)]
pub struct Kismet;

impl Vendor for Kismet {
    const SPEC: &'static Spec = &SPEC;
}
