//! Property tests of the attribute's parsers: the key template, the durations
//! and the argument list, each fed random input, plus the whole expansion.
//!
//! They live inside the crate because a proc-macro crate exports nothing but
//! its macros. Each property states what must hold for every input, not only
//! that nothing panics: parsing a template and printing it back gives the text
//! it came from, a duration means what its components add up to, and a clean
//! argument list yields a usable lock. Case counts keep `cargo test -p
//! lock-macros` within a few seconds in a debug build.

use std::fmt::Write as _;
use std::str::FromStr;

use proc_macro2::{Literal, TokenStream};
use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::Config;
use quote::quote;
use syn::Ident;

use crate::attr::{Kind, LockArgs, MAX_TTL_MILLIS, MIN_TTL_MILLIS};
use crate::diagnostic::Errors;
use crate::duration::{DurationError, parse_millis};
use crate::expand::expand;
use crate::template::{Member, Part, Placeholder, Root, Template, TemplateError};

/// Failures are shrunk and printed; nothing is written into the source tree.
fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Calls `check` on every string of up to `max_len` characters drawn from
/// `alphabet` (the empty string included), and returns how many there were:
/// the exhaustive counterpart of the random inputs below, for the parsers'
/// never-panic tests.
pub(crate) fn for_every_string(
    alphabet: &str,
    max_len: usize,
    mut check: impl FnMut(&str),
) -> usize {
    /// Extends `text` by every character of `alphabet` in turn, depth first.
    fn extend(
        alphabet: &[char],
        max_len: usize,
        text: &mut String,
        check: &mut dyn FnMut(&str),
    ) -> usize {
        check(text);
        if text.chars().count() == max_len {
            return 1;
        }
        let mut count = 1;
        for &c in alphabet {
            text.push(c);
            count += extend(alphabet, max_len, text, check);
            text.pop();
        }
        count
    }
    let alphabet: Vec<char> = alphabet.chars().collect();
    extend(&alphabet, max_len, &mut String::new(), &mut check)
}

// ---------------------------------------------------------------------------
// Key templates
// ---------------------------------------------------------------------------

/// Characters that mean something to the template grammar or sit at the edge
/// of Rust's identifier rules.
const TEMPLATE_CHARS: &[char] = &[
    '<', '<', '>', '>', '.', '.', 'a', 'b', '_', '0', '1', '9', 'r', '#', 's', 'e', 'l', 'f', ' ',
    '\t', '{', '}', ':', 'é', 'ж', '\u{0}', '\u{301}', '\u{200d}', '🦀', '-',
];

/// Strings of mostly template syntax, with arbitrary characters mixed in.
fn template_text() -> impl Strategy<Value = String> {
    let c = prop_oneof![4 => select(TEMPLATE_CHARS), 1 => any::<char>()];
    prop_oneof![
        3 => proptest::collection::vec(c, 0..40).prop_map(String::from_iter),
        1 => any::<String>(),
    ]
}

/// Writes `text` so that the template reads it back as literal text.
fn escape(text: &str) -> String {
    text.replace('<', "<<").replace('>', ">>")
}

/// The template text a parsed template stands for.
fn render(template: &Template) -> String {
    template
        .parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => escape(text),
            Part::Placeholder(placeholder) => format!("<{}>", placeholder.source),
        })
        .collect()
}

fn is_reserved(name: &str) -> bool {
    matches!(name, "self" | "Self" | "super" | "crate")
}

/// A name the template accepts as a binding or field: a plain identifier, a
/// non-ASCII one, or a keyword written as a raw identifier.
fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z_][a-z0-9_]{0,6}".prop_filter("a plain identifier", |name| {
            name != "_" && !is_reserved(name) && syn::parse_str::<Ident>(name).is_ok()
        }),
        1 => select(&["номер", "é", "名前", "_x", "r#type", "r#match", "r#async"][..])
            .prop_map(str::to_owned),
    ]
}

