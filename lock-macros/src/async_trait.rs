//! Methods that `#[async_trait]` rewrote before `#[distributed_lock]` saw them.
//!
//! An attribute on the `impl` (or the trait) expands before the attributes on
//! its methods, so `#[distributed_lock]` never sees the `async fn` the user
//! wrote. async-trait (the shape below is 0.1.92's) turns
//!
//! ```text
//! async fn pay(&self, id: u64) -> Result<u64, E> { body }
//! ```
//!
//! into a plain fn returning `Pin<Box<dyn Future<Output = ..> + Send + '_>>`
//! (no `Send` with `?Send`) whose body is one boxed async block:
//!
//! ```text
//! Box::pin(async move {
//!     if let Some(__ret) = None::<Result<u64, E>> { return __ret; } // type hint
//!     let __self = self;                  // one `let` per parameter, in order,
//!     let id = id;                        // giving back the names and patterns
//!     let __ret: Result<u64, E> = { body }; // the body, `self` renamed `__self`
//!     __ret
//! })
//! ```
//!
//! Only the body's `{ .. }` is replaced with the locked call, so the lock is
//! taken where the original body started, with the user's own names in
//! scope, and everything async-trait decided (boxing, `Send`, lifetimes) is
//! left as it was. tracing's `#[instrument]` recognises the same shape.

use syn::{Block, Expr, ExprAsync, ItemFn, Local, Pat, Stmt, Type};

use crate::bindings::Bindings;

/// A method as async-trait left it, taken apart where the body goes.
pub(crate) struct AsyncTraitBody {
    /// The callee of the body's only expression: async-trait's `Box::pin`.
    pub(crate) pin: Expr,
    /// The boxed async block, whose statement `body_index` holds the body.
    pub(crate) async_block: ExprAsync,
    pub(crate) body_index: usize,
    /// The user's body.
    pub(crate) body: Block,
    /// The return type the user wrote, from `let __ret: T`.
    pub(crate) output: Type,
    /// The names the body sees, as the user wrote them.
    pub(crate) bindings: Bindings,
}

/// What a fn without `async` turned out to be.
pub(crate) enum NotAsync {
    /// A method async-trait rewrote, ready to wrap.
    AsyncTrait(Box<AsyncTraitBody>),
    /// A fn whose whole body is `Box::pin(async move { .. })`, in which the
    /// user's body could not be found: a hand-written boxed future, or an
    /// async-trait output distlock does not know.
    UnknownAsyncBlock,
    /// A fn that is not asynchronous at all.
    Sync,
}

impl NotAsync {
    /// Looks for async-trait's shape in `function`, which is not `async`.
    pub(crate) fn of(function: &ItemFn) -> NotAsync {
        let Some((pin, async_block)) = boxed_async_block(&function.block) else {
            return NotAsync::Sync;
        };
        match AsyncTraitBody::find(function, pin, async_block) {
            Some(body) => NotAsync::AsyncTrait(Box::new(body)),
            None => NotAsync::UnknownAsyncBlock,
        }
    }
}

impl AsyncTraitBody {
    fn find(function: &ItemFn, pin: &Expr, async_block: &ExprAsync) -> Option<AsyncTraitBody> {
        let stmts = &async_block.block.stmts;
        let (body_index, output, body) = stmts.iter().enumerate().find_map(|(index, stmt)| {
            let (output, body) = returned_body(stmt)?;
            Some((index, output, body))
        })?;
        let rebindings: Vec<&Local> = stmts
            .iter()
            .take(body_index)
            .filter_map(|stmt| match stmt {
                Stmt::Local(rebinding) => Some(rebinding),
                _ => None,
            })
            .collect();
        let bindings = Bindings::of_async_trait(&function.sig, &rebindings)?;
        Some(AsyncTraitBody {
            pin: pin.clone(),
            async_block: async_block.clone(),
            body_index,
            body: body.clone(),
            output: output.clone(),
            bindings,
        })
    }
}

