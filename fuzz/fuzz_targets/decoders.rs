//! Every registered vendor's decoder, then every encoder, on arbitrary bytes: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice::decode::{Decoder, Origin};
use sluice::encode::Format;
use sluice::vendors::VENDORS;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else { return };
    let Ok(line) = std::str::from_utf8(rest) else { return };
    let decoder = Decoder::named(VENDORS[selector as usize % VENDORS.len()].name);
    let origin = Origin { tenant: "t".into(), source: "s".into(), vendor: decoder.vendor().into() };
    if let Ok(events) = decoder.decode_line(line, &origin, chrono::Utc::now()) {
        for event in &events {
            for format in [Format::Raw, Format::Event, Format::Ecs, Format::Idmefv2, Format::VendorWrapped] {
                let mut out = Vec::new();
                format.encode_line(event, &mut out);
            }
        }
    }
});
