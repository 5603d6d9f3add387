//! The attribute's options: `#[distributed_lock(key = "...", ttl = "...", ...)]`.
//!
//! Parsing recovers after a bad option, so every mistake in the attribute is
//! reported in one build rather than one per edit-compile cycle.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::ext::IdentExt;
use syn::parse::{ParseStream, Parser};
use syn::spanned::Spanned;
use syn::{Ident, LitInt, LitStr, Path, Token};

use crate::diagnostic::{self, Errors};
use crate::duration;

/// The lease used when `ttl` is not given.
const DEFAULT_TTL_MILLIS: u64 = 30_000;

/// The shortest lease the runtime accepts (`distlock::MIN_LEASE`).
pub(crate) const MIN_TTL_MILLIS: u64 = 3;

/// The longest lease the runtime accepts (`distlock::MAX_LEASE`): 30 days.
pub(crate) const MAX_TTL_MILLIS: u64 = 30 * 24 * 60 * 60 * 1000;

/// Every option, with an example value for error messages.
const OPTIONS: &[(&str, &str)] = &[
    ("key", "key = \"order:<id>\""),
    ("keys", "keys = [\"account:<from>\", \"account:<to>\"]"),
    ("ttl", "ttl = \"10s\""),
    ("wait", "wait = \"500ms\""),
    ("manager", "manager = \"payments\""),
    ("renew", "renew"),
    ("on_lost", "on_lost = \"cancel\""),
    ("hold_at_least", "hold_at_least = \"50s\""),
    ("permits", "permits = 3"),
    ("mode", "mode = \"read\""),
    ("guard", "guard = lock"),
    ("crate", "crate = \"::distlock\""),
];

/// Names people reach for from other lock libraries.
const ALIASES: &[(&str, &str)] = &[
    ("lease", "ttl"),
    ("expire", "ttl"),
    ("expiry", "ttl"),
    ("timeout", "wait"),
    ("wait_timeout", "wait"),
    ("retry", "wait"),
    ("watchdog", "renew"),
    ("auto_renew", "renew"),
    ("auto_extend", "renew"),
    ("extend", "renew"),
    ("keep_alive", "renew"),
    ("lost", "on_lost"),
    ("on_loss", "on_lost"),
    ("lock_at_least", "hold_at_least"),
    ("lock_at_least_for", "hold_at_least"),
    ("min_hold", "hold_at_least"),
    ("semaphore", "permits"),
    ("max_holders", "permits"),
    ("limit", "permits"),
    ("concurrency", "permits"),
    ("kind", "mode"),
    ("access", "mode"),
    ("lock_mode", "mode"),
];

/// The values of `mode`, each with what it means for error messages.
const MODES: &[(&str, &str)] = &[
    ("read", "readers hold the lock together"),
    ("write", "a writer holds it alone"),
];

/// Which kind of lock the options ask for: the runtime's `LockKind`, which
/// the expansion names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Kind {
    /// One holder at a time: neither `permits` nor `mode`.
    #[default]
    Exclusive,
    /// `permits = N`: a semaphore of N holders, at least 1.
    Permits(u32),
    /// `mode = "read"`.
    Read,
    /// `mode = "write"`.
    Write,
}

/// The most key templates `keys` takes (`distlock::MAX_KEYS`).
pub(crate) const MAX_KEYS: usize = 16;
/// What the body of a call does when its lock is lost (`on_lost`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLost {
    /// The body is dropped at its next await.
    Cancel,
    /// The body runs to its end.
    Continue,
}

/// The options of one `#[distributed_lock]`, validated.
pub(crate) struct LockArgs {
    /// The key template literal; `None` when it was missing (already
    /// reported) or `keys` was given.
    pub(crate) key: Option<LitStr>,
    /// The key templates of `keys`, 1 to [`MAX_KEYS`]; empty without `keys`.
    pub(crate) keys: Vec<LitStr>,
    pub(crate) ttl_millis: u64,
    pub(crate) wait_millis: u64,
    pub(crate) manager: Option<LitStr>,
    /// Renew the lease while the body runs.
    pub(crate) renew: bool,
    /// What the body does when the lock is lost; by default it is dropped
    /// only with `renew`.
    pub(crate) on_lost: OnLost,
    /// How long after its acquisition the lock stays held however soon the
    /// body ends; 0 when not given. At most `ttl_millis`.
    pub(crate) hold_at_least_millis: u64,
    /// `permits` or `mode`; [`Kind::Exclusive`] without them (or when they
    /// were misused, which is reported).
    pub(crate) kind: Kind,
    pub(crate) guard: Option<Ident>,
    /// Path of the facade crate; `None` means `::distlock`.
    pub(crate) krate: Option<Path>,
}

