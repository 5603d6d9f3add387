//! Every relative link in the front page, the guide and the contributor docs
//! resolves: `[text](path)` and `![alt](path)` name a file that exists, and
//! `path#anchor` (or `#anchor`) a heading of that file, slugged the way GitHub
//! slugs it. External links (`http://`, `https://`, `mailto:`) are not
//! fetched: the suite stays off the network.
//!
//! Links inside code (fenced blocks and inline spans) are not links, and are
//! skipped. The guide's chapters must also be compiled (`src/guide.rs`) and
//! listed (the README and the guide's index), so no chapter drops out of
//! docs.rs or out of reach.

use std::collections::HashMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// The repository root (the facade's manifest directory).
fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The Markdown files whose links are checked, relative to the root.
fn checked_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["README.md", "CONTRIBUTING.md", "ARCHITECTURE.md"]
        .iter()
        .map(PathBuf::from)
        .collect();
    files.extend(guide_files());
    files
}

/// `docs/guide/*.md`, relative to the root, sorted.
fn guide_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(root().join("docs/guide"))
        .expect("docs/guide")
        .map(|entry| entry.expect("a guide entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .map(|path| {
            path.strip_prefix(root())
                .expect("under the root")
                .to_path_buf()
        })
        .collect();
    files.sort();
    files
}

/// A link found in a Markdown text: its destination and its line.
#[derive(Debug, PartialEq, Eq)]
struct Link {
    dest: String,
    line: usize,
}

/// What the scanner finds in a Markdown text, code excluded.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// `[text](dest)` or `![alt](dest)`.
    Inline { dest: String },
    /// `[label]: dest`, at the start of a line.
    Definition { label: String, dest: String },
    /// `[text][label]`, or `[label][]`.
    Reference { label: String },
}

/// The text with fenced code blocks and inline code spans blanked out (each
/// character but newlines becomes a space, so lines keep their numbers).
fn without_code(text: &str) -> String {
    blank_code_spans(&blank_fences(text))
}

/// The text with fenced code blocks (their fence lines too) blanked out. A
/// fence may be indented, as in a list item; it closes with a run of its
/// character at least as long as the one that opened it.
fn blank_fences(text: &str) -> String {
    let mut prose = String::with_capacity(text.len());
    let mut fence: Option<(char, usize)> = None;
    for line in text.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let marker = trimmed.chars().next().filter(|c| *c == '`' || *c == '~');
        let run = marker.map_or(0, |c| trimmed.chars().take_while(|x| *x == c).count());
        let is_fenced = match (fence, marker) {
            (None, Some(c)) if run >= 3 => {
                fence = Some((c, run));
                true
            }
            (Some((c, n)), Some(m)) if m == c && run >= n && trimmed[run..].trim().is_empty() => {
                fence = None;
                true
            }
            _ => fence.is_some(),
        };
        if is_fenced {
            prose.extend(line.chars().map(|c| if c == '\n' { '\n' } else { ' ' }));
        } else {
            prose.push_str(line);
        }
    }
    prose
}

/// Blanks inline code spans: a run of n backticks up to the next run of
/// exactly n (which may be on a later line). An unmatched run is text.
fn blank_code_spans(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = chars.clone();
    let run_at = |i: usize| chars[i..].iter().take_while(|c| **c == '`').count();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let close = loop {
            if j >= chars.len() {
                break None;
            }
            if chars[j] == '`' {
                let m = run_at(j);
                if m == n {
                    break Some(j);
                }
                j += m;
            } else {
                j += 1;
            }
        };
        match close {
            Some(j) => {
                for c in &mut out[i..j + n] {
                    if *c != '\n' {
                        *c = ' ';
                    }
                }
                i = j + n;
            }
            None => i += n,
        }
    }
    out.into_iter().collect()
}

/// The inline links and images (`[text](dest)`, `![alt](dest)`) and the
/// reference definitions (`[label]: dest`) of a Markdown text, code excluded.
fn links(text: &str) -> Vec<Link> {
    scan(text)
        .into_iter()
        .filter_map(|(found, line)| match found {
            Found::Inline { dest } | Found::Definition { dest, .. } => Some(Link { dest, line }),
            Found::Reference { .. } => None,
        })
        .collect()
}