/// `Box::pin(async move { .. })`, the whole of `block`: the callee and the
/// async block.
fn boxed_async_block(block: &Block) -> Option<(&Expr, &ExprAsync)> {
    let [Stmt::Expr(Expr::Call(call), None)] = block.stmts.as_slice() else {
        return None;
    };
    let Expr::Path(callee) = &*call.func else {
        return None;
    };
    let segments: Vec<String> = callee
        .path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    if !segments.ends_with(&["Box".to_owned(), "pin".to_owned()]) || call.args.len() != 1 {
        return None;
    }
    match call.args.first()? {
        Expr::Async(async_block) if async_block.capture.is_some() => {
            Some((&call.func, async_block))
        }
        _ => None,
    }
}

/// `let __ret: T = { body };`: `T`, and the body. A method
/// without a return type gets `let _: () = { body };`, recognised too so the
/// error can say that a `Result` is missing.
fn returned_body(stmt: &Stmt) -> Option<(&Type, &Block)> {
    let Stmt::Local(local) = stmt else {
        return None;
    };
    let Pat::Type(typed) = &local.pat else {
        return None;
    };
    match &*typed.pat {
        Pat::Ident(name) if name.ident == "__ret" => {}
        Pat::Wild(_) => {}
        _ => return None,
    }
    let init = local.init.as_ref()?;
    if init.diverge.is_some() {
        return None;
    }
    match &*init.expr {
        Expr::Block(block) if block.label.is_none() && block.attrs.is_empty() => {
            Some((&typed.ty, &block.block))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn shape(item: proc_macro2::TokenStream) -> NotAsync {
        let function: ItemFn = syn::parse2(item).expect("test fn");
        NotAsync::of(&function)
    }

    fn names(bindings: &Bindings) -> Vec<String> {
        bindings.available()
    }

    #[test]
    fn finds_the_body_and_the_names_async_trait_gives_back() {
        let found = shape(quote! {
            fn pay<'life0, 'async_trait>(&'life0 self, __arg1: (u8, u8), tenant: &'life0 str, id: u64, __arg4: u8)
                -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<u64, E>> + ::core::marker::Send + 'async_trait>>
            {
                Box::pin(async move {
                    if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<Result<u64, E>> {
                        #[allow(unreachable_code)]
                        return __ret;
                    }
                    let __self = self;
                    let (a, b) = { let __arg1 = __arg1; __arg1 };
                    let mut id = id;
                    let __arg4 = __arg4;
                    let __ret: Result<u64, E> = { Ok(id) };
                    #[allow(unreachable_code)]
                    __ret
                })
            }
        });
        let NotAsync::AsyncTrait(body) = found else {
            panic!("not recognised");
        };
        assert_eq!(body.body_index, 5);
        let stmts = &body.body.stmts;
        assert_eq!(quote!(#(#stmts)*).to_string(), "Ok (id)");
        let output = &body.output;
        assert_eq!(quote!(#output).to_string(), "Result < u64 , E >");
        assert_eq!(
            names(&body.bindings),
            ["self", "a", "b", "tenant", "id"].map(String::from)
        );
    }

    #[test]
    fn other_bodies_are_told_apart() {
        let hand_written = shape(quote! {
            fn pay(&self) -> BoxFuture<'_, Result<u64, E>> {
                Box::pin(async move { Ok(1) })
            }
        });
        assert!(matches!(hand_written, NotAsync::UnknownAsyncBlock));
        let missing_rebinding = shape(quote! {
            fn pay(&self, id: u64) -> Pin<Box<dyn Future<Output = R>>> {
                Box::pin(async move { let __ret: R = { Ok(id) }; __ret })
            }
        });
        assert!(matches!(missing_rebinding, NotAsync::UnknownAsyncBlock));
        let plain = shape(quote! {
            fn pay(id: u64) -> R { Ok(id) }
        });
        assert!(matches!(plain, NotAsync::Sync));
    }
}
