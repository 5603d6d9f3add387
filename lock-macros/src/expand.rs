//! Code generation: the annotated fn keeps its signature and gets a new body
//! that takes the lock, runs the original body, and releases the lock.
//!
//! It comes in two halves, as tracing-attributes' `gen_function` and
//! `gen_block`: `locked_body` makes the statements around the user's body
//! (build the key, take the lock, run the body, release the lock), and
//! `async_fn` or `async_trait_method` puts them in the fn's shell, its
//! attributes and signature as written (for an `#[async_trait]` method,
//! inside the boxed async block async-trait made of it).
//!
//! On any error the original item is emitted unchanged next to the
//! `compile_error!`s, so the rest of the crate (and an IDE) still sees the fn.

use proc_macro2::{Delimiter, Group, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{AttrStyle, Attribute, Block, Expr, Ident, ItemFn, LitStr, Path, ReturnType, Stmt, Type};

use crate::async_trait::{AsyncTraitBody, NotAsync};
use crate::attr::{Kind, LockArgs, OnLost};
use crate::bindings::Bindings;
use crate::diagnostic::{self, Errors};
use crate::template::{Member, Part, Placeholder, Root, Template};

/// Expands `#[distributed_lock(args)] item`.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let function = match syn::parse2::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(error) => {
            errors.push(not_an_async_fn(&item, error));
            LockArgs::parse(args, &mut errors);
            return with_errors(item, &errors);
        }
    };
    let args = LockArgs::parse(args, &mut errors);
    let shape = Shape::of(&function, &mut errors);
    let checked = Checked::new(&function, shape.as_ref(), &args, &mut errors);
    match (shape, checked) {
        (Some(shape), Some(checked)) if errors.is_empty() => {
            let locked = locked_body(&args, &checked, shape.body(&function));
            match &shape {
                Shape::AsyncFn => async_fn(&function, &locked),
                Shape::AsyncTrait(body) => async_trait_method(&function, body, &locked),
            }
        }
        _ => with_errors(item, &errors),
    }
}

