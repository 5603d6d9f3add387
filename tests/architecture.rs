//! The layout rules of the library crates, checked on their source:
//!
//! - no two modules of a crate import each other, directly or round a
//!   cycle: the call path of one lock reads top-down (see ARCHITECTURE.md);
//! - nor do two of its top-level modules, each taken with its submodules
//!   (`backend` and everything under it is one): a module below another
//!   never reaches up into a part of it;
//! - no library function is longer than [`MAX_FN_LINES`] lines.
//!
//! Unit-test modules (`#[cfg(test)]`) are left out: a test may look at
//! anything. The source is parsed with `syn`, so comments and strings never
//! count as imports.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use syn::spanned::Spanned;
use syn::visit::Visit;

/// The longest a library function may be, from its signature to its
/// closing brace.
const MAX_FN_LINES: usize = 60;

/// The library crates, by source folder.
const CRATES: [&str; 4] = [
    "lock-runtime/src",
    "lock-macros/src",
    "lock-testkit/src",
    "lock-charts/src",
];

#[test]
fn no_two_modules_import_each_other() {
    let mut cycles = Vec::new();
    for krate in CRATES {
        let graph = import_graph(&source_files(krate));
        cycles.extend(cycles_of(&graph).into_iter().map(|cycle| (krate, cycle)));
    }
    assert!(
        cycles.is_empty(),
        "modules that import each other (crate: the modules of one cycle): {cycles:#?}"
    );
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let mut cycles = Vec::new();
    for krate in CRATES {
        let graph = folded(&import_graph(&source_files(krate)));
        cycles.extend(cycles_of(&graph).into_iter().map(|cycle| (krate, cycle)));
    }
    assert!(
        cycles.is_empty(),
        "top-level modules that import each other, submodules included (crate: the modules of one cycle): {cycles:#?}"
    );
}

