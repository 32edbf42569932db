//! The layering rule of `src/` (and of `crates/core/src/`, its lowest layer),
//! checked rather than claimed: imports go one
//! way, `cli → session → report → pipeline → scan → signatures → image →
//! finding, diagnostics` (docs/architecture.md draws it).
//!
//! The test reads the sources themselves: every `crate::…` path outside
//! comments and `#[cfg(test)]` modules is an edge from the file's top-level
//! module to the one it names. It fails when a module imports a module of a
//! higher layer, when two modules import each other (directly or around a
//! longer cycle), when anything imports `cli`, and when a top-level module is
//! not placed in a layer. Submodules may not import each other in a cycle
//! either, at any depth: `crate::…`, `super::…` and `super::super::…` paths
//! are resolved to the module they name, and an import between two modules
//! counts as one between their ancestors that are siblings (so
//! `scan::git::pack` naming `scan::content::X` is `scan::git → scan::content`).

#![allow(clippy::unwrap_used, reason = "a test should fail loudly on any unexpected error")]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level modules by layer, top first. A module may import modules of
/// its own layer (when that makes no cycle) and of lower layers, never of a
/// higher one.
const LAYERS: &[(&str, &[&str])] = &[
    // The command line, and the fuzzing harness that drives whole runs.
    ("cli", &["cli", "fuzzing"]),
    // A run: targets opened and scanned, findings filtered, live checks.
    ("session", &["session", "sources", "verify", "allowlist", "extract"]),
    // Everything printed.
    ("report", &["report", "timeline", "merge"]),
    // Layers walked, in parallel, with the layer cache.
    ("pipeline", &["pipeline", "cache"]),
    // Detectors.
    ("scan", &["scan"]),
    // Rules.
    ("signatures", &["signatures"]),
    // Images and the blob sources they are read from.
    ("image", &["registry", "docker", "image"]),
    // What every layer shares: the strata-core crate (crates/core).
    (
        "finding, diagnostics",
        &["finding", "diagnostics", "redact", "progress", "escape", "sniff", "clock"],
    ),
];

/// Leaf modules: helpers more than one layer needs, which name no other module of strata, so
/// any layer can use them without a cycle or an upward import (terminal escaping is not
/// `cli`'s, nor magic-byte sniffing `image`'s or `scan`'s), each with the layers that use it.
const LEAVES: &[(&str, &[&str])] =
    &[("escape", &["cli", "report", "diagnostics"]), ("sniff", &["image", "scan"])];

/// The workspace's layer crates, top first: directory, package name, and the top-level modules
/// its `src/lib.rs` declares. Each crate's modules keep the names they have in strata (which
/// re-exports them under the same paths), so `crate::image` means the same module in every
/// crate, and `strata_image::image` is an import of `image` too.
const CRATES: &[(&str, &str, &[&str])] = &[
    ("crates/scan", "strata-scan", &["scan"]),
    ("crates/rules", "strata-rules", &["signatures"]),
    ("crates/image", "strata-image", &["registry", "docker", "image"]),
    (
        "crates/core",
        "strata-core",
        &["finding", "diagnostics", "redact", "progress", "escape", "sniff", "clock"],
    ),
];

/// The source trees read, each a crate root: strata's `src/`, and each layer crate's `src/`.
fn roots() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut roots = vec![dir.join("src")];
    roots.extend(CRATES.iter().map(|(c, _, _)| dir.join(c).join("src")));
    roots
}

/// The prefixes of paths that name a top-level module: `crate::` and every layer crate's name.
fn module_prefixes() -> Vec<String> {
    let mut out = vec!["crate::".to_owned()];
    out.extend(CRATES.iter().map(|(_, name, _)| format!("{}::", name.replace('-', "_"))));
    out
}

/// The root a source file is under.
fn root_of(file: &Path) -> PathBuf {
    roots().into_iter().find(|r| file.starts_with(r)).unwrap()
}

