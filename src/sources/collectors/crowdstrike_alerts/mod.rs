//! CrowdStrike Falcon alerts (the Alerts API that replaced detections) as a stream of events.
//! An alert that changes (status, assignment) is delivered again, as an update.

use super::{Spec, Vendor};

pub static SPEC: Spec = Spec {
    name: "crowdstrike_alerts",
    title: "CrowdStrike Falcon alerts",
    link: "https://developer.crowdstrike.com/",
    definition: include_str!("definition.yml"),
    params: super::crowdstrike::SPEC.params,
};

#[derive(Debug)]
pub struct CrowdStrikeAlerts;

impl Vendor for CrowdStrikeAlerts {
    const SPEC: &'static Spec = &SPEC;
}