#[derive(Debug, Clone)]
enum GenPart {
    Text(String),
    Placeholder {
        root: Option<String>, // `None` is `self`
        members: Vec<Result<String, u32>>,
    },
}

fn gen_part() -> impl Strategy<Value = GenPart> {
    let member = prop_oneof![identifier().prop_map(Ok), any::<u32>().prop_map(Err)];
    prop_oneof![
        template_text()
            .prop_filter("non-empty", |text| !text.is_empty())
            .prop_map(GenPart::Text),
        (
            proptest::option::weighted(0.8, identifier()),
            proptest::collection::vec(member, 0..4)
        )
            .prop_map(|(root, members)| GenPart::Placeholder { root, members }),
    ]
}

/// The template text of `parts` and the parts the parser must find in it:
/// adjacent texts merge into one.
fn build(parts: &[GenPart]) -> (String, Vec<Part>) {
    let mut text = String::new();
    let mut expected: Vec<Part> = Vec::new();
    for part in parts {
        match part {
            GenPart::Text(literal) => {
                text.push_str(&escape(literal));
                match expected.last_mut() {
                    Some(Part::Text(previous)) => previous.push_str(literal),
                    _ => expected.push(Part::Text(literal.clone())),
                }
            }
            GenPart::Placeholder { root, members } => {
                let mut source = root.clone().unwrap_or_else(|| "self".to_owned());
                for member in members {
                    source.push('.');
                    match member {
                        Ok(name) => source.push_str(name),
                        Err(index) => source.push_str(&index.to_string()),
                    }
                }
                let _ = write!(text, "<{source}>");
                let ident = |name: &str| syn::parse_str::<Ident>(name).expect("a valid identifier");
                expected.push(Part::Placeholder(Placeholder {
                    source,
                    root: root
                        .as_deref()
                        .map_or(Root::SelfValue, |name| Root::Binding(ident(name))),
                    members: members
                        .iter()
                        .map(|member| match member {
                            Ok(name) => Member::Named(ident(name)),
                            Err(index) => Member::Index(*index),
                        })
                        .collect(),
                }));
            }
        }
    }
    (text, expected)
}

proptest! {
    #![proptest_config(config(1_000))]

    /// Any text parses or fails with messages; a parsed template is in normal
    /// form and prints back to exactly the text it came from, so two
    /// different key texts never yield the same key.
    #[test]
    fn template_parses_back_to_its_text_or_explains(text in template_text()) {
        match Template::parse(&text) {
            Ok(template) => {
                for pair in template.parts.windows(2) {
                    prop_assert!(
                        !matches!(pair, [Part::Text(_), Part::Text(_)]),
                        "adjacent texts in {:?}", template
                    );
                }
                for part in &template.parts {
                    match part {
                        Part::Text(literal) => prop_assert!(!literal.is_empty()),
                        Part::Placeholder(placeholder) => prop_assert!(
                            !placeholder.source.is_empty()
                                && !placeholder.source.contains(['<', '>'])
                                && !placeholder.source.contains(char::is_whitespace),
                            "{:?}", placeholder
                        ),
                    }
                }
                prop_assert_eq!(render(&template), text);
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                for error in &errors {
                    prop_assert!(!error.to_string().is_empty());
                }
                // Nothing after an unclosed `<` can be parsed: it is the last error.
                let unclosed = errors
                    .iter()
                    .position(|error| matches!(error, TemplateError::Unclosed { .. }));
                prop_assert!(unclosed.is_none_or(|at| at == errors.len() - 1), "{:?}", errors);
            }
        }
    }

    /// Text made only of escaped literal text is that text.
    #[test]
    fn escaped_text_is_literal(text in template_text()) {
        let parts = Template::parse(&escape(&text)).expect("escaped text parses").parts;
        if text.is_empty() {
            prop_assert!(parts.is_empty());
        } else {
            prop_assert_eq!(parts, vec![Part::Text(text)]);
        }
    }

    /// A template assembled from texts and well-formed placeholders parses
    /// into exactly those parts.
    #[test]
    fn generated_templates_parse_into_their_parts(
        parts in proptest::collection::vec(gen_part(), 0..6)
    ) {
        let (text, expected) = build(&parts);
        let parsed = Template::parse(&text);
        prop_assert_eq!(parsed.map(|template| template.parts), Ok(expected), "{:?}", text);
    }
}

