use std::sync::Arc;

use super::*;
use crate::encode::Format;
use crate::event::Event;

fn event(raw: &str) -> Event {
    Event::hashed("acme".into(), "eve".into(), "json".into(), chrono::Utc::now(), serde_json::from_str(raw).unwrap())
}

#[test]
fn one_line_per_event_in_the_chosen_format() {
    let sink = StdoutSink { config: StdoutConfig { format: Format::Raw, stream: Stream::Stdout } };
    let batch: Batch = Arc::new(vec![event(r#"{"a":1}"#), event(r#"{"b":2}"#)]);
    assert_eq!(String::from_utf8(sink.encode(&[batch])).unwrap(), "{\"a\":1}\n{\"b\":2}\n");
}

#[test]
fn settings_parse_with_defaults_and_refuse_unknown_keys() {
    let mut errors = Vec::new();
    let settings = <dyn SinkSettings>::parse("stdout", serde_json::json!({}), "sinks.debug", &mut errors).unwrap();
    assert_eq!(settings.downcast_ref::<StdoutConfig>(), Some(&StdoutConfig { format: Format::Event, stream: Stream::Stdout }));
    assert!(<dyn SinkSettings>::parse("stdout", serde_json::json!({"colour": true}), "sinks.debug", &mut errors).is_none());
    assert_eq!(errors[0].path, "sinks.debug.colour");
}