/// Every `.rs` file of every root.
fn all_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for root in roots() {
        rust_files(&root, &mut files);
    }
    files.sort();
    files
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under its root: `scan/content.rs` →
/// `["scan", "content"]`, `scan/git/mod.rs` → `["scan", "git"]`.
fn module_path(file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(root_of(file)).unwrap().with_extension("");
    let mut parts: Vec<String> =
        rel.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// True when the file's module is declared only under `#[cfg(test)]` in its
/// parent (`#[cfg(test)] mod tests;` hooking a separate test file): like a
/// `#[cfg(test)]` item, it is not part of the compiled library.
fn is_test_only(file: &Path) -> bool {
    let path = module_path(file);
    let Some((name, parent)) = path.split_last() else { return false };
    if parent.is_empty() {
        return false;
    }
    let dir = root_of(file).join(parent.join("/"));
    let candidates = [dir.with_extension("rs"), dir.join("mod.rs")];
    let Some(text) = candidates.iter().find_map(|p| std::fs::read_to_string(p).ok()) else {
        return false;
    };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines.windows(2).any(|w| {
        let decl = w[1].rsplit_once("mod ").is_some_and(|(vis, rest)| {
            rest == format!("{name};") && matches!(vis.trim(), "" | "pub" | "pub(crate)")
        });
        w[0] == "#[cfg(test)]" && decl
    })
}

/// The source without comments, string literals' contents and
/// `#[cfg(test)]` items: what the compiled library imports.
fn code_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if text[i..].starts_with("//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if text[i..].starts_with("/*") {
            i = text[i + 2..].find("*/").map_or(b.len(), |e| i + 2 + e + 2);
        } else if text[i..].starts_with("r#\"") {
            i = text[i + 3..].find("\"#").map_or(b.len(), |e| i + 3 + e + 2);
            out.push_str("\"\"");
        } else if b[i] == b'"' && !text[..i].ends_with('\'') {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if text[i..].starts_with("#[cfg(test)]") {
            // Skip the attribute and the item it guards (to its closing brace
            // or semicolon).
            i += "#[cfg(test)]".len();
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            let ch = text[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(s.len());
    &s[..end]
}

/// The first segment of every path that starts with `prefix` (`crate::`,
/// `super::`), with `prefix{a::b, c}` groups expanded.
fn first_segments(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1usize;
            let mut item_start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 1 => {
                        item_start = true;
                        continue;
                    }
                    c if c.is_whitespace() => continue,
                    _ => {}
                }
                if depth == 0 {
                    break;
                }
                if item_start && depth == 1 {
                    let id = ident_at(&group[k..]);
                    if !id.is_empty() {
                        out.insert(id.to_owned());
                    }
                    item_start = false;
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id.to_owned());
            }
        }
    }
    out
}

/// The module paths of a use tree that starts at `s` (just after `crate::`
/// or `super::`): `a::b::{c, d::{e, f}}` → `a::b::c`, `a::b::d::e`,
/// `a::b::d::f`. A path stops at its first segment that is not a name
/// (`*`, `<`, `(`).
fn tree_paths(s: &str) -> Vec<Vec<String>> {
    let s = s.trim_start();
    if let Some(group) = s.strip_prefix('{') {
        let mut out = Vec::new();
        let (mut depth, mut start) = (0usize, 0usize);
        for (k, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    out.extend(tree_paths(&group[start..k]));
                    return out;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    out.extend(tree_paths(&group[start..k]));
                    start = k + 1;
                }
                _ => {}
            }
        }
        return out;
    }
    let id = ident_at(s);
    if id.is_empty() {
        return Vec::new();
    }
    let tails = s[id.len()..].trim_start().strip_prefix("::").map(tree_paths).unwrap_or_default();
    if tails.is_empty() {
        return vec![vec![id.to_owned()]];
    }
    tails
        .into_iter()
        .map(|mut p| {
            p.insert(0, id.to_owned());
            p
        })
        .collect()
}

/// Every module path named in `code` of the module at `me`, resolved from
/// `crate::` and (repeated) `super::` to a path from the crate root.
fn named_paths(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices("crate::").chain(code.match_indices("super::")) {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
            continue;
        }
        let mut rest = &code[at..];
        let mut base: Vec<String> = if let Some(r) = rest.strip_prefix("crate::") {
            rest = r;
            Vec::new()
        } else {
            me.to_vec()
        };
        while let Some(r) = rest.strip_prefix("super::") {
            rest = r;
            base.pop();
        }
        for tail in tree_paths(rest) {
            let mut path = base.clone();
            path.extend(tail);
            out.push(path);
        }
    }
    out
}

