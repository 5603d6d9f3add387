//! The lock-key template: literal text with `<placeholder>`s.
//!
//! ```text
//! template    := (text | "<<" | ">>" | placeholder)*
//! placeholder := "<" root ("." member)* ">"
//! root        := identifier | "self"
//! member      := identifier | tuple-index
//! ```
//!
//! `<<` and `>>` stand for a literal `<` and `>`. Identifiers follow Rust's
//! rules, so a keyword field is written as a raw identifier (`<job.r#type>`).
//! The parser knows nothing about the fn; checking that a root names one of
//! its bindings is the expansion's job.

use std::fmt;

use syn::Ident;

/// A parsed key template, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pub(crate) parts: Vec<Part>,
}

/// One piece of a key template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    /// Literal key text, with `<<`/`>>` already unescaped.
    Text(String),
    Placeholder(Placeholder),
}

/// `<root.member.member>`: a value from the fn's arguments, formatted with
/// `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placeholder {
    /// The placeholder as written, without the angle brackets.
    pub(crate) source: String,
    pub(crate) root: Root,
    pub(crate) members: Vec<Member>,
}

/// What a placeholder starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Root {
    /// A binding introduced by one of the fn's parameter patterns.
    Binding(Ident),
    /// The method receiver.
    SelfValue,
}

/// A field access after the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Member {
    Named(Ident),
    Index(u32),
}

impl Template {
    /// Parses `text`, reporting every malformed placeholder rather than the first.
    pub(crate) fn parse(text: &str) -> Result<Template, Vec<TemplateError>> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();

