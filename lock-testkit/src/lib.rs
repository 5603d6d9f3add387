//! Throwaway `redis-server` processes for distlock's integration tests.
//!
//! Every [`RedisServer`] is a real `redis-server` child process listening on a
//! free loopback port, with its own temporary working directory and no
//! persistence. It is killed (and its directory removed) when dropped. A
//! fixture shared by every test of a binary, in a `static`, is kept with
//! [`for_process`], which tears it down when the process exits; the
//! directories of a kit process that was killed are removed by the next
//! one (each directory's name carries the id of the process that made it).
//!
//! ```no_run
//! use lock_testkit::RedisServer;
//!
//! let mut server = RedisServer::start();
//! let url = server.url(); // "redis://127.0.0.1:<port>"
//! # let _ = url;
//! server.pause(); // SIGSTOP: the server stops answering
//! server.resume(); // SIGCONT
//! server.restart(); // crash + start again on the same port, with empty data
//! ```
//!
//! The binary is taken from the `REDIS_SERVER_BIN` environment variable, or
//! `redis-server` on `PATH`; see [`RedisServerBuilder::binary`].
//!
//! Several servers make a [`RedisCluster`], or a [`RedisSentinel`]
//! topology (a master, replicas and sentinels watching them).
//!
//! For an etcd backend, an [`EtcdCluster`] is a throwaway 3-member `etcd`
//! cluster on loopback: each member with free client and peer ports and its
//! own data directory, killed with the test process. It can stop, pause and
//! restart a member, and find the leader:
//!
//! ```no_run
//! use lock_testkit::EtcdCluster;
//!
//! let mut cluster = EtcdCluster::start();
//! let endpoints = cluster.endpoints(); // ["http://127.0.0.1:<port>", …]
//! let leader = cluster.leader();
//! cluster.stop(leader); // SIGKILL; a new leader is elected
//! cluster.restart(leader); // same ports, same data
//! # let _ = endpoints;
//! ```
//!
//! Its binary is `ETCD_BIN` or `etcd` on `PATH` (Debian's `etcd-server`;
//! `scripts/ensure-etcd.sh` installs it).
//!
//! This crate is Unix-only (it signals processes with `kill(2)`); on Linux
//! servers and etcd members are additionally killed when the thread that
//! started them exits, see [`RedisServer`].
//!
//! # Loopback only
//!
//! Nothing in this kit, and no test, benchmark or example using it, sends a
//! packet to an address other than loopback (127.0.0.0/8, `::1`): on a
//! developer's or CI's network any other address reaches somebody's host, a
//! proxy or a firewall log. An unreachable host is a [`BlackHole`] on
//! loopback; a server that stops answering is [`RedisServer::pause`] or a
//! [`FaultProxy`] in black-hole mode. A name under `.invalid` may stand for a
//! host that does not resolve: resolving it sends nothing.

mod blackhole;
mod builder;
mod cluster;
mod etcd;
mod for_process;
mod launch;
mod port;
mod probe;
mod proxy;
mod resp;
mod scratch;
mod sentinel;
mod server;
mod tls;
mod unpoisoned;

pub use blackhole::{BlackHole, Silence};
pub use builder::RedisServerBuilder;
pub use cluster::RedisCluster;
pub use etcd::{EtcdCluster, EtcdMember, EtcdStatus};
pub use for_process::for_process;
pub use proxy::FaultProxy;
pub use sentinel::RedisSentinel;
pub use server::{RedisServer, start_many, try_start_many};
pub use tls::{TestCertificates, TlsRedisServer};