#[test]
fn no_library_function_is_long() {
    let mut long = Vec::new();
    for krate in CRATES {
        for (module, path) in source_files(krate) {
            let mut lengths = FnLengths::default();
            lengths.visit_file(&parse(&path));
            for (name, lines) in lengths.found {
                if lines > MAX_FN_LINES {
                    long.push(format!("{krate} {module}::{name}: {lines} lines"));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines: {long:#?}"
    );
}

/// The checker finds what it checks: a cycle, a long function, an import
/// through a re-export, and nothing in unit-test modules.
#[test]
fn the_checks_find_what_they_look_for() {
    let file = |code: &str| syn::parse_file(code).expect("test source parses");
    let files = [
        (
            "lib",
            "mod a; mod b; mod c; mod d; mod p; pub use c::Thing;",
        ),
        ("a", "use crate::b::B; pub struct A;"),
        ("b", "pub struct B; fn f() -> crate::Thing { todo!() }"),
        ("c", "pub struct Thing(crate::a::A);"),
        ("d", "#[cfg(test)] mod tests { use crate::a::A; }"),
        ("p", "mod q; use q::Q; pub struct P;"),
        ("p::q", "pub struct Q(super::P);"),
    ];
    let graph = graph_of(&parsed(&files));
    assert_eq!(
        cycles_of(&graph),
        vec![
            vec!["a".to_owned(), "b".to_owned(), "c".to_owned()],
            vec!["p".to_owned(), "p::q".to_owned()]
        ]
    );
    assert!(graph["d"].is_empty(), "unit tests are left out: {graph:?}");
    // `p` and `p::q` are one top-level module; `e::f` reaching `a` through
    // `super::super`, and `a` reaching `e`, make a cycle of two folders.
    let folders = [
        ("lib", "mod a; mod e; mod p;"),
        ("a", "pub struct A(crate::e::E);"),
        ("e", "mod f; pub struct E;"),
        ("e::f", "pub struct F(super::super::a::A);"),
        ("p", "mod q; use q::Q; pub struct P;"),
        ("p::q", "pub struct Q(super::P);"),
    ];
    let graph = graph_of(&parsed(&folders));
    assert!(graph["e::f"].contains("a"), "{graph:?}");
    assert_eq!(
        cycles_of(&folded(&graph)),
        vec![vec!["a".to_owned(), "e".to_owned()]]
    );

    let body = "let x = 1;\n".repeat(MAX_FN_LINES);
    let mut lengths = FnLengths::default();
    lengths.visit_file(&file(&format!(
        "impl S {{\n /// Docs do not count.\n fn long() {{\n{body}}}\n}}\nfn short() {{}}"
    )));
    assert_eq!(
        lengths.found,
        vec![
            ("long".to_owned(), MAX_FN_LINES + 2),
            ("short".to_owned(), 1)
        ]
    );
}

/// Modules given as (path, source), parsed.
fn parsed(modules: &[(&str, &str)]) -> Vec<(String, syn::File)> {
    modules
        .iter()
        .map(|(name, code)| {
            let file = syn::parse_file(code).expect("test source parses");
            ((*name).to_owned(), file)
        })
        .collect()
}

/// The `.rs` files of a crate's source folder, by module path
/// (`backend::protocol`; the crate root is `lib`).
fn source_files(krate: &str) -> Vec<(String, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(krate);
    let mut files = Vec::new();
    collect_rs(&root, &mut files);
    files
        .into_iter()
        .map(|path| {
            let relative = path.strip_prefix(&root).expect("below the root");
            let mut parts: Vec<String> = relative
                .with_extension("")
                .iter()
                .map(|part| part.to_string_lossy().into_owned())
                .collect();
            if parts.len() > 1 && parts.last().is_some_and(|last| last == "mod") {
                parts.pop();
            }
            (parts.join("::"), path)
        })
        .collect()
}

fn collect_rs(folder: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(folder).expect("read a source folder");
    for entry in entries {
        let path = entry.expect("read a folder entry").path();
        if path.is_dir() {
            collect_rs(&path, files);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            files.push(path);
        }
    }
}

fn parse(path: &Path) -> syn::File {
    let code = std::fs::read_to_string(path).expect("read a source file");
    syn::parse_file(&code).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

/// Which modules each module imports (by `use` or by path), within its crate.
fn import_graph(files: &[(String, PathBuf)]) -> BTreeMap<String, BTreeSet<String>> {
    let parsed: Vec<(String, syn::File)> = files
        .iter()
        .map(|(module, path)| (module.clone(), parse(path)))
        .collect();
    graph_of(&parsed)
}

fn graph_of(files: &[(String, syn::File)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<&str> = files.iter().map(|(module, _)| module.as_str()).collect();
    let reexports = root_reexports(files, &modules);
    let mut graph = BTreeMap::new();
    for (module, file) in files {
        let imported = Paths::of(file)
            .iter()
            .filter_map(|path| resolve(module, path, &modules, &reexports))
            .filter(|target| target != module && target != "lib")
            .collect();
        graph.insert(module.clone(), imported);
    }
    graph
}

/// The graph of top-level modules: each module folded into the top-level
/// one it is part of, imports within one top-level module left out.
fn folded(graph: &BTreeMap<String, BTreeSet<String>>) -> BTreeMap<String, BTreeSet<String>> {
    let top = |module: &str| module.split("::").next().unwrap_or(module).to_owned();
    let mut folded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, imported) in graph {
        let from = top(module);
        let to: BTreeSet<String> = imported.iter().map(|target| top(target)).collect();
        let entry = folded.entry(from.clone()).or_default();
        entry.extend(to.into_iter().filter(|target| *target != from));
    }
    folded
}

/// What the crate root re-exports: item name → the module it comes from.
fn root_reexports(
    files: &[(String, syn::File)],
    modules: &BTreeSet<&str>,
) -> BTreeMap<String, String> {
    let mut reexports = BTreeMap::new();
    let Some((_, root)) = files.iter().find(|(module, _)| module == "lib") else {
        return reexports;
    };
    for path in &Paths::of(root) {
        let segments: Vec<&str> = path.iter().map(String::as_str).collect();
        let segments = match segments.first() {
            Some(&"crate" | &"self") => &segments[1..],
            _ => &segments[..],
        };
        if let (Some(first), Some(last)) = (segments.first(), segments.last())
            && modules.contains(first)
            && segments.len() > 1
        {
            reexports.insert((*last).to_owned(), (*first).to_owned());
        }
    }
    reexports
}

/// The module a path found in `module` leads to, if it is one of the crate's.
fn resolve(
    module: &str,
    path: &[String],
    modules: &BTreeSet<&str>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    let here: Vec<&str> = if module == "lib" {
        Vec::new()
    } else {
        module.split("::").collect()
    };
    let mut absolute: Vec<&str> = match path.first().map(String::as_str) {
        Some("crate") => Vec::new(),
        Some("super") => {
            let up = path
                .iter()
                .take_while(|segment| *segment == "super")
                .count();
            here[..here.len().saturating_sub(up)].to_vec()
        }
        // `self::…`, or a path starting at a child module.
        Some(_) => here.clone(),
        None => return None,
    };
    let skip = match path[0].as_str() {
        "crate" | "self" => 1,
        "super" => path
            .iter()
            .take_while(|segment| *segment == "super")
            .count(),
        _ => 0,
    };
    let rest: Vec<&str> = path[skip..].iter().map(String::as_str).collect();
    if path[0] == "crate"
        && let Some(origin) = rest.first().and_then(|first| reexports.get(*first))
    {
        return Some(origin.clone());
    }
    absolute.extend(rest);
    (1..=absolute.len())
        .rev()
        .map(|len| absolute[..len].join("::"))
        .find(|candidate| modules.contains(candidate.as_str()))
}

/// Every path in a file that may lead to a module of the crate, as
/// segments: those starting at `crate`, `super` or `self`, or at a child
/// module the file declares; `use` trees flattened, unit-test modules left
/// out.
#[derive(Default)]
struct Paths {
    found: Vec<Vec<String>>,
}

impl Paths {
    fn of(file: &syn::File) -> Vec<Vec<String>> {
        let children: BTreeSet<String> = file
            .items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Mod(module) if !is_cfg_test(&module.attrs) => {
                    Some(module.ident.to_string())
                }
                _ => None,
            })
            .collect();
        let mut paths = Paths::default();
        paths.visit_file(file);
        paths
            .found
            .into_iter()
            // A lone `self` is a receiver, a lone `super` a visibility.
            .filter(|path| path.len() > 1)
            .filter(|path| {
                path.first().is_some_and(|first| {
                    matches!(first.as_str(), "crate" | "super" | "self") || children.contains(first)
                })
            })
            .collect()
    }
}

impl Visit<'_> for Paths {
    fn visit_item_mod(&mut self, item: &syn::ItemMod) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_use(&mut self, item: &syn::ItemUse) {
        flatten_use(&item.tree, &mut Vec::new(), &mut self.found);
    }

    fn visit_visibility(&mut self, _: &syn::Visibility) {
        // `pub(crate)`, `pub(super)`: not an import.
    }

    fn visit_path(&mut self, path: &syn::Path) {
        let segments = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.found.push(segments);
        syn::visit::visit_path(self, path);
    }
}

fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, found: &mut Vec<Vec<String>>) {
    match tree {
        syn::UseTree::Path(path) => {
            prefix.push(path.ident.to_string());
            flatten_use(&path.tree, prefix, found);
            prefix.pop();
        }
        syn::UseTree::Group(group) => {
            for tree in &group.items {
                flatten_use(tree, prefix, found);
            }
        }
        syn::UseTree::Name(name) => found.push(with(prefix, name.ident.to_string())),
        syn::UseTree::Rename(rename) => found.push(with(prefix, rename.ident.to_string())),
        syn::UseTree::Glob(_) => found.push(prefix.clone()),
    }
}

fn with(prefix: &[String], last: String) -> Vec<String> {
    let mut path = prefix.to_vec();
    if last != "self" {
        path.push(last);
    }
    path
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|ident| ident == "test")
    })
}