impl LockArgs {
    /// Parses the attribute's arguments, pushing every problem onto `errors`
    /// and keeping whatever options were valid.
    pub(crate) fn parse(args: TokenStream, errors: &mut Errors) -> LockArgs {
        let mut raw = RawArgs::default();
        let parsed = (|input: ParseStream| {
            raw.parse(input, errors);
            Ok(())
        })
        .parse2(args);
        if let Err(error) = parsed {
            errors.push(error);
        }
        raw.finish(errors)
    }
}

/// Options as found, before defaults and cross-option checks.
#[derive(Default)]
struct RawArgs {
    seen: Vec<String>,
    positional_key: bool,
    key: Option<LitStr>,
    keys: Option<(TokenStream, Vec<LitStr>)>,
    ttl: Option<(LitStr, u64)>,
    wait: Option<u64>,
    manager: Option<LitStr>,
    renew: Option<bool>,
    on_lost: Option<OnLost>,
    hold_at_least: Option<(LitStr, u64)>,
    /// The value as written, for the errors of misused combinations, and
    /// the number of permits.
    permits: Option<(TokenStream, u32)>,
    /// The literal, and [`Kind::Read`] or [`Kind::Write`].
    mode: Option<(LitStr, Kind)>,
    guard: Option<Ident>,
    krate: Option<Path>,
}

impl RawArgs {
    /// Parses every option, recording each one's error and going on with the
    /// next, so one build reports them all.
    fn parse(&mut self, input: ParseStream, errors: &mut Errors) {
        while !input.is_empty() {
            if let Err(error) = self.parse_option(input) {
                errors.push(error);
            }
            skip_to_comma(input);
            // A trailing comma is fine; `skip_to_comma` stopped at a comma or the end.
            let _ = input.parse::<Option<Token![,]>>();
        }
    }

    /// Parses `name = value`, leaving the input at the `,` that follows.
    fn parse_option(&mut self, input: ParseStream) -> syn::Result<()> {
        let (name, example) = self.option_name(input)?;
        match option_value(&name, example, input)? {
            Some(value) => self.set(&OptionValue {
                name: &name,
                example,
                value,
            }),
            None => {
                self.renew = Some(true); // a bare flag
                Ok(())
            }
        }
    }

    /// The name of the next option, with its example, once it is known to be
    /// a valid option not given before; it is then recorded as seen.
    fn option_name(&mut self, input: ParseStream) -> syn::Result<(Ident, &'static str)> {
        if let Ok(key) = input.fork().parse::<LitStr>() {
            // Already explained; do not also report the key as missing.
            self.positional_key = true;
            return Err(syn::Error::new(
                key.span(),
                format!(
                    "the key is a named option: write `#[distributed_lock(key = {})]`",
                    key.to_token_stream()
                ),
            ));
        }
        let name = input.call(Ident::parse_any).map_err(|_| {
            input.error(format!(
                "expected an option like `key = \"order:<id>\"`; valid options: {}",
                option_list()
            ))
        })?;
        let name_text = name.to_string();
        let Some(&(_, example)) = OPTIONS.iter().find(|(option, _)| *option == name_text) else {
            return Err(unknown_option(&name));
        };
        if self.seen.contains(&name_text) {
            // Still consume the value so the next option parses cleanly.
            skip_to_comma(input);
            return Err(syn::Error::new(
                name.span(),
                format!("duplicate option `{name_text}`: each option may be given once"),
            ));
        }
        self.seen.push(name_text);
        Ok((name, example))
    }

    /// Records a known option's value through that option's setter.
    fn set(&mut self, option: &OptionValue) -> syn::Result<()> {
        match option.name.to_string().as_str() {
            "key" => self.set_key(option),
            "keys" => self.set_keys(option),
            "ttl" => self.set_ttl(option),
            "wait" => self.set_wait(option),
            "manager" => self.set_manager(option),
            "renew" => self.set_renew(option),
            "on_lost" => self.set_on_lost(option),
            "hold_at_least" => self.set_hold_at_least(option),
            "permits" => self.set_permits(option),
            "mode" => self.set_mode(option),
            "guard" => self.set_guard(option),
            "crate" => self.set_crate(option),
            _ => Err(unknown_option(option.name)),
        }
    }

    /// `key = "..."`: the template, checked against the fn later.
    fn set_key(&mut self, option: &OptionValue) -> syn::Result<()> {
        self.key = Some(option.string()?);
        Ok(())
    }

