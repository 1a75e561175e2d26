//! The module layout of `host/src` keeps its shape: backends below sources
//! and sinks, sources and sinks apart, and no import circle between modules.
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Modules below sources, sinks and the topology: they import none of those.
const GROUND: [&str; 8] = ["mysql", "kafka", "formats", "record", "secret", "redact", "rejected", "positions"];
const ABOVE: [&str; 5] = ["sources", "sinks", "topology", "pipeline", "cli"];

/// Each module of `host/src` (`sources/binlog`, `mysql/catalog`, …) and the
/// modules its `use crate::…` and `crate::…` paths name.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = sluice_testkit::repo_root().join("host/src");
    let mut graph = BTreeMap::new();
    visit(&src, &src, &mut graph);
    graph
}

fn visit(src: &Path, dir: &Path, graph: &mut BTreeMap<String, BTreeSet<String>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(src, &path, graph);
            continue;
        }
        let relative = path.strip_prefix(src).unwrap().with_extension("");
        let module = relative.to_string_lossy().trim_end_matches("/mod").to_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // Tests may reach anywhere.
        let code = text.split("#[cfg(test)]").next().unwrap();
        let is_mod = path.file_name().is_some_and(|n| n == "mod.rs");
        // `super::` from `a/b.rs` is `a`; from `a/b/mod.rs` it is `a` too.
        let parent = match module.rsplit_once('/') {
            Some((parent, _)) => parent.to_owned(),
            None => String::new(),
        };
        let mut named = BTreeSet::new();
        for (prefix, base) in [
            ("crate::", String::new()),
            ("super::", parent),
            ("self::", if is_mod { module.clone() } else { String::new() }),
        ] {
            if prefix == "self::" && !is_mod {
                continue;
            }
            for (at, _) in code.match_indices(prefix) {
                // `crate::` inside `super::`/`self::` is not one of them, nor a word ending in them.
                if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                let path: String = code[at + prefix.len()..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut target = base.clone();
                for part in path.split("::").filter(|p| !p.is_empty()) {
                    let deeper = if target.is_empty() {
                        part.to_owned()
                    } else {
                        format!("{target}/{part}")
                    };
                    if src.join(format!("{deeper}.rs")).exists() || src.join(&deeper).is_dir() {
                        target = deeper;
                    } else {
                        break;
                    }
                }
                if !target.is_empty() && target != module {
                    named.insert(target);
                }
            }
        }
        graph.insert(module, named);
    }
}

fn top(module: &str) -> &str {
    module.split('/').next().unwrap()
}

#[test]
fn backends_sit_below_sources_and_sinks_which_stay_apart() {
    let graph = imports();
    assert!(graph.len() > 40, "read {} modules: is the walk right?", graph.len());
    let mut wrong = Vec::new();
    for (module, named) in &graph {
        for target in named {
            let (from, to) = (top(module), top(target));
            let sideways = (from == "sources" && to == "sinks") || (from == "sinks" && to == "sources");
            let upwards = GROUND.contains(&from) && ABOVE.contains(&to);
            if sideways || upwards {
                wrong.push(format!("{module} -> {target}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layout:\n{}", wrong.join("\n"));
}

#[test]
fn no_module_imports_its_way_back_to_itself() {
    let graph = imports();
    // Between a module and its own parent's `mod.rs` imports are structure, not circles.
    let edges = |m: &str| -> Vec<String> {
        graph
            .get(m)
            .into_iter()
            .flatten()
            .filter(|t| !m.starts_with(&format!("{t}/")) && !t.starts_with(&format!("{m}/")))
            .filter(|t| graph.contains_key(*t))
            .cloned()
            .collect()
    };
    for start in graph.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for next in edges(&at) {
                if next == *start {
                    panic!("import circle: {} -> {start}", path.join(" -> "));
                }
                if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next, longer));
                }
            }
        }
    }
}
