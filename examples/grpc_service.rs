//! A gRPC-style service whose handlers lock: `#[distributed_lock]` on the
//! methods of an `#[async_trait]` impl, the way tonic services are written.
//!
//! Three replicas of a settlement service get a `Settle` call at the same
//! time: two serve region `eu`, one serves `us`. The two `eu` settlements run
//! one after the other; `us` runs beside them.
//!
//! Run with `cargo run --example grpc_service`. Uses `REDIS_URL` when set,
//! otherwise starts a throwaway `redis-server`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use distlock::distributed_lock;
use rpc::{Request, Response, Status};

/// Stand-ins for the types tonic provides, so the example needs no `protoc`.
mod rpc {
    use distlock::LockError;

    /// A call's message, which the handler unwraps.
    #[derive(Debug)]
    pub struct Request<T> {
        message: T,
    }

    impl<T> Request<T> {
        pub fn new(message: T) -> Self {
            Request { message }
        }

        pub fn into_inner(self) -> T {
            self.message
        }
    }

    /// A handler's reply.
    #[derive(Debug)]
    pub struct Response<T> {
        message: T,
    }

    impl<T> Response<T> {
        pub fn new(message: T) -> Self {
            Response { message }
        }

        pub fn into_inner(self) -> T {
            self.message
        }
    }

    /// Why a call failed, as a gRPC status.
    #[derive(Debug)]
    pub enum Status {
        /// Another replica holds the lock for longer than the handler waits.
        Aborted(String),
        /// Redis could not be reached.
        Unavailable(String),
    }

    impl std::fmt::Display for Status {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                Status::Aborted(message) => write!(f, "aborted: {message}"),
                Status::Unavailable(message) => write!(f, "unavailable: {message}"),
            }
        }
    }

    /// The lock error, in terms a gRPC client acts on.
    impl From<LockError> for Status {
        fn from(error: LockError) -> Self {
            match error {
                LockError::Timeout { .. } => Status::Aborted(error.to_string()),
                other => Status::Unavailable(other.to_string()),
            }
        }
    }
}

/// `Settle` asks a replica to settle one batch of its region's payments.
#[derive(Debug)]
pub struct SettleRequest {
    /// Which batch.
    pub batch: u32,
}

/// What a settled batch was settled under.
#[derive(Debug)]
pub struct SettleReply {
    /// The fencing token of the lock the batch was settled under.
    pub fencing_token: u64,
}

/// The service trait, as tonic-build generates it for a `.proto` service.
#[async_trait]
pub trait Settlement: Send + Sync + 'static {
    /// Settles one batch.
    async fn settle(
        &self,
        request: Request<SettleRequest>,
    ) -> Result<Response<SettleReply>, Status>;
}

/// One replica: which region it settles.
struct Replica {
    name: &'static str,
    region: &'static str,
    started: Instant,
}

#[async_trait]
impl Settlement for Replica {
    /// One settlement per region at a time, across every replica.
    #[distributed_lock(key = "settlement:<self.region>", ttl = "10s", guard = lock)]
    async fn settle(
        &self,
        request: Request<SettleRequest>,
    ) -> Result<Response<SettleReply>, Status> {
        let batch = request.into_inner().batch;
        let token = lock.fencing_token();
        let at = self.started.elapsed().as_millis();
        println!(
            "{at:>5} ms  {}: settling {} batch {batch} (fencing token {token})",
            self.name, self.region
        );
        tokio::time::sleep(Duration::from_millis(300)).await; // the settlement
        let at = self.started.elapsed().as_millis();
        println!("{at:>5} ms  {}: {} settled", self.name, self.region);
        Ok(Response::new(SettleReply {
            fencing_token: token,
        }))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The throwaway server (if any) lives until the end of main.
    let (url, _server) = support::redis()?;
    distlock::init(&url).await?;

    let started = Instant::now();
    let replicas = [
        ("replica-a", "eu"),
        ("replica-b", "eu"),
        ("replica-c", "us"),
    ];
    // A server runs each call as its own task: the handlers' futures are `Send`.
    let calls: Vec<_> = replicas
        .into_iter()
        .enumerate()
        .map(|(batch, (name, region))| {
            let replica: Arc<dyn Settlement> = Arc::new(Replica {
                name,
                region,
                started,
            });
            let request = Request::new(SettleRequest {
                batch: u32::try_from(batch).unwrap_or(u32::MAX),
            });
            tokio::spawn(async move { replica.settle(request).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for call in calls {
        let reply = call.await?.map_err(|status| status.to_string())?;
        tokens.push(reply.into_inner().fencing_token);
    }
    // The two `eu` settlements got rising tokens from the one `eu` lock.
    let [eu_a, eu_b, _us] = tokens.as_slice() else {
        return Err("not three replies".into());
    };
    let (first, second) = (eu_a.min(eu_b), eu_a.max(eu_b));
    println!(
        "eu fencing tokens: {first} then {second}: {}",
        if second > first {
            "increasing"
        } else {
            "NOT increasing"
        }
    );
    Ok(())
}