// ---------------------------------------------------------------------------
// Durations
// ---------------------------------------------------------------------------

const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// Strings of mostly duration syntax, with arbitrary characters mixed in.
fn duration_text() -> impl Strategy<Value = String> {
    let chars: &[char] = &[
        '0', '1', '5', '9', '9', 'h', 'm', 'm', 's', 's', '.', ',', '-', '+', ' ', 'µ', 'S', 'x',
        '\u{a0}', '٣',
    ];
    let c = prop_oneof![5 => select(chars), 1 => any::<char>()];
    prop_oneof![
        3 => proptest::collection::vec(c, 0..24).prop_map(String::from_iter),
        1 => any::<String>(),
    ]
}

/// A number of any size, small ones more often.
fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![0..1_000u64, any::<u64>()]
}

/// A number of a unit worth `factor` ms: small, any, or at the edge where
/// the component, or a sum with it, stops fitting in a u64.
fn amount_of(factor: u64) -> impl Strategy<Value = u64> {
    let limit = u64::MAX / factor;
    prop_oneof![
        amount(),
        (0..3u64).prop_map(move |below| limit - below),
        Just(limit.saturating_add(1)),
    ]
}

/// The shortest spelling of `millis`, largest unit first.
fn canonical(millis: u64) -> String {
    let mut rest = millis;
    let mut text = String::new();
    for (suffix, unit) in UNITS {
        if rest >= unit {
            let _ = write!(text, "{}{suffix}", rest / unit);
            rest %= unit;
        }
    }
    if text.is_empty() {
        "0ms".to_owned()
    } else {
        text
    }
}

