//! The IDMEFv2 JSON schemas, embedded: the encoder takes its category names from them, the test
//! receiver and the tests validate messages against them.

/// Draft 2.D.V08, what Concerto SIEM reads.
pub const IDMEFV2: &str = include_str!("../schemas/IDMEFv2.08.schema.json");
/// Draft 2.D.V04, what the original IDMEFv2 connectors' test server validates against.
pub const IDMEFV2_V04: &str = include_str!("../schemas/IDMEFv2.04.schema.json");

/// A validator for IDMEFv2 2.D.V08 messages.
pub fn validator() -> jsonschema::Validator {
    compile(IDMEFV2)
}

/// A validator for IDMEFv2 2.D.V04 messages.
pub fn validator_v04() -> jsonschema::Validator {
    compile(IDMEFV2_V04)
}

fn compile(schema: &str) -> jsonschema::Validator {
    let schema: serde_json::Value = serde_json::from_str(schema).expect("the embedded schema is JSON");
    jsonschema::draft4::new(&schema).expect("the embedded schema compiles")
}
