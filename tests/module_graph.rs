//! The shape of `src/`: which top-level module uses which (from `crate::…` paths in the source,
//! tests included), with no cycle between them; the read-side tools never reach the archiver's
//! run, command line or workers; encoders depend on their parent, never it on them; and no
//! source file grows past a size a reader can hold in mind.
//!
//! `cargo test --test module_graph -- --nocapture` prints the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lines a source file may have.
const MAX_LINES: usize = 800;

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments, so that a doc link or a remark names no dependency.
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every module path `crate::a::b…` the code names, as its segments, including those inside
/// `crate::{a, b::c}` groups (one level deep, which is all the source uses).
fn used_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                paths.push(segments(item.trim()));
            }
        } else {
            paths.push(segments(rest));
        }
    }
    paths.retain(|p| !p.is_empty());
    paths
}

fn segments(s: &str) -> Vec<String> {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(s.len());
    s[..end]
        .split("::")
        .take_while(|seg| seg.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .map(str::to_string)
        .collect()
}

/// `src/a/b.rs` → `[a, b]`; `src/a.rs` → `[a]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    rel.iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect()
}

struct Crate {
    /// Per file, its module path and the paths it uses.
    files: Vec<(PathBuf, Vec<String>, Vec<Vec<String>>)>,
}

fn read_crate() -> Crate {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    Crate {
        files: files
            .into_iter()
            .map(|f| {
                let text = std::fs::read_to_string(&f).unwrap();
                let module = module_of(&src, &f);
                let used = used_paths(&code(&text));
                (f, module, used)
            })
            .collect(),
    }
}

fn top_level_graph(krate: &Crate) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (_, module, used) in &krate.files {
        let from = &module[0];
        if from == "lib" || from == "main" {
            continue;
        }
        let deps = graph.entry(from.clone()).or_default();
        for path in used {
            if &path[0] != from {
                deps.insert(path[0].clone());
            }
        }
    }
    graph
}

/// The strongly connected components with more than one module (Tarjan's algorithm).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        found: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let i = s.index.len();
        s.index.insert(v, i);
        s.low.insert(v, i);
        s.stack.push(v);
        for w in s.graph.get(v).into_iter().flatten() {
            if !s.index.contains_key(w.as_str()) {
                visit(s, w);
                let lw = s.low[w.as_str()];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(lw);
            } else if s.stack.contains(&w.as_str()) {
                let iw = s.index[w.as_str()];
                let lv = s.low.get_mut(v).unwrap();
                *lv = (*lv).min(iw);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.found.push(component);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        found: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.found
}

#[test]
fn no_cycle_between_top_level_modules() {
    let krate = read_crate();
    let graph = top_level_graph(&krate);
    for (module, deps) in &graph {
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        println!("{module:>10} -> {}", deps.join(" "));
    }
    assert!(graph.len() > 8, "the source was read: {graph:?}");
    assert!(
        graph["run"].contains("partition"),
        "the parser sees dependencies"
    );
    assert_eq!(cycles(&graph), Vec::<Vec<String>>::new(), "module cycles");
}

#[test]
fn the_cycle_finder_finds_cycles() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", &["b"][..]),
        ("b", &["c"][..]),
        ("c", &["a"][..]),
        ("d", &["a"][..]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
    .collect();
    assert_eq!(cycles(&graph), [["a", "b", "c"]]);
}

#[test]
fn read_side_tools_never_reach_the_archiver() {
    let krate = read_crate();
    for (file, module, used) in &krate.files {
        let tool = module.len() >= 2 && module[0] == "tools";
        if !(tool && (module[1] == "audit" || module[1] == "inspect")) {
            continue;
        }
        for path in used {
            assert!(
                !["run", "cli", "partition", "observe"].contains(&path[0].as_str()),
                "{} uses crate::{}",
                file.display(),
                path.join("::")
            );
        }
    }
}

#[test]
fn encoders_depend_on_their_parent_not_it_on_them() {
    let krate = read_crate();
    let (file, _, used) = krate
        .files
        .iter()
        .find(|(_, module, _)| module == &["encode"])
        .expect("src/encode.rs");
    let text = code(&std::fs::read_to_string(file).unwrap());
    for line in text
        .lines()
        .filter(|l| !l.trim_start().starts_with("pub mod "))
    {
        // A child named relatively (`avro::…`, `self::parquet::…`); `::parquet::…` is the crate.
        for child in ["avro::", "parquet::", "format::"] {
            for (at, _) in line.match_indices(child) {
                let before = line[..at].chars().next_back();
                let relative = line[..at].ends_with("self::")
                    || !before.is_some_and(|c| c == ':' || c.is_alphanumeric() || c == '_');
                assert!(!relative, "src/encode.rs: {line}");
            }
        }
    }
    for path in used {
        assert!(
            path.len() < 2 || path[0] != "encode",
            "src/encode.rs uses crate::{}",
            path.join("::")
        );
    }
}

#[test]
fn no_source_file_is_too_long() {
    let krate = read_crate();
    let long: Vec<String> = krate
        .files
        .iter()
        .filter_map(|(file, _, _)| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > MAX_LINES).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines: {long:?}");
}
