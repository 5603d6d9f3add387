//! The parent process: starts the workers, watches Redis while they run,
//! then verifies the state they left and prints the figures.

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use crate::report::{WorkerReport, duration};
use crate::section::{LEASE, STATE_PREFIX, Slot};
use crate::verify::{self, Leftovers, RedisSample, State};
use crate::worker::{self, DRAINED, EXIT, GO, Plan, READY};
use crate::{LockService, Settings};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// Time the workers get to start, connect and warm up.
const STARTUP_LIMIT: Duration = Duration::from_secs(60);
/// How often the parent looks at Redis while the workers run.
const REDIS_SAMPLE_EVERY: Duration = Duration::from_secs(1);

/// Runs the whole check; `Ok(false)` when a verification failed.
pub async fn run(settings: &Settings) -> Result<bool, Error> {
    // The throwaway server (if any) lives until the end of the run.
    let (url, _server) = crate::support::redis()?;
    let (etcd, _etcd_cluster) = match settings.locks {
        LockService::Redis => (Vec::new(), None),
        LockService::Etcd => crate::support::etcd()?,
    };
    let mut redis = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let run = run_id();
    let slots: Vec<Slot> = (0..settings.keys)
        .map(|key| Slot::new(&run, &key.to_string()))
        .collect();
    let version = info_field(&mut redis, "server", "redis_version")
        .await?
        .unwrap_or_else(|| "?".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "exclusion check{}: {} processes × {} tasks on {} hot keys, redis-server {version} at {url}, {cores} cores",
        run_kind(settings),
        settings.processes,
        settings.tasks,
        settings.keys,
    );

    if !etcd.is_empty() {
        println!("the locks live in etcd at {}", etcd.join(", "));
    }
    let mut workers = Workers::start(settings, &url, &etcd, &run)?;
    workers.wait_all(READY, STARTUP_LIMIT).await?;
    let watch = Watch::new(&run, &slots);
    let at_ready = watch.sample(&mut redis, Duration::ZERO).await?;
    workers.send_all(GO).await?;
    let started = Instant::now();
    let limit = settings.soak.map_or(Duration::from_secs(1800), |soak| {
        soak + Duration::from_secs(120)
    });
    let mut samples = Vec::new();
    let reports = {
        let drained = workers.wait_all(DRAINED, limit);
        tokio::pin!(drained);
        let mut ticks = tokio::time::interval(REDIS_SAMPLE_EVERY);
        loop {
            tokio::select! {
                drained = &mut drained => break drained?,
                _ = ticks.tick() => samples.push(watch.sample(&mut redis, started.elapsed()).await?),
            }
        }
    };
    let reports = reports
        .iter()
        .map(|line| WorkerReport::decode(line))
        .collect::<Result<Vec<_>, _>>()?;

    // Every worker is idle but still connected: nothing of the load should
    // be left in Redis.
    let at_drain = watch.sample(&mut redis, started.elapsed()).await?;
    let lock_keys_at_drain = watch.lock_keys(&mut redis, &etcd).await?;
    let waited = Instant::now();
    let mut lock_keys_left = lock_keys_at_drain;
    while lock_keys_left > 0 && waited.elapsed() < LEASE + Duration::from_millis(500) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        lock_keys_left = watch.lock_keys(&mut redis, &etcd).await?;
    }
    let lock_keys_waited = waited.elapsed();
    workers.send_all(EXIT).await?;
    workers.wait_exit().await?;
    let at_exit = watch.sample(&mut redis, started.elapsed()).await?;

    let mut total = WorkerReport::default();
    for report in &reports {
        total.add_counts(report);
    }
    let state = State::read(&mut redis, &slots).await?;
    let leftovers = Leftovers {
        lock_keys_at_drain,
        lock_keys_left,
        lock_keys_waited,
        at_ready,
        at_drain,
        at_exit,
        samples,
    };
    let passed = match settings.soak {
        None => verify::check(settings, &total, &state, &leftovers),
        Some(soak) => verify::soak(settings, soak, &reports, &total, &state, &leftovers),
    };
    watch.delete_state(&mut redis).await?;
    Ok(passed)
}

/// What kind of run this is, for its first line: empty for the plain check.
fn run_kind(settings: &Settings) -> String {
    match settings.soak {
        Some(soak) => format!(" (soak, {})", duration(soak)),
        None if settings.pairs => " (pairs: each section locks 2 of the keys)".into(),
        None => String::new(),
    }
}

/// This run's keys in Redis.
struct Watch {
    /// Lease keys (and wake-up channels: distlock names them alike) of this
    /// run's locks under the default prefix.
    locks: String,
    state: String,
}

impl Watch {
    fn new(run: &str, slots: &[Slot]) -> Watch {
        let lock = slots.first().map_or_else(String::new, Slot::lock_key);
        // `exclusion:<run>:0` -> `exclusion:<run>:*`
        let family = lock
            .rsplit_once(':')
            .map_or(lock.as_str(), |(head, _)| head);
        Watch {
            locks: format!("distlock:*:lock:{family}:*"),
            state: format!("{STATE_PREFIX}{run}:*"),
        }
    }

