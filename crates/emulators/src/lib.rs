//! Faithful local emulators of the vendor APIs sluice collects from, written from the vendors'
//! documented wire formats: real status codes, paging, token expiry and rate limits. Used by the
//! tests, the benchmarks and `sluice demo`.

pub mod withsecure;