    /// `keys = ["...", ...]`: 1 to [`MAX_KEYS`] templates, each checked
    /// against the fn later, like `key`.
    fn set_keys(&mut self, option: &OptionValue) -> syn::Result<()> {
        let not_a_list = || {
            syn::Error::new_spanned(
                &option.value,
                format!(
                    "`keys` is a list of string literals in brackets, like `{}`",
                    option.example
                ),
            )
        };
        let list = |input: ParseStream| {
            let content;
            syn::bracketed!(content in input);
            syn::punctuated::Punctuated::<LitStr, Token![,]>::parse_terminated(&content)
        };
        let templates = list
            .parse2(option.value.clone())
            .map_err(|_| not_a_list())?;
        let count = templates.len();
        if count == 0 || count > MAX_KEYS {
            return Err(syn::Error::new_spanned(
                &option.value,
                format!(
                    "`keys` takes 1 to {MAX_KEYS} key templates, not {count}; for one key, `key = \"...\"` says the same"
                ),
            ));
        }
        self.keys = Some((option.value.clone(), templates.into_iter().collect()));
        Ok(())
    }

    /// `ttl = "..."`: a duration within the leases the runtime accepts.
    fn set_ttl(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.string()?;
        let millis = option.duration(&lit)?;
        check_ttl(&lit, millis)?;
        self.ttl = Some((lit, millis));
        Ok(())
    }

    /// `wait = "..."`: any duration, `"0s"` included.
    fn set_wait(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.string()?;
        self.wait = Some(option.duration(&lit)?);
        Ok(())
    }

    /// `manager = "..."`: the non-empty name of a registered manager.
    fn set_manager(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.string()?;
        if lit.value().is_empty() {
            return Err(syn::Error::new(
                lit.span(),
                "`manager` must name a registered manager; leave the option out to use the default manager",
            ));
        }
        self.manager = Some(lit);
        Ok(())
    }

    /// `renew = true` or `renew = false`; the bare flag is handled by
    /// [`RawArgs::parse_option`].
    fn set_renew(&mut self, option: &OptionValue) -> syn::Result<()> {
        self.renew = Some(option.flag()?);
        Ok(())
    }

    /// `on_lost = "cancel"` or `on_lost = "continue"`.
    fn set_on_lost(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.string()?;
        self.on_lost = Some(match lit.value().as_str() {
            "cancel" => OnLost::Cancel,
            "continue" => OnLost::Continue,
            other => {
                return Err(syn::Error::new(
                    lit.span(),
                    format!(
                        "`on_lost` is \"cancel\" (drop the body when the lock is lost) or \"continue\" (let it finish), not \"{}\"",
                        other.escape_debug()
                    ),
                ));
            }
        });
        Ok(())
    }

    /// `hold_at_least = "..."`: a duration, checked against `ttl` once every
    /// option is known.
    fn set_hold_at_least(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.string()?;
        let millis = option.duration(&lit)?;
        self.hold_at_least = Some((lit, millis));
        Ok(())
    }

    /// `permits = N`: a semaphore of N holders, N an integer literal from 1
    /// to `u32::MAX`; checked against `mode` and `keys` once every option is
    /// known.
    fn set_permits(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.integer()?;
        let written = lit.token().to_string();
        let error = |message: String| Err(syn::Error::new_spanned(&option.value, message));
        let digits = lit.base10_digits();
        let permits = match digits.parse::<u32>() {
            Ok(0) => {
                return error(format!(
                    "`permits = {written}` would let no call in: a semaphore needs at least 1 permit; write `permits = 1` or more"
                ));
            }
            Ok(permits) => permits,
            Err(_) if digits.starts_with('-') => {
                return error(format!(
                    "`permits` is how many calls may hold the lock at once, at least 1, not {written}; write `permits = 1` or more"
                ));
            }
            Err(_) => {
                return error(format!(
                    "`permits = {written}` is too many: a semaphore has at most {} (`u32::MAX`) permits; write a smaller number",
                    u32::MAX
                ));
            }
        };
        self.permits = Some((option.value.clone(), permits));
        Ok(())
    }

    /// `mode = "read"` or `mode = "write"`: a side of a read-write lock;
    /// checked against `permits` and `keys` once every option is known.
    fn set_mode(&mut self, option: &OptionValue) -> syn::Result<()> {
        if let Ok(ident) = syn::parse2::<Ident>(option.value.clone())
            && MODES.iter().any(|(mode, _)| ident == mode)
        {
            return Err(syn::Error::new(
                ident.span(),
                format!("`mode` takes a string literal: write `mode = \"{ident}\"`"),
            ));
        }
        let lit = option.string()?;
        let kind = match lit.value().as_str() {
            "read" => Kind::Read,
            "write" => Kind::Write,
            _ => return Err(unknown_mode(&lit)),
        };
        self.mode = Some((lit, kind));
        Ok(())
    }

    /// `guard = name`: an identifier, not a string.
    fn set_guard(&mut self, option: &OptionValue) -> syn::Result<()> {
        self.guard = Some(guard_value(&option.value)?);
        Ok(())
    }