struct Sources {
    /// Top-level module → the top-level modules it names, each with a file that does.
    top: BTreeMap<String, BTreeMap<String, String>>,
    /// Module → sibling modules it (or one of its descendants) names, each
    /// with a file that does; modules written `a::b::c`.
    sub: BTreeMap<String, BTreeMap<String, String>>,
}

fn read_sources() -> Sources {
    let files = all_files();
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_path(f)).collect();
    let mut top: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut sub: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for file in &files {
        let path = module_path(file);
        let name = path[0].clone();
        if name == "lib" || name == "main" {
            continue;
        }
        if is_test_only(file) {
            continue;
        }
        let shown = file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().display().to_string();
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let entry = top.entry(name.clone()).or_default();
        for prefix in module_prefixes() {
            for target in first_segments(&code, &prefix) {
                if target != name {
                    entry.entry(target).or_insert_with(|| shown.clone());
                }
            }
        }
        for mut target in named_paths(&code, &path) {
            // The module the path names: its longest prefix that is one.
            while !target.is_empty() && !modules.contains(&target) {
                target.pop();
            }
            let common = path.iter().zip(&target).take_while(|(a, b)| a == b).count();
            // A module naming its own ancestor or descendant owns (or is owned by) it.
            if common == 0 || common == path.len() || common == target.len() {
                continue;
            }
            let from = path[..=common].join("::");
            let to = target[..=common].join("::");
            sub.entry(from).or_default().entry(to).or_insert_with(|| shown.clone());
        }
    }
    Sources { top, sub }
}

/// Strongly connected sets of more than one node (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut set = Vec::new();
            loop {
                let w = s.stack.pop().unwrap();
                s.on_stack.remove(w);
                set.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if set.len() > 1 {
                set.sort();
                s.out.push(set);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|(_, members)| members.contains(&module))
}

#[test]
fn every_top_level_module_has_a_layer() {
    let files = all_files();
    let unplaced: BTreeSet<String> = files
        .iter()
        .map(|f| module_path(f)[0].clone())
        .filter(|m| m != "lib" && m != "main" && layer_of(m).is_none())
        .collect();
    assert!(unplaced.is_empty(), "place these modules in a layer of LAYERS: {unplaced:?}");
}

#[test]
fn imports_never_go_up_a_layer() {
    let sources = read_sources();
    let mut upward = Vec::new();
    for (from, targets) in &sources.top {
        let Some(lf) = layer_of(from) else { continue };
        for (to, file) in targets {
            let Some(lt) = layer_of(to) else { continue };
            if lt < lf {
                upward.push(format!(
                    "{file}: `{from}` ({}) imports `{to}` ({})",
                    LAYERS[lf].0, LAYERS[lt].0
                ));
            }
        }
    }
    assert!(upward.is_empty(), "imports that go up a layer:\n{}", upward.join("\n"));
}

#[test]
fn nothing_imports_cli() {
    let sources = read_sources();
    let importers: Vec<&String> =
        sources.top.iter().filter(|(_, t)| t.contains_key("cli")).map(|(m, _)| m).collect();
    assert!(importers.is_empty(), "`cli` is imported by {importers:?}");
}

/// Each import cycle in `imports` (module → imported module → the file that
/// imports it), with the edges that close it; empty when there is none.
fn explain_cycles(imports: &BTreeMap<String, BTreeMap<String, String>>) -> Vec<String> {
    let graph: BTreeMap<String, BTreeSet<String>> =
        imports.iter().map(|(m, t)| (m.clone(), t.keys().cloned().collect())).collect();
    cycles(&graph)
        .iter()
        .map(|set| {
            let edges: Vec<String> = set
                .iter()
                .flat_map(|a| {
                    let targets = &imports[a];
                    set.iter().filter_map(move |b| {
                        targets.get(b).map(|file| format!("  {a} → {b} ({file})"))
                    })
                })
                .collect();
            format!("{set:?}\n{}", edges.join("\n"))
        })
        .collect()
}

#[test]
fn no_cycle_between_top_level_modules() {
    let explain = explain_cycles(&read_sources().top);
    assert!(explain.is_empty(), "import cycles:\n{}", explain.join("\n"));
}