        while let Some((start, c)) = chars.next() {
            match c {
                '<' if chars.next_if(|&(_, next)| next == '<').is_some() => literal.push('<'),
                '>' if chars.next_if(|&(_, next)| next == '>').is_some() => literal.push('>'),
                '>' => errors.push(TemplateError::StrayClose),
                '<' => {
                    let body_start = start + c.len_utf8();
                    let Some(body_len) = text.get(body_start..).and_then(|rest| rest.find('>'))
                    else {
                        errors.push(TemplateError::Unclosed {
                            rest: text.get(body_start..).unwrap_or_default().to_owned(),
                        });
                        break;
                    };
                    let body = text
                        .get(body_start..body_start + body_len)
                        .unwrap_or_default();
                    // Skip the body and the closing `>`.
                    while chars
                        .next_if(|&(at, _)| at <= body_start + body_len)
                        .is_some()
                    {}
                    match parse_placeholder(body) {
                        Ok(placeholder) => {
                            if !literal.is_empty() {
                                parts.push(Part::Text(std::mem::take(&mut literal)));
                            }
                            parts.push(Part::Placeholder(placeholder));
                        }
                        Err(error) => errors.push(error),
                    }
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }

        if errors.is_empty() {
            Ok(Template { parts })
        } else {
            Err(errors)
        }
    }
}

fn parse_placeholder(body: &str) -> Result<Placeholder, TemplateError> {
    let placeholder = || body.to_owned();
    if body.is_empty() {
        return Err(TemplateError::Empty);
    }
    if body.chars().any(char::is_whitespace) {
        return Err(TemplateError::Whitespace {
            placeholder: placeholder(),
        });
    }
    if let Some(c) = body.chars().find(|&c| c == '<') {
        return Err(TemplateError::InvalidChar {
            placeholder: placeholder(),
            c,
        });
    }

    let mut segments = body.split('.');
    let root = match segments.next() {
        Some("self") => Root::SelfValue,
        Some(segment) if is_tuple_index(segment) => {
            return Err(TemplateError::NumericRoot {
                placeholder: placeholder(),
            });
        }
        Some(segment) => Root::Binding(parse_ident(body, segment)?),
        None => return Err(TemplateError::Empty),
    };
    let members = segments
        .map(|segment| {
            if is_tuple_index(segment) {
                parse_tuple_index(body, segment)
            } else {
                parse_ident(body, segment).map(Member::Named)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;

    Ok(Placeholder {
        source: placeholder(),
        root,
        members,
    })
}

fn is_tuple_index(segment: &str) -> bool {
    !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit())
}

fn parse_tuple_index(placeholder: &str, segment: &str) -> Result<Member, TemplateError> {
    let invalid = || TemplateError::InvalidIndex {
        placeholder: placeholder.to_owned(),
        segment: segment.to_owned(),
    };
    if segment.len() > 1 && segment.starts_with('0') {
        return Err(invalid());
    }
    segment
        .parse::<u32>()
        .map(Member::Index)
        .map_err(|_| invalid())
}

fn parse_ident(placeholder: &str, segment: &str) -> Result<Ident, TemplateError> {
    let error = |kind| TemplateError::InvalidSegment {
        placeholder: placeholder.to_owned(),
        segment: segment.to_owned(),
        kind,
    };
    if segment.is_empty() {
        return Err(error(SegmentProblem::Empty));
    }
    let (raw, name) = match segment.strip_prefix("r#") {
        Some(name) => (true, name),
        None => (false, segment),
    };
    // Validate exactly as the Rust lexer does before handing the text to it:
    // inside a compiler session a lexing error is fatal, not a `Result`.
    if !is_identifier(name) {
        return Err(error(SegmentProblem::NotAnIdentifier));
    }
    if matches!(name, "self" | "Self" | "super" | "crate") {
        return Err(error(SegmentProblem::Reserved));
    }
    match syn::parse_str::<Ident>(segment) {
        Ok(ident) => Ok(ident),
        Err(_) if !raw => Err(error(SegmentProblem::Keyword)),
        Err(_) => Err(error(SegmentProblem::NotAnIdentifier)),
    }
}

/// `XID_Start XID_Continue*` or `_ XID_Continue+`, Rust's identifier grammar.
fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    match chars.next() {
        Some('_') => name.len() > 1 && chars.all(unicode_ident::is_xid_continue),
        Some(first) => {
            unicode_ident::is_xid_start(first) && chars.all(unicode_ident::is_xid_continue)
        }
        None => false,
    }
}

/// A malformed template; `Display` gives a complete message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TemplateError {
    Empty,
    Unclosed {
        rest: String,
    },
    StrayClose,
    Whitespace {
        placeholder: String,
    },
    InvalidChar {
        placeholder: String,
        c: char,
    },
    NumericRoot {
        placeholder: String,
    },
    InvalidIndex {
        placeholder: String,
        segment: String,
    },
    InvalidSegment {
        placeholder: String,
        segment: String,
        kind: SegmentProblem,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SegmentProblem {
    Empty,
    Keyword,
    Reserved,
    NotAnIdentifier,
}

impl SegmentProblem {
    /// The message for `segment` of the placeholder `<placeholder>` having
    /// this problem.
    fn fmt_for(self, f: &mut fmt::Formatter<'_>, placeholder: &str, segment: &str) -> fmt::Result {
        match self {
            SegmentProblem::Empty => write!(
                f,
                "the placeholder `<{placeholder}>` has an empty name around a `.`"
            ),
            SegmentProblem::Reserved => write!(
                f,
                "`{segment}` in the placeholder `<{placeholder}>` cannot name a parameter or field"
            ),
            SegmentProblem::Keyword => write!(
                f,
                "`{segment}` in the placeholder `<{placeholder}>` is a keyword; write it as the raw identifier `r#{segment}`"
            ),
            SegmentProblem::NotAnIdentifier => write!(
                f,
                "`{segment}` in the placeholder `<{placeholder}>` is not a valid identifier; placeholders are `<name>` or `<name.field.0>`"
            ),
        }
    }
}

const ESCAPE_HINT: &str = "write `<<` for a literal `<` and `>>` for a literal `>`";

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::Empty => write!(
                f,
                "empty placeholder `<>` in the key: name a parameter, like `<id>`; {ESCAPE_HINT}"
            ),
            TemplateError::Unclosed { rest } => write!(
                f,
                "unclosed `<` in the key: `<{rest}` has no closing `>`; {ESCAPE_HINT}"
            ),
            TemplateError::StrayClose => write!(
                f,
                "unmatched `>` in the key: it does not close a placeholder; {ESCAPE_HINT}"
            ),
            TemplateError::Whitespace { placeholder } => write!(
                f,
                "whitespace is not allowed inside the placeholder `<{placeholder}>`; write it like `<order.id>`"
            ),
            TemplateError::InvalidChar { placeholder, c } => write!(
                f,
                "invalid character `{c}` in the placeholder `<{placeholder}`; {ESCAPE_HINT}"
            ),
            TemplateError::NumericRoot { placeholder } => write!(
                f,
                "the placeholder `<{placeholder}>` must start with a parameter name, not a number"
            ),
            TemplateError::InvalidIndex {
                placeholder,
                segment,
            } => write!(
                f,
                "`{segment}` in the placeholder `<{placeholder}>` is not a valid tuple index"
            ),
            TemplateError::InvalidSegment {
                placeholder,
                segment,
                kind,
            } => kind.fmt_for(f, placeholder, segment),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fuzz::for_every_string;

    fn ident(name: &str) -> Ident {
        syn::parse_str(name).expect("test identifier")
    }

    fn text(s: &str) -> Part {
        Part::Text(s.to_owned())
    }

    fn placeholder(source: &str, root: Root, members: Vec<Member>) -> Part {
        Part::Placeholder(Placeholder {
            source: source.to_owned(),
            root,
            members,
        })
    }

    fn parts(template: &str) -> Vec<Part> {
        Template::parse(template).expect(template).parts
    }

    fn errors(template: &str) -> Vec<TemplateError> {
        Template::parse(template).expect_err(template)
    }

    #[test]
    fn literal_only() {
        assert_eq!(parts("orders"), vec![text("orders")]);
        assert_eq!(parts(""), vec![]);
        assert_eq!(parts("a{b}c"), vec![text("a{b}c")]);
    }

    #[test]
    fn simple_placeholder() {
        assert_eq!(
            parts("order:<id>"),
            vec![
                text("order:"),
                placeholder("id", Root::Binding(ident("id")), vec![])
            ]
        );
    }

    #[test]
    fn field_paths_and_tuple_indices() {
        assert_eq!(
            parts("transfer:<req.from>:<req.to>"),
            vec![
                text("transfer:"),
                placeholder(
                    "req.from",
                    Root::Binding(ident("req")),
                    vec![Member::Named(ident("from"))]
                ),
                text(":"),
                placeholder(
                    "req.to",
                    Root::Binding(ident("req")),
                    vec![Member::Named(ident("to"))]
                ),
            ]
        );
        assert_eq!(
            parts("<pair.0.1>"),
            vec![placeholder(
                "pair.0.1",
                Root::Binding(ident("pair")),
                vec![Member::Index(0), Member::Index(1)]
            )]
        );
        assert_eq!(
            parts("<self.tenant>"),
            vec![placeholder(
                "self.tenant",
                Root::SelfValue,
                vec![Member::Named(ident("tenant"))]
            )]
        );
    }

    #[test]
    fn raw_identifiers() {
        assert_eq!(
            parts("<job.r#type>"),
            vec![placeholder(
                "job.r#type",
                Root::Binding(ident("job")),
                vec![Member::Named(ident("r#type"))]
            )]
        );
    }

    #[test]
    fn adjacent_placeholders() {
        assert_eq!(
            parts("<a><b>"),
            vec![
                placeholder("a", Root::Binding(ident("a")), vec![]),
                placeholder("b", Root::Binding(ident("b")), vec![]),
            ]
        );
    }

    #[test]
    fn escaped_angle_brackets() {
        assert_eq!(parts("a<<b>>c"), vec![text("a<b>c")]);
        assert_eq!(
            parts("<<<id>>>"),
            vec![
                text("<"),
                placeholder("id", Root::Binding(ident("id")), vec![]),
                text(">"),
            ]
        );
        assert_eq!(parts("<<>>"), vec![text("<>")]);
    }

    #[test]
    fn malformed_placeholders() {
        assert_eq!(errors("a<>b"), vec![TemplateError::Empty]);
        assert_eq!(
            errors("order:<id"),
            vec![TemplateError::Unclosed { rest: "id".into() }]
        );
        assert_eq!(errors("order:>"), vec![TemplateError::StrayClose]);
        assert_eq!(errors("<id>>"), vec![TemplateError::StrayClose]);
        assert!(matches!(
            errors("< id>")[..],
            [TemplateError::Whitespace { .. }]
        ));
        assert!(matches!(
            errors("<a<b>")[..],
            [TemplateError::InvalidChar { c: '<', .. }]
        ));
        assert!(matches!(
            errors("<0>")[..],
            [TemplateError::NumericRoot { .. }]
        ));
        assert!(matches!(
            errors("<a.01>")[..],
            [TemplateError::InvalidIndex { .. }]
        ));
        assert!(matches!(
            errors("<a.99999999999>")[..],
            [TemplateError::InvalidIndex { .. }]
        ));
        assert!(matches!(
            errors("<a..b>")[..],
            [TemplateError::InvalidSegment {
                kind: SegmentProblem::Empty,
                ..
            }]
        ));
        assert!(matches!(
            errors("<a.>")[..],
            [TemplateError::InvalidSegment {
                kind: SegmentProblem::Empty,
                ..
            }]
        ));
        assert!(matches!(
            errors("<job.type>")[..],
            [TemplateError::InvalidSegment {
                kind: SegmentProblem::Keyword,
                ..
            }]
        ));
        assert!(matches!(
            errors("<a-b>")[..],
            [TemplateError::InvalidSegment {
                kind: SegmentProblem::NotAnIdentifier,
                ..
            }]
        ));
        assert!(matches!(
            errors("<1a>")[..],
            [TemplateError::InvalidSegment {
                kind: SegmentProblem::NotAnIdentifier,
                ..
            }]
        ));
        assert!(matches!(
            errors("<r#self>")[..],
            [TemplateError::InvalidSegment { .. }]
        ));
        assert!(matches!(
            errors("<_>")[..],
            [TemplateError::InvalidSegment { .. }]
        ));
    }

    #[test]
    fn reports_every_error() {
        assert_eq!(
            errors("<>:<>:>"),
            vec![
                TemplateError::Empty,
                TemplateError::Empty,
                TemplateError::StrayClose
            ]
        );
    }

    #[test]
    fn every_error_has_a_message() {
        for template in [
            "<>", "<a", ">", "< a>", "<a<b>", "<0>", "<a.01>", "<a..b>", "<a.type>", "<a-b>",
        ] {
            for error in errors(template) {
                let message = error.to_string();
                assert!(!message.is_empty());
            }
        }
    }

    #[test]
    fn unicode_text_and_identifiers() {
        assert_eq!(
            parts("ключ:<номер>é"),
            vec![
                text("ключ:"),
                placeholder("номер", Root::Binding(ident("номер")), vec![]),
                text("é"),
            ]
        );
    }

    /// Every string up to length 6 over an alphabet of the template's
    /// syntax, identifier characters, and things that must be rejected.
    #[test]
    fn never_panics_on_generated_strings() {
        let checked = for_every_string("<>.a0 {}ms1hé", 6, |text| {
            let _ = Template::parse(text)
                .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>());
        });
        assert!(checked > 1_000_000);
    }
}