    /// `crate = "..."`: the path of the distlock facade, as a string.
    fn set_crate(&mut self, option: &OptionValue) -> syn::Result<()> {
        let lit = option.string()?;
        let path = lit.parse::<Path>().map_err(|_| {
            syn::Error::new(
                lit.span(),
                "`crate` must be the path of the distlock facade, like `crate = \"::distlock\"`",
            )
        })?;
        self.krate = Some(path);
        Ok(())
    }

    fn finish(self, errors: &mut Errors) -> LockArgs {
        let key_named = |name: &str| self.seen.iter().any(|seen| seen == name);
        if let (Some(_), Some((keys, _))) = (&self.key, &self.keys) {
            errors.push(syn::Error::new_spanned(
                keys,
                "`key` and `keys` together: name one lock with `key = \"...\"`, or every key of a lock over several with `keys = [...]`, not both",
            ));
        }
        if self.key.is_none() && !self.positional_key && !key_named("key") && !key_named("keys") {
            errors.push(syn::Error::new(
                Span::call_site(),
                "missing `key`: name the lock, like `#[distributed_lock(key = \"order:<id>\")]`",
            ));
        }
        let renew = self.renew.unwrap_or(false);
        let ttl_millis = self
            .ttl
            .as_ref()
            .map_or(DEFAULT_TTL_MILLIS, |&(_, millis)| millis);
        let hold_at_least_millis = match &self.hold_at_least {
            Some((lit, millis)) if *millis > ttl_millis => {
                errors.push(hold_past_lease(lit, self.ttl.as_ref().map(|(ttl, _)| ttl)));
                0
            }
            Some((_, millis)) => *millis,
            None => 0,
        };
        let kind = self.kind(errors);
        LockArgs {
            keys: match (&self.key, self.keys) {
                (None, Some((_, keys))) => keys,
                _ => Vec::new(),
            },
            key: self.key,
            ttl_millis,
            // Waiting as long as one lease lets a crashed holder's lock expire
            // before the caller gives up.
            wait_millis: self.wait.unwrap_or(ttl_millis),
            manager: self.manager,
            renew,
            // A renewed lock is held for as long as the body runs, so losing
            // it is a failure the body must not outlive.
            on_lost: self.on_lost.unwrap_or(if renew {
                OnLost::Cancel
            } else {
                OnLost::Continue
            }),
            hold_at_least_millis,
            kind,
            guard: self.guard,
            krate: self.krate,
        }
    }

    /// The kind of lock `permits` and `mode` ask for, each checked against
    /// the other and against `keys`: a lock over several keys is exclusive,
    /// and a semaphore is not a read-write lock.
    fn kind(&self, errors: &mut Errors) -> Kind {
        if self.keys.is_some() {
            if let Some((permits, _)) = &self.permits {
                errors.push(syn::Error::new_spanned(
                    permits,
                    "`permits` with `keys`: a lock over several keys is exclusive only; for a semaphore, name its one key with `key = \"...\"`, or leave `permits` out",
                ));
            }
            if let Some((mode, _)) = &self.mode {
                errors.push(syn::Error::new(
                    mode.span(),
                    "`mode` with `keys`: a lock over several keys is exclusive only; for a read-write lock, name its one key with `key = \"...\"`, or leave `mode` out",
                ));
            }
        }
        match (&self.permits, &self.mode) {
            (Some(_), Some((mode, _))) => {
                errors.push(syn::Error::new(
                    mode.span(),
                    "`permits` and `mode` together: a semaphore (`permits = N`, up to N holders alike) is not a read-write lock (`mode`, readers together or one writer alone); keep one of the two",
                ));
                Kind::Exclusive
            }
            (Some((_, permits)), None) => Kind::Permits(*permits),
            (None, Some((_, mode))) => *mode,
            (None, None) => Kind::Exclusive,
        }
    }
}

/// A `mode` that is neither `"read"` nor `"write"`: the two, what each
/// means, and the one meant if the value looks like a typo of it.
fn unknown_mode(lit: &LitStr) -> syn::Error {
    let text = lit.value();
    let lowercase = text.to_lowercase();
    let hint = match lowercase.as_str() {
        "exclusive" => "; for a lock one holder at a time, leave `mode` out".to_owned(),
        "shared" => "; did you mean `mode = \"read\"`?".to_owned(),
        typed => diagnostic::closest(typed, MODES.iter().map(|(mode, _)| *mode))
            .map(|mode| format!("; did you mean `mode = \"{mode}\"`?"))
            .unwrap_or_default(),
    };
    let modes = MODES
        .iter()
        .map(|(mode, meaning)| format!("\"{mode}\" ({meaning})"))
        .collect::<Vec<_>>()
        .join(" or ");
    syn::Error::new(
        lit.span(),
        format!(
            "`mode` is the side of a read-write lock the fn takes, {modes}, not \"{}\"{hint}",
            text.escape_debug()
        ),
    )
}

