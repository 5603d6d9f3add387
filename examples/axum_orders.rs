//! An axum service whose handlers are locked per order.
//!
//! - `POST /orders/{id}/pay` — locked on `order:<id>` (from the `Path` extractor);
//!   a second payment of the same order while one runs answers `409 Conflict`.
//! - `POST /transfers` with `{"from": 1, "to": 2, "amount": 10}` — holds the
//!   locks `account:1` and `account:2` at once (`keys = [...]`).
//!
//! Run with `cargo run --example axum_orders`, then
//! `curl -X POST localhost:3000/orders/7/pay`. Uses `REDIS_URL` when set,
//! otherwise starts a throwaway `redis-server`; `PORT` picks the port (0 = any).
//!
//! Ctrl-C or SIGTERM shuts it down gracefully, in this order: stop accepting
//! requests, let those in flight finish (for at most 10 s), then
//! `distlock::shutdown()` releases whatever is still held, so the other
//! replicas get those locks now rather than a lease later.

mod support;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Json, Path};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use distlock::{LockError, distributed_lock};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// How long requests in flight may take to finish after the signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The service's error type: a busy lock is a conflict, anything else a 503.
#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error(transparent)]
    Lock(#[from] LockError),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        match self {
            AppError::Lock(LockError::Timeout { key, .. }) => (
                StatusCode::CONFLICT,
                format!("{key} is being processed, try again"),
            )
                .into_response(),
            AppError::Lock(error) => {
                (StatusCode::SERVICE_UNAVAILABLE, error.to_string()).into_response()
            }
        }
    }
}

#[derive(Serialize)]
struct Payment {
    order: u64,
    fencing_token: u64,
}

#[distributed_lock(key = "order:<id>", ttl = "10s", wait = "0s", guard = lock)]
async fn pay(Path(id): Path<u64>) -> Result<Json<Payment>, AppError> {
    tokio::time::sleep(Duration::from_millis(300)).await; // talk to the payment provider
    Ok(Json(Payment {
        order: id,
        fencing_token: lock.fencing_token(),
    }))
}

#[derive(Deserialize)]
struct Transfer {
    from: u64,
    to: u64,
    amount: u64,
}

/// Moves money between two accounts while holding both accounts' locks.
///
/// `keys` takes both at once, in one order whatever the order of the
/// accounts, so A→B and B→A wait for each other instead of deadlocking; a
/// transfer to the same account takes one lock. A single key such as
/// `transfer:<from>:<to>` would protect neither account: A→B and B→A would
/// lock different keys and run at once.
#[distributed_lock(keys = ["account:<req.from>", "account:<req.to>"], ttl = "5s", wait = "1s")]
async fn transfer(Json(req): Json<Transfer>) -> Result<String, AppError> {
    tokio::time::sleep(Duration::from_millis(50)).await; // debit and credit
    Ok(format!(
        "moved {} from {} to {}",
        req.amount, req.from, req.to
    ))
}

fn app() -> Router {
    Router::new()
        .route("/orders/{id}/pay", post(pay))
        .route("/transfers", post(transfer))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway server (if any) lives until the end of main.
    let (url, _server) = support::redis()?;
    distlock::init(&url).await?;
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://{}", listener.local_addr()?);

    // 1. At the signal, axum stops accepting and waits for requests in flight.
    let signalled = Arc::new(Notify::new());
    let serving = axum::serve(listener, app()).with_graceful_shutdown({
        let signalled = signalled.clone();
        async move {
            shutdown_signal().await;
            println!("shutting down: draining requests in flight");
            signalled.notify_one();
        }
    });
    // 2. ... but not for ever.
    let drain_timeout = async {
        signalled.notified().await;
        tokio::time::sleep(DRAIN_TIMEOUT).await;
    };
    tokio::select! {
        served = serving => served?,
        () = drain_timeout => println!("requests still running after {DRAIN_TIMEOUT:?}; stopping anyway"),
    }
    // 3. Release what is still held; bounded even if Redis is unreachable.
    let report = distlock::shutdown().await;
    println!(
        "distlock shut down: {} lock(s) released, {} unconfirmed",
        report.released, report.unconfirmed
    );
    Ok(())
}

/// Completes at Ctrl-C, or at SIGTERM (what a rolling deploy sends) on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => drop(terminate.recv().await),
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
