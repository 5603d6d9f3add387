//! The lock service of a run, whichever the backend: what the workers
//! connect to, which faults apply, and what it still holds at the end.

use crate::clock::Rng;
use crate::etcd::Etcd;
use crate::fault::Kind;
use crate::redlock::Redlock;
use crate::single::Single;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The backends `--backend` names, and whether this tool runs them yet.
pub const BACKENDS: [&str; 3] = ["single", "etcd", "redlock"];

#[derive(Debug)]
pub enum Service {
    Single(Single),
    Etcd(Etcd),
    Redlock(Redlock),
}

impl Service {
    pub fn start(backend: &str) -> Result<Service, Error> {
        match backend {
            "single" => Ok(Service::Single(Single::start()?)),
            "etcd" => Ok(Service::Etcd(Etcd::start()?)),
            "redlock" => Ok(Service::Redlock(Redlock::start()?)),
            other => Err(format!(
                "backend {other:?} is not supported yet (try one of {BACKENDS:?})"
            )
            .into()),
        }
    }

    /// Where the workers' locks live, as the worker's plan names them.
    pub fn worker_locks(&self) -> Vec<String> {
        match self {
            Service::Single(single) => single.worker_urls(),
            Service::Etcd(etcd) => etcd.endpoints(),
            Service::Redlock(redlock) => redlock.urls(),
        }
    }

    /// The faults of the lock service (the worker faults come on top).
    pub fn kinds(&self) -> &'static [Kind] {
        match self {
            Service::Single(_) => &Single::KINDS,
            Service::Etcd(_) => &Etcd::KINDS,
            Service::Redlock(_) => &Redlock::KINDS,
        }
    }

    pub fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<String, Error> {
        match self {
            Service::Single(single) => single.inject(kind, rng),
            Service::Etcd(etcd) => etcd.inject(kind, rng),
            Service::Redlock(redlock) => redlock.inject(kind, rng),
        }
    }

    /// The lease keys of the workers' locks still held.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Service::Single(single) => single.lock_keys(),
            Service::Etcd(etcd) => etcd.lock_keys(),
            Service::Redlock(redlock) => redlock.lock_keys(),
        }
    }
}