/// `hold_at_least` longer than the lease: the lease would end first.
fn hold_past_lease(hold: &LitStr, ttl: Option<&LitStr>) -> syn::Error {
    let lease = ttl.map_or_else(
        || "the default `ttl` of 30s".to_owned(),
        |ttl| format!("`ttl = {}`", ttl.to_token_stream()),
    );
    syn::Error::new(
        hold.span(),
        format!(
            "`hold_at_least = {}` is longer than {lease}: a lock cannot stay held past its lease; lower `hold_at_least` or raise `ttl` to at least as much",
            hold.to_token_stream()
        ),
    )
}

fn unknown_option(name: &Ident) -> syn::Error {
    let text = name.to_string();
    let hint = ALIASES
        .iter()
        .find(|(alias, _)| *alias == text)
        .map(|(_, option)| *option)
        .or_else(|| diagnostic::closest(&text, OPTIONS.iter().map(|(option, _)| *option)))
        .map(|option| format!("did you mean `{option}`? "))
        .unwrap_or_default();
    syn::Error::new(
        name.span(),
        format!(
            "unknown option `{text}`; {hint}valid options: {}",
            option_list()
        ),
    )
}

fn option_list() -> String {
    diagnostic::list(
        &OPTIONS
            .iter()
            .map(|(option, _)| *option)
            .collect::<Vec<_>>(),
    )
}

/// An option as written, `name = value`, with the option's example for
/// error messages.
struct OptionValue<'a> {
    name: &'a Ident,
    example: &'static str,
    /// The tokens after `=`, up to the next top-level `,`; never empty.
    value: TokenStream,
}

impl OptionValue<'_> {
    /// The value as a string literal without a suffix.
    fn string(&self) -> syn::Result<LitStr> {
        let (name, example) = (self.name, self.example);
        let not_a_string = || {
            syn::Error::new_spanned(
                &self.value,
                format!("`{name}` must be a string literal, like `{example}`"),
            )
        };
        let lit = syn::parse2::<LitStr>(self.value.clone()).map_err(|_| not_a_string())?;
        if !lit.suffix().is_empty() {
            return Err(not_a_string());
        }
        Ok(lit)
    }

    /// The value as an integer literal without a suffix; a string that
    /// holds a number is told to lose its quotes.
    fn integer(&self) -> syn::Result<LitInt> {
        let name = self.name;
        if let Ok(lit) = syn::parse2::<LitStr>(self.value.clone())
            && let Ok(number) = lit.value().trim().parse::<u64>()
        {
            return Err(syn::Error::new(
                lit.span(),
                format!("`{name}` takes an integer, not a string: write `{name} = {number}`"),
            ));
        }
        match syn::parse2::<LitInt>(self.value.clone()) {
            Ok(lit) if lit.suffix().is_empty() => Ok(lit),
            _ => Err(syn::Error::new_spanned(
                &self.value,
                format!(
                    "`{name}` must be an integer literal without a suffix, like `{}`",
                    self.example
                ),
            )),
        }
    }

    /// The value's string `lit` as a duration, in milliseconds.
    fn duration(&self, lit: &LitStr) -> syn::Result<u64> {
        let name = self.name;
        let text = lit.value();
        duration::parse_millis(&text).map_err(|error| {
            syn::Error::new(
                lit.span(),
                format!(
                    "invalid `{name}` duration \"{text}\": {error}; durations look like \"250ms\", \"10s\", \"2m\" or \"1m30s\""
                ),
            )
        })
    }

    /// The value as a `true`/`false` flag.
    fn flag(&self) -> syn::Result<bool> {
        let name = self.name;
        match syn::parse2::<syn::LitBool>(self.value.clone()) {
            Ok(lit) => Ok(lit.value),
            Err(_) => Err(syn::Error::new_spanned(
                &self.value,
                format!(
                    "`{name}` is a flag: write `{name}`, or `{name} = true` / `{name} = false`"
                ),
            )),
        }
    }
}

/// After a known option's name: `Some` value when `=` and a value follow,
/// `None` for a bare `renew`, an error when the value is missing.
fn option_value(
    name: &Ident,
    example: &str,
    input: ParseStream,
) -> syn::Result<Option<TokenStream>> {
    let needs_a_value = || {
        syn::Error::new(
            name.span(),
            format!("`{name}` needs a value, like `{example}`"),
        )
    };
    if input.parse::<Option<Token![=]>>()?.is_none() {
        return if name == "renew" {
            Ok(None)
        } else {
            Err(needs_a_value())
        };
    }
    let value = take_until_comma(input);
    if value.is_empty() {
        return Err(needs_a_value());
    }
    Ok(Some(value))
}

