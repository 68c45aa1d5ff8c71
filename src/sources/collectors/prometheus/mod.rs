//! Prometheus alerts polled from /api/v1/alerts: each alert once, when it appears (again, after it was resolved).

use super::{Param, Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "prometheus",
    title: "Prometheus alerts polled from /api/v1/alerts: each alert once, when it appears (again, after it was resolved)",
    link: "https://prometheus.io/docs/prometheus/latest/querying/api/#alerts",
    definition: include_str!("definition.yml"),
    params: &[
        Param {
            name: "url",
            env: "PROMETHEUS_URL",
            default: None,
            secret: false,
            url: true,
            help: "the Prometheus server, http://prometheus:9090",
        },
        Param {
            name: "existing_at_start",
            env: "PROMETHEUS_EXISTING_AT_START",
            default: Some("deliver"),
            secret: false,
            url: false,
            help: "skip: alerts already firing at the first start are not sent",
        },
    ],
};

#[derive(Debug)]
pub struct Prometheus;

impl Vendor for Prometheus {
    const SPEC: &'static Spec = &SPEC;
}
