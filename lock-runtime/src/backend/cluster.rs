//! PLACEHOLDER: replaced by the cluster backend.

use std::time::Duration;

use super::{Attempt, Fault, Ownership, Settings};
use crate::LockError;
use crate::keyspace::LockKeys;

pub(crate) struct Cluster;

impl Cluster {
    pub(crate) async fn connect(_: &[String], _: &Settings) -> Result<Self, LockError> {
        Err(LockError::invalid_config("cluster: not built yet"))
    }

    pub(crate) async fn acquire(
        &self,
        _: &LockKeys,
        _: &str,
        _: Duration,
    ) -> Result<Attempt, Fault> {
        unreachable!()
    }

    pub(crate) async fn release(&self, _: &LockKeys, _: &str) -> Result<Ownership, Fault> {
        unreachable!()
    }

    pub(crate) async fn extend(
        &self,
        _: &LockKeys,
        _: &str,
        _: Duration,
    ) -> Result<Ownership, Fault> {
        unreachable!()
    }

    pub(crate) async fn subscribe(&self, _: &LockKeys) -> Subscription {
        unreachable!()
    }
}

pub(crate) struct Subscription;

impl Subscription {
    pub(crate) fn mark_seen(&mut self) {}

    pub(crate) async fn woken(&mut self) {}
}