/// Checks a `ttl` of `millis` against the leases the runtime accepts.
fn check_ttl(lit: &LitStr, millis: u64) -> syn::Result<()> {
    let problem = if millis == 0 {
        "`ttl` must be longer than zero: a lock with no lease expires as soon as it is taken"
    } else if millis < MIN_TTL_MILLIS {
        "`ttl` must be at least 3ms: 2ms of every lease are set aside for clock drift between this process and Redis"
    } else if millis > MAX_TTL_MILLIS {
        "`ttl` may be at most 30 days (\"720h\"); a longer lease never frees the lock of a crashed holder in practice"
    } else {
        return Ok(());
    };
    Err(syn::Error::new(lit.span(), problem))
}

fn guard_value(value: &TokenStream) -> syn::Result<Ident> {
    if let Ok(lit) = syn::parse2::<LitStr>(value.clone()) {
        return Err(syn::Error::new(
            lit.span(),
            format!(
                "`guard` takes an identifier, not a string: write `guard = {}`",
                if is_plain_identifier(&lit.value()) {
                    lit.value()
                } else {
                    "lock".to_owned()
                }
            ),
        ));
    }
    syn::parse2::<Ident>(value.clone()).map_err(|_| {
        syn::Error::new(
            value.span(),
            "`guard` takes the name to bind the lock guard to inside the body, like `guard = lock`",
        )
    })
}

fn is_plain_identifier(text: &str) -> bool {
    syn::parse_str::<Ident>(text).is_ok()
}

/// The tokens of one option value: everything up to the next top-level `,`.
fn take_until_comma(input: ParseStream) -> TokenStream {
    let mut value = TokenStream::new();
    while !input.is_empty() && !input.peek(Token![,]) {
        match input.parse::<TokenTree>() {
            Ok(token) => value.extend([token]),
            Err(_) => break,
        }
    }
    value
}

