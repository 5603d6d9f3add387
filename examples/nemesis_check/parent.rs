//! The parent: starts the store, the lock service and the workers, runs the
//! nemesis, the quiet period and the stop, then checks and reports.

use std::time::Duration;

use lock_testkit::RedisServer;

use crate::Settings;
use crate::body::LEASE;
use crate::check::{self, Run};
use crate::clock::{Rng, now_micros};
use crate::fleet::{self, Fleet};
use crate::history::History;
use crate::nemesis;
use crate::service::Service;
use crate::store::Totals;
use crate::timeline::{self, Drawn};
use crate::worker::Plan;

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs the whole check; whether every must held.
pub fn run(settings: &Settings) -> Result<bool, Error> {
    announce(settings);
    let store = RedisServer::try_start()?;
    let mut service = Service::start(settings.backend, settings.keys)?;
    let plan = Plan {
        backend: settings.backend,
        locking: settings.locking,
        locks: service.worker_locks(),
        store: store.url(),
        tasks: settings.tasks,
        keys: settings.keys,
        seed: settings.seed,
    };
    let origin = now_micros();
    let mut fleet = Fleet::start(plan, settings.processes)?;
    let mut rng = Rng::seeded(settings.seed);
    println!("faults:");
    let faults = nemesis::run(
        &mut service,
        &mut fleet,
        &mut rng,
        settings.duration,
        |kind| settings.allows(kind),
    )?;
    let quiet_from = now_micros();
    std::thread::sleep(settings.quiet);
    fleet.stop();
    let end_of_run = now_micros();
    // Leases of killed workers run out within one lease.
    std::thread::sleep(LEASE + Duration::from_millis(500));
    let leftovers = leftovers(&service)?;
    let totals = (0..settings.keys)
        .map(|key| Totals::read(&store.url(), key))
        .collect::<Result<Vec<_>, _>>()?;
    let instances = fleet::lock(&fleet.log);
    let history = History::of(&instances, end_of_run);
    let verdict = check::check(&Run {
        history: &history,
        instances: &instances,
        faults: &faults,
        quiet_from,
        totals: &totals,
        leftover_locks: leftovers,
    });
    let passed = crate::report::print(&history, &faults, &verdict);
    if let Some(path) = &settings.timeline {
        let drawn = Drawn {
            settings,
            history: &history,
            faults: &faults,
            verdict: &verdict,
            origin,
            end: end_of_run,
        };
        timeline::write(path, &drawn)?;
    }
    Ok(passed)
}

/// The run's first line: what runs, and the seed that replays its faults.
fn announce(settings: &Settings) {
    println!(
        "nemesis_check: backend {}, seed {}, {} processes x {} tasks, {} keys, lease {LEASE:?} renewed, bodies {}, {} s of faults, {} s quiet",
        settings.backend.name(),
        settings.seed,
        settings.processes,
        settings.tasks,
        settings.keys,
        settings.locking.name(),
        settings.duration.as_secs(),
        settings.quiet.as_secs(),
    );
}

/// How many lease keys of the workers' locks the service still holds
/// (the first few printed).
fn leftovers(service: &Service) -> Result<usize, Error> {
    let keys = service.lock_keys()?;
    for key in keys.iter().take(5) {
        println!("  left behind: {key}");
    }
    Ok(keys.len())
}
