//! Counting what the Redlock nodes answered: a lock is won, kept or lost by
//! a majority of them. Arithmetic only; `redlock.rs` does the asking.

use std::collections::HashMap;
use std::time::Duration;

use redis::{RedisError, RedisResult};

use crate::backend::outcome::{Attempt, Fault, Ownership};
use crate::backend::protocol::{HolderId, Vote};

/// A majority of `nodes`: the fewest nodes that any other majority shares
/// at least one node with.
pub(super) fn quorum(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// The votes of one acquire attempt, counted as they come in.
#[derive(Debug)]
pub(super) struct Ballot {
    nodes: usize,
    /// Nodes that granted the lock to this attempt.
    granted: Vec<usize>,
    /// The highest fencing token among theirs.
    fencing_token: u64,
    /// What the nodes held by someone else told of the holder.
    refused: Vec<Refusal>,
    silent: Silent,
}

/// One node held by someone else.
#[derive(Debug)]
struct Refusal {
    /// The holder's remaining lease (`None`: no expiry).
    remaining: Option<Duration>,
    holder: Option<HolderId>,
}

/// Nodes that did not answer (an error or the node timeout), and why.
#[derive(Debug, Default)]
struct Silent {
    nodes: Vec<usize>,
    first_error: Option<RedisError>,
}

impl Ballot {
    pub(super) fn new(nodes: usize) -> Self {
        Ballot {
            nodes,
            granted: Vec::new(),
            fencing_token: 0,
            refused: Vec::new(),
            silent: Silent::default(),
        }
    }

    /// Counts the answer of `node`.
    pub(super) fn record(&mut self, node: usize, answer: RedisResult<Vote>) {
        match answer {
            Ok(Vote {
                attempt: Attempt::Acquired { fencing_token, .. },
                ..
            }) => {
                self.granted.push(node);
                self.fencing_token = self.fencing_token.max(fencing_token);
            }
            Ok(Vote {
                attempt: Attempt::Held { remaining },
                holder,
            }) => self.refused.push(Refusal { remaining, holder }),
            // Nodes answer `Acquired` or `Held`; anything else is no vote.
            Ok(Vote { .. }) => self.silent.record(node, None),
            Err(error) => self.silent.record(node, Some(error)),
        }
    }

    /// The fencing token, once a majority granted the lock: the highest of
    /// the granting nodes' tokens (best-effort ordering; see
    /// `LockManager::redlock`).
    pub(super) fn won(&self) -> Option<u64> {
        (self.granted.len() >= quorum(self.nodes)).then_some(self.fencing_token)
    }

    /// Nodes that granted the lock to this attempt: a lost attempt gives
    /// their votes back.
    pub(super) fn granted(&self) -> &[usize] {
        &self.granted
    }

    /// Nodes that did not answer: they may have granted the lock all the
    /// same, so a lost attempt gives their votes back too.
    pub(super) fn silent(&self) -> &[usize] {
        &self.silent.nodes
    }

    /// What a lost attempt (every node answered or timed out, no majority
    /// granted) tells the requester:
    ///
    /// - fewer nodes than a majority answered: no lock is possible now
    ///   (`NoQuorum`);
    /// - one other holder has, with the nodes that did not answer, enough
    ///   nodes for a majority: it may hold the lock, so wait for its release
    ///   or until enough leases end (`Held`);
    /// - otherwise nobody can hold a majority: contenders split the votes,
    ///   and each gives them back and retries after a random `split_pause`
    ///   (`Split`), so they do not line up again.
    pub(super) fn verdict(self, split_pause: Duration) -> Result<Attempt, Fault> {
        let quorum = quorum(self.nodes);
        let answered = self.granted.len() + self.refused.len();
        if answered < quorum {
            return Err(self.silent.no_quorum(answered, quorum, self.nodes));
        }
        let mut held_by: HashMap<&HolderId, usize> = HashMap::new();
        for holder in self.refused.iter().filter_map(|r| r.holder.as_ref()) {
            *held_by.entry(holder).or_default() += 1;
        }
        let strongest = held_by.values().copied().max().unwrap_or(0);
        if strongest + self.silent.nodes.len() >= quorum {
            Ok(Attempt::Held {
                remaining: self.free_in(quorum),
            })
        } else {
            Ok(Attempt::Split {
                retry_in: split_pause,
            })
        }
    }

    /// How long until a majority of the nodes that answered is free, if
    /// nobody releases: the nodes given back are free now, the others when
    /// their holder's lease ends. `None` when a needed lease never ends.
    fn free_in(&self, quorum: usize) -> Option<Duration> {
        let needed = quorum.saturating_sub(self.granted.len());
        let mut ends: Vec<Option<Duration>> = self.refused.iter().map(|r| r.remaining).collect();
        // No expiry sorts last.
        ends.sort_by_key(|end| end.unwrap_or(Duration::MAX));
        match needed.checked_sub(1) {
            Some(index) => ends.get(index).copied().flatten(),
            None => Some(Duration::ZERO),
        }
    }
}

/// What the nodes found when an owner released or extended its lock.
#[derive(Debug)]
pub(super) struct Findings {
    nodes: usize,
    /// Nodes where the lock was still ours.
    owned: Vec<usize>,
    expired: usize,
    taken_over: usize,
    silent: Silent,
}

impl Findings {
    pub(super) fn new(nodes: usize) -> Self {
        Findings {
            nodes,
            owned: Vec::new(),
            expired: 0,
            taken_over: 0,
            silent: Silent::default(),
        }
    }

    /// Counts the answer of `node`.
    pub(super) fn record(&mut self, node: usize, answer: RedisResult<Ownership>) {
        match answer {
            Ok(Ownership::Owned) => self.owned.push(node),
            Ok(Ownership::Expired) => self.expired += 1,
            Ok(Ownership::TakenOver) => self.taken_over += 1,
            Err(error) => self.silent.record(node, Some(error)),
        }
    }

    /// Whether a majority found the lock ours: the step succeeded.
    pub(super) fn owned_by_quorum(&self) -> bool {
        self.owned.len() >= quorum(self.nodes)
    }

    /// Nodes where the lock was ours.
    pub(super) fn owned(&self) -> &[usize] {
        &self.owned
    }

    /// What every node's answer (or silence) adds up to:
    ///
    /// - `Owned` when a majority found the lock ours;
    /// - `NoQuorum` when fewer than a majority answered;
    /// - a Redis fault when the nodes that did not answer decide it: with
    ///   them, the lock may still be ours on a majority (a renewal retries);
    /// - otherwise the lock is not ours on a majority: `TakenOver` when other
    ///   owners hold a majority of the nodes, else `Expired`.
    pub(super) fn verdict(self) -> Result<Ownership, Fault> {
        let quorum = quorum(self.nodes);
        let owned = self.owned.len();
        let answered = owned + self.expired + self.taken_over;
        if owned >= quorum {
            return Ok(Ownership::Owned);
        }
        if answered < quorum {
            return Err(self.silent.no_quorum(answered, quorum, self.nodes));
        }
        if owned + self.silent.nodes.len() >= quorum {
            return Err(Fault::Redis(self.silent.error()));
        }
        Ok(if self.taken_over >= quorum {
            Ownership::TakenOver
        } else {
            Ownership::Expired
        })
    }
}

impl Silent {
    fn record(&mut self, node: usize, error: Option<RedisError>) {
        self.nodes.push(node);
        if self.first_error.is_none() {
            self.first_error = error;
        }
    }

    fn no_quorum(self, answered: usize, quorum: usize, nodes: usize) -> Fault {
        Fault::NoQuorum {
            answered,
            quorum,
            nodes,
            source: self.error(),
        }
    }

    fn error(self) -> RedisError {
        self.first_error.unwrap_or_else(|| {
            RedisError::from((
                redis::ErrorKind::UnexpectedReturnType,
                "a node answered neither granted nor held",
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    // The helpers answer as a node does, a `RedisResult` each.
    #[allow(clippy::unnecessary_wraps)]
    fn granted(token: u64) -> RedisResult<Vote> {
        Ok(Vote {
            attempt: Attempt::Acquired {
                fencing_token: token,
                spare_tokens: 0,
            },
            holder: None,
        })
    }

    #[allow(clippy::unnecessary_wraps)]
    fn held(by: &str, remaining_ms: u32) -> RedisResult<Vote> {
        Ok(Vote {
            attempt: Attempt::Held {
                remaining: Some(remaining_ms * MS),
            },
            holder: Some(HolderId(by.to_owned())),
        })
    }

    fn down() -> RedisError {
        RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused))
    }

    fn ballot(answers: Vec<RedisResult<Vote>>) -> Ballot {
        let mut ballot = Ballot::new(answers.len());
        for (node, answer) in answers.into_iter().enumerate() {
            ballot.record(node, answer);
        }
        ballot
    }

    #[test]
    fn a_majority_is_more_than_half() {
        let quorums: Vec<usize> = (1..=7).map(quorum).collect();
        assert_eq!(quorums, [1, 2, 2, 3, 3, 4, 4]);
    }

    #[test]
    fn a_majority_wins_with_the_highest_of_its_tokens() {
        let won = ballot(vec![
            granted(7),
            held("b", 5),
            granted(9),
            Err(down()),
            granted(8),
        ]);
        assert_eq!(won.won(), Some(9));
        let short = ballot(vec![
            granted(7),
            held("b", 5),
            granted(9),
            Err(down()),
            held("b", 5),
        ]);
        assert_eq!(short.won(), None);
    }

    #[test]
    fn too_few_answers_is_no_quorum_naming_the_counts() {
        let lost = ballot(vec![
            granted(1),
            held("b", 50),
            Err(down()),
            Err(down()),
            Err(down()),
        ]);
        assert_eq!(lost.silent(), [2, 3, 4]);
        match lost.verdict(MS) {
            Err(Fault::NoQuorum {
                answered: 2,
                quorum: 3,
                nodes: 5,
                source,
            }) => assert!(source.is_connection_refusal(), "{source}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_holder_that_may_have_a_majority_is_waited_for() {
        // b holds two nodes and a third did not answer: b may hold the lock.
        let verdict = ballot(vec![
            granted(1),
            held("b", 40),
            held("b", 70),
            Err(down()),
            granted(2),
        ])
        .verdict(MS);
        // Free: our two, then b's shorter lease: a majority in 40 ms.
        assert_eq!(
            verdict.ok(),
            Some(Attempt::Held {
                remaining: Some(40 * MS)
            })
        );
        // A node restarted empty granted us one vote: b still holds four.
        let verdict = ballot(vec![
            granted(1),
            held("b", 40),
            held("b", 30),
            held("b", 20),
            held("b", 10),
        ])
        .verdict(MS);
        assert_eq!(
            verdict.ok(),
            Some(Attempt::Held {
                remaining: Some(20 * MS)
            })
        );
    }

    #[test]
    fn votes_split_among_contenders_retry_after_the_pause() {
        let pause = 3 * MS;
        let split = ballot(vec![
            granted(1),
            held("b", 9),
            held("b", 9),
            held("c", 9),
            held("c", 9),
        ]);
        assert_eq!(split.granted(), [0]);
        assert_eq!(
            split.verdict(pause).ok(),
            Some(Attempt::Split { retry_in: pause })
        );
        // Nobody could have a majority even without any vote of ours.
        let none_ours = ballot(vec![
            held("a", 9),
            held("b", 9),
            held("b", 9),
            held("c", 9),
            held("c", 9),
        ]);
        assert_eq!(
            none_ours.verdict(pause).ok(),
            Some(Attempt::Split { retry_in: pause })
        );
    }

    #[test]
    fn a_lease_without_expiry_is_waited_for_without_an_end() {
        let mut answers = vec![held("b", 9), held("b", 9)];
        answers.push(Ok(Vote {
            attempt: Attempt::Held { remaining: None },
            holder: Some(HolderId("b".into())),
        }));
        assert_eq!(
            ballot(answers).verdict(MS).ok(),
            Some(Attempt::Held {
                remaining: Some(9 * MS)
            })
        );
        let forever = || {
            Ok(Vote {
                attempt: Attempt::Held { remaining: None },
                holder: Some(HolderId("b".into())),
            })
        };
        assert_eq!(
            ballot(vec![forever(), forever(), held("b", 9)])
                .verdict(MS)
                .ok(),
            Some(Attempt::Held { remaining: None })
        );
    }

    fn findings(answers: Vec<RedisResult<Ownership>>) -> Findings {
        let mut findings = Findings::new(answers.len());
        for (node, answer) in answers.into_iter().enumerate() {
            findings.record(node, answer);
        }
        findings
    }

    #[test]
    fn release_and_extend_need_a_majority_of_owned_nodes() {
        use Ownership::{Expired, Owned, TakenOver};
        let kept = findings(vec![
            Ok(Owned),
            Err(down()),
            Ok(Owned),
            Ok(Expired),
            Ok(Owned),
        ]);
        assert!(kept.owned_by_quorum());
        assert_eq!(kept.verdict().ok(), Some(Owned));

        let expired = findings(vec![
            Ok(Owned),
            Ok(Expired),
            Ok(TakenOver),
            Ok(Expired),
            Ok(Owned),
        ]);
        assert_eq!(expired.owned(), [0, 4]);
        assert_eq!(expired.verdict().ok(), Some(Expired));

        let taken = findings(vec![
            Ok(TakenOver),
            Ok(TakenOver),
            Ok(TakenOver),
            Ok(Owned),
            Ok(Owned),
        ]);
        assert_eq!(taken.verdict().ok(), Some(TakenOver));

        // The silent node decides: the lock may still be ours on three.
        let undecided = findings(vec![
            Ok(Owned),
            Ok(Owned),
            Err(down()),
            Ok(Expired),
            Ok(Expired),
        ]);
        assert!(matches!(undecided.verdict(), Err(Fault::Redis(_))));

        let unanswered = findings(vec![
            Ok(Owned),
            Ok(Owned),
            Err(down()),
            Err(down()),
            Err(down()),
        ]);
        assert!(matches!(
            unanswered.verdict(),
            Err(Fault::NoQuorum {
                answered: 2,
                quorum: 3,
                nodes: 5,
                ..
            })
        ));
    }
}
