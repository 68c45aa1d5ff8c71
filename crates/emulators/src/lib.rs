//! Faithful local emulators of the vendor APIs sluice collects from and of the SIEM endpoints it
//! delivers to (Splunk HEC, Elasticsearch/OpenSearch bulk), written from the documented wire
//! formats: real status codes, paging, token expiry, rate limits and injectable faults. Used by
//! the tests, the benchmarks and `sluice demo`.

pub mod cli;
pub mod crowdstrike;
pub mod elasticsearch;
mod entra;
pub mod graph;
pub mod kismet;
pub mod knowbe4;
pub mod m365;
mod net;
pub mod okta;
pub mod ports;
pub mod prometheus;
pub mod securityhub;
pub mod snyk;
pub mod splunk_hec;
pub mod tenable;
mod vendor;
pub mod wazuh;
pub mod withsecure;
pub mod zabbix;