/// Every link, definition and reference of a Markdown text, code excluded,
/// with its line.
fn scan(text: &str) -> Vec<(Found, usize)> {
    let prose: Vec<char> = without_code(text).chars().collect();
    let line_of = |at: usize| 1 + prose[..at].iter().filter(|c| **c == '\n').count();
    let mut found = Vec::new();
    let mut i = 0;
    while i < prose.len() {
        if prose[i] != '[' {
            i += 1;
            continue;
        }
        let Some(close) = matching(&prose, i, '[', ']') else {
            i += 1;
            continue;
        };
        let at_line_start = i == 0 || prose[i - 1] == '\n';
        let inside: String = prose[i + 1..close].iter().collect();
        match prose.get(close + 1) {
            Some('(') => {
                if let Some(end) = matching(&prose, close + 1, '(', ')') {
                    let inner: String = prose[close + 2..end].iter().collect();
                    let dest = destination(&inner);
                    found.push((Found::Inline { dest }, line_of(i)));
                }
            }
            Some('[') => {
                if let Some(end) = matching(&prose, close + 1, '[', ']') {
                    let label: String = prose[close + 2..end].iter().collect();
                    let label = if label.is_empty() { inside } else { label };
                    found.push((Found::Reference { label }, line_of(i)));
                }
            }
            Some(':') if at_line_start => {
                let rest: String = prose[close + 2..]
                    .iter()
                    .take_while(|c| **c != '\n')
                    .collect();
                let dest = destination(&rest);
                found.push((
                    Found::Definition {
                        label: inside,
                        dest,
                    },
                    line_of(i),
                ));
            }
            _ => {}
        }
        // Go on inside the brackets: an image may sit inside a link.
        i += 1;
    }
    found
}

