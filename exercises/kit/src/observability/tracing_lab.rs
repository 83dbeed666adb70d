//! Spans from the `tracing` crate, recorded in memory, and a hop that mangles headers.
//!
//! Real services emit spans with `tracing` and ship them to a collector (Jaeger, Tempo) through
//! OpenTelemetry. The lab keeps only the interesting part: a subscriber that records each span's
//! name and fields, so the lab can group them by trace id and count the traces that came out
//! whole.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use rand::RngExt;
use rand::rngs::StdRng;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

use crate::lab::Table;

/// One span as a collector would store it: its name and its fields as text.
#[derive(Debug, Clone)]
pub struct RecordedSpan {
    pub name: &'static str,
    pub fields: BTreeMap<&'static str, String>,
}

impl RecordedSpan {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }
}

#[derive(Default)]
struct Recorder {
    spans: Arc<Mutex<Vec<RecordedSpan>>>,
}

struct Fields<'a>(&'a mut BTreeMap<&'static str, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name(), value.to_string());
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let mut fields = BTreeMap::new();
        span.record(&mut Fields(&mut fields));
        let mut spans = self.spans.lock().expect("recorder lock");
        spans.push(RecordedSpan {
            name: span.metadata().name(),
            fields,
        });
        Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &Id, values: &Record<'_>) {
        let mut spans = self.spans.lock().expect("recorder lock");
        if let Some(s) = spans.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(&mut s.fields));
        }
    }
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, _: &Event<'_>) {}
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Runs `f` with a subscriber that records every span it opens, and returns them in order.
pub fn record_spans<R>(f: impl FnOnce() -> R) -> (R, Vec<RecordedSpan>) {
    let recorder = Recorder::default();
    let spans = Arc::clone(&recorder.spans);
    let out = tracing::subscriber::with_default(recorder, f);
    let spans = spans.lock().expect("recorder lock").clone();
    (out, spans)
}

/// A proxy between two services: with probability `mangle`, it damages the `traceparent` header
/// the way real middleboxes do (upper-cases it, truncates it, or drops it).
pub fn proxy(header: String, rng: &mut StdRng, mangle: f64) -> Option<String> {
    if !rng.random_bool(mangle) {
        return Some(header);
    }
    match rng.random_range(0..3) {
        0 => Some(header.to_uppercase()),
        1 => Some(header[..header.len().min(40)].to_string()),
        _ => None,
    }
}

/// Groups the recorded spans (fields `trace_id`, `span_id`, `parent_id`) by trace and prints how
/// many of `requests` requests, each crossing `hops` services, came out as one whole trace.
pub fn report(spans: &[RecordedSpan], requests: usize, hops: usize) {
    let mut traces: BTreeMap<&str, Vec<&RecordedSpan>> = BTreeMap::new();
    for s in spans {
        traces.entry(s.field("trace_id")).or_default().push(s);
    }
    let whole = traces.values().filter(|t| t.len() == hops).count();
    let broken = requests - whole;
    let mut table = Table::new(&[
        "requests",
        "spans",
        "traces",
        "whole traces",
        "broken requests",
    ]);
    table.row(&[
        requests.to_string(),
        spans.len().to_string(),
        traces.len().to_string(),
        whole.to_string(),
        broken.to_string(),
    ]);
    table.print();
    if let Some(first) = traces.values().find(|t| t.len() == hops) {
        println!("one whole trace, as a collector would draw it:");
        for (depth, s) in first.iter().enumerate() {
            println!(
                "{}{} span {} (parent {}) trace {}",
                "  ".repeat(depth),
                s.field("service"),
                s.field("span_id"),
                s.field("parent_id"),
                s.field("trace_id"),
            );
        }
    }
}
