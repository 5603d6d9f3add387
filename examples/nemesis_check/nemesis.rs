//! The nemesis: one fault at a time, every 1 to 3 s, drawn from a seeded
//! generator, each healed before the next (a paused process continued, a
//! killed one restarted), until the fault period is over.

use std::time::{Duration, Instant};

use crate::body::LEASE;
use crate::clock::{Rng, now_micros};
use crate::fault::{Fault, Injected, Kind};
use crate::fleet::Fleet;
use crate::service::Service;

type Error = Box<dyn std::error::Error + Send + Sync>;

const WORKER_KINDS: [Kind; 2] = [Kind::WorkerKill, Kind::WorkerPause];

/// Injects faults of the kinds `allowed` for `period`; every fault
/// injected, in order.
pub fn run(
    service: &mut Service,
    fleet: &mut Fleet,
    rng: &mut Rng,
    period: Duration,
    allowed: impl Fn(Kind) -> bool,
) -> Result<Vec<Fault>, Error> {
    let kinds: Vec<Kind> = service
        .kinds()
        .iter()
        .chain(&WORKER_KINDS)
        .copied()
        .filter(|kind| allowed(*kind))
        .collect();
    let started = Instant::now();
    let until = started + period;
    let mut faults = Vec::new();
    loop {
        std::thread::sleep(rng.between(Duration::from_secs(1), Duration::from_secs(3)));
        if Instant::now() >= until {
            return Ok(faults);
        }
        let kind = kinds[rng.below(kinds.len() as u64) as usize];
        let (from, at) = (now_micros(), started.elapsed());
        let injected = inject(service, fleet, rng, kind)?;
        let fault = Fault {
            kind,
            from,
            to: now_micros(),
            detail: injected.detail,
            forgotten: injected.forgotten,
        };
        // When it began, into the fault period.
        println!(
            "  {:>7.1}s  {}: {}",
            at.as_secs_f64(),
            kind.name(),
            fault.detail
        );
        faults.push(fault);
    }
}

fn inject(
    service: &mut Service,
    fleet: &mut Fleet,
    rng: &mut Rng,
    kind: Kind,
) -> Result<Injected, Error> {
    let detail = match kind {
        Kind::WorkerKill => {
            let slot = rng.below(fleet.len() as u64) as usize;
            let pid = fleet.kill_and_replace(slot)?;
            format!("pid {pid}")
        }
        Kind::WorkerPause => {
            let slot = rng.below(fleet.len() as u64) as usize;
            let pause = rng.leases(LEASE, 1.0, 2.0);
            let pid = fleet.pause(slot, pause)?;
            format!("pid {pid} for {pause:.1?}")
        }
        _ => return service.inject(kind, rng),
    };
    Ok(Injected::by_kind(kind, detail))
}