#[test]
fn no_cycle_between_submodules() {
    let explain = explain_cycles(&read_sources().sub);
    assert!(explain.is_empty(), "import cycles between submodules:\n{}", explain.join("\n"));
}

#[test]
fn the_reader_sees_grouped_and_nested_paths() {
    let code = code_of(
        "use crate::{a::X, b, c::{d, e}};\n// crate::comment\nlet s = \"crate::string\";\n\
         fn f() { crate::g::h(); x::crate::no(); }\n#[cfg(test)]\nmod tests { use crate::t; }\n",
    );
    let got: Vec<String> = first_segments(&code, "crate::").into_iter().collect();
    assert_eq!(got, ["a", "b", "c", "g"]);
    let me: Vec<String> = ["scan", "git", "pack"].iter().map(|s| (*s).to_owned()).collect();
    let named: Vec<String> = named_paths(
        "use super::{Error, delta::{self, X}};\nuse super::super::content::Y;\nuse crate::image::*;",
        &me,
    )
    .iter()
    .map(|p| p.join("::"))
    .collect();
    assert_eq!(
        named,
        [
            "image",
            "scan::git::Error",
            "scan::git::delta::self",
            "scan::git::delta::X",
            "scan::content::Y"
        ]
    );
    let mut graph = BTreeMap::new();
    graph.insert("a".to_owned(), BTreeSet::from(["b".to_owned()]));
    graph.insert("b".to_owned(), BTreeSet::from(["c".to_owned()]));
    graph.insert("c".to_owned(), BTreeSet::from(["a".to_owned()]));
    graph.insert("d".to_owned(), BTreeSet::from(["a".to_owned()]));
    assert_eq!(cycles(&graph), [["a", "b", "c"]]);
}

/// The `strata-*` packages a manifest's `[dependencies]` table names.
fn layer_dependencies(manifest: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut out = BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if let Some((name, _)) = line.split_once('=')
            && in_deps
            && name.trim().starts_with("strata-")
        {
            out.insert(name.trim().to_owned());
        }
    }
    out
}

#[test]
fn layer_crates_depend_only_on_lower_layer_crates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wrong = Vec::new();
    for (i, (path, name, _)) in CRATES.iter().enumerate() {
        let lower: BTreeSet<&str> = CRATES[i + 1..].iter().map(|(_, n, _)| *n).collect();
        for dep in layer_dependencies(&dir.join(path).join("Cargo.toml")) {
            if !lower.contains(dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}, which is not a lower layer crate"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn each_layer_crate_holds_its_modules_and_only_them() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (path, name, modules) in CRATES {
        let src = dir.join(path).join("src");
        let mut found: BTreeSet<String> = BTreeSet::new();
        for entry in std::fs::read_dir(&src).unwrap() {
            let p = entry.unwrap().path();
            let stem = p.file_stem().unwrap().to_string_lossy().into_owned();
            if stem != "lib" && (p.is_dir() || p.extension().is_some_and(|e| e == "rs")) {
                found.insert(stem);
            }
        }
        let expected: BTreeSet<String> = modules.iter().map(|m| (*m).to_owned()).collect();
        assert_eq!(found, expected, "{name} ({path}/src) holds other modules than CRATES says");
        for m in *modules {
            // strata re-exports the crate's module; a second copy in src/ would shadow it.
            let copies = [dir.join("src").join(m), dir.join("src").join(format!("{m}.rs"))];
            assert!(!copies.iter().any(|c| c.exists()), "{m} is in {name} and in src/ too");
            assert!(layer_of(m).is_some(), "{name}'s module {m} is in no layer of LAYERS");
        }
    }
}

#[test]
fn leaf_modules_name_no_other_module_and_serve_their_users() {
    let sources = read_sources();
    for (leaf, users) in LEAVES {
        let named = sources.top.get(*leaf).unwrap_or_else(|| panic!("no module {leaf}"));
        assert!(named.is_empty(), "the leaf `{leaf}` names other modules: {named:?}");
        for user in *users {
            let uses = sources.top.get(*user).is_some_and(|t| t.contains_key(*leaf));
            assert!(
                uses,
                "`{user}` does not use the leaf `{leaf}` (it should not keep its own copy)"
            );
        }
    }
}