    async fn sample(
        &self,
        redis: &mut MultiplexedConnection,
        at: Duration,
    ) -> Result<RedisSample, Error> {
        let clients: String = redis::cmd("CLIENT").arg("LIST").query_async(redis).await?;
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg("CHANNELS")
            .arg(&self.locks)
            .query_async(redis)
            .await?;
        let subscribers: HashMap<String, u64> = if channels.is_empty() {
            HashMap::new()
        } else {
            redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(&channels)
                .query_async(redis)
                .await?
        };
        let used_memory = info_field(redis, "memory", "used_memory")
            .await?
            .and_then(|value| value.parse().ok())
            .unwrap_or(0);
        Ok(RedisSample {
            at,
            clients: clients.lines().filter(|line| !line.is_empty()).count() as u64,
            channels: channels.len() as u64,
            subscribers: subscribers.values().copied().max().unwrap_or(0),
            used_memory,
        })
    }

    /// This run's lock keys left: in Redis, or in etcd at `etcd`.
    async fn lock_keys(
        &self,
        redis: &mut MultiplexedConnection,
        etcd: &[String],
    ) -> Result<u64, Error> {
        if etcd.is_empty() {
            return Ok(scan(redis, &self.locks).await?.len() as u64);
        }
        let mut client = etcd_client::Client::connect(etcd, None).await?;
        let all = etcd_client::GetOptions::new()
            .with_prefix()
            .with_keys_only();
        let found = client.get("distlock:", Some(all)).await?;
        let (head, tail) = self.locks.split_once('*').unwrap_or((&self.locks, ""));
        let tail = tail.trim_start_matches('*').trim_end_matches('*');
        Ok(found
            .kvs()
            .iter()
            .filter(|kv| {
                let key = String::from_utf8_lossy(kv.key());
                key.starts_with(head) && key.contains(tail)
            })
            .count() as u64)
    }

    async fn delete_state(&self, redis: &mut MultiplexedConnection) -> Result<(), Error> {
        for keys in scan(redis, &self.state).await?.chunks(500) {
            redis::cmd("DEL").arg(keys).exec_async(redis).await?;
        }
        Ok(())
    }
}

/// The worker processes and their stdio.
struct Workers {
    children: Vec<Child>,
    stdins: Vec<ChildStdin>,
    lines: mpsc::UnboundedReceiver<(usize, Option<String>)>,
}

impl Workers {
    fn start(settings: &Settings, url: &str, etcd: &[String], run: &str) -> Result<Workers, Error> {
        let exe = std::env::current_exe()?;
        let (sender, lines) = mpsc::unbounded_channel();
        let shares = worker::split(settings.sections, settings.processes);
        let mut children = Vec::new();
        let mut stdins = Vec::new();
        for (index, sections) in shares.into_iter().enumerate() {
            let plan = Plan {
                url: url.to_owned(),
                run: run.to_owned(),
                index,
                tasks: settings.tasks,
                sections,
                keys: settings.keys,
                soak: settings.soak,
                pairs: settings.pairs,
                etcd: etcd.to_vec(),
            };
            let mut command = Command::new(&exe);
            plan.apply(&mut command);
            let mut child = command
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()?;
            // Our end of its stdin stays open while we live: the worker takes
            // end of file as our death and exits.
            stdins.push(child.stdin.take().ok_or("no stdin")?);
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let sender = sender.clone();
            tokio::spawn(async move {
                let mut stdout = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = stdout.next_line().await {
                    let _ = sender.send((index, Some(line)));
                }
                let _ = sender.send((index, None));
            });
            children.push(child);
        }
        Ok(Workers {
            children,
            stdins,
            lines,
        })
    }

    /// Waits for the line tagged `tag` from every worker; returns what
    /// follows the tag, by worker.
    async fn wait_all(&mut self, tag: &str, limit: Duration) -> Result<Vec<String>, Error> {
        let mut found: Vec<Option<String>> = vec![None; self.children.len()];
        let deadline = tokio::time::Instant::now() + limit;
        while found.iter().any(Option::is_none) {
            let next = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .map_err(|_| format!("the workers did not all print {tag} within {limit:?}"))?;
            match next {
                Some((index, Some(line))) => {
                    if let Some(rest) = line.strip_prefix(tag) {
                        found[index] = Some(rest.trim().to_owned());
                    }
                }
                Some((index, None)) => {
                    let status = self.children[index].wait().await?;
                    return Err(format!("worker {index} exited early ({status})").into());
                }
                None => return Err("lost the workers' output".into()),
            }
        }
        Ok(found.into_iter().flatten().collect())
    }

    async fn send_all(&mut self, command: &str) -> Result<(), Error> {
        for stdin in &mut self.stdins {
            stdin.write_all(format!("{command}\n").as_bytes()).await?;
            stdin.flush().await?;
        }
        Ok(())
    }

    async fn wait_exit(&mut self) -> Result<(), Error> {
        for (index, child) in self.children.iter_mut().enumerate() {
            let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
                .await
                .map_err(|_| format!("worker {index} did not exit"))??;
            if !status.success() {
                return Err(format!("worker {index} failed ({status})").into());
            }
        }
        Ok(())
    }
}

/// Every key matching `pattern`.
async fn scan(redis: &mut MultiplexedConnection, pattern: &str) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}

/// One field of `INFO <section>`.
async fn info_field(
    redis: &mut MultiplexedConnection,
    section: &str,
    field: &str,
) -> Result<Option<String>, Error> {
    let info: String = redis::cmd("INFO").arg(section).query_async(redis).await?;
    Ok(info.lines().find_map(|line| {
        line.strip_prefix(field)
            .and_then(|rest| rest.strip_prefix(':'))
            .map(|value| value.trim().to_owned())
    }))
}

/// Distinguishes this run's keys from other runs' on a shared server.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    format!("{:x}-{:x}", std::process::id(), nanos % (1 << 40))
}