/// A reference label as Markdown matches it: case and runs of white space
/// do not count.
fn normalized(label: &str) -> String {
    label
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The labels a Markdown text defines, normalized.
fn definitions(text: &str) -> Vec<String> {
    scan(text)
        .into_iter()
        .filter_map(|(found, _)| match found {
            Found::Definition { label, .. } => Some(normalized(&label)),
            _ => None,
        })
        .collect()
}

/// The index of the bracket closing the one at `open`, counting nesting and
/// skipping backslash escapes.
fn matching(chars: &[char], open: usize, left: char, right: char) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = open;
    while i < chars.len() {
        match chars[i] {
            '\\' => i += 1,
            c if c == left => depth += 1,
            c if c == right => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The destination of a link's parenthesis: `<dest>` or the first word, a
/// title after it dropped.
fn destination(inner: &str) -> String {
    let inner = inner.trim();
    if let Some(rest) = inner.strip_prefix('<') {
        return rest.split('>').next().unwrap_or_default().to_owned();
    }
    inner
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// GitHub's anchor of a heading: the rendered text lowercased, every
/// character but letters, digits, `_`, `-` and spaces dropped, spaces turned
/// into `-` (github-slugger, which github.com follows).
fn slug(heading: &str) -> String {
    rendered(heading)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// A heading's text as rendered: code spans lose their backticks, links and
/// images keep their text only.
fn rendered(heading: &str) -> String {
    let chars: Vec<char> = heading.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '`' => {}
            '[' => {
                if let Some(close) = matching(&chars, i, '[', ']')
                    && chars.get(close + 1) == Some(&'(')
                    && let Some(end) = matching(&chars, close + 1, '(', ')')
                {
                    out.push_str(&rendered(&chars[i + 1..close].iter().collect::<String>()));
                    i = end + 1;
                    continue;
                }
                out.push('[');
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The anchors of a Markdown text's ATX headings, code excluded; a repeated
/// slug gets `-1`, `-2`, … as on GitHub.
fn anchors(text: &str) -> Vec<String> {
    let fenced = blank_fences(text);
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = Vec::new();
    for line in fenced.lines() {
        let trimmed = line.trim_start_matches(' ');
        let hashes = trimmed.chars().take_while(|c| *c == '#').count();
        if line.len() - trimmed.len() > 3 || !(1..=6).contains(&hashes) {
            continue;
        }
        let rest = &trimmed[hashes..];
        if !(rest.is_empty() || rest.starts_with(' ') || rest.starts_with('\t')) {
            continue;
        }
        let text = rest.trim().trim_end_matches('#').trim_end();
        let base = slug(text);
        let count = seen.entry(base.clone()).or_insert(0);
        anchors.push(if *count == 0 {
            base
        } else {
            format!("{base}-{count}")
        });
        *count += 1;
    }
    anchors
}

/// `a/b/../c` without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// The broken relative links of `text`, read as the file `file` (relative
/// to the root), each as `file:line: dest: why`.
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let dir = file.parent().unwrap_or(Path::new(""));
    let mut broken = Vec::new();
    for link in links(text) {
        let dest = link.dest.as_str();
        let external = ["http://", "https://", "mailto:"]
            .iter()
            .any(|scheme| dest.starts_with(scheme));
        if external {
            continue;
        }
        let (path, anchor) = match dest.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (dest, None),
        };
        let target = if path.is_empty() {
            file.to_path_buf()
        } else {
            normalize(&dir.join(path))
        };
        let why = if dest.is_empty() {
            Some("an empty destination".to_owned())
        } else if !root().join(&target).exists() {
            Some(format!("no file {}", target.display()))
        } else {
            anchor.and_then(|anchor| missing_anchor(&target, anchor, file, text))
        };
        if let Some(why) = why {
            broken.push(format!("{}:{}: {dest}: {why}", file.display(), link.line));
        }
    }
    let defined = definitions(text);
    for (found, line) in scan(text) {
        if let Found::Reference { label } = found
            && !defined.contains(&normalized(&label))
        {
            broken.push(format!(
                "{}:{line}: [{label}]: a reference to a label the file does not define",
                file.display()
            ));
        }
    }
    broken
}

/// Why `target#anchor` does not resolve, if it does not. Anchors are checked
/// in Markdown files only.
fn missing_anchor(target: &Path, anchor: &str, file: &Path, text: &str) -> Option<String> {
    if target.extension().is_none_or(|ext| ext != "md") {
        return None;
    }
    let body = if target == file {
        text.to_owned()
    } else {
        fs::read_to_string(root().join(target)).expect("a linked Markdown file")
    };
    let known = anchors(&body);
    (!known.iter().any(|known| known == anchor))
        .then(|| format!("no heading with anchor #{anchor} in {}", target.display()))
}

#[test]
fn every_relative_link_in_the_readme_and_the_guide_resolves() {
    let mut broken = Vec::new();
    let mut checked = 0;
    for file in checked_files() {
        let text = fs::read_to_string(root().join(&file)).expect("a checked file");
        checked += links(&text).len();
        broken.extend(broken_links(&file, &text));
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // The checker found the links it was meant to check (the README alone
    // links every chapter).
    assert!(checked > 60, "only {checked} links found");
}

#[test]
fn every_guide_chapter_is_compiled_listed_and_asks_its_question() {
    let module = fs::read_to_string(root().join("src/guide.rs")).expect("src/guide.rs");
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    let index = fs::read_to_string(root().join("docs/guide/README.md")).expect("the index");
    let chapters: Vec<PathBuf> = guide_files()
        .into_iter()
        .filter(|file| !file.ends_with("README.md"))
        .collect();
    assert!(chapters.len() >= 10, "{chapters:?}");
    for chapter in &chapters {
        let name = chapter.file_name().expect("a file name").to_string_lossy();
        let included = format!("include_str!(\"../docs/guide/{name}\")");
        assert!(
            module.contains(&included),
            "src/guide.rs does not include {name}"
        );
        let linked = |text: &str, dest: &str| links(text).iter().any(|link| link.dest == dest);
        assert!(
            linked(&readme, &format!("docs/guide/{name}")),
            "the README does not link {name}"
        );
        assert!(linked(&index, &name), "the index does not list {name}");
        let text = fs::read_to_string(root().join(chapter)).expect("a chapter");
        let mut lines = text.lines();
        let title = lines.next().unwrap_or_default();
        assert!(title.starts_with("# "), "{name} starts with {title:?}");
        // The first paragraph after the title: one question, in italics.
        let question: Vec<&str> = lines
            .skip_while(|line| line.trim().is_empty())
            .take_while(|line| !line.trim().is_empty())
            .collect();
        let question = question.join(" ");
        assert!(
            question.starts_with('*') && question.ends_with("?*"),
            "{name} does not start with its question: {question:?}"
        );
    }
    assert!(module.contains("include_str!(\"../docs/guide/README.md\")"));
}

/// The labels that string literals of a Rust source define for rustdoc
/// (`"[label]: target\n"`), normalized.
fn rustdoc_definitions(source: &str) -> Vec<String> {
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix("\"["))
        .filter_map(|rest| rest.split_once("]: "))
        .map(|(label, _)| normalized(label))
        .collect()
}

#[test]
fn every_label_linking_the_guide_is_defined_for_rustdoc_too() {
    // On docs.rs a label defined only in the Markdown would point at a
    // `.md` file beside the module's page, which does not exist there.
    let lib = rustdoc_definitions(&fs::read_to_string(root().join("src/lib.rs")).expect("lib"));
    let module = fs::read_to_string(root().join("src/guide.rs")).expect("src/guide.rs");
    let guide = rustdoc_definitions(&module);
    let mut missing = Vec::new();
    let readme = fs::read_to_string(root().join("README.md")).expect("README.md");
    for (found, _) in scan(&readme) {
        if let Found::Definition { label, dest } = found
            && dest.starts_with("docs/guide/")
            && !lib.contains(&normalized(&label))
        {
            missing.push(format!("README.md: [{label}] (src/lib.rs)"));
        }
    }
    for file in guide_files() {
        let text = fs::read_to_string(root().join(&file)).expect("a guide file");
        for label in definitions(&text) {
            if !guide.contains(&label) {
                missing.push(format!("{}: [{label}] (src/guide.rs)", file.display()));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "labels rustdoc does not know:\n{}",
        missing.join("\n")
    );
    assert!(!lib.is_empty() && !guide.is_empty());
    // Every chapter gets the definitions, before its own text.
    let chapters = guide_files().len() - 1;
    assert_eq!(
        module
            .matches("#[doc = chapter_links!()]\n#[doc = include_str!")
            .count(),
        chapters
    );
}

#[test]
fn a_reference_to_an_undefined_label_is_reported() {
    let text = "See [the chapter][fencing.md], [the other][waiting.md] and [Fencing][].\n\n\
                [fencing.md]: docs/guide/fencing.md\n[FENCING]: docs/guide/fencing.md\n";
    let broken = broken_links(Path::new("README.md"), text);
    assert_eq!(broken.len(), 1, "{broken:#?}");
    assert!(
        broken[0].starts_with("README.md:1: [waiting.md]: a reference"),
        "{}",
        broken[0]
    );
}

#[test]
fn a_link_to_a_missing_file_is_reported() {
    let text = "# Title\n\nSee [the guide](docs/guide/no-such-chapter.md) and\n\
                ![a chart](docs/charts/no_such_chart.svg), but not [this](CONTRIBUTING.md),\n\
                [that](https://example.com/nowhere.md) or [it][ref].\n\n\
                [ref]: docs/guide/missing-too.md\n";
    let broken = broken_links(Path::new("README.md"), text);
    assert_eq!(broken.len(), 3, "{broken:#?}");
    assert!(broken[0].starts_with("README.md:3: docs/guide/no-such-chapter.md: no file"));
    assert!(broken[1].starts_with("README.md:4: docs/charts/no_such_chart.svg: no file"));
    assert!(broken[2].starts_with("README.md:7: docs/guide/missing-too.md: no file"));
}

#[test]
fn a_link_to_a_missing_anchor_is_reported() {
    let text = "# Title\n\n## Where it stands (protocol v2)\n\n\
                [ok](#where-it-stands-protocol-v2), [bad](#where-it-stands),\n\
                [ok too](CONTRIBUTING.md#the-rules), [bad too](CONTRIBUTING.md#no-such-rules)\n";
    let broken = broken_links(Path::new("README.md"), text);
    assert_eq!(broken.len(), 2, "{broken:#?}");
    assert!(
        broken[0].contains("#where-it-stands: no heading"),
        "{}",
        broken[0]
    );
    assert!(
        broken[1].contains("CONTRIBUTING.md#no-such-rules: no heading"),
        "{}",
        broken[1]
    );
}

#[test]
fn links_inside_code_are_not_links() {
    let text = "Text with `[inline](nowhere.md)` and ``a `[double](nowhere.md)` span``.\n\n\
                ```rust\nlet x = [a](nowhere.md);\n```\n\n  ~~~text\n  [indented](nowhere.md)\n  ~~~\n\n\
                A span over two lines: `[split\n](nowhere.md)` ends here, then [real](CHANGELOG.md).\n";
    assert_eq!(
        links(text),
        vec![Link {
            dest: "CHANGELOG.md".to_owned(),
            line: 12
        }]
    );
    assert!(broken_links(Path::new("README.md"), text).is_empty());
}

#[test]
fn anchors_are_slugged_as_on_github() {
    assert_eq!(
        slug("Where distlock stands (protocol v2)"),
        "where-distlock-stands-protocol-v2"
    );
    assert_eq!(
        slug("Looking at a lock, and freeing a stuck one"),
        "looking-at-a-lock-and-freeing-a-stuck-one"
    );
    assert_eq!(
        slug("`LockManager::builder` and `init`"),
        "lockmanagerbuilder-and-init"
    );
    assert_eq!(slug("See [etcd](etcd.md) — twice"), "see-etcd--twice");
    assert_eq!(slug("Ünïcode & `snake_case`"), "ünïcode--snake_case");
    let text = "# A\n\n## Notes\n\n```sh\n# Notes\n```\n\n## Notes\n\n### Notes ###\n";
    assert_eq!(anchors(text), ["a", "notes", "notes-1", "notes-2"]);
}
