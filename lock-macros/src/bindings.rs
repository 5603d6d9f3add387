//! The names a key placeholder can start from: every binding the fn's
//! parameter patterns introduce, plus the receiver.

use syn::{FnArg, Ident, Pat, Signature, Token};

/// What the parameters of one fn bind, in declaration order.
pub(crate) struct Bindings {
    /// The `self` token of the receiver, if the fn is a method.
    pub(crate) receiver: Option<Token![self]>,
    pub(crate) names: Vec<Ident>,
}

impl Bindings {
    pub(crate) fn of(sig: &Signature) -> Bindings {
        let mut bindings = Bindings {
            receiver: None,
            names: Vec::new(),
        };
        for input in &sig.inputs {
            match input {
                FnArg::Receiver(receiver) => bindings.receiver = Some(receiver.self_token),
                FnArg::Typed(typed) => collect(&typed.pat, &mut bindings.names),
            }
        }
        bindings
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