fn skip_to_comma(input: ParseStream) {
    let _ = take_until_comma(input);
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use quote::quote;

    fn parse(args: TokenStream) -> (LockArgs, Vec<String>) {
        let mut errors = Errors::default();
        let args = LockArgs::parse(args, &mut errors);
        (args, errors.messages())
    }

    #[test]
    fn all_options() {
        let (args, errors) = parse(quote!(
            key = "transfer:<req.from>",
            ttl = "2s",
            wait = "500ms",
            manager = "payments",
            guard = lock,
            crate = "dl",
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            args.key.map(|key| key.value()).as_deref(),
            Some("transfer:<req.from>")
        );
        assert_eq!(args.ttl_millis, 2_000);
        assert_eq!(args.wait_millis, 500);
        assert_eq!(args.manager.map(|m| m.value()).as_deref(), Some("payments"));
        assert_eq!(args.guard.map(|g| g.to_string()).as_deref(), Some("lock"));
        assert!(args.krate.is_some());
    }

    #[test]
    fn defaults() {
        let (args, errors) = parse(quote!(key = "k"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.ttl_millis, 30_000);
        assert_eq!(args.wait_millis, 30_000);
        let (args, _) = parse(quote!(key = "k", ttl = "10s"));
        assert_eq!(args.wait_millis, 10_000);
        let (args, errors) = parse(quote!(key = "k", wait = "0s"));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(args.wait_millis, 0);
    }

    #[test]
    fn renewal_cancels_on_loss_unless_told_otherwise() {
        let cases = [
            (quote!(key = "k"), false, OnLost::Continue),
            (quote!(key = "k", renew), true, OnLost::Cancel),
            (quote!(key = "k", renew = true), true, OnLost::Cancel),
            (quote!(key = "k", renew = false), false, OnLost::Continue),
            (
                quote!(key = "k", renew, on_lost = "continue"),
                true,
                OnLost::Continue,
            ),
            (quote!(key = "k", on_lost = "cancel"), false, OnLost::Cancel),
        ];
        for (tokens, renew, on_lost) in cases {
            let (args, errors) = parse(tokens.clone());
            assert!(errors.is_empty(), "{tokens}: {errors:?}");
            assert_eq!((args.renew, args.on_lost), (renew, on_lost), "{tokens}");
        }
        let (_, errors) = parse(quote!(key = "k", renew = 1, on_lost = cancel));
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn reports_every_problem() {
        let (_, errors) = parse(quote!(
            tll = "1s",
            ttl = "0s",
            wait = "soon",
            ttl = "1s",
            guard = "g"
        ));
        assert_eq!(errors.len(), 6, "{errors:?}");
        assert!(errors[0].contains("did you mean `ttl`?"), "{errors:?}");
        assert!(errors[1].contains("longer than zero"), "{errors:?}");
        assert!(errors[2].contains("invalid `wait` duration"), "{errors:?}");
        assert!(errors[3].contains("duplicate option `ttl`"), "{errors:?}");
        assert!(errors[4].contains("write `guard = g`"), "{errors:?}");
        assert!(errors[5].contains("missing `key`"), "{errors:?}");
    }

    #[test]
    fn permits_and_mode_choose_the_kind() {
        let cases = [
            (quote!(key = "k"), Kind::Exclusive),
            (quote!(key = "k", permits = 3), Kind::Permits(3)),
            (quote!(key = "k", permits = 1, renew), Kind::Permits(1)),
            (
                quote!(key = "k", permits = 4_294_967_295),
                Kind::Permits(u32::MAX),
            ),
            (quote!(key = "k", permits = 0x10), Kind::Permits(16)),
            (quote!(key = "k", mode = "read"), Kind::Read),
            (
                quote!(mode = "write", key = "k", renew, guard = lock),
                Kind::Write,
            ),
        ];
        for (tokens, kind) in cases {
            let (args, errors) = parse(tokens.clone());
            assert!(errors.is_empty(), "{tokens}: {errors:?}");
            assert_eq!(args.kind, kind, "{tokens}");
        }
    }

    /// Each misuse of `permits` and `mode` is one error that says what to
    /// write instead; the kind falls back to exclusive (nothing is generated
    /// beside an error anyway).
    #[test]
    fn every_kind_error_says_what_to_write() {
        let not_an_integer =
            "`permits` must be an integer literal without a suffix, like `permits = 3`";
        let modes = "`mode` is the side of a read-write lock the fn takes, \"read\" (readers hold the lock together) or \"write\" (a writer holds it alone), not";
        let cases = [
            (
                quote!(key = "k", permits = 0),
                "`permits = 0` would let no call in: a semaphore needs at least 1 permit; write `permits = 1` or more",
            ),
            (
                quote!(key = "k", permits = 0x0),
                "`permits = 0x0` would let no call in",
            ),
            (
                quote!(key = "k", permits = -1),
                "at least 1, not -1; write `permits = 1` or more",
            ),
            (
                quote!(key = "k", permits = 4294967296),
                "`permits = 4294967296` is too many: a semaphore has at most 4294967295 (`u32::MAX`) permits; write a smaller number",
            ),
            (
                quote!(
                    key = "k",
                    permits = 99999999999999999999999999999999999999999
                ),
                "is too many",
            ),
            (
                quote!(key = "k", permits = "3"),
                "`permits` takes an integer, not a string: write `permits = 3`",
            ),
            (quote!(key = "k", permits = "three"), not_an_integer),
            (quote!(key = "k", permits = 2.5), not_an_integer),
            (quote!(key = "k", permits = 3u32), not_an_integer),
            (quote!(key = "k", permits = three), not_an_integer),
            (quote!(key = "k", permits = 1 + 2), not_an_integer),
            (
                quote!(key = "k", permits),
                "`permits` needs a value, like `permits = 3`",
            ),
            (
                quote!(key = "k", mode = "exclusive"),
                "not \"exclusive\"; for a lock one holder at a time, leave `mode` out",
            ),
            (
                quote!(key = "k", mode = "reed"),
                "not \"reed\"; did you mean `mode = \"read\"`?",
            ),
            (
                quote!(key = "k", mode = "Write"),
                "not \"Write\"; did you mean `mode = \"write\"`?",
            ),
            (
                quote!(key = "k", mode = "wirte"),
                "did you mean `mode = \"write\"`?",
            ),
            (
                quote!(key = "k", mode = "shared"),
                "did you mean `mode = \"read\"`?",
            ),
            (quote!(key = "k", mode = "rw"), modes),
            (quote!(key = "k", mode = ""), modes),
            (
                quote!(key = "k", mode = read),
                "`mode` takes a string literal: write `mode = \"read\"`",
            ),
            (
                quote!(key = "k", mode = 1),
                "`mode` must be a string literal, like `mode = \"read\"`",
            ),
            (
                quote!(key = "k", mode = "read"x),
                "`mode` must be a string literal",
            ),
            (
                quote!(key = "k", mode),
                "`mode` needs a value, like `mode = \"read\"`",
            ),
            (
                quote!(key = "k", permits = 2, mode = "read"),
                "`permits` and `mode` together: a semaphore (`permits = N`, up to N holders alike) is not a read-write lock (`mode`, readers together or one writer alone); keep one of the two",
            ),
            (
                quote!(keys = ["a", "b"], permits = 2),
                "`permits` with `keys`: a lock over several keys is exclusive only; for a semaphore, name its one key with `key = \"...\"`, or leave `permits` out",
            ),
            (
                quote!(keys = ["a", "b"], mode = "write"),
                "`mode` with `keys`: a lock over several keys is exclusive only; for a read-write lock, name its one key with `key = \"...\"`, or leave `mode` out",
            ),
            (
                quote!(key = "k", permits = 2, permits = 3),
                "duplicate option `permits`: each option may be given once",
            ),
            (
                quote!(key = "k", mode = "read", mode = "write"),
                "duplicate option `mode`: each option may be given once",
            ),
            (
                quote!(key = "k", semaphore = 3),
                "unknown option `semaphore`; did you mean `permits`?",
            ),
            (
                quote!(key = "k", max_holders = 3),
                "did you mean `permits`?",
            ),
            (quote!(key = "k", permit = 3), "did you mean `permits`?"),
            (
                quote!(key = "k", access = "read"),
                "unknown option `access`; did you mean `mode`?",
            ),
            (quote!(key = "k", kind = "write"), "did you mean `mode`?"),
        ];
        for (tokens, expected) in cases {
            let (_, errors) = parse(tokens.clone());
            assert_eq!(errors.len(), 1, "{tokens}: {errors:?}");
            assert!(errors[0].contains(expected), "{tokens}: {errors:?}");
        }
        let (args, _) = parse(quote!(key = "k", permits = 2, mode = "read"));
        assert_eq!(args.kind, Kind::Exclusive);
    }

    #[test]
    fn reports_every_kind_problem() {
        let (_, errors) = parse(quote!(
            keys = ["a", "b"],
            permits = 2,
            mode = "read",
            permits = 0,
            mode = "reed",
        ));
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(
            errors[0].contains("duplicate option `permits`"),
            "{errors:?}"
        );
        assert!(errors[1].contains("duplicate option `mode`"), "{errors:?}");
        assert!(errors[2].contains("`permits` with `keys`"), "{errors:?}");
        assert!(errors[3].contains("`mode` with `keys`"), "{errors:?}");
        assert!(
            errors[4].contains("`permits` and `mode` together"),
            "{errors:?}"
        );
        let (_, errors) = parse(quote!(key = "k", permits = 0, mode = "reed"));
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].contains("`permits = 0`"), "{errors:?}");
        assert!(
            errors[1].contains("did you mean `mode = \"read\"`?"),
            "{errors:?}"
        );
    }

    /// The `ttl` bounds checked at compile time are the leases the runtime
    /// accepts (`lock_runtime::MIN_LEASE` and `MAX_LEASE`, re-exported by the
    /// `distlock` dev-dependency), and the figures the error messages quote,
    /// so neither copy can drift from the runtime's.
    #[test]
    fn ttl_bounds_are_the_runtime_lease_bounds() {
        assert_eq!(Duration::from_millis(MIN_TTL_MILLIS), distlock::MIN_LEASE);
        assert_eq!(Duration::from_millis(MAX_TTL_MILLIS), distlock::MAX_LEASE);
        assert_eq!(duration::parse_millis("3ms"), Ok(MIN_TTL_MILLIS));
        assert_eq!(duration::parse_millis("720h"), Ok(MAX_TTL_MILLIS));
    }

    #[test]
    fn malformed_arguments_never_panic() {
        let inputs = [
            quote!(),
            quote!("order:<id>"),
            quote!(key),
            quote!(key =),
            quote!(key = , ttl = "1s"),
            quote!(key = 5),
            quote!(key = "a" "b"),
            quote!(= "a"),
            quote!(,,,),
            quote!(key = "a",, ttl = "1s"),
            quote!(crate = "not a path"),
            quote!(crate = dl),
            quote!(manager = ""),
            quote!(guard = _),
            quote!(guard = a b),
            quote!(key = "k"x),
            quote!(timeout = "1s"),
            quote!(key::path = "1s"),
            quote!(key = "k", permits =),
            quote!(key = "k", permits = -0),
            quote!(key = "k", permits = 1e3),
            quote!(key = "k", permits = 3_u32),
            quote!(key = "k", permits = '3'),
            quote!(key = "k", permits = [3]),
            quote!(key = "k", permits = " 7 "),
            quote!(key = "k", mode = "READ "),
            quote!(key = "k", mode = b"read"),
            quote!(key = "k", mode = write()),
            quote!(key = "k", mode = r#"write"#x),
            quote!(
                #[attr]
                key = "k"
            ),
        ];
        for input in inputs {
            let (_, errors) = parse(input.clone());
            assert!(!errors.is_empty(), "no error for `{input}`");
        }
    }
}
