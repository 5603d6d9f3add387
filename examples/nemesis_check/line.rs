//! The lines a worker streams to the parent on stdout, one event each,
//! written and flushed one at a time so that a worker killed with SIGKILL
//! loses no line it wrote.
//!
//! ```text
//! READY                            connected, the load starts
//! S <body> <key> <token> <t>       a body started (t: CLOCK_MONOTONIC µs)
//! E <body> <t> done|dropped        it ended: returned, or dropped by a cancellation
//! C ok|lost|timeout|backend|store|other   a call ended with this outcome
//! PANIC <message>                  a panic in the worker
//! DONE <unfinished tasks>          after `stop`: the tasks that did not finish in time
//! ```
//!
//! The parent tells the worker `stop` on stdin; end of file on stdin means
//! the parent is gone, and the worker exits.

use std::io::Write;

pub const READY: &str = "READY";
pub const DONE: &str = "DONE";
pub const STOP: &str = "stop";

/// How a call to the locked fn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// The body ran to its end.
    Ok,
    /// The lock was lost under the body (`on_lost = "cancel"` dropped it).
    Lost,
    /// The wait for the lock ran out.
    Timeout,
    /// The lock service failed the acquire (down, unreachable, no quorum).
    Backend,
    /// The store failed under the body.
    Store,
    /// Any other error.
    Other,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Lost,
        Outcome::Timeout,
        Outcome::Backend,
        Outcome::Store,
        Outcome::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Lost => "lost",
            Outcome::Timeout => "timeout",
            Outcome::Backend => "backend",
            Outcome::Store => "store",
            Outcome::Other => "other",
        }
    }

    fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL
            .into_iter()
            .find(|outcome| outcome.name() == text)
    }
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Ready,
    Start {
        body: u64,
        key: usize,
        token: u64,
        at: u64,
    },
    End {
        body: u64,
        at: u64,
        dropped: bool,
    },
    Call(Outcome),
    Panic(String),
    Done {
        unfinished: u64,
    },
}

impl Event {
    pub fn parse(line: &str) -> Option<Event> {
        let mut words = line.split_whitespace();
        let tag = words.next()?;
        let mut number = || words.next()?.parse::<u64>().ok();
        let event = match tag {
            READY => Event::Ready,
            "S" => Event::Start {
                body: number()?,
                key: usize::try_from(number()?).ok()?,
                token: number()?,
                at: number()?,
            },
            "E" => {
                let (body, at) = (number()?, number()?);
                let dropped = match line.split_whitespace().nth(3)? {
                    "done" => false,
                    "dropped" => true,
                    _ => return None,
                };
                Event::End { body, at, dropped }
            }
            "C" => Event::Call(Outcome::parse(line.split_whitespace().nth(1)?)?),
            "PANIC" => Event::Panic(line.trim_start_matches("PANIC").trim().to_owned()),
            DONE => Event::Done {
                unfinished: number()?,
            },
            _ => return None,
        };
        Some(event)
    }

    /// Writes the line and flushes it at once.
    pub fn emit(&self) {
        let line = match self {
            Event::Ready => READY.to_owned(),
            Event::Start {
                body,
                key,
                token,
                at,
            } => format!("S {body} {key} {token} {at}"),
            Event::End { body, at, dropped } => {
                format!(
                    "E {body} {at} {}",
                    if *dropped { "dropped" } else { "done" }
                )
            }
            Event::Call(outcome) => format!("C {}", outcome.name()),
            Event::Panic(message) => format!("PANIC {}", message.replace('\n', " ")),
            Event::Done { unfinished } => format!("{DONE} {unfinished}"),
        };
        let mut out = std::io::stdout().lock();
        // The parent gone means the run is over; nothing to do about it here.
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
    }
}
