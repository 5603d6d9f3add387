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
/// ```ignore
/// use distlock::distributed_lock;
///
/// #[distributed_lock(key = "order:<id>", ttl = "10s")]
/// async fn pay(id: u64, amount: u64) -> Result<Receipt, AppError> {
///     // Only one caller across all processes runs this for a given `id`.
///     charge(id, amount).await
/// }
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
/// | option    | value                         | default                    |
/// |-----------|-------------------------------|----------------------------|
/// | `key`     | key template, string literal  | required                   |
/// | `ttl`     | duration string, > 0          | `"30s"`                    |
/// | `wait`    | duration string, may be `"0s"`| same as `ttl`              |
/// | `manager` | name of a registered manager  | the default manager        |
/// | `guard`   | identifier                    | no binding                 |
/// | `crate`   | path to `distlock`, as string | `"::distlock"`             |
///
/// - **`key`**: the lock's name, built from the arguments (see below).
/// - **`ttl`**: the lease. If the process dies while holding the lock, Redis
///   frees it after this long.
/// - **`wait`**: how long to wait for a lock someone else holds before giving
///   up with a timeout error. `"0s"` makes a single attempt.
/// - **`manager`**: which registered lock manager (Redis deployment and
///   settings) to use, by the name it was registered under.
/// - **`guard`**: binds `&LockGuard` under this name inside the body, e.g. to
///   read the fencing token or extend the lease.
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
/// is never re-evaluated.
///
/// # What is generated
///
/// The signature is kept exactly: attributes, visibility, generics,
/// lifetimes, `where` clauses, receivers and parameter patterns. Only the body
/// is replaced, roughly by:
///
/// ```text
/// {
///     let key = format!("order:{}", id);
///     let guard = match lock(&options, key).await {
///         Ok(guard) => guard,
///         Err(error) => return Err(From::from(error)),
///     };
///     // Holds a panic of the body until the lock is released, and marks the
///     // lock as held by this task for nested locked calls.
///     let output = run(&guard, async move { /* the original body */ }).await;
///     release(guard).await;
///     finish(output) // the body's value, or its panic resumed
/// }
/// ```
///
/// The body keeps its own spans, so type errors in it point at your code, and
/// `return` and `?` inside it behave as they did in the original fn. The
/// generated locals are hygienic: the body cannot see or shadow them.
///
/// A locked call made inside the body for a key the task already holds (same
/// manager) joins that lock instead of waiting for itself; only the outermost
/// call releases it.
///
/// When the lock cannot be acquired, the generated code returns
/// `Err(From::from(error))`, so the fn must be an `async fn` returning `Result<T, E>` (or an alias of
/// it) with `E: From<distlock::LockError>`. `anyhow::Error` and
/// `Box<dyn Error + Send + Sync>` both qualify. The returned future is `Send`
/// whenever the original body's is.
///
/// # Examples
///
/// ```ignore
/// use distlock::distributed_lock;
///
/// // A field of a destructured argument, a named manager, and a short wait.
/// #[distributed_lock(key = "transfer:<req.from>:<req.to>", ttl = "2s", wait = "500ms", manager = "payments")]
/// async fn transfer(Json(req): Json<Transfer>) -> Result<StatusCode, ApiError> {
///     // ...
/// }
///
/// impl Accounts {
///     // A field of `self`, and the guard bound as `lock` in the body.
///     #[distributed_lock(key = "user:<self.tenant>:<user_id>", ttl = "30s", guard = lock)]
///     async fn rebuild(&self, user_id: u64) -> anyhow::Result<()> {
///         for chunk in self.chunks(user_id).await? {
///             lock.extend(Duration::from_secs(30)).await?;
///             self.apply(chunk).await?;
///         }
///         Ok(())
///     }
/// }
///
/// // `distlock` reached through another crate's re-export.
/// #[distributed_lock(key = "report:<<daily>>", crate = "my_platform::distlock")]
/// async fn daily_report() -> Result<(), Error> {
///     // The key is `report:<daily>`.
///     Ok(())
/// }
/// ```
///
/// # Errors at compile time
///
/// Mistakes are reported where they are written: an unknown placeholder (with
/// the closest parameter name and the list of names available), a malformed
/// placeholder, a missing `key`, an unknown or repeated option, a malformed or
/// zero `ttl`, a malformed `wait`, a non-`async` fn, `<self...>` in a fn
/// without `self`, and a placeholder whose value is not `Display`.
#[proc_macro_attribute]
pub fn distributed_lock(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::expand(args.into(), item.into()).into()
}
