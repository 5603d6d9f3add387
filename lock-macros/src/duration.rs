//! Compile-time parsing of the `ttl` and `wait` duration literals.
//!
//! A duration is one or more `<digits><unit>` components with units `h`, `m`,
//! `s` and `ms`, written from the largest unit to the smallest and each unit at
//! most once: `"250ms"`, `"10s"`, `"1m30s"`, `"1h2m3s500ms"`. The result is a
//! whole number of milliseconds, which is what the generated
//! `Duration::from_millis` call takes.

use std::fmt;

/// Parses `text` into milliseconds.
pub(crate) fn parse_millis(text: &str) -> Result<u64, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace()) {
        return Err(DurationError::Whitespace(c));
    }

    let mut rest = text;
    let mut total: u64 = 0;
    let mut previous: Option<Unit> = None;
    while !rest.is_empty() {
        let (digits, unit, after) = next_component(rest)?;
        check_unit_order(previous, unit)?;
        previous = Some(unit);
        total = total
            .checked_add(component_millis(digits, unit)?)
            .ok_or(DurationError::Overflow)?;
        rest = after;
    }
    Ok(total)
}

/// Splits the `<digits><unit>` component at the start of `rest` into its
/// digits, its unit, and the text after it.
fn next_component(rest: &str) -> Result<(&str, Unit, &str), DurationError> {
    let digits_len = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    let (digits, after_digits) = rest.split_at(digits_len);
    let unit_len = after_digits
        .find(|c: char| !c.is_alphabetic())
        .unwrap_or(after_digits.len());
    let (unit_text, after_unit) = after_digits.split_at(unit_len);

    if digits.is_empty() {
        return Err(match after_digits.chars().next() {
            Some('.' | ',') => DurationError::Fraction,
            Some('-') => DurationError::Negative,
            Some(c) if !c.is_alphabetic() => DurationError::UnexpectedChar(c),
            _ => DurationError::MissingNumber(unit_text.to_owned()),
        });
    }
    if unit_text.is_empty() {
        return Err(match after_digits.chars().next() {
            Some('.' | ',') => DurationError::Fraction,
            Some(c) => DurationError::UnexpectedChar(c),
            None => DurationError::MissingUnit(digits.to_owned()),
        });
    }
    let unit = Unit::from_suffix(unit_text)
        .ok_or_else(|| DurationError::UnknownUnit(unit_text.to_owned()))?;
    Ok((digits, unit, after_unit))
}

/// Checks that `unit` may follow `previous`, the unit of the component
/// before it: units go from largest to smallest, each at most once.
fn check_unit_order(previous: Option<Unit>, unit: Unit) -> Result<(), DurationError> {
    match previous {
        Some(previous) if unit == previous => Err(DurationError::RepeatedUnit(unit)),
        Some(previous) if unit.millis() > previous.millis() => Err(DurationError::UnitOrder {
            larger: unit,
            after: previous,
        }),
        _ => Ok(()),
    }
}

/// `digits` of `unit`, in milliseconds, or `Overflow` when that is more
/// than a u64 holds.
fn component_millis(digits: &str, unit: Unit) -> Result<u64, DurationError> {
    digits
        .parse::<u64>()
        .ok()
        .and_then(|value| value.checked_mul(unit.millis()))
        .ok_or(DurationError::Overflow)
}

/// A unit of a duration component, largest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Hours,
    Minutes,
    Seconds,
    Millis,
}

impl Unit {
    fn from_suffix(suffix: &str) -> Option<Unit> {
        match suffix {
            "h" => Some(Unit::Hours),
            "m" => Some(Unit::Minutes),
            "s" => Some(Unit::Seconds),
            "ms" => Some(Unit::Millis),
            _ => None,
        }
    }

    fn millis(self) -> u64 {
        match self {
            Unit::Hours => 3_600_000,
            Unit::Minutes => 60_000,
            Unit::Seconds => 1_000,
            Unit::Millis => 1,
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Unit::Hours => "h",
            Unit::Minutes => "m",
            Unit::Seconds => "s",
            Unit::Millis => "ms",
        }
    }
}

