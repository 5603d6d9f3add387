//! The names a key placeholder can start from: every binding the fn's
//! parameter patterns introduce, plus the receiver.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::{Expr, FnArg, Ident, Local, Pat, Signature, Token, Type};

/// What the parameters of one fn bind, in declaration order.
pub(crate) struct Bindings {
    /// The receiver, if the fn is a method.
    pub(crate) receiver: Option<Receiver>,
    pub(crate) names: Vec<Ident>,
}

/// Where a method's receiver is, for `<self.field>` placeholders.
pub(crate) enum Receiver {
    /// `self` itself, in an `async fn`.
    SelfToken(Token![self]),
    /// The local `#[async_trait]` moved `self` into (`__self`), inside its
    /// async block; `self` may already have been moved there.
    Rebound(Ident),
}

impl Receiver {
    pub(crate) fn span(&self) -> Span {
        match self {
            Receiver::SelfToken(token) => token.span,
            Receiver::Rebound(ident) => ident.span(),
        }
    }
}

impl ToTokens for Receiver {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match self {
            Receiver::SelfToken(token) => token.to_tokens(tokens),
            Receiver::Rebound(ident) => ident.to_tokens(tokens),
        }
    }
}

impl Bindings {
    pub(crate) fn of(sig: &Signature) -> Bindings {
        let mut bindings = Bindings {
            receiver: None,
            names: Vec::new(),
        };
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(receiver) => {
                    bindings.receiver = Some(Receiver::SelfToken(receiver.self_token));
                }
                FnArg::Typed(typed) => collect(&typed.pat, &mut bindings.names),
            }
        }
        bindings
    }

    /// The names bound inside the async block `#[async_trait]` made of a
    /// method, after its `rebindings`: the `let`s at the top of that block
    /// that give the parameters back the names and patterns the user wrote.
    ///
    /// async-trait writes one `let` per parameter, in order, except for
    /// parameters of reference type, which the block captures unchanged.
    /// `None` when the `let`s do not line up with the parameters that way.
    pub(crate) fn of_async_trait(sig: &Signature, rebindings: &[&Local]) -> Option<Bindings> {
        let mut bindings = Bindings {
            receiver: None,
            names: Vec::new(),
        };
        let mut rebindings = rebindings.iter();
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(_) => {
                    let local = rebindings.next()?;
                    bindings.receiver = Some(Receiver::Rebound(rebound_receiver(local)?));
                }
                FnArg::Typed(typed) if matches!(*typed.ty, Type::Reference(_)) => {
                    collect(&typed.pat, &mut bindings.names);
                }
                FnArg::Typed(_) => {
                    let local = rebindings.next()?;
                    if !is_positional(&local.pat) {
                        collect(&local.pat, &mut bindings.names);
                    }
                }
            }
        }
        rebindings.next().is_none().then_some(bindings)
    }

    /// The binding a placeholder root names; it carries the parameter's span.
    pub(crate) fn find(&self, name: &Ident) -> Option<&Ident> {
        self.names.iter().find(|binding| *binding == name)
    }

    /// Every name a placeholder may start with, as written in the fn.
    pub(crate) fn available(&self) -> Vec<String> {
        self.receiver
            .iter()
            .map(|_| "self".to_owned())
            .chain(self.names.iter().map(Ident::to_string))
            .collect()
    }
}

/// `x` of `let x = self;` (or `let mut x = self;`).
fn rebound_receiver(local: &Local) -> Option<Ident> {
    let Pat::Ident(pat) = &local.pat else {
        return None;
    };
    let init = local.init.as_ref()?;
    match &*init.expr {
        Expr::Path(path) if path.path.is_ident("self") => Some(pat.ident.clone()),
        _ => None,
    }
}

/// async-trait renames a `_` parameter to `__arg<i>`, with the macro's own
/// hygiene: no placeholder can name it, so it is not offered as one.
fn is_positional(pat: &Pat) -> bool {
    let Pat::Ident(pat) = pat else {
        return false;
    };
    pat.ident
        .to_string()
        .strip_prefix("__arg")
        .is_some_and(|index| !index.is_empty() && index.bytes().all(|b| b.is_ascii_digit()))
}

fn collect(pat: &Pat, names: &mut Vec<Ident>) {
    match pat {
        Pat::Ident(pat) => {
            names.push(pat.ident.clone());
            if let Some((_, subpat)) = &pat.subpat {
                collect(subpat, names);
            }
        }
        Pat::Type(pat) => collect(&pat.pat, names),
        Pat::Reference(pat) => collect(&pat.pat, names),
        Pat::Paren(pat) => collect(&pat.pat, names),
        Pat::Tuple(pat) => pat.elems.iter().for_each(|elem| collect(elem, names)),
        Pat::TupleStruct(pat) => pat.elems.iter().for_each(|elem| collect(elem, names)),
        Pat::Slice(pat) => pat.elems.iter().for_each(|elem| collect(elem, names)),
        Pat::Struct(pat) => pat
            .fields
            .iter()
            .for_each(|field| collect(&field.pat, names)),
        // Every alternative binds the same names; the first one is enough.
        Pat::Or(pat) => {
            if let Some(first) = pat.cases.first() {
                collect(first, names);
            }
        }
        Pat::Guard(pat) => collect(&pat.pat, names),
        // Bind nothing: `_`, `..`, literals, ranges, paths, consts, macros,
        // and whatever syn leaves unparsed.
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sig: &str) -> (bool, Vec<String>) {
        let sig: Signature = syn::parse_str(sig).expect("test signature");
        let bindings = Bindings::of(&sig);
        (
            bindings.receiver.is_some(),
            bindings.names.iter().map(Ident::to_string).collect(),
        )
    }

    #[test]
    fn plain_parameters() {
        assert_eq!(
            names("async fn f(id: u64, mut n: u32, _: bool)"),
            (false, vec!["id".into(), "n".into()])
        );
    }

    #[test]
    fn receivers() {
        assert_eq!(names("fn f(&self, id: u64)"), (true, vec!["id".into()]));
        assert_eq!(names("fn f(&mut self)"), (true, vec![]));
        assert_eq!(names("fn f(self: Arc<Self>)"), (true, vec![]));
        assert_eq!(names("fn f(mut self)"), (true, vec![]));
    }

    #[test]
    fn destructuring_patterns() {
        assert_eq!(
            names(
                "fn f(Path(id): Path<u64>, Json(req): Json<Req>, (a, b): (u32, u32), \
                 &Order { id: order_id, .. }: &Order, Foo { x: renamed, ref y, .. }: Foo, \
                 [first, .., last]: [u8; 4], whole @ Some(inner): Option<u8>, ((deep,),): ((u8,),))"
            ),
            (
                false,
                [
                    "id", "req", "a", "b", "order_id", "renamed", "y", "first", "last", "whole",
                    "inner", "deep"
                ]
                .map(String::from)
                .to_vec()
            )
        );
    }

    #[test]
    fn raw_identifiers_compare_as_written() {
        let sig: Signature = syn::parse_str("fn f(r#type: u8)").expect("test signature");
        let bindings = Bindings::of(&sig);
        let wanted: Ident = syn::parse_str("r#type").expect("test ident");
        assert!(bindings.find(&wanted).is_some());
    }
}