fn with_errors(item: TokenStream, errors: &Errors) -> TokenStream {
    // The build fails on the errors anyway; without the allow, the
    // parameters only the key would have used come on top as "unused
    // variable" warnings, errors themselves under `deny(warnings)`.
    let mut output = quote!(#[allow(unused_variables)]);
    output.extend(item);
    output.extend(errors.to_compile_errors());
    output
}

/// Where the body the lock wraps is.
enum Shape {
    /// An `async fn`: its own body.
    AsyncFn,
    /// A method `#[async_trait]` rewrote into a plain fn: the body inside
    /// its boxed async block.
    AsyncTrait(Box<AsyncTraitBody>),
}

impl Shape {
    /// The shape of `function`, or `None` (reported) when it has no async
    /// body to lock.
    fn of(function: &ItemFn, errors: &mut Errors) -> Option<Shape> {
        let sig = &function.sig;
        if sig.asyncness.is_some() {
            return Some(Shape::AsyncFn);
        }
        let (fn_token, ident) = (&sig.fn_token, &sig.ident);
        let message = match NotAsync::of(function) {
            NotAsync::AsyncTrait(body) => return Some(Shape::AsyncTrait(body)),
            NotAsync::UnknownAsyncBlock => format!(
                "`#[distributed_lock]` found `fn {ident}` returning `Box::pin(async move {{ .. }})`, but not the original body in it: it recognises the body current `#[async_trait]` versions make of an `async fn`, not a hand-written boxed future; write `async fn {ident}` (in an `#[async_trait]` impl if the trait needs one), or take the lock inside the async block with `distlock::default_manager()?.lock(key).acquire().await?`"
            ),
            NotAsync::Sync => format!(
                "`#[distributed_lock]` needs an `async fn`: taking the lock waits on Redis; write `async fn {ident}`"
            ),
        };
        errors.push(syn::Error::new_spanned(quote!(#fn_token #ident), message));
        None
    }

    /// The user's body.
    fn body<'a>(&'a self, function: &'a ItemFn) -> &'a Block {
        match self {
            Shape::AsyncFn => &function.block,
            Shape::AsyncTrait(body) => &body.body,
        }
    }
}

/// What the checks of the fn against the options produced, ready to generate.
struct Checked {
    /// The expressions building the key `String`s.
    key: KeyExpressions,
    /// Where the lock error is returned, so a non-`Result` return type is
    /// reported at the return type.
    return_span: Span,
    /// The declared return type as the body's type hint writes it (`_` for
    /// each `impl Trait`), when that pins anything down.
    return_type_hint: Option<Type>,
}

impl Checked {
    fn new(
        function: &ItemFn,
        shape: Option<&Shape>,
        args: &LockArgs,
        errors: &mut Errors,
    ) -> Option<Checked> {
        let sig = &function.sig;
        let own_bindings;
        let (bindings, output) = match shape {
            Some(Shape::AsyncTrait(body)) => (&body.bindings, Some(&body.output)),
            _ => {
                own_bindings = Bindings::of(sig);
                let output = match &sig.output {
                    ReturnType::Type(_, ty) => Some(&**ty),
                    ReturnType::Default => None,
                };
                (&own_bindings, output)
            }
        };
        let (return_span, return_type_hint) = check_return_type(&sig.ident, output, errors);
        check_guard(args, bindings, errors);
        let key = KeyExpressions::of(args, bindings, errors)?;
        Some(Checked {
            key,
            return_span,
            return_type_hint,
        })
    }
}

/// The expressions building the keys of the lock: `key`'s one, or one per
/// template of `keys`.
enum KeyExpressions {
    One(TokenStream),
    Several(Vec<TokenStream>),
}

impl KeyExpressions {
    /// The keys of `args`, each template checked against the fn; `None`
    /// when one of them is wrong (every problem of every template reported)
    /// or there is no key (reported already).
    fn of(args: &LockArgs, bindings: &Bindings, errors: &mut Errors) -> Option<Self> {
        let key_of = |lit: &LitStr, errors: &mut Errors| {
            let template = parse_key(lit, errors)?;
            key_expression(&template, lit, bindings, args, errors)
        };
        if let Some(lit) = &args.key {
            return Some(KeyExpressions::One(key_of(lit, errors)?));
        }
        if args.keys.is_empty() {
            return None;
        }
        let keys: Vec<Option<TokenStream>> =
            args.keys.iter().map(|lit| key_of(lit, errors)).collect();
        keys.into_iter()
            .collect::<Option<Vec<_>>>()
            .map(KeyExpressions::Several)
    }
}

/// The span to report a return type problem at, and the type for the body's
/// type hint (see [`return_type_hint`]).
fn check_return_type(
    ident: &Ident,
    output: Option<&Type>,
    errors: &mut Errors,
) -> (Span, Option<Type>) {
    match output {
        // async-trait writes `()` for a method without a return type.
        Some(Type::Tuple(unit)) if unit.elems.is_empty() => {
            errors.push(missing_result(ident));
            (ident.span(), None)
        }
        Some(ty) => (ty.span(), return_type_hint(ty)),
        None => {
            errors.push(missing_result(ident));
            (ident.span(), None)
        }
    }
}

fn missing_result(ident: &Ident) -> syn::Error {
    syn::Error::new(
        ident.span(),
        format!(
            "`#[distributed_lock]` needs `{ident}` to return a `Result` whose error type implements `From<distlock::LockError>`: taking the lock can fail"
        ),
    )
}

fn check_guard(args: &LockArgs, bindings: &Bindings, errors: &mut Errors) {
    if let Some(guard) = &args.guard
        && bindings.find(guard).is_some()
    {
        errors.push(syn::Error::new(
            guard.span(),
            format!(
                "`guard = {guard}` would hide the parameter `{guard}` inside the body; pick another name"
            ),
        ));
    }
}

fn parse_key(key_lit: &LitStr, errors: &mut Errors) -> Option<Template> {
    let template = match Template::parse(&key_lit.value()) {
        Ok(template) => template,
        Err(template_errors) => {
            for error in template_errors {
                errors.push(syn::Error::new(key_lit.span(), error));
            }
            return None;
        }
    };
    if template.parts.is_empty() {
        errors.push(syn::Error::new(
            key_lit.span(),
            "the lock key is empty; name what the lock protects, like `key = \"order:<id>\"`",
        ));
        return None;
    }
    Some(template)
}

/// The block that builds the key `String`: literal text is pushed as is,
/// each placeholder's value is formatted through `key_part`.
///
/// Not one `format!` for the whole key: `format!` checks `Display` again at
/// its `{}`, which lies in the attribute, so a value that is not `Display`
/// would be reported twice, once of them away from the parameter.
fn key_expression(
    template: &Template,
    key_lit: &LitStr,
    bindings: &Bindings,
    args: &LockArgs,
    errors: &mut Errors,
) -> Option<TokenStream> {
    let key = Ident::new("key", Span::mixed_site());
    let steps = key_steps(template, key_lit, bindings, &krate(args), &key, errors)?;
    if let [Part::Text(text)] = template.parts.as_slice() {
        let text = LitStr::new(text, key_lit.span());
        return Some(quote!(::std::string::String::from(#text)));
    }
    Some(quote! {{
        let mut #key = ::std::string::String::new();
        #(#steps)*
        #key
    }})
}

/// One statement per part of the template, each pushing the part onto the
/// `key` being built; `None` when a placeholder names nothing the fn binds,
/// each such problem reported once.
fn key_steps(
    template: &Template,
    key_lit: &LitStr,
    bindings: &Bindings,
    krate: &Path,
    key: &Ident,
    errors: &mut Errors,
) -> Option<Vec<TokenStream>> {
    let mut steps = Vec::new();
    let mut reported = Vec::new();
    for part in &template.parts {
        match part {
            Part::Text(text) => {
                let text = LitStr::new(text, key_lit.span());
                steps.push(quote!(#key.push_str(#text);));
            }
            Part::Placeholder(placeholder) => {
                match write_placeholder(placeholder, bindings, krate, key) {
                    Ok(step) => steps.push(step),
                    Err(message) => {
                        // One report per unknown root is enough.
                        if !reported.contains(&message) {
                            errors.push(syn::Error::new(key_lit.span(), &message));
                            reported.push(message);
                        }
                    }
                }
            }
        }
    }
    reported.is_empty().then_some(steps)
}

/// Writes `key_part(&req.from)` into the key, spanned at the parameter that
/// binds `req` so a missing field or `Display` impl is reported there rather
/// than inside the macro.
fn write_placeholder(
    placeholder: &Placeholder,
    bindings: &Bindings,
    krate: &Path,
    key: &Ident,
) -> Result<TokenStream, String> {
    let (root, span) = placeholder_root(placeholder, bindings)?;
    let members = placeholder.members.iter().map(|member| match member {
        Member::Named(ident) => {
            let mut ident = ident.clone();
            ident.set_span(span);
            ident.into_token_stream()
        }
        Member::Index(index) => syn::Index {
            index: *index,
            span,
        }
        .into_token_stream(),
    });
    // The crate path too: rustc underlines a call from its first token.
    let krate = respanned(krate.to_token_stream(), span);
    Ok(quote_spanned! {span=>
        #key.push_str(&::std::string::ToString::to_string(
            #krate::__private::key_part(&#root #(.#members)*)
        ));
    })
}

/// The value a placeholder starts from, the receiver or a binding of the
/// parameters, with the span of where the fn introduces it; or why the fn
/// has no such value.
fn placeholder_root(
    placeholder: &Placeholder,
    bindings: &Bindings,
) -> Result<(TokenStream, Span), String> {
    match &placeholder.root {
        Root::SelfValue => match &bindings.receiver {
            Some(self_token) => Ok((self_token.to_token_stream(), self_token.span())),
            None => Err(format!(
                "the placeholder `<{}>` uses `self`, but the fn has no `self` receiver; {}",
                placeholder.source,
                available_names(bindings)
            )),
        },
        Root::Binding(name) => match bindings.find(name) {
            Some(binding) => Ok((binding.to_token_stream(), binding.span())),
            None => Err(unknown_placeholder(placeholder, name, bindings)),
        },
    }
}

/// `tokens` with every span, nested ones included, set to `span`.
fn respanned(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let TokenTree::Group(group) = &token {
                let mut inner = Group::new(group.delimiter(), respanned(group.stream(), span));
                inner.set_span(span);
                token = TokenTree::Group(inner);
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
}

fn unknown_placeholder(placeholder: &Placeholder, name: &Ident, bindings: &Bindings) -> String {
    let available = bindings.available();
    let name = name.to_string();
    let source = &placeholder.source;
    let head =
        format!("unknown placeholder `<{source}>`: the fn has no parameter binding `{name}`");
    match diagnostic::closest(&name, available.iter().map(String::as_str)) {
        Some(closest) => format!(
            "{head}; did you mean `{closest}`? {}",
            available_names(bindings)
        ),
        None => format!("{head}; {}", available_names(bindings)),
    }
}

/// What a placeholder could have named instead.
fn available_names(bindings: &Bindings) -> String {
    let available = bindings.available();
    if available.is_empty() {
        "it has no parameters to build the key from".to_owned()
    } else {
        format!("available: {}", diagnostic::list(&available))
    }
}

fn krate(args: &LockArgs) -> Path {
    args.krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::distlock))
}

/// The return type as the type of a local, for the body's type hint: each
/// `impl Trait`, which a local's type cannot name, becomes `_` (the idea of
/// tracing-attributes' `erase_impl_trait`), so the hint still pins the rest,
/// such as the error type of `Result<impl Display, Box<dyn Error>>`.
///
/// `None` when nothing would be left to pin (the whole type is `impl Trait`)
/// or when an `impl Trait` remains where the erasure does not reach (in the
/// bounds of a `dyn`, or in a macro).
fn return_type_hint(ty: &Type) -> Option<Type> {
    let mut hint = ty.clone();
    erase_impl_trait(&mut hint);
    let pins_something = !matches!(hint, Type::Infer(_)) && !mentions_impl_trait(&hint);
    pins_something.then_some(hint)
}

/// Replaces each `impl Trait` in `ty` with `_`, in type arguments, tuples,
/// references, pointers, arrays and slices.
fn erase_impl_trait(ty: &mut Type) {
    match ty {
        Type::ImplTrait(_) => {
            let span = ty.span();
            *ty = syn::parse_quote_spanned!(span=> _);
        }
        // `(impl Trait)` becomes `_`, not `(_)`.
        Type::Paren(syn::TypeParen { elem, .. }) | Type::Group(syn::TypeGroup { elem, .. }) => {
            erase_impl_trait(elem);
            if let Type::Infer(_) = **elem {
                *ty = (**elem).clone();
            }
        }
        Type::Array(array) => erase_impl_trait(&mut array.elem),
        Type::Ptr(pointer) => erase_impl_trait(&mut pointer.elem),
        Type::Reference(reference) => erase_impl_trait(&mut reference.elem),
        Type::Slice(slice) => erase_impl_trait(&mut slice.elem),
        Type::Tuple(tuple) => tuple.elems.iter_mut().for_each(erase_impl_trait),
        Type::Path(path) => erase_in_type_arguments(&mut path.path),
        _ => {}
    }
}

/// [`erase_impl_trait`] in the type arguments of `path`, associated type
/// bindings (`Item = impl Trait`) included.
fn erase_in_type_arguments(path: &mut Path) {
    for segment in &mut path.segments {
        let syn::PathArguments::AngleBracketed(arguments) = &mut segment.arguments else {
            continue;
        };
        for argument in &mut arguments.args {
            match argument {
                syn::GenericArgument::Type(ty) => erase_impl_trait(ty),
                syn::GenericArgument::AssocType(binding) => erase_impl_trait(&mut binding.ty),
                _ => {}
            }
        }
    }
}

/// Whether `ty` contains `impl Trait`, which cannot be written as the type of
/// a local.
fn mentions_impl_trait(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|token| match token {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(ty.to_token_stream())
}

/// The statements that replace the body: build the key, take the lock, run
/// the body, release the lock, and return what the body returned.
fn locked_body(args: &LockArgs, checked: &Checked, body: &Block) -> TokenStream {
    let krate = krate(args);
    let private = quote!(#krate::__private);
    // Mixed-site locals: the body cannot see or shadow them.
    let key = Ident::new("__key", Span::mixed_site());
    let call = Ident::new("__call", Span::mixed_site());
    let finished = Ident::new("__finished", Span::mixed_site());
    let value = Ident::new("value", Span::mixed_site());

    let options = lock_options(args, &private);
    let return_error = return_lock_error(checked.return_span);
    let (keys, acquire, guard_type) = match &checked.key {
        KeyExpressions::One(expr) => (
            quote!(let #key: ::std::string::String = #expr;),
            quote!(#private::lock(&#options, #key)),
            quote!(#private::LockGuard),
        ),
        KeyExpressions::Several(exprs) => (
            quote!(let #key: ::std::vec::Vec<::std::string::String> = ::std::vec![#(#exprs),*];),
            quote!(#private::lock_all(&#options, #key)),
            quote!(#private::MultiLockGuard),
        ),
    };
    let user_guard = args
        .guard
        .as_ref()
        .map(|name| quote!(let #name: &#guard_type = #private::LockedCall::guard(&#call);));
    let body = body_block(body, checked.return_type_hint.as_ref());

    quote! {
        #keys
        let #call = match #acquire.await {
            ::core::result::Result::Ok(#value) => #value,
            #return_error,
        };
        let #finished = {
            #user_guard
            #private::run(&#call, async move #body).await
        };
        match #private::release(#call, #finished).await {
            ::core::result::Result::Ok(#value) => #value,
            #return_error,
        }
    }
}

/// The match arm that returns a `LockError` from the fn, converted into its
/// error type.
///
/// At the return type (`return_span`), so a return type that is not a
/// `Result`, or whose error lacks `From<LockError>`, is reported there.
fn return_lock_error(return_span: Span) -> TokenStream {
    // rustc shows a span with the macro's hygiene at the attribute whatever
    // its location, so this binding has the return type's own span, and a
    // name no user code would have, in place of mixed-site hygiene. It is
    // only in scope within its match arm.
    let error = Ident::new("__distlock_lock_error", return_span);
    // The lint would fire in the user's crate for a fn returning
    // `Result<_, LockError>`, where the conversion is the identity.
    quote_spanned! {return_span=>
        #[allow(clippy::useless_conversion)]
        ::core::result::Result::Err(#error) => return ::core::result::Result::Err(::core::convert::From::from(#error))
    }
}

/// The `LockOptions` the attribute's options describe.
fn lock_options(args: &LockArgs, private: &TokenStream) -> TokenStream {
    let manager = match &args.manager {
        Some(name) => quote!(::core::option::Option::Some(#name)),
        None => quote!(::core::option::Option::None),
    };
    let ttl = Literal::u64_suffixed(args.ttl_millis);
    let wait = Literal::u64_suffixed(args.wait_millis);
    let renew = args.renew;
    let hold_at_least = Literal::u64_suffixed(args.hold_at_least_millis);
    let on_lost = match args.on_lost {
        OnLost::Cancel => quote!(#private::OnLost::Cancel),
        OnLost::Continue => quote!(#private::OnLost::Continue),
    };
    let kind = lock_kind(args.kind, private);
    quote! {
        #private::LockOptions {
            manager: #manager,
            ttl: ::core::time::Duration::from_millis(#ttl),
            wait: ::core::time::Duration::from_millis(#wait),
            renew: #renew,
            on_lost: #on_lost,
            hold_at_least: ::core::time::Duration::from_millis(#hold_at_least),
            kind: #kind,
        }
    }
}

/// The runtime's `LockKind` for `permits` and `mode`.
fn lock_kind(kind: Kind, private: &TokenStream) -> TokenStream {
    match kind {
        Kind::Exclusive => quote!(#private::LockKind::Exclusive),
        Kind::Permits(permits) => {
            let permits = Literal::u32_suffixed(permits);
            quote!(#private::LockKind::Permits(#permits))
        }
        Kind::Read => quote!(#private::LockKind::Read),
        Kind::Write => quote!(#private::LockKind::Write),
    }
}

/// The body's statements in braces of their own, behind a hint that pins the
/// block's output to the declared return type before the body is checked, so
/// `return Err(Box::new(e))` and `?` coerce as they would in the original fn.
/// The hint never runs.
///
/// The statements are spliced, not the body nested as a block: a nested
/// one-line `{ Ok(id) }` would be an unnecessary block in the user's code
/// (`unused_braces`). The braces keep the body's span for type errors.
fn body_block(body: &Block, return_type: Option<&Type>) -> TokenStream {
    let hint = return_type.map(|return_type| {
        let fake = Ident::new("__return_type", Span::mixed_site());
        quote! {
            #[allow(
                unknown_lints,
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::needless_return,
            )]
            if false {
                let #fake: #return_type = loop {};
                return #fake;
            }
        }
    });
    let stmts = &body.stmts;
    let mut block = Group::new(Delimiter::Brace, quote!(#hint #(#stmts)*));
    block.set_span(body.brace_token.span.join());
    block.into_token_stream()
}

/// An `async fn` with its body replaced by `locked`.
fn async_fn(function: &ItemFn, locked: &TokenStream) -> TokenStream {
    with_body(function, locked)
}

/// A method as `#[async_trait]` left it, with the body inside its boxed async
/// block replaced by `locked`. The rest of the block, async-trait's own
/// statements, stays as it was.
fn async_trait_method(
    function: &ItemFn,
    body: &AsyncTraitBody,
    locked: &TokenStream,
) -> TokenStream {
    let pin = &body.pin;
    let mut async_block = body.async_block.clone();
    if let Some(Stmt::Local(local)) = async_block.block.stmts.get_mut(body.body_index)
        && let Some(init) = &mut local.init
    {
        *init.expr = Expr::Verbatim(quote!({ #locked }));
    }
    with_body(function, &quote!(#pin(#async_block)))
}

/// `function` as written (attributes, visibility, signature) around a new
/// body: its inner attributes, then `body`.
fn with_body(function: &ItemFn, body: &TokenStream) -> TokenStream {
    let (outer_attrs, inner_attrs) = split_attrs(function);
    let ItemFn {
        vis,
        modifiers,
        sig,
        ..
    } = function;
    let defaultness = &modifiers.defaultness;
    quote! {
        #(#outer_attrs)*
        #vis #defaultness #sig {
            #(#inner_attrs)*
            #body
        }
    }
}

/// The fn's outer attributes, and the inner ones that go at the top of its body.
fn split_attrs(function: &ItemFn) -> (Vec<&Attribute>, Vec<&Attribute>) {
    function
        .attrs
        .iter()
        .partition(|attr| matches!(attr.style, AttrStyle::Outer))
}

/// The error for an item `#[distributed_lock]` cannot apply to.
fn not_an_async_fn(item: &TokenStream, parse_error: syn::Error) -> syn::Error {
    if let Ok(declaration) = syn::parse2::<syn::TraitItemFn>(item.clone())
        && declaration.default.is_none()
    {
        return syn::Error::new(
            declaration.sig.ident.span(),
            "`#[distributed_lock]` needs the fn's body: put it on the `async fn` in the `impl`, not on the trait's declaration",
        );
    }
    let message = "`#[distributed_lock]` can only be applied to an `async fn`";
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(item) => syn::Error::new_spanned(item_head(&item), message),
        // Not an item syn understands: its own error points at the problem.
        Err(_) => parse_error,
    }
}

/// The keyword and name of an item, to underline without the whole body.
fn item_head(item: &syn::Item) -> TokenStream {
    match item {
        syn::Item::Struct(item) => {
            let (token, ident) = (&item.struct_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Enum(item) => {
            let (token, ident) = (&item.enum_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Union(item) => {
            let (token, ident) = (&item.union_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Trait(item) => {
            let (token, ident) = (&item.trait_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Const(item) => {
            let (token, ident) = (&item.const_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Static(item) => {
            let (token, ident) = (&item.static_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Type(item) => {
            let (token, ident) = (&item.type_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Mod(item) => {
            let (token, ident) = (&item.mod_token, &item.ident);
            quote!(#token #ident)
        }
        syn::Item::Impl(item) => item.impl_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expand_str(args: TokenStream, item: TokenStream) -> String {
        expand(args, item).to_string()
    }

    #[test]
    fn generates_lock_around_body() {
        let output = expand_str(
            quote!(key = "order:<id>", ttl = "10s"),
            quote! {
                /// Pays.
                #[must_use]
                pub async fn pay(id: u64, amount: u64) -> Result<u64, AppError> { Ok(id + amount) }
            },
        );
        println!("{output}");
        assert!(!output.contains("compile_error"), "{output}");
        assert!(output.contains(
            "# [must_use] pub async fn pay (id : u64 , amount : u64) -> Result < u64 , AppError >"
        ));
        assert!(output.contains(
            "let mut key = :: std :: string :: String :: new () ; \
             key . push_str (\"order:\") ; \
             key . push_str (& :: std :: string :: ToString :: to_string (:: distlock :: __private :: key_part (& id))) ; \
             key"
        ), "{output}");
        assert!(output.contains("from_millis (10000u64)"));
        assert!(output.contains("manager : :: core :: option :: Option :: None"));
        assert!(
            output.contains(
                "renew : false , on_lost : :: distlock :: __private :: OnLost :: Continue"
            )
        );
        assert!(output.contains("kind : :: distlock :: __private :: LockKind :: Exclusive ,"));
        assert!(output.contains("run (& __call , async move"));
        assert!(output.contains("release (__call , __finished) . await"));
        assert!(output.contains("let __return_type : Result < u64 , AppError > = loop { }"));
    }

    /// The expansion shown in the attribute's docs (lib.rs, between the
    /// `expansion` markers) is the real one: docs.rs never shows a sketch
    /// the macro has moved away from.
    #[test]
    fn the_documented_expansion_is_the_expansion() {
        let docs = include_str!("lib.rs");
        let documented: String = docs
            .split("<!-- expansion -->")
            .nth(1)
            .and_then(|rest| rest.split("<!-- /expansion -->").next())
            .expect("the expansion markers in lib.rs")
            .lines()
            .map(|line| line.trim_start().trim_start_matches("///"))
            .filter(|line| !line.trim_start().starts_with("```"))
            .collect::<Vec<_>>()
            .join("\n");
        let documented: TokenStream = documented.parse().expect("the documented expansion lexes");
        let expanded = expand(
            quote!(key = "order:<id>", ttl = "10s"),
            quote! {
                async fn pay(id: u64, amount: u64) -> Result<Receipt, AppError> { charge(id, amount).await }
            },
        );
        assert_eq!(flat(documented), flat(expanded));
    }

    /// The tokens one by one, without the spacing `to_string` puts between
    /// punctuation, which depends on how the tokens were made.
    fn flat(tokens: TokenStream) -> Vec<String> {
        tokens
            .into_iter()
            .flat_map(|token| match token {
                TokenTree::Group(group) => {
                    let (open, close) = match group.delimiter() {
                        proc_macro2::Delimiter::Parenthesis => ("(", ")"),
                        proc_macro2::Delimiter::Brace => ("{", "}"),
                        proc_macro2::Delimiter::Bracket => ("[", "]"),
                        proc_macro2::Delimiter::None => ("", ""),
                    };
                    let mut inner = vec![open.to_owned()];
                    inner.extend(flat(group.stream()));
                    inner.push(close.to_owned());
                    inner
                }
                other => vec![other.to_string()],
            })
            .collect()
    }

    #[test]
    fn field_paths_methods_and_options() {
        let output = expand_str(
            quote!(
                key = "user:<self.tenant>:<pair.0>:{<<x>>}",
                manager = "payments",
                wait = "0s",
                renew,
                guard = lock,
                crate = "dl"
            ),
            quote! {
                async fn f(&self, pair: (u8, u8)) -> Result<impl Sized, E> { Ok(()) }
            },
        );
        println!("{output}");
        assert!(!output.contains("compile_error"), "{output}");
        assert!(output.contains("push_str (\"user:\")"));
        assert!(output.contains("push_str (\":{<x>}\")"));
        assert!(output.contains("dl :: __private :: key_part (& self . tenant)"));
        assert!(output.contains("dl :: __private :: key_part (& pair . 0)"));
        assert!(output.contains("Option :: Some (\"payments\")"));
        assert!(output.contains("from_millis (0u64)"));
        assert!(output.contains("renew : true , on_lost : dl :: __private :: OnLost :: Cancel"));
        assert!(output.contains(
            "let lock : & dl :: __private :: LockGuard = dl :: __private :: LockedCall :: guard (& __call) ;"
        ));
        assert!(
            output.contains("let __return_type : Result < _ , E > = loop { } ;"),
            "{output}"
        );
    }

    /// `permits` and `mode` name the runtime's `LockKind`, through the
    /// facade's path, with a `u32` for the permits.
    #[test]
    fn permits_and_mode_choose_the_kind() {
        let cases = [
            (quote!(permits = 3), "LockKind :: Permits (3u32)"),
            (
                quote!(permits = 4_294_967_295),
                "LockKind :: Permits (4294967295u32)",
            ),
            (quote!(mode = "read", renew), "LockKind :: Read"),
            (quote!(mode = "write", guard = lock), "LockKind :: Write"),
            (quote!(ttl = "1s"), "LockKind :: Exclusive"),
        ];
        for (options, kind) in cases {
            let output = expand_str(
                quote!(key = "report:<id>", #options, crate = "dl"),
                quote!(
                    async fn f(id: u64) -> Result<u64, E> {
                        Ok(id)
                    }
                ),
            );
            assert!(!output.contains("compile_error"), "{output}");
            assert!(
                output.contains(&format!("kind : dl :: __private :: {kind} , }}")),
                "{options}: {output}"
            );
        }
    }

    /// The body's type hint writes each `impl Trait` of the return type as
    /// `_`, and is left out when that pins nothing or misses an `impl`.
    #[test]
    fn the_type_hint_erases_impl_trait() {
        let cases = [
            ("Result<u64, E>", Some("Result < u64 , E >")),
            ("Result<impl Display, E>", Some("Result < _ , E >")),
            (
                "Result<(impl Display, &'a impl Send, [impl Sized; 2]), Box<dyn Error>>",
                Some("Result < (_ , & 'a _ , [_ ; 2]) , Box < dyn Error > >"),
            ),
            ("Result<(impl Display), E>", Some("Result < _ , E >")),
            (
                "Result<Vec<impl Iterator<Item = impl Display>>, E>",
                Some("Result < Vec < _ > , E >"),
            ),
            ("Result<u8, impl Error>", Some("Result < u8 , _ >")),
            ("impl Future<Output = Result<u8, E>>", None),
            ("(impl Debug)", None),
            ("Result<Box<dyn Iterator<Item = impl Display>>, E>", None),
        ];
        for (written, hint) in cases {
            let ty = syn::parse_str::<Type>(written).expect(written);
            let erased = return_type_hint(&ty).map(|hint| hint.to_token_stream().to_string());
            assert_eq!(erased.as_deref(), hint, "{written}");
        }
    }

    #[test]
    fn wraps_only_the_body_inside_an_async_trait_method() {
        let output = expand_str(
            quote!(key = "pay:<self.tenant>:<order>"),
            quote! {
                #[allow(clippy::type_complexity)]
                fn pay<'life0, 'async_trait>(&'life0 self, __arg1: (u64, u64))
                    -> ::core::pin::Pin<Box<dyn ::core::future::Future<Output = Result<u64, E>> + ::core::marker::Send + 'async_trait>>
                {
                    Box::pin(async move {
                        if let ::core::option::Option::Some(__ret) = ::core::option::Option::None::<Result<u64, E>> {
                            return __ret;
                        }
                        let __self = self;
                        let (order, amount) = { let __arg1 = __arg1; __arg1 };
                        let __ret: Result<u64, E> = { Ok(order + amount + __self.base) };
                        __ret
                    })
                }
            },
        );
        println!("{output}");
        assert!(!output.contains("compile_error"), "{output}");
        // async-trait's statements are kept, in order, around the locked body.
        assert!(
            output.contains(
                "Box :: pin (async move { if let :: core :: option :: Option :: Some (__ret)"
            ),
            "{output}"
        );
        assert!(
            output.contains(
                "let __self = self ; let (order , amount) = { let __arg1 = __arg1 ; __arg1 } ; \
             let __ret : Result < u64 , E > = { let __key"
            ),
            "{output}"
        );
        // `<self.tenant>` reads the receiver where async-trait moved it.
        assert!(output.contains("key_part (& __self . tenant)"), "{output}");
        assert!(output.contains("key_part (& order)"), "{output}");
        assert!(output.contains(
            "if false { let __return_type : Result < u64 , E > = loop { } ; return __return_type ; } \
             Ok (order + amount + __self . base) })"
        ), "{output}");
        assert!(output.ends_with("} ; __ret }) }"), "{output}");
    }

    #[test]
    fn literal_key_needs_no_format() {
        let output = expand_str(
            quote!(key = "jobs:{nightly}"),
            quote!(
                async fn f() -> R {}
            ),
        );
        assert!(
            output.contains(":: std :: string :: String :: from (\"jobs:{nightly}\")"),
            "{output}"
        );
    }

    #[test]
    fn unknown_placeholder_suggests_and_lists() {
        let output = expand_str(
            quote!(key = "order:<ordr_id>"),
            quote!(
                async fn pay(order_id: u64, amount: u64) -> R {
                    body()
                }
            ),
        );
        assert!(output.contains(
            "unknown placeholder `<ordr_id>`: the fn has no parameter binding `ordr_id`; did you mean `order_id`? available: `order_id`, `amount`"
        ), "{output}");
        // The original fn is still there, untouched but for the allow.
        assert!(
            output.starts_with(
                "# [allow (unused_variables)] async fn pay (order_id : u64 , amount : u64) -> R { body () }"
            ),
            "{output}"
        );
    }

    #[test]
    fn errors_keep_the_original_item() {
        let cases = [
            (
                quote!(),
                quote!(
                    async fn f() -> R {}
                ),
            ),
            (
                quote!(key = "a"),
                quote!(
                    fn f() -> R {}
                ),
            ),
            (
                quote!(key = "a"),
                quote!(
                    async fn f() {}
                ),
            ),
            (
                quote!(key = "<self.x>"),
                quote!(
                    async fn f() -> R {}
                ),
            ),
            (
                quote!(key = "<>"),
                quote!(
                    async fn f() -> R {}
                ),
            ),
            (
                quote!(key = "a", guard = id),
                quote!(
                    async fn f(id: u8) -> R {}
                ),
            ),
            (
                quote!(key = ""),
                quote!(
                    async fn f() -> R {}
                ),
            ),
            (
                quote!(key = "a"),
                quote!(
                    struct S;
                ),
            ),
            (
                quote!(key = "a"),
                quote!(
                    async fn f() -> R;
                ),
            ),
            (
                quote!(key = "a"),
                quote!(
                    fn f(&self) -> BoxFuture<'_, R> {
                        Box::pin(async move { Ok(()) })
                    }
                ),
            ),
            (quote!(key = "a"), quote!(this is not rust)),
            (quote!(key = "a"), quote!()),
        ];
        for (args, item) in cases {
            let output = expand(args.clone(), item.clone()).to_string();
            let kept = quote!(#[allow(unused_variables)] #item).to_string();
            assert!(output.starts_with(&kept), "{output}");
            assert!(
                output.contains("compile_error"),
                "no error for `{args}` on `{item}`: {output}"
            );
        }
    }
}
