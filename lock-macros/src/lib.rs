//! The `#[distributed_lock]` attribute of [distlock](https://docs.rs/distlock).
//!
//! Use it through the `distlock` crate (`use distlock::distributed_lock;`);
//! the code it generates calls into `distlock`, not into this crate.

mod async_trait;
mod attr;
mod bindings;
mod diagnostic;
mod duration;
mod expand;
#[cfg(test)]
mod fuzz;
mod template;

use proc_macro::TokenStream;

/// Runs an `async fn` while holding a distributed lock on Redis.
///
/// ```
/// use distlock::{LockError, distributed_lock};
///
/// #[derive(Debug)]
/// enum PayError {
///     Lock(LockError),
///     Declined,
/// }
///
/// impl From<LockError> for PayError {
///     fn from(error: LockError) -> Self {
///         PayError::Lock(error)
///     }
/// }
///
/// #[distributed_lock(key = "order:<id>", ttl = "10s")]
/// async fn pay(id: u64, amount: u64) -> Result<u64, PayError> {
///     // Only one caller across all processes runs this for a given `id`.
///     if amount == 0 {
///         return Err(PayError::Declined);
///     }
///     Ok(id * 100 + amount)
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), PayError> {
/// // In production `distlock::init("redis://...")`; in memory, this example runs.
/// distlock::init_in_memory().await?;
/// assert_eq!(pay(42, 7).await?, 4207);
/// assert!(matches!(pay(42, 0).await, Err(PayError::Declined)));
/// # Ok(())
/// # }
/// ```
///
/// Before the body runs, the lock named by `key` is acquired from a lock
/// manager (waiting up to `wait` for a current holder). The body runs with the
/// lock held; afterwards the lock is released and awaited, whether the body
/// returned normally, returned early, failed with `?`, or panicked. If the
/// returned future is dropped mid-way (cancellation), the guard's `Drop`
/// releases the lock in the background. The body never runs without the lock:
/// if acquiring fails, the fn returns the `LockError` converted into its own
/// error type.
///
/// # Options
///
/// ```text
/// #[distributed_lock(option = value, ...)]
/// ```
///
/// | option    | value                                   | default                                  |
/// |-----------|-----------------------------------------|------------------------------------------|
/// | `key`     | key template, string literal            | required (or `keys`)                     |
/// | `keys`    | 1 to 16 key templates, `["...", ...]`   | none                                     |
/// | `ttl`     | duration string, 3 ms to 30 days        | `"30s"`                                  |
/// | `wait`    | duration string, may be `"0s"`          | same as `ttl`                            |
/// | `manager` | name of a registered manager            | the default manager (`distlock::init`)   |
/// | `renew`   | flag: `renew`, `renew = true`/`false`   | off                                      |
/// | `on_lost` | `"cancel"` or `"continue"`              | `"cancel"` with `renew`, else `"continue"` |
/// | `hold_at_least` | duration string, at most `ttl`    | none                                     |
/// | `permits` | integer literal, 1 to 4294967295        | none: one holder at a time               |
/// | `mode`    | `"read"` or `"write"`                   | none: one holder at a time               |
/// | `guard`   | identifier                              | no binding                               |
/// | `crate`   | path to `distlock`, as a string         | `"::distlock"`                           |
///
/// - **`key`**: the lock's name, built from the arguments (see below).
/// - **`keys`**: several locks taken at once, all or none, instead of `key`:
///   for work that touches several things, like a transfer between two
///   accounts (`keys = ["account:<req.from>", "account:<req.to>"]`). Every
///   call takes its keys in one order (sorted), whatever the order of the
///   templates or the arguments, so calls that share keys wait for each
///   other and never deadlock (a call inside a body that already holds one
///   of its keys is refused with `LockError::InvalidConfig` rather than
///   waiting for itself). The call's fencing token is above every earlier
///   holder's of each key and below every later one's; `guard = name` binds
///   a `&distlock::MultiLockGuard`.
/// - **`ttl`**: the lease. If the process dies while holding the lock, Redis
///   frees it after this long.
/// - **`wait`**: how long to wait for a lock someone else holds before giving
///   up with `LockError::Timeout`. `"0s"` makes a single attempt.
/// - **`manager`**: which registered lock manager (Redis deployment and
///   settings) to use, by the name it was registered under with
///   `distlock::init_named` or `distlock::register`.
/// - **`renew`**: keeps the lease alive while the body runs, re-arming it every
///   third of `ttl`, so a body may run longer than `ttl`.
/// - **`on_lost`**: what happens when the lock is lost while the body runs (the
///   lease ran out, or renewing failed). `"cancel"` drops the body at its next
///   await and the call returns `Err(LockError::Lost)` converted into the fn's
///   error; `"continue"` lets the body finish and logs the loss. A renewed lock
///   is meant to be held for as long as the body runs, so with `renew` the
///   default is `"cancel"`.
/// - **`hold_at_least`**: the lock stays held until this long after it was
///   acquired, however soon the body ends (ShedLock's `lockAtLeastFor`): the
///   release then only shortens the lease to what is left of that time, and
///   the lock frees itself when it ends. For a job that every node runs on
///   the same schedule: one node runs it, and nodes whose clocks are a little
///   behind find the lock still held and skip their tick. At most `ttl`.
/// - **`permits`**: makes the lock a semaphore: up to this many calls hold
///   it at once, and the next one waits (up to `wait`) for a permit to come
///   free. Each holder has a permit of its own, with its own owner token,
///   lease, renewal (`renew`), fencing token and release; `guard = name`
///   binds that holder's `&LockGuard`. Every fn that locks the key must give
///   the same number.
/// - **`mode`**: makes the lock a read-write lock, of which the fn takes one
///   side: `"read"` calls hold it together, and a `"write"` call holds it
///   alone, excluding readers and other writers. Waiters are served in the
///   order they came (FIFO), so a reader that arrives while a writer waits
///   queues behind that writer: writers are preferred, and a stream of
///   readers cannot starve them. Inside a locked body, a nested `"read"` of
///   a key the task holds for writing joins that lock (as a read inside a
///   read and a write inside a write do); a nested `"write"` inside a
///   `"read"` of the same key (an upgrade, which two readers doing at once
///   would deadlock) is refused at runtime with `LockError::InvalidConfig`.
///
///   `permits` and `mode` each go with one `key`: a lock over several
///   `keys` is exclusive only, and a semaphore is not a read-write lock, so
///   the two do not go together either (each is a compile error). A
///   semaphore and a read-write lock keep keys of their own in Redis, apart
///   from an exclusive lock of the same name. Neither works on a Redlock
///   manager, where acquiring fails with `LockError::Unsupported`.
/// - **`guard`**: binds `&LockGuard` under this name inside the body, e.g. to
///   read the fencing token, the remaining validity, or to extend the lease.
/// - **`crate`**: where the `distlock` facade is when it was renamed or is
///   re-exported, like serde's `#[serde(crate = "...")]`.
///
/// Durations are a number followed by a unit, `ms`, `s`, `m` or `h`, and can
/// combine units from largest to smallest, each at most once: `"250ms"`,
/// `"10s"`, `"2m"`, `"1h"`, `"1m30s"`, `"1h2m3s500ms"`. They are checked when
/// the fn compiles.
///
/// # Key templates
///
/// ```text
/// template    := (text | "<<" | ">>" | placeholder)*
/// placeholder := "<" root ("." field)* ">"
/// root        := parameter binding | "self"
/// field       := identifier | tuple index
/// ```
///
/// Text is copied into the key as written. A placeholder is replaced by the
/// value it names, formatted with [`Display`](std::fmt::Display):
///
/// - `<id>`: a parameter, or any name a parameter pattern binds, as in
///   `Path(id): Path<u64>`, `(a, b): (u32, u32)` or
///   `&Order { id, .. }: &Order`;
/// - `<req.from>`, `<pair.0>`: a field, or a field of a field, of such a binding;
/// - `<self.tenant>`: a field of the receiver, in methods;
/// - `<job.r#type>`: a field named by a keyword, as a raw identifier.
///
/// **To put a literal `<` or `>` in the key, double it**: `"a<<b>>"` is the
/// key `a<b>`. A single `>` outside a placeholder, an unclosed `<`, an empty
/// `<>`, and spaces inside a placeholder are errors. `{` and `}` need no
/// escaping.
///
/// Values are borrowed, formatted once before the lock is taken, and the key
/// is never re-evaluated. A placeholder that names no parameter is a compile
/// error that suggests the closest name:
///
/// ```compile_fail
/// use distlock::{LockError, distributed_lock};
///
/// // error: unknown placeholder `<ordr_id>`: the fn has no parameter binding
/// // `ordr_id`; did you mean `order_id`? available: `order_id`, `amount`
/// #[distributed_lock(key = "order:<ordr_id>")]
/// async fn pay(order_id: u64, amount: u64) -> Result<u64, LockError> {
///     Ok(order_id + amount)
/// }
/// # fn main() {}
/// ```
///
/// # Examples
///
/// These need a Redis server, so they are compiled but not run.
///
/// ```no_run
/// use std::time::Duration;
///
/// use distlock::{LockError, distributed_lock};
///
/// #[derive(Debug)]
/// pub struct AppError(String);
///
/// impl From<LockError> for AppError {
///     fn from(error: LockError) -> Self {
///         AppError(error.to_string())
///     }
/// }
///
/// pub struct Refund {
///     pub order: u64,
///     pub cents: u64,
/// }
///
/// /// An extractor-like wrapper, as web frameworks pass request bodies.
/// pub struct Json<T>(pub T);
///
/// // A field of a destructured argument, a named manager, and a short wait.
/// #[distributed_lock(key = "refund:<req.order>", ttl = "2s", wait = "500ms", manager = "payments")]
/// async fn refund(Json(req): Json<Refund>) -> Result<u64, AppError> {
///     Ok(req.cents)
/// }
///
/// pub struct Accounts {
///     pub tenant: String,
/// }
///
/// impl Accounts {
///     // A field of `self`, a renewed lease, and the guard bound as `lock`.
///     #[distributed_lock(key = "user:<self.tenant>:<user_id>", ttl = "30s", renew, guard = lock)]
///     async fn rebuild(&self, user_id: u64) -> Result<u64, AppError> {
///         for _chunk in 0..3 {
///             if !lock.is_held() {
///                 return Err(AppError("lost the lock".to_owned()));
///             }
///             tokio::time::sleep(Duration::from_secs(1)).await;
///         }
///         Ok(lock.fencing_token() + user_id)
///     }
/// }
///
/// // One attempt, no waiting, and `<<`/`>>` for literal angle brackets: the key
/// // is `report:<daily>`.
/// #[distributed_lock(key = "report:<<daily>>", wait = "0s", on_lost = "cancel")]
/// async fn daily_report() -> Result<(), AppError> {
///     Ok(())
/// }
///
/// // A semaphore: at most 3 exports at once across all processes, each with
/// // a permit (and a fencing token) of its own.
/// #[distributed_lock(key = "exports", permits = 3, guard = permit)]
/// async fn export(batch: u64) -> Result<u64, AppError> {
///     Ok(permit.fencing_token() + batch)
/// }
///
/// // A read-write lock: readers of a price list share it, its writer holds
/// // it alone.
/// #[distributed_lock(key = "prices:<list>", mode = "read")]
/// async fn price(list: u64, item: u64) -> Result<u64, AppError> {
///     Ok(list + item)
/// }
///
/// #[distributed_lock(key = "prices:<list>", mode = "write", renew)]
/// async fn reprice(list: u64) -> Result<(), AppError> {
///     let _ = list;
///     Ok(())
/// }
///
/// #[tokio::main]
/// async fn main() -> Result<(), AppError> {
///     distlock::init("redis://127.0.0.1:6379").await?;
///     distlock::init_named("payments", "redis://127.0.0.1:6380").await?;
///     refund(Json(Refund { order: 7, cents: 250 })).await?;
///     Accounts { tenant: "acme".to_owned() }.rebuild(42).await?;
///     daily_report().await?;
///     export(1).await?;
///     price(7, 2).await?;
///     reprice(7).await
/// }
/// ```
///
/// `crate = "..."` finds `distlock` under another name, for a crate that
/// re-exports it:
///
/// ```
/// pub extern crate distlock as locks;
///
/// #[locks::distributed_lock(key = "job:<id>", crate = "locks")]
/// async fn job(id: u64) -> Result<u64, locks::LockError> {
///     Ok(id)
/// }
/// # fn main() {}
/// ```
///
/// # Methods of `#[async_trait]` impls
///
/// tonic's generated service traits, and many other trait-based services, are
/// implemented with `#[async_trait]`. The attribute works on their methods,
/// `Send` or `?Send`, with the same checks and the same guarantees:
///
/// ```
/// use async_trait::async_trait;
/// use distlock::{LockError, distributed_lock};
///
/// #[async_trait]
/// pub trait Payments {
///     async fn pay(&self, order: u64) -> Result<u64, LockError>;
/// }
///
/// pub struct Service {
///     pub region: String,
/// }
///
/// #[async_trait]
/// impl Payments for Service {
///     #[distributed_lock(key = "pay:<self.region>:<order>", ttl = "5s")]
///     async fn pay(&self, order: u64) -> Result<u64, LockError> {
///         Ok(order)
///     }
/// }
/// # fn main() {}
/// ```
///
/// `#[async_trait]` on the impl expands first, into a plain fn whose body is
/// `Box::pin(async move { .. })`, with the method's own body inside as
/// `let __ret: T = { .. };`. The attribute replaces only that inner body, so the
/// lock is taken when the future first runs, after async-trait has given the
/// parameters back their names and patterns, and released on every exit of
/// the body, as for an `async fn`. The future is `Send` exactly where
/// async-trait's is. A fn that returns a hand-written boxed future is not
/// recognised: write an `async fn` instead, or take the lock inside the future
/// with `LockManager::lock`.
///
/// # What is generated
///
/// The signature is kept exactly: attributes, visibility, generics,
/// lifetimes, `where` clauses, receivers and parameter patterns. Only the body
/// is replaced. For
///
/// ```text
/// #[distributed_lock(key = "order:<id>", ttl = "10s")]
/// async fn pay(id: u64, amount: u64) -> Result<Receipt, AppError> { charge(id, amount).await }
/// ```
///
/// the whole expansion is (a unit test compares it with this text):
///
/// <!-- expansion -->
/// ```text
/// async fn pay(id: u64, amount: u64) -> Result<Receipt, AppError> {
///     // The key, formatted once. `key_part` only requires `Display`, so a
///     // value that is not is reported at the parameter.
///     let __key: ::std::string::String = {
///         let mut key = ::std::string::String::new();
///         key.push_str("order:");
///         key.push_str(&::std::string::ToString::to_string(
///             ::distlock::__private::key_part(&id)
///         ));
///         key
///     };
///     // Acquire (waiting up to `wait`), inside a `distributed_lock` tracing span.
///     let __call = match ::distlock::__private::lock(
///         &::distlock::__private::LockOptions {
///             manager: ::core::option::Option::None,
///             ttl: ::core::time::Duration::from_millis(10000u64),
///             wait: ::core::time::Duration::from_millis(10000u64),
///             renew: false,
///             on_lost: ::distlock::__private::OnLost::Continue,
///             hold_at_least: ::core::time::Duration::from_millis(0u64),
///             kind: ::distlock::__private::LockKind::Exclusive,
///         },
///         __key)
///     .await
///     {
///         ::core::result::Result::Ok(value) => value,
///         #[allow(clippy::useless_conversion)]
///         ::core::result::Result::Err(__distlock_lock_error) => return
///             ::core::result::Result::Err(::core::convert::From::from(__distlock_lock_error)),
///     };
///     let __finished = {
///         // With `guard = lock`, here:
///         // let lock: &::distlock::__private::LockGuard =
///         //     ::distlock::__private::LockedCall::guard(&__call);
///
///         // Runs the body with the lock marked as held by this task (for nested
///         // locked calls), holds a panic until the lock is released, and with
///         // `on_lost = "cancel"` drops the body when the lock is lost.
///         ::distlock::__private::run(&__call, async move {
///             // Never runs: gives the block the fn's return type, so `?` and
///             // `return` convert as in the original fn. Each `impl Trait` in
///             // the return type is written `_` here.
///             #[allow(
///                 unknown_lints,
///                 unreachable_code,
///                 clippy::diverging_sub_expression,
///                 clippy::empty_loop,
///                 clippy::let_unit_value,
///                 clippy::needless_return,
///             )]
///             if false {
///                 let __return_type: Result<Receipt, AppError> = loop {};
///                 return __return_type;
///             }
///             // The statements of the original body, in the body's braces.
///             charge(id, amount).await
///         })
///         .await
///     };
///     // Releases the lock, awaited, then returns the body's value, resumes its
///     // panic, or returns `LockError::Lost` if it was cancelled.
///     match ::distlock::__private::release(__call, __finished).await {
///         ::core::result::Result::Ok(value) => value,
///         #[allow(clippy::useless_conversion)]
///         ::core::result::Result::Err(__distlock_lock_error) => return
///             ::core::result::Result::Err(::core::convert::From::from(__distlock_lock_error)),
///     }
/// }
/// ```
/// <!-- /expansion -->
///
/// A key without placeholders is `::std::string::String::from("...")`;
/// `permits = 3` makes the `kind` `::distlock::__private::LockKind::Permits(3u32)`,
/// and `mode = "read"` and `mode = "write"` make it `LockKind::Read` and
/// `LockKind::Write`. The
/// body keeps its own spans, so type errors in it point at your code, and
/// `return` and `?` inside it behave as they did in the original fn. The
/// generated locals are hygienic: the body cannot see or shadow them, and the
/// expansion makes no lint fire in your crate.
///
/// A locked call made inside the body for a key the task already holds (same
/// manager) joins that lock instead of waiting for itself; only the outermost
/// call releases it. (With `mode`, a write does not join a read: see `mode`
/// above.)
///
/// When the lock cannot be acquired, the generated code returns
/// `Err(From::from(error))`, so the fn must return `Result<T, E>` (or an alias
/// of it) with `E: From<distlock::LockError>`. `anyhow::Error` and
/// `Box<dyn Error + Send + Sync>` both qualify. The returned future is `Send`
/// whenever the original body's is.
///
/// # Errors at compile time
///
/// Mistakes are reported where they are written: an unknown placeholder (with
/// the closest parameter name and the list of names available), a malformed
/// placeholder, a missing `key`, an unknown or repeated option, a malformed,
/// too short or too long `ttl`, a malformed `wait`, an unknown `on_lost`, a
/// `permits` that is not an integer literal from 1 to 4294967295, an unknown
/// `mode` (with `"read"` or `"write"` suggested for a near miss), `permits`
/// with `mode`, either of them with `keys`, a non-`async` fn, a fn returning
/// a hand-written boxed future, a fn without a `Result` return type,
/// `<self...>` in a fn without `self`, and a placeholder whose value is not
/// `Display`. The fn is still emitted beside the errors, so
/// the rest of the crate and your IDE keep seeing it.
#[proc_macro_attribute]
pub fn distributed_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
