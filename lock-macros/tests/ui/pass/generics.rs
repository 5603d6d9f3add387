// Generics, `where` clauses, lifetimes and `impl Trait` arguments are kept.
#![deny(warnings)]
use std::fmt::Display;

use distlock::{LockError, distributed_lock};

#[derive(Debug)]
pub struct AppError;

impl From<LockError> for AppError {
    fn from(_: LockError) -> Self {
        AppError
    }
}

#[distributed_lock(key = "generic:<id>")]
async fn generic<T: Display + Send, U>(id: T, extra: U) -> Result<U, AppError>
where
    U: Clone + Send,
{
    Ok(extra.clone())
}

#[distributed_lock(key = "lifetime:<name>:<other>")]
async fn lifetimes<'a, 'b: 'a>(name: &'a str, other: &'b str) -> Result<&'a str, AppError> {
    let _ = other;
    Ok(name)
}

#[distributed_lock(key = "impl:<id>")]
async fn impl_trait_arg(id: impl Display, items: impl IntoIterator<Item = u8>) -> Result<u32, AppError> {
    Ok(items.into_iter().map(u32::from).sum())
}

#[distributed_lock(key = "impl-return:<n>")]
async fn impl_trait_return(n: u8) -> Result<impl Display, AppError> {
    Ok(n)
}

#[distributed_lock(key = "const:<len>")]
async fn const_generic<const N: usize>(value: [u8; N], len: usize) -> Result<usize, AppError>
where
    [u8; N]: Send,
{
    Ok(value.len() + len)
}

pub struct Wrapper<T>(pub T);

impl<T: Display + Sync> Wrapper<T> {
    #[distributed_lock(key = "wrapper:<self.0>")]
    pub async fn method<'s>(&'s self) -> Result<&'s T, AppError> {
        Ok(&self.0)
    }
}

fn main() {
    let _ = generic(1, 2);
    let _ = lifetimes("a", "b");
    let _ = impl_trait_arg("x", vec![1, 2]);
    let _ = impl_trait_return(1);
    let _ = const_generic([1u8; 3], 3);
    let _ = Wrapper(1).method();
}