/// The length in lines of every function and method outside unit tests.
#[derive(Default)]
struct FnLengths {
    found: Vec<(String, usize)>,
}

impl FnLengths {
    /// From the signature to the closing brace: docs and attributes do
    /// not count.
    fn record(&mut self, sig: &syn::Signature, block: &syn::Block) {
        let lines = block.span().end().line - sig.span().start().line + 1;
        self.found.push((sig.ident.to_string(), lines));
    }
}

impl Visit<'_> for FnLengths {
    fn visit_item_mod(&mut self, item: &syn::ItemMod) {
        if !is_cfg_test(&item.attrs) {
            syn::visit::visit_item_mod(self, item);
        }
    }

    fn visit_item_fn(&mut self, item: &syn::ItemFn) {
        if !is_cfg_test(&item.attrs) {
            self.record(&item.sig, &item.block);
            syn::visit::visit_item_fn(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &syn::ImplItemFn) {
        self.record(&item.sig, &item.block);
        syn::visit::visit_impl_item_fn(self, item);
    }

    fn visit_trait_item_fn(&mut self, item: &syn::TraitItemFn) {
        if let Some(block) = &item.default {
            self.record(&item.sig, block);
        }
        syn::visit::visit_trait_item_fn(self, item);
    }
}

/// The cycles of a graph: its strongly connected components of more than
/// one module, each sorted (Tarjan's algorithm).
fn cycles_of(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Search<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        cycles: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, node: &'a str) {
            let index = self.index.len();
            self.index.insert(node, index);
            self.low.insert(node, index);
            self.stack.push(node);
            for next in self.graph.get(node).into_iter().flatten() {
                if !self.index.contains_key(next.as_str()) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next.as_str()]);
                    self.low.insert(node, low);
                } else if self.stack.contains(&next.as_str()) {
                    let low = self.low[node].min(self.index[next.as_str()]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let start = self.stack.iter().rposition(|n| *n == node).unwrap_or(0);
                let mut component: Vec<String> =
                    self.stack.drain(start..).map(str::to_owned).collect();
                if component.len() > 1 {
                    component.sort();
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        cycles: Vec::new(),
    };
    for node in graph.keys() {
        if !search.index.contains_key(node.as_str()) {
            search.visit(node);
        }
    }
    search.cycles
}
