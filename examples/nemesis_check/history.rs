//! The bodies of a run, put together from the workers' lines and what the
//! parent did to the workers.

use std::collections::{BTreeMap, HashMap};

use crate::fleet::Instance;
use crate::line::{Event, Outcome};

/// How a body ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ending {
    /// It ran to its end.
    Done,
    /// A cancellation dropped it (a lost lock; a store error).
    Dropped,
    /// Its process was killed under it: it ends at the kill.
    Killed,
    /// No end: its process neither ended it nor was killed (hung).
    Open,
}

impl Ending {
    pub fn name(self) -> &'static str {
        match self {
            Ending::Done => "done",
            Ending::Dropped => "dropped by a cancellation",
            Ending::Killed => "ended by a kill",
            Ending::Open => "never ended",
        }
    }
}

/// One body: which process ran it, on which key, under which token, from
/// when to when (`CLOCK_MONOTONIC` µs).
#[derive(Debug, Clone)]
pub struct Body {
    pub instance: usize,
    pub key: usize,
    pub token: u64,
    pub start: u64,
    pub end: u64,
    pub ending: Ending,
}

/// Everything the workers said, put together.
#[derive(Debug, Default)]
pub struct History {
    pub bodies: Vec<Body>,
    pub calls: BTreeMap<Outcome, u64>,
    pub panics: Vec<String>,
    /// Tasks that did not finish after `stop`, and workers that did not exit.
    pub hung: u64,
    pub garbled: u64,
}

impl History {
    /// `end_of_run` closes the bodies that never ended.
    pub fn of(instances: &[Instance], end_of_run: u64) -> History {
        let mut history = History::default();
        for (i, instance) in instances.iter().enumerate() {
            history.add(i, instance, end_of_run);
        }
        history
    }

    fn add(&mut self, i: usize, instance: &Instance, end_of_run: u64) {
        let mut open: HashMap<u64, Body> = HashMap::new();
        for event in &instance.events {
            match event {
                Event::Start {
                    body,
                    key,
                    token,
                    at,
                } => {
                    open.insert(
                        *body,
                        Body {
                            instance: i,
                            key: *key,
                            token: *token,
                            start: *at,
                            end: end_of_run,
                            ending: Ending::Open,
                        },
                    );
                }
                Event::End { body, at, dropped } => {
                    if let Some(mut ended) = open.remove(body) {
                        ended.end = *at;
                        ended.ending = if *dropped {
                            Ending::Dropped
                        } else {
                            Ending::Done
                        };
                        self.bodies.push(ended);
                    }
                }
                Event::Call(outcome) => *self.calls.entry(*outcome).or_default() += 1,
                Event::Panic(message) => self.panics.push(message.clone()),
                Event::Done { unfinished } => self.hung += unfinished,
                Event::Ready => {}
            }
        }
        for (_, mut body) in open {
            if let Some(killed) = instance.killed_at {
                (body.end, body.ending) = (killed, Ending::Killed);
            }
            self.bodies.push(body);
        }
        // Hung after `stop`, or gone without a word: it never said DONE.
        let done = instance
            .events
            .iter()
            .any(|event| matches!(event, Event::Done { .. }));
        self.hung += u64::from(instance.hung || (instance.killed_at.is_none() && !done));
        self.garbled += instance.garbled;
    }
}
