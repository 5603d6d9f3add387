//! What a locked call tells the outside: a `tracing` span per call with its
//! key, manager, fencing token, timings and outcome, and `metrics` series
//! labelled by manager.
//!
//! One test: the metrics recorder is process-wide.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use distlock::{LockError, distributed_lock};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

#[distributed_lock(key = "invoice:<id>", ttl = "5s", wait = "0s", manager = "observed")]
async fn send_invoice(id: u32) -> Result<u32, AppError> {
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(id)
}

#[distributed_lock(
    key = "overrun",
    ttl = "50ms",
    on_lost = "cancel",
    manager = "observed"
)]
async fn overrun() -> Result<(), AppError> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Ok(())
}

/// The fields of every `distributed_lock` span, as last recorded.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<HashMap<u64, HashMap<String, String>>>>);

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(
            field.name().to_owned(),
            format!("{value:?}").trim_matches('"').to_owned(),
        );
    }
}

impl<S: tracing::Subscriber> Layer<S> for Spans {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "distributed_lock" {
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().insert(id.into_u64(), fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.0.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
}

impl Spans {
    fn with_outcome(&self, outcome: &str) -> Vec<HashMap<String, String>> {
        self.0
            .lock()
            .unwrap()
            .values()
            .filter(|fields| fields.get("outcome").map(String::as_str) == Some(outcome))
            .cloned()
            .collect()
    }
}

#[test]
fn spans_and_metrics_describe_every_locked_call() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");
    let spans = Spans::default();
    let _subscriber =
        tracing::subscriber::set_default(tracing_subscriber::registry().with(spans.clone()));
    // One thread, so the thread-local subscriber sees every task.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(common::redis_for("observed"));
    runtime.block_on(async {
        for id in 0..3 {
            assert_eq!(send_invoice(id).await.unwrap(), id);
        }
        // Held by another process: one attempt, a timeout.
        let other = common::manager(&server).await;
        let held = other.lock("invoice:9").acquire().await.unwrap();
        assert!(matches!(
            send_invoice(9).await,
            Err(AppError::Lock(LockError::Timeout { .. }))
        ));
        let _ = held.release().await;
        assert!(matches!(
            overrun().await,
            Err(AppError::Lock(LockError::Lost { .. }))
        ));
        tokio::time::sleep(Duration::from_millis(50)).await;
    });

    let released = spans.with_outcome("released");
    assert_eq!(released.len(), 3, "{:?}", spans.0.lock().unwrap());
    for fields in &released {
        assert!(fields["key"].starts_with("invoice:"));
        assert_eq!(fields["manager"], "observed");
        assert!(fields["fencing_token"].parse::<u64>().unwrap() > 0);
        assert!(fields["hold_ms"].parse::<u64>().unwrap() >= 20);
        assert!(fields.contains_key("wait_ms"));
    }
    let timed_out = spans.with_outcome("timed out");
    assert_eq!(timed_out.len(), 1);
    assert_eq!(timed_out[0]["key"], "invoice:9");
    assert!(!timed_out[0].contains_key("fencing_token"));
    assert_eq!(spans.with_outcome("lost").len(), 1);

    let metrics: HashMap<String, DebugValue> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| {
            key.key()
                .labels()
                .any(|label| label.key() == "manager" && label.value() == "observed")
        })
        .map(|(key, _, _, value)| (key.key().name().to_owned(), value))
        .collect();
    let counter = |name: &str| match metrics.get(name) {
        Some(DebugValue::Counter(count)) => *count,
        other => panic!("{name}: {other:?}"),
    };
    let samples = |name: &str| match metrics.get(name) {
        Some(DebugValue::Histogram(values)) => values.len(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(counter("distlock_acquisitions_total"), 4);
    assert_eq!(counter("distlock_timeouts_total"), 1);
    assert_eq!(counter("distlock_lost_total"), 1);
    assert_eq!(samples("distlock_wait_seconds"), 4);
    assert_eq!(samples("distlock_hold_seconds"), 4);
    drop(server);
}
