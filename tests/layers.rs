//! The crate's layers: no import cycle among the modules of `src/` (issue 19).
//!
//! Reads every `src/**/*.rs`, takes each `crate::<module>` path outside
//! comments (including `use crate::{a, b::c}` groups) as an edge from the
//! file's top-level module to `<module>`, and fails on any cycle, spelled
//! out with the file and line of each edge. Run it alone with
//! `cargo test --test integration layers` (no emulator, no tools needed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One `crate::` reference: the importing module, the imported one, and where.
#[derive(Debug, Clone)]
struct Edge {
    from: String,
    to: String,
    at: String,
}

/// The top-level module a file of `src/` belongs to (`aws/ec2.rs` → `aws`);
/// `None` for the crate roots, which may name every module.
fn module_of(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The modules a line of code names through `crate::`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    let mut from = 0;
    while let Some(i) = code[from..].find("crate::") {
        let at = from + i;
        from = at + "crate::".len();
        let glued = at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if glued {
            continue; // `$crate::`, `my_crate::`
        }
        let rest = &code[from..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::{c, d}, e}`: the first segment of each top-level item.
            let mut depth = 0;
            let mut item_start = true;
            for (j, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && (c.is_ascii_alphabetic() || c == '_') => {
                        item_start = false;
                        out.push(ident(&group[j..]));
                    }
                    _ => {}
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.push(name);
            }
        }
    }
    out
}

/// The line up to its `//` comment (a `://` in a URL is not one).
fn without_comment(line: &str) -> &str {
    let mut from = 0;
    while let Some(i) = line[from..].find("//") {
        let at = from + i;
        if at == 0 || line.as_bytes()[at - 1] != b':' {
            return &line[..at];
        }
        from = at + 2;
    }
    line
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The edges among top-level modules in these (relative path, text) files.
fn edges(files: &[(PathBuf, String)]) -> Vec<Edge> {
    let mut out = Vec::new();
    for (path, text) in files {
        let Some(from) = module_of(path) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let code = without_comment(line);
            for to in crate_paths(code) {
                if to != from && to != "self" && to != "super" {
                    out.push(Edge {
                        from: from.clone(),
                        to,
                        at: format!("src/{}:{}", path.display(), n + 1),
                    });
                }
            }
        }
    }
    out
}

/// Every cycle's shortest loop, one per strongly connected group of
/// modules, as `a → b (src/a.rs:3) → a (src/b.rs:9)`.
fn cycles(edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<&str, BTreeMap<&str, &str>> = BTreeMap::new();
    for e in edges {
        graph
            .entry(&e.from)
            .or_default()
            .entry(&e.to)
            .or_insert(&e.at);
    }
    let reach = |start: &str| -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.to_string()];
        while let Some(m) = todo.pop() {
            for next in graph.get(m.as_str()).into_iter().flat_map(|t| t.keys()) {
                if seen.insert(next.to_string()) {
                    todo.push(next.to_string());
                }
            }
        }
        seen
    };
    let mut reported: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::new();
    for &start in graph.keys() {
        if reported.contains(start) || !reach(start).contains(start) {
            continue;
        }
        // Breadth-first from `start` back to itself: the shortest loop.
        let mut parent: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        let mut closing = None;
        'search: while let Some(m) = queue.pop_front() {
            for &next in graph.get(m).into_iter().flat_map(|t| t.keys()) {
                if next == start {
                    closing = Some(m);
                    break 'search;
                }
                if !parent.contains_key(next) {
                    parent.insert(next, m);
                    queue.push_back(next);
                }
            }
        }
        let mut path = vec![start];
        let mut m = closing.expect("start reaches itself");
        while m != start {
            path.push(m);
            m = parent[m];
        }
        path[1..].reverse();
        path.push(start);
        let mut text = start.to_string();
        for pair in path.windows(2) {
            text.push_str(&format!(" → {} ({})", pair[1], graph[pair[0]][pair[1]]));
        }
        // The whole group, so that one cycle is reported once.
        let group: BTreeSet<String> = reach(start)
            .into_iter()
            .filter(|m| reach(m).contains(start))
            .collect();
        text.push_str(&format!(
            "\n    (modules in this cycle: {})",
            group.iter().cloned().collect::<Vec<_>>().join(", ")
        ));
        reported.extend(group);
        out.push(text);
    }
    out
}

fn source_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            source_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push((path.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

#[test]
fn no_import_cycle_among_the_modules_of_src() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    source_files(&src, &src, &mut files);
    let edges = edges(&files);
    assert!(
        edges.iter().any(|e| e.from == "cmd" && e.to == "model"),
        "the scan found no edge cmd → model: the parser is broken"
    );
    let found = cycles(&edges);
    assert!(
        found.is_empty(),
        "import cycles among src/ modules (move the shared type down, e.g. into model/):\n  {}",
        found.join("\n  ")
    );
}

/// The canary: a cycle through a `use crate::{…}` group, with comments that
/// must not count, is found and spelled out.
#[test]
fn a_cycle_is_found_and_spelled_out() {
    let file = |p: &str, t: &str| (PathBuf::from(p), t.to_string());
    let files = [
        file("a.rs", "use crate::{b::X, d};\n// crate::z in a comment\n"),
        file("b/mod.rs", "use std::fmt;\nfn f() { crate::c::g() }\n"),
        file("c.rs", "use crate::a::Y;\n"),
        file("d.rs", "use crate::model::Z; // crate::a\n"),
        file("lib.rs", "pub mod a; use crate::a;\n"),
    ];
    let found = cycles(&edges(&files));
    assert_eq!(
        found,
        vec![
            "a → b (src/a.rs:1) → c (src/b/mod.rs:2) → a (src/c.rs:1)\n    (modules in this cycle: a, b, c)"
        ]
    );
    // Without the edge back, nothing is reported.
    let acyclic = &files[..1];
    assert!(cycles(&edges(acyclic)).is_empty());
}
