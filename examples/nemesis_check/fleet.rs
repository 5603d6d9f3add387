//! The parent's worker processes: started, killed and restarted, paused and
//! continued, stopped; each one's lines collected by a reader thread into
//! its [`Instance`] log.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::clock::now_micros;
use crate::line::{Event, STOP};
use crate::worker::{DRAIN, Plan};

/// How long a worker may take to connect and say `READY`.
const READY_LIMIT: Duration = Duration::from_secs(20);
/// How long a worker may take to exit after `stop`, beyond its drain.
const EXIT_MARGIN: Duration = Duration::from_secs(5);

/// One worker process, from its start to its end: what it said, and what
/// the parent did to it.
#[derive(Debug, Default)]
pub struct Instance {
    pub pid: u32,
    pub events: Vec<Event>,
    /// Lines that were not events (a worker's output is only events).
    pub garbled: u64,
    /// When it was killed (after its death was reaped).
    pub killed_at: Option<u64>,
    /// When it was stopped with SIGSTOP, and continued.
    pub pauses: Vec<(u64, u64)>,
    /// It did not exit in time after `stop`.
    pub hung: bool,
}

impl Instance {
    pub fn is_ready(&self) -> bool {
        self.events.contains(&Event::Ready)
    }
}

/// Every instance of a run, in the order they started.
pub type Log = Arc<Mutex<Vec<Instance>>>;

pub fn lock(log: &Log) -> MutexGuard<'_, Vec<Instance>> {
    log.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running worker: its process and which instance of the log it is.
struct Slot {
    child: Child,
    stdin: ChildStdin,
    instance: usize,
}

/// The worker processes.
pub struct Fleet {
    plan: Plan,
    slots: Vec<Slot>,
    pub log: Log,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

impl Fleet {
    /// Starts `processes` workers and waits until each is ready.
    pub fn start(plan: Plan, processes: usize) -> Result<Fleet, Error> {
        let mut fleet = Fleet {
            plan,
            slots: Vec::new(),
            log: Log::default(),
        };
        for _ in 0..processes {
            let slot = fleet.spawn()?;
            fleet.slots.push(slot);
        }
        for i in 0..processes {
            fleet.wait_ready(i)?;
        }
        Ok(fleet)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    fn spawn(&mut self) -> Result<Slot, Error> {
        let mut command = Command::new(std::env::current_exe()?);
        self.plan.apply(&mut command);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn()?;
        let stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let instance = {
            let mut log = lock(&self.log);
            log.push(Instance {
                pid: child.id(),
                ..Instance::default()
            });
            log.len() - 1
        };
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let event = Event::parse(&line);
                let mut log = lock(&log);
                match event {
                    Some(event) => log[instance].events.push(event),
                    None => log[instance].garbled += 1,
                }
            }
        });
        Ok(Slot {
            child,
            stdin,
            instance,
        })
    }

    fn wait_ready(&mut self, slot: usize) -> Result<(), Error> {
        let started = Instant::now();
        let instance = self.slots[slot].instance;
        while !lock(&self.log)[instance].is_ready() {
            if let Ok(Some(status)) = self.slots[slot].child.try_wait() {
                return Err(
                    format!("worker {instance} exited before it was ready: {status}").into(),
                );
            }
            if started.elapsed() > READY_LIMIT {
                return Err(format!("worker {instance} was not ready in {READY_LIMIT:?}").into());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// SIGKILLs the worker in `slot`, then starts a new one in its place;
    /// returns the pid killed.
    pub fn kill_and_replace(&mut self, slot: usize) -> Result<u32, Error> {
        let old = &mut self.slots[slot];
        let pid = old.child.id();
        old.child.kill()?;
        old.child.wait()?;
        // Reaped: nothing of it runs any more.
        lock(&self.log)[old.instance].killed_at = Some(now_micros());
        let new = self.spawn()?;
        self.slots[slot] = new;
        self.wait_ready(slot)?;
        Ok(pid)
    }

    /// SIGSTOPs the worker in `slot` for `pause`, then SIGCONTs it.
    pub fn pause(&mut self, slot: usize, pause: Duration) -> Result<u32, Error> {
        let Slot {
            child, instance, ..
        } = &self.slots[slot];
        let pid = libc::pid_t::try_from(child.id())?;
        let from = now_micros();
        signal(pid, libc::SIGSTOP)?;
        std::thread::sleep(pause);
        signal(pid, libc::SIGCONT)?;
        lock(&self.log)[*instance].pauses.push((from, now_micros()));
        Ok(child.id())
    }

    /// Tells every worker to stop, waits for each to exit, and kills those
    /// that do not in time (marked hung).
    pub fn stop(&mut self) {
        for slot in &mut self.slots {
            let _ = writeln!(slot.stdin, "{STOP}").and_then(|()| slot.stdin.flush());
        }
        let deadline = Instant::now() + DRAIN + EXIT_MARGIN;
        for slot in &mut self.slots {
            while matches!(slot.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(slot.child.try_wait(), Ok(None)) {
                lock(&self.log)[slot.instance].hung = true;
                let _ = slot.child.kill();
                let _ = slot.child.wait();
            }
        }
        // Let the reader threads take the last lines.
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn signal(pid: libc::pid_t, signal: libc::c_int) -> std::io::Result<()> {
    // SAFETY: kill(2) has no memory-safety preconditions; `pid` is our own
    // unreaped child, so the signal cannot reach another process.
    if unsafe { libc::kill(pid, signal) } == -1 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
