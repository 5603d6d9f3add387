//! The run: the topology, the managers, and one round after another.

use std::time::{Duration, Instant};

use distlock::{LockError, LockGuard, LockManager, LockManagerBuilder, Unacknowledged};
use lock_testkit::RedisServer;
use tokio::time::timeout;

use crate::node::{self, Error, Fill};
use crate::report::{First, Report, Round, Second};
use crate::{Lag, Settings, Topology, cluster, sentinel};

/// Every manager's command and connect timeout.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(2);
/// How long B keeps asking while it gets errors (a step may meet the
/// failover's last moments: a stale slot map, a connection to the dead
/// primary).
const SECOND_ASK_FOR: Duration = Duration::from_secs(10);
/// With `--lag on`, how long after A asks its replicas resume.
const LAG_ON: Duration = Duration::from_millis(50);
/// The bound on any one lock call of the run, beyond its own timeouts.
const CALL_BOUND: Duration = Duration::from_secs(12);

/// The primary that holds the round's key, and what the round needs of it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The primary's index among the rig's nodes.
    pub primary: usize,
    /// Its replicas' indices.
    pub replicas: Vec<usize>,
    /// A key the primary serves: the lag values and health checks use it.
    pub own_key: String,
    /// On a cluster, the identities of the primary and its replica.
    pub ids: Option<(String, String)>,
}

/// The running topology.
#[derive(Debug)]
enum Rig {
    Sentinel(Box<sentinel::Rig>),
    Cluster(cluster::Rig),
}

impl Rig {
    async fn start(topology: Topology) -> Result<Rig, Error> {
        Ok(match topology {
            Topology::Sentinel => {
                Rig::Sentinel(Box::new(tokio::task::block_in_place(sentinel::Rig::start)?))
            }
            Topology::Cluster => Rig::Cluster(cluster::Rig::start().await?),
        })
    }

    fn describe(&self) -> String {
        match self {
            Rig::Sentinel(rig) => rig.describe(),
            Rig::Cluster(rig) => rig.describe(),
        }
    }

    fn builder(&self) -> LockManagerBuilder {
        match self {
            Rig::Sentinel(rig) => rig.builder(),
            Rig::Cluster(rig) => rig.builder(),
        }
    }

    fn nodes(&self) -> &[RedisServer] {
        match self {
            Rig::Sentinel(rig) => rig.nodes(),
            Rig::Cluster(rig) => rig.nodes(),
        }
    }

    async fn target(&self, key: &str, prefix: &str, probe: &LockManager) -> Result<Target, Error> {
        match self {
            Rig::Sentinel(rig) => rig.target(),
            Rig::Cluster(rig) => rig.target(key, prefix, probe).await,
        }
    }

    /// Kills the target's primary, returning when SIGKILL was sent.
    fn kill(&mut self, target: &Target) -> Result<Instant, Error> {
        match self {
            Rig::Sentinel(rig) => rig.kill(target),
            Rig::Cluster(rig) => rig.kill(target),
        }
    }

    async fn wait_for_failover(&self, target: &Target) -> Result<String, Error> {
        match self {
            Rig::Sentinel(rig) => rig.wait_for_failover(),
            Rig::Cluster(rig) => rig.wait_for_failover(target).await,
        }
    }

    async fn restore(&mut self, target: &Target) -> Result<(), Error> {
        match self {
            Rig::Sentinel(rig) => rig.restore().await,
            Rig::Cluster(rig) => rig.restore(target).await,
        }
    }

    /// Freezes (SIGSTOP) the target's replicas.
    fn freeze(&self, target: &Target) {
        for &replica in &target.replicas {
            self.nodes()[replica].pause();
        }
    }

    /// Resumes (SIGCONT) the target's replicas.
    fn thaw(&self, target: &Target) {
        for &replica in &target.replicas {
            self.nodes()[replica].resume();
        }
    }

    /// Resumes (SIGCONT) the target's replicas `after` from now, from a
    /// task of its own; abort it to resume them earlier with
    /// [`thaw`](Self::thaw).
    fn thaw_after(&self, target: &Target, after: Duration) -> tokio::task::JoinHandle<()> {
        let pids: Vec<u32> = target
            .replicas
            .iter()
            .filter_map(|&replica| self.nodes()[replica].pid())
            .collect();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            for pid in pids {
                node::sigcont(pid);
            }
        })
    }

    /// Freezes the target's replicas and writes to the primary until they
    /// are [`node::LAG_BACKLOG`] behind; thaws them again if that fails.
    async fn make_lag(&self, target: &Target) -> Result<Fill, Error> {
        self.freeze(target);
        let primary = self.nodes()[target.primary].url();
        let filled = node::fill(&primary, &target.own_key, target.replicas.len()).await;
        if filled.is_err() {
            self.thaw(target);
        }
        filled
    }
}

