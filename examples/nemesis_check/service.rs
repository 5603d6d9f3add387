//! The lock service of a run, whichever the backend: what the workers
//! connect to, which faults apply, and what it still holds at the end.

use crate::backend::Backend;
use crate::clock::Rng;
use crate::cluster::Cluster;
use crate::etcd::Etcd;
use crate::fault::{Injected, Kind};
use crate::redlock::Redlock;
use crate::sentinel::Sentinel;
use crate::single::Single;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub enum Service {
    Single(Single),
    Cluster(Cluster),
    Redlock(Redlock),
    Sentinel(Sentinel),
    Etcd(Etcd),
}

impl Service {
    /// Starts the lock service of `backend`, for `keys` hot keys.
    pub fn start(backend: Backend, keys: usize) -> Result<Service, Error> {
        Ok(match backend {
            Backend::Single => Service::Single(Single::start()?),
            Backend::Cluster => Service::Cluster(Cluster::start(keys)?),
            Backend::Redlock => Service::Redlock(Redlock::start()?),
            Backend::Sentinel => Service::Sentinel(Sentinel::start()?),
            Backend::Etcd => Service::Etcd(Etcd::start()?),
        })
    }

    /// Where the workers' locks live, as the worker's plan names them.
    pub fn worker_locks(&self) -> Vec<String> {
        match self {
            Service::Single(single) => single.worker_urls(),
            Service::Cluster(cluster) => cluster.seed_urls(),
            Service::Redlock(redlock) => redlock.urls(),
            Service::Sentinel(sentinel) => sentinel.worker_locks(),
            Service::Etcd(etcd) => etcd.endpoints(),
        }
    }

    /// The faults of the lock service (the worker faults come on top).
    pub fn kinds(&self) -> &'static [Kind] {
        match self {
            Service::Single(_) => &Single::KINDS,
            Service::Cluster(_) => &Cluster::KINDS,
            Service::Redlock(_) => &Redlock::KINDS,
            Service::Sentinel(_) => &Sentinel::KINDS,
            Service::Etcd(_) => &Etcd::KINDS,
        }
    }

    /// Injects `kind` and heals it; what was done and what the service may
    /// have forgotten.
    pub fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<Injected, Error> {
        let detail = match self {
            Service::Single(single) => single.inject(kind, rng)?,
            Service::Cluster(cluster) => return cluster.inject(kind, rng),
            Service::Redlock(redlock) => redlock.inject(kind, rng)?,
            Service::Sentinel(sentinel) => sentinel.inject(kind, rng)?,
            Service::Etcd(etcd) => etcd.inject(kind, rng)?,
        };
        Ok(Injected::by_kind(kind, detail))
    }

    /// The lease keys of the workers' locks still held.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        match self {
            Service::Single(single) => single.lock_keys(),
            Service::Cluster(cluster) => cluster.lock_keys(),
            Service::Redlock(redlock) => redlock.lock_keys(),
            Service::Sentinel(sentinel) => sentinel.lock_keys(),
            Service::Etcd(etcd) => etcd.lock_keys(),
        }
    }
}
