// `impl Trait` inside the return type: the expansion's type hint erases it
// (`Result<_, BoxError>`), so the body still knows its error type. Without
// the hint, `return Err(Box::new(..))` could not find the type to box into
// (E0308); without erasing, the hint could not be written at all.
#![deny(warnings)]

use std::error::Error;
use std::fmt::Display;

use distlock::distributed_lock;

type BoxError = Box<dyn Error + Send + Sync>;

/// An early return of a boxed error.
#[distributed_lock(key = "impl:<id>", ttl = "2s")]
async fn early_boxed(id: u64) -> Result<impl Display, BoxError> {
    if id == 0 {
        return Err(Box::new(std::io::Error::other("zero")));
    }
    Ok(id)
}

/// `impl Trait` nested in a type argument.
#[distributed_lock(key = "impl:nested:<id>", ttl = "2s")]
async fn nested(id: u64) -> Result<Vec<(u64, impl Display)>, BoxError> {
    if id == 0 {
        return Err(Box::new(std::io::Error::other("zero")));
    }
    Ok(vec![(id, "one")])
}

fn main() {
    drop(early_boxed(1));
    drop(nested(1));
}