proptest! {
    #![proptest_config(config(1_500))]

    /// Any text parses or fails with a message; what parses is made of
    /// digits and units only, and its shortest spelling means the same.
    #[test]
    fn duration_parses_or_explains(text in duration_text()) {
        match parse_millis(&text) {
            Ok(millis) => {
                prop_assert!(
                    !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || "hms".contains(c)),
                    "{:?} parsed", text
                );
                prop_assert_eq!(parse_millis(&canonical(millis)), Ok(millis));
            }
            Err(error) => prop_assert!(!error.to_string().is_empty()),
        }
    }

    #[test]
    fn n_ms_is_n_milliseconds(n in any::<u64>(), zeros in 0..3usize) {
        prop_assert_eq!(parse_millis(&format!("{}{n}ms", "0".repeat(zeros))), Ok(n));
    }

    /// One component is its number times its unit, or `Overflow` exactly
    /// when that does not fit in a u64.
    #[test]
    fn one_unit_scales_or_overflows(
        (unit, n) in (0..UNITS.len()).prop_flat_map(|unit| (Just(unit), amount_of(UNITS[unit].1)))
    ) {
        let (suffix, factor) = UNITS[unit];
        let expected = n.checked_mul(factor).ok_or(DurationError::Overflow);
        prop_assert_eq!(parse_millis(&format!("{n}{suffix}")), expected);
    }

    /// Components from largest to smallest add up, or overflow as an error.
    #[test]
    fn components_add_up_or_overflow(
        amounts in [
            proptest::option::of(amount_of(UNITS[0].1)),
            proptest::option::of(amount_of(UNITS[1].1)),
            proptest::option::of(amount_of(UNITS[2].1)),
            proptest::option::of(amount_of(UNITS[3].1)),
        ],
        zeros in 0..3usize,
    ) {
        prop_assume!(amounts.iter().any(Option::is_some));
        let mut text = String::new();
        let mut expected = Some(0u64);
        for (amount, (suffix, factor)) in amounts.iter().zip(UNITS) {
            if let Some(n) = amount {
                let _ = write!(text, "{}{n}{suffix}", "0".repeat(zeros));
                expected = expected
                    .and_then(|total| n.checked_mul(factor).and_then(|c| total.checked_add(c)));
            }
        }
        prop_assert_eq!(parse_millis(&text), expected.ok_or(DurationError::Overflow), "{}", text);
    }

    /// A unit after a smaller or equal one is rejected, naming the problem
    /// (unless the first component already overflowed: errors are reported
    /// left to right).
    #[test]
    fn units_out_of_order_are_rejected(
        a in amount(),
        b in amount(),
        (first, second) in (0..UNITS.len()).prop_flat_map(|first| (Just(first), 0..=first)),
    ) {
        let text = format!("{a}{}{b}{}", UNITS[first].0, UNITS[second].0);
        let error = parse_millis(&text).expect_err(&text);
        if a.checked_mul(UNITS[first].1).is_none() {
            prop_assert_eq!(error, DurationError::Overflow);
        } else if first == second {
            prop_assert!(matches!(error, DurationError::RepeatedUnit(_)), "{}: {:?}", text, error);
        } else {
            prop_assert!(matches!(error, DurationError::UnitOrder { .. }), "{}: {:?}", text, error);
        }
    }

    /// Whitespace anywhere in a valid duration is rejected, and named.
    #[test]
    fn whitespace_is_rejected(
        millis in any::<u64>(),
        at in any::<proptest::sample::Index>(),
        space in select(&[' ', '\t', '\n', '\r', '\u{a0}', '\u{2003}', '\u{3000}'][..]),
    ) {
        let mut text = canonical(millis);
        text.insert(at.index(text.len() + 1), space);
        prop_assert_eq!(parse_millis(&text), Err(DurationError::Whitespace(space)));
    }

    /// A minus sign before a valid duration makes it negative, not garbage.
    #[test]
    fn a_leading_minus_is_negative(millis in any::<u64>()) {
        prop_assert_eq!(parse_millis(&format!("-{}", canonical(millis))), Err(DurationError::Negative));
    }
}

// ---------------------------------------------------------------------------
// The argument list, and the whole expansion
// ---------------------------------------------------------------------------

/// Pieces of attribute arguments, right and wrong, that lex on their own.
const ARG_FRAGMENTS: &[&str] = &[
    "key",
    "ttl",
    "wait",
    "manager",
    "guard",
    "crate",
    "renew",
    "on_lost",
    "permits",
    "mode",
    "keys",
    "timeout",
    "self",
    "r#type",
    "_",
    "lock",
    "true",
    "=",
    "=",
    ",",
    ",",
    ":",
    "::",
    ";",
    "#",
    "@",
    "..",
    "=>",
    "-",
    "\"order:<id>\"",
    "\"<<x>>\"",
    "\"<>\"",
    "\"<id\"",
    "\"10s\"",
    "\"0s\"",
    "\"1ms\"",
    "\"720h\"",
    "\"721h\"",
    "\"99999999999999999999h\"",
    "\"-1s\"",
    "\"\"",
    "\"cancel\"",
    "\"read\"",
    "\"write\"",
    "\"reed\"",
    "0",
    "3",
    "4294967296",
    "\"::distlock\"",
    "\"not a path\"",
    "r#\"raw\"#",
    "b\"bytes\"",
    "c\"cstr\"",
    "\"suffixed\"x",
    "1",
    "1.5",
    "-1",
    "'a'",
    "'lt",
    "()",
    "[]",
    "[\"a\", \"b\"]",
    "{}",
    "(key = \"k\")",
    "[ttl]",
    "{ , }",
];

