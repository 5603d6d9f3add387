//! One Redis server as the lock service, behind a `FaultProxy` the workers
//! connect through, and the faults that apply to it.

use std::time::Duration;

use lock_testkit::{FaultProxy, RedisServer};

use crate::admin;
use crate::body::LEASE;
use crate::clock::Rng;
use crate::fault::Kind;

type Error = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug)]
pub struct Single {
    server: RedisServer,
    proxy: FaultProxy,
}

impl Single {
    pub fn start() -> Result<Single, Error> {
        let server = RedisServer::try_start()?;
        let proxy = FaultProxy::try_start(server.port())?;
        Ok(Single { server, proxy })
    }

    /// What the workers connect to: the proxy.
    pub fn worker_urls(&self) -> Vec<String> {
        vec![self.proxy.url()]
    }

    pub const KINDS: [Kind; 7] = [
        Kind::ServerPause,
        Kind::RestartWithData,
        Kind::RestartEmptyLate,
        Kind::RestartEmpty,
        Kind::ClientKill,
        Kind::Delay,
        Kind::Blackhole,
    ];

    /// Injects `kind` and heals it; what was done.
    pub fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<String, Error> {
        match kind {
            Kind::ServerPause => {
                let pause = rng.leases(LEASE, 0.1, 3.0);
                self.server.try_pause()?;
                std::thread::sleep(pause);
                self.server.try_resume()?;
                Ok(format!("paused {pause:.1?}"))
            }
            Kind::RestartWithData => {
                admin::restart_with_data(&mut self.server, rng.leases(LEASE, 0.05, 1.0))
            }
            Kind::RestartEmptyLate => {
                self.server.stop();
                std::thread::sleep(LEASE + Duration::from_millis(100));
                self.server.try_restart()?;
                Ok("down one lease".into())
            }
            Kind::RestartEmpty => {
                self.server.stop();
                self.server.try_restart()?;
                Ok("restarted at once".into())
            }
            Kind::ClientKill => {
                let killed = admin::kill_clients(&self.server.url())?;
                Ok(format!("{killed} connections"))
            }
            Kind::Delay => {
                let (delay, span) = (
                    rng.between(Duration::from_millis(5), Duration::from_millis(300)),
                    rng.leases(LEASE, 0.5, 2.0),
                );
                self.proxy.delay(delay);
                std::thread::sleep(span);
                self.proxy.pass();
                Ok(format!("{delay:.0?} for {span:.1?}"))
            }
            Kind::Blackhole => {
                let span = rng.leases(LEASE, 0.1, 3.0);
                self.proxy.blackhole();
                std::thread::sleep(span);
                self.proxy.pass();
                Ok(format!("for {span:.1?}"))
            }
            other => Err(format!("{} does not apply to one server", other.name()).into()),
        }
    }

    /// The lease keys of the workers' locks still on the server.
    pub fn lock_keys(&self) -> Result<Vec<String>, Error> {
        admin::lock_keys(&self.server.url())
    }
}