/// Why a duration literal was rejected; `Display` gives the reason only, the
/// caller adds which option and value it was about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DurationError {
    Empty,
    Whitespace(char),
    Fraction,
    Negative,
    UnexpectedChar(char),
    MissingNumber(String),
    MissingUnit(String),
    UnknownUnit(String),
    RepeatedUnit(Unit),
    UnitOrder { larger: Unit, after: Unit },
    Overflow,
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::Empty => f.write_str("the duration is empty"),
            DurationError::Whitespace(c) => {
                write!(f, "whitespace ({c:?}) is not allowed inside a duration")
            }
            DurationError::Fraction => f.write_str(
                "fractions are not supported; use a smaller unit instead (`1s500ms`, not `1.5s`)",
            ),
            DurationError::Negative => f.write_str("a duration cannot be negative"),
            DurationError::UnexpectedChar(c) => write!(f, "unexpected character `{c}`"),
            DurationError::MissingNumber(unit) => {
                write!(f, "expected a number before `{unit}`")
            }
            DurationError::MissingUnit(number) => write!(
                f,
                "`{number}` has no unit; write e.g. `{number}s` or `{number}ms`"
            ),
            DurationError::UnknownUnit(unit) => write!(
                f,
                "unknown unit `{unit}`; the units are `h`, `m`, `s` and `ms`"
            ),
            DurationError::RepeatedUnit(unit) => {
                write!(f, "the unit `{}` appears more than once", unit.suffix())
            }
            DurationError::UnitOrder { larger, after } => write!(
                f,
                "`{}` comes after the smaller unit `{}`; write units from largest to smallest, like `1h2m3s500ms`",
                larger.suffix(),
                after.suffix()
            ),
            DurationError::Overflow => f.write_str("the duration is too long to represent"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::for_every_string;

    #[test]
    fn accepts_single_components() {
        assert_eq!(parse_millis("250ms"), Ok(250));
        assert_eq!(parse_millis("10s"), Ok(10_000));
        assert_eq!(parse_millis("2m"), Ok(120_000));
        assert_eq!(parse_millis("1h"), Ok(3_600_000));
        assert_eq!(parse_millis("0s"), Ok(0));
        assert_eq!(parse_millis("0ms"), Ok(0));
        assert_eq!(parse_millis("007s"), Ok(7_000));
    }

    #[test]
    fn accepts_components_in_decreasing_order() {
        assert_eq!(parse_millis("1m30s"), Ok(90_000));
        assert_eq!(parse_millis("1h2m3s500ms"), Ok(3_723_500));
        assert_eq!(parse_millis("1h500ms"), Ok(3_600_500));
        assert_eq!(parse_millis("90s"), Ok(90_000));
    }

    #[test]
    fn rejects_malformed_text() {
        assert_eq!(parse_millis(""), Err(DurationError::Empty));
        assert_eq!(
            parse_millis("10"),
            Err(DurationError::MissingUnit("10".into()))
        );
        assert_eq!(
            parse_millis("s"),
            Err(DurationError::MissingNumber("s".into()))
        );
        assert_eq!(parse_millis("1.5s"), Err(DurationError::Fraction));
        assert_eq!(parse_millis("-1s"), Err(DurationError::Negative));
        assert_eq!(parse_millis("10 s"), Err(DurationError::Whitespace(' ')));
        assert_eq!(parse_millis(" 10s"), Err(DurationError::Whitespace(' ')));
        assert_eq!(
            parse_millis("10sec"),
            Err(DurationError::UnknownUnit("sec".into()))
        );
        assert_eq!(
            parse_millis("10S"),
            Err(DurationError::UnknownUnit("S".into()))
        );
        assert_eq!(
            parse_millis("10s+"),
            Err(DurationError::UnexpectedChar('+'))
        );
        assert_eq!(
            parse_millis("1s1s"),
            Err(DurationError::RepeatedUnit(Unit::Seconds))
        );
        assert_eq!(
            parse_millis("30s1m"),
            Err(DurationError::UnitOrder {
                larger: Unit::Minutes,
                after: Unit::Seconds
            })
        );
    }

    #[test]
    fn rejects_overflow() {
        assert_eq!(parse_millis("18446744073709551615ms"), Ok(u64::MAX));
        assert_eq!(
            parse_millis("18446744073709551616ms"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_millis("18446744073709551615s"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_millis("5124095576030h1ms"),
            Ok(5_124_095_576_030 * 3_600_000 + 1)
        );
        assert_eq!(
            parse_millis("5124095576030h59m59s999ms"),
            Err(DurationError::Overflow)
        );
        assert_eq!(
            parse_millis("99999999999999999999999999h"),
            Err(DurationError::Overflow)
        );
    }

    #[test]
    fn every_error_has_a_message() {
        for text in [
            "", "10", "s", "1.5s", "-1s", "1 s", "1x", "1s1s", "1s1h", "1s?",
        ] {
            let error = parse_millis(text).expect_err(text);
            assert!(!error.to_string().is_empty());
        }
    }

    /// Every string up to length 6 over an alphabet that mixes the valid
    /// syntax with the characters most likely to confuse it.
    #[test]
    fn never_panics_on_generated_strings() {
        let checked = for_every_string("0159msh .xµ", 6, |text| {
            let _ = parse_millis(text);
        });
        assert!(checked > 1_000_000);
    }
}