/// Random argument text: fragments, arbitrary string literals, and
/// occasionally arbitrary text (most of which does not lex and is skipped).
fn argument_text() -> impl Strategy<Value = String> {
    let fragment = prop_oneof![
        6 => select(ARG_FRAGMENTS).prop_map(str::to_owned),
        1 => template_text().prop_map(|text| format!("{text:?}")),
        1 => any::<String>(),
    ];
    proptest::collection::vec(
        (fragment, select(&["", " ", "\n"][..])).prop_map(|(f, sep)| f + sep),
        0..14,
    )
    .prop_map(String::from_iter)
}

fn parse_args(args: TokenStream) -> (LockArgs, Vec<String>) {
    let mut errors = Errors::default();
    let parsed = LockArgs::parse(args, &mut errors);
    (parsed, errors.messages())
}

/// A well-formed `ttl`, in canonical spelling: the attribute's bounds.
fn ttl_millis() -> impl Strategy<Value = u64> {
    prop_oneof![MIN_TTL_MILLIS..=60_000u64, MIN_TTL_MILLIS..=MAX_TTL_MILLIS]
}

proptest! {
    #![proptest_config(config(700))]

    /// No argument list makes the parser panic; one it accepts without an
    /// error names a key (or keys, then of an exclusive lock), a lease
    /// within the bounds and a semaphore of at least one permit, and every
    /// error has a message.
    #[test]
    fn arguments_never_panic(text in argument_text()) {
        let Ok(args) = TokenStream::from_str(&text) else {
            return Ok(());
        };
        let (parsed, errors) = parse_args(args);
        if errors.is_empty() {
            prop_assert!(parsed.key.is_some() || !parsed.keys.is_empty(), "{:?}", text);
            prop_assert!((MIN_TTL_MILLIS..=MAX_TTL_MILLIS).contains(&parsed.ttl_millis), "{:?}", text);
            prop_assert!(parsed.kind != Kind::Permits(0), "{:?}", text);
            prop_assert!(parsed.keys.is_empty() || parsed.kind == Kind::Exclusive, "{:?}", text);
        }
        for message in errors {
            prop_assert!(!message.is_empty(), "{:?}", text);
        }
    }

    /// Well-formed options, in any order, come out as written.
    #[test]
    fn well_formed_arguments_round_trip(
        key in template_text().prop_map(|text| escape(&text)),
        ttl in proptest::option::of(ttl_millis()),
        wait in proptest::option::of(amount()),
        manager in proptest::option::of(any::<String>().prop_filter("non-empty", |m| !m.is_empty())),
        guard in proptest::option::of(select(&["lock", "held", "g", "guard_"][..])),
        kind in prop_oneof![
            Just(Kind::Exclusive),
            (1..=u32::MAX).prop_map(Kind::Permits),
            Just(Kind::Read),
            Just(Kind::Write),
        ],
        order in Just((0..6).collect::<Vec<usize>>()).prop_shuffle(),
        trailing_comma in any::<bool>(),
    ) {
        let mut options = Vec::new();
        for option in order {
            match option {
                0 => {
                    let lit = Literal::string(&key);
                    options.push(quote!(key = #lit));
                }
                1 => if let Some(ttl) = ttl {
                    let lit = Literal::string(&canonical(ttl));
                    options.push(quote!(ttl = #lit));
                },
                2 => if let Some(wait) = wait {
                    let lit = Literal::string(&canonical(wait));
                    options.push(quote!(wait = #lit));
                },
                3 => if let Some(manager) = &manager {
                    let lit = Literal::string(manager);
                    options.push(quote!(manager = #lit));
                },
                4 => if let Some(guard) = guard {
                    let ident = Ident::new(guard, proc_macro2::Span::call_site());
                    options.push(quote!(guard = #ident));
                },
                _ => match kind {
                    Kind::Exclusive => {}
                    Kind::Permits(permits) => {
                        let lit = Literal::u32_unsuffixed(permits);
                        options.push(quote!(permits = #lit));
                    }
                    Kind::Read => options.push(quote!(mode = "read")),
                    Kind::Write => options.push(quote!(mode = "write")),
                },
            }
        }
        let mut args = quote!(#(#options),*);
        if trailing_comma {
            args.extend(quote!(,));
        }
        let (parsed, errors) = parse_args(args.clone());
        prop_assert!(errors.is_empty(), "{}: {:?}", args, errors);
        prop_assert_eq!(parsed.key.map(|lit| lit.value()), Some(key));
        let ttl = ttl.unwrap_or(30_000);
        prop_assert_eq!(parsed.ttl_millis, ttl);
        prop_assert_eq!(parsed.wait_millis, wait.unwrap_or(ttl));
        prop_assert_eq!(parsed.manager.map(|lit| lit.value()), manager);
        prop_assert_eq!(parsed.guard.map(|ident| ident.to_string()), guard.map(str::to_owned));
        prop_assert_eq!(parsed.kind, kind);
        prop_assert!(parsed.krate.is_none());
    }
}

/// Items to annotate: methods and free fns that are fine, and ones that are not.
const ITEMS: &[(&str, &str)] = &[
    (
        "pay",
        "async fn pay(id: u64, req: Req, (a, b): (u32, u32)) -> Result<(), E> { Ok(()) }",
    ),
    (
        "rebuild",
        "async fn rebuild(&self, user_id: u64) -> anyhow::Result<u8> { Ok(1) }",
    ),
    (
        "not_async",
        "fn not_async(id: u64) -> Result<(), E> { Ok(()) }",
    ),
    ("no_result", "async fn no_result(id: u64) {}"),
    ("NotAFn", "struct NotAFn;"),
];

/// Key pieces naming the items' bindings (and near misses), so that many
/// keys get through the checks to code generation.
const KEY_PIECES: &[&str] = &[
    "order:",
    "<id>",
    "<req.from>",
    "<a>",
    "<b.0>",
    "<self.tenant>",
    "<user_id>",
    "<idd>",
    "<<",
    ">>",
    "{x}",
    "é",
    ":",
];

/// Other options: none, valid ones, or random ones.
const OTHER_OPTIONS: &[&str] = &[
    "",
    "ttl = \"1s\"",
    "wait = \"0s\", guard = lock",
    "manager = \"m\", crate = \"dl\"",
    "permits = 3, renew, guard = lock",
    "mode = \"read\"",
    "mode = \"write\", wait = \"0s\"",
];

fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        template_text(),
        proptest::collection::vec(select(KEY_PIECES), 0..5).prop_map(|pieces| pieces.concat()),
    ]
}

fn other_options() -> impl Strategy<Value = String> {
    prop_oneof![
        select(OTHER_OPTIONS).prop_map(str::to_owned),
        argument_text(),
    ]
}

proptest! {
    #![proptest_config(config(500))]

    /// Whatever the key and the other arguments, the expansion does not
    /// panic and always emits the item, so the rest of the crate still sees
    /// it; without errors, what it emits is a fn.
    #[test]
    fn expansion_never_panics_and_keeps_the_item(
        key in key_text(),
        rest in other_options(),
        item in select(ITEMS),
    ) {
        let (name, source) = item;
        let key = Literal::string(&key);
        let Ok(rest) = TokenStream::from_str(&rest) else {
            return Ok(());
        };
        let args = quote!(key = #key, #rest);
        let item = TokenStream::from_str(source).expect("the items lex");
        let output = expand(args, item);
        let text = output.to_string();
        prop_assert!(text.contains(name), "{}", text);
        if !text.contains("compile_error") {
            prop_assert!(syn::parse2::<syn::ItemFn>(output).is_ok(), "{}", text);
        }
    }
}
