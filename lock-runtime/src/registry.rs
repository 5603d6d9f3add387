//! The process-wide registry of named lock managers.
//!
//! `#[distributed_lock]` finds its manager here by name, so an application
//! initializes its managers once at start-up and annotated fns anywhere in
//! the process use them.

use std::collections::HashMap;
use std::sync::{LazyLock, RwLock};

use crate::unpoisoned;
use crate::{LockError, LockManager};

/// Name under which [`init`] registers the default manager.
pub const DEFAULT_MANAGER: &str = "default";

static MANAGERS: LazyLock<RwLock<HashMap<String, LockManager>>> = LazyLock::new(Default::default);

/// Connects a manager with default settings to `url` and installs it as the
/// default manager, the one `#[distributed_lock]` uses unless told otherwise.
///
/// `url` is anything that converts into a `String`, as for every URL distlock
/// takes (see [`LockManager::builder`]).
///
/// Fails with [`LockError::AlreadyInitialized`] when called twice.
///
/// ```no_run
/// # async fn demo() -> Result<(), distlock::LockError> {
/// distlock::init("redis://127.0.0.1:6379").await?;
/// # Ok(()) }
/// ```
pub async fn init(url: impl Into<String>) -> Result<LockManager, LockError> {
    init_named(DEFAULT_MANAGER, url).await
}

/// Connects a manager with default settings to `url` and registers it under `name`
/// (for `#[distributed_lock(manager = "name")]`).
pub async fn init_named(name: &str, url: impl Into<String>) -> Result<LockManager, LockError> {
    ensure_free(name)?;
    let manager = LockManager::connect(url).await?;
    register(name, manager.clone())?;
    Ok(manager)
}

/// Installs an [in-memory](LockManager::in_memory) manager as the default
/// manager: for an application's tests, which then run its
/// `#[distributed_lock]` fns unchanged and without Redis.
///
/// Fails with [`LockError::AlreadyInitialized`] when a default manager is
/// installed already.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), distlock::LockError> {
/// distlock::init_in_memory().await?;
/// let guard = distlock::default_manager()?.lock("job").acquire().await?;
/// # drop(guard); Ok(()) }
/// ```
pub async fn init_in_memory() -> Result<LockManager, LockError> {
    ensure_free(DEFAULT_MANAGER)?;
    let manager = LockManager::in_memory().build().await?;
    register(DEFAULT_MANAGER, manager.clone())?;
    Ok(manager)
}

/// Registers an already built manager under `name`.
pub fn register(name: &str, manager: LockManager) -> Result<(), LockError> {
    let mut managers = unpoisoned::write(&MANAGERS);
    if managers.contains_key(name) {
        return Err(LockError::AlreadyInitialized {
            name: name.to_owned(),
        });
    }
    manager.inner().set_name(name);
    managers.insert(name.to_owned(), manager);
    Ok(())
}

/// The manager registered under `name`.
pub fn manager(name: &str) -> Result<LockManager, LockError> {
    unpoisoned::read(&MANAGERS)
        .get(name)
        .cloned()
        .ok_or_else(|| LockError::NotInitialized {
            name: name.to_owned(),
        })
}

/// Every registered manager, for a shutdown of them all.
pub(crate) fn registered() -> Vec<LockManager> {
    unpoisoned::read(&MANAGERS).values().cloned().collect()
}

/// The default manager, installed by [`init`].
pub fn default_manager() -> Result<LockManager, LockError> {
    manager(DEFAULT_MANAGER)
}

fn ensure_free(name: &str) -> Result<(), LockError> {
    match manager(name) {
        Ok(_) => Err(LockError::AlreadyInitialized {
            name: name.to_owned(),
        }),
        Err(_) => Ok(()),
    }
}