/// Runs every round and prints the report.
pub async fn run(settings: &Settings) -> Result<(), Error> {
    let started = Instant::now();
    println!("failover_check {}", settings.describe());
    let mut rig = Rig::start(settings.topology).await?;
    println!(
        "started {} on loopback in {:.1} s",
        rig.describe(),
        started.elapsed().as_secs_f64()
    );
    let prefix = "failover-check:";
    let manager = |acks: bool| {
        let builder = rig
            .builder()
            .key_prefix(prefix)
            .command_timeout(COMMAND_TIMEOUT)
            .connect_timeout(COMMAND_TIMEOUT);
        let builder = if acks {
            builder.replica_acks(1, settings.ack_timeout, Unacknowledged::Release)
        } else {
            builder
        };
        builder.build()
    };
    let first = manager(settings.acks).await?;
    let second = manager(false).await?;
    let probe = manager(false).await?;
    let mut report = Report::default();
    for number in 1..=settings.rounds {
        let round = round(
            &mut rig,
            settings,
            prefix,
            number,
            [&first, &second, &probe],
        )
        .await?;
        println!("{}", round.line(number));
        report.rounds.push(round);
    }
    report.print(settings, started.elapsed());
    Ok(())
}

/// One round: grant to A, kill, fail over, ask with B, heal.
async fn round(
    rig: &mut Rig,
    settings: &Settings,
    prefix: &str,
    number: u32,
    [first, second, probe]: [&LockManager; 3],
) -> Result<Round, Error> {
    let started = Instant::now();
    let key = format!("round-{number}");
    let target = rig.target(&key, prefix, probe).await?;
    let fill = if settings.lag == Lag::Off {
        None
    } else {
        Some(rig.make_lag(&target).await?)
    };
    // With `--lag on`, the replicas resume LAG_ON after A asks (or at the
    // kill, if it comes first); `--lag stalled` at the kill.
    let resume = (settings.lag == Lag::On).then(|| rig.thaw_after(&target, LAG_ON));

    // 1. A asks; 2. the primary dies as soon as the answer is in.
    let asked = Instant::now();
    let granted = timeout(CALL_BOUND, first.lock(&key).ttl(settings.ttl).try_acquire()).await;
    let answered = Instant::now();
    let killed = rig.kill(&target);
    if let Some(resume) = resume {
        resume.abort();
    }
    if settings.lag != Lag::Off {
        rig.thaw(&target);
    }
    let killed_at = killed?;
    let (a, a_guard) = first_outcome(granted, answered - asked);

    // 3. The promotion.
    rig.wait_for_failover(&target).await?;
    let failover = killed_at.elapsed();

    // 4, 5. B asks on the promoted replica.
    let (b, b_guard, retries) = ask_second(second, &key, settings.ttl, a_guard.as_ref()).await;

    // 6. Release both, bring the killed node back.
    let mut release_errors = Vec::new();
    for guard in [a_guard, b_guard].into_iter().flatten() {
        match timeout(CALL_BOUND, guard.release()).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => release_errors.push(error.to_string()),
            Err(_) => release_errors.push(format!("release did not return within {CALL_BOUND:?}")),
        }
    }
    rig.restore(&target).await?;
    Ok(Round {
        a,
        b,
        retries,
        failover,
        kill_gap: killed_at - answered,
        fill,
        release_errors,
        took: started.elapsed(),
    })
}

/// What A's acquire came to, and its guard if granted.
fn first_outcome(
    granted: Result<Result<Option<LockGuard>, LockError>, tokio::time::error::Elapsed>,
    took: Duration,
) -> (First, Option<LockGuard>) {
    match granted {
        Ok(Ok(Some(guard))) => (
            First::Granted {
                token: guard.fencing_token(),
                took,
            },
            Some(guard),
        ),
        Ok(Ok(None)) => (First::Error("the fresh key was held".into()), None),
        Ok(Err(LockError::NotReplicated { acknowledged, .. })) => {
            (First::NotReplicated { acknowledged }, None)
        }
        Ok(Err(error)) => (First::Error(error.to_string()), None),
        Err(_) => (
            First::Error(format!("acquire did not return within {CALL_BOUND:?}")),
            None,
        ),
    }
}

/// B's `try_acquire`, again every 100 ms while it fails, for up to
/// [`SECOND_ASK_FOR`]; whether its grant came while A's validity lasted.
async fn ask_second(
    second: &LockManager,
    key: &str,
    ttl: Duration,
    a: Option<&LockGuard>,
) -> (Second, Option<LockGuard>, u32) {
    let deadline = Instant::now() + SECOND_ASK_FOR;
    let mut retries = 0;
    loop {
        let last = match timeout(CALL_BOUND, second.lock(key).ttl(ttl).try_acquire()).await {
            Ok(Ok(Some(guard))) => {
                let now = Instant::now();
                // The check of a double grant: A's validity had not passed.
                let a_left = a
                    .map(LockGuard::valid_until)
                    .filter(|until| now < *until)
                    .map(|until| until - now);
                let second = Second::Granted {
                    token: guard.fencing_token(),
                    a_left,
                    a_token: a.map(LockGuard::fencing_token),
                };
                return (second, Some(guard), retries);
            }
            Ok(Ok(None)) => return (Second::Held, None, retries),
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!("try_acquire did not return within {CALL_BOUND:?}"),
        };
        if Instant::now() >= deadline {
            return (Second::Error(last), None, retries);
        }
        retries += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
