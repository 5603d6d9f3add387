// A method of an `#[async_trait]` impl needs a `Result` too.
use async_trait::async_trait;
use distlock::distributed_lock;

#[async_trait]
pub trait Jobs {
    async fn run(&self, id: u64);
}

pub struct Worker;

#[async_trait]
impl Jobs for Worker {
    #[distributed_lock(key = "job:<id>")]
    async fn run(&self, id: u64) {
        let _ = id;
    }
}

fn main() {}
