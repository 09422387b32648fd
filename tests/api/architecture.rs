//! The layering of docs/architecture.md ("Where things live"), checked on the source: no module imports one that
//! imports it back, the domain imports nothing outside itself, the store and the background jobs
//! never import HTTP handlers. A module naming its own ancestors (a child using its parent's
//! private helpers) is one module's inside, not a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Module path (`store::incidents`) → the source of that module, without its tests.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, root, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(root).expect("below src");
            let mut name = relative
                .with_extension("")
                .to_string_lossy()
                .replace('/', "::");
            if let Some(parent) = name.strip_suffix("::mod") {
                name = parent.to_owned();
            }
            if name == "lib" || name == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("source is readable");
            let code = text
                .split("#[cfg(test)]")
                .next()
                .unwrap_or_default()
                .to_owned();
            out.insert(name, code);
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The modules each module names (`crate::…` and `super::…` paths), ancestors left out.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let path_after = |text: &str, prefix: &str| -> Vec<String> {
        text.match_indices(prefix)
            .map(|(at, _)| {
                text[at + prefix.len()..]
                    .chars()
                    .take_while(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':'
                    })
                    .collect::<String>()
                    .trim_end_matches(':')
                    .to_owned()
            })
            .collect()
    };
    let mut graph = BTreeMap::new();
    for (name, code) in modules {
        let parent = name.rsplit_once("::").map(|(p, _)| p).unwrap_or("");
        let mut named: Vec<String> = path_after(code, "crate::");
        named.extend(path_after(code, "super::").into_iter().map(|p| {
            if parent.is_empty() {
                p
            } else {
                format!("{parent}::{p}")
            }
        }));
        let mut targets = BTreeSet::new();
        for path in named {
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            // The longest prefix that is a module of this crate.
            let target = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|candidate| modules.contains_key(candidate));
            if let Some(target) = target {
                let ancestor = name.starts_with(&format!("{target}::"));
                if target != *name && !ancestor {
                    targets.insert(target);
                }
            }
        }
        graph.insert(name.clone(), targets);
    }
    graph
}

fn reaches(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut stack = vec![from.to_owned()];
    while let Some(module) = stack.pop() {
        if module == to {
            return true;
        }
        if seen.insert(module.clone()) {
            stack.extend(graph.get(&module).into_iter().flatten().cloned());
        }
    }
    false
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = imports(&modules());
    assert!(graph.contains_key("domain::workflow") && graph.contains_key("store::incident_writes"));
    let mut circles = Vec::new();
    for (module, targets) in &graph {
        for target in targets {
            if reaches(&graph, target, module) {
                circles.push(format!("{module} -> {target} -> … -> {module}"));
            }
        }
    }
    assert!(circles.is_empty(), "import circles: {circles:#?}");
}

#[test]
fn each_layer_imports_only_the_layers_below_it() {
    let graph = imports(&modules());
    let top = |module: &str| module.split("::").next().unwrap_or_default().to_owned();
    let forbidden: &[(&str, &[&str])] = &[
        (
            "domain",
            &[
                "api",
                "store",
                "state",
                "jobs",
                "intake",
                "error",
                "config",
                "startup",
                "openapi",
                "auth",
                "telemetry",
                "cli",
                "mail",
            ],
        ),
        (
            "store",
            &[
                "api",
                "state",
                "jobs",
                "intake",
                "startup",
                "openapi",
                "telemetry",
                "cli",
                "mail",
            ],
        ),
        ("jobs", &["api", "startup", "openapi"]),
        (
            "mail",
            &["api", "state", "jobs", "startup", "openapi", "cli"],
        ),
        ("intake", &["api", "state", "jobs", "startup", "openapi"]),
        ("api", &["openapi", "startup", "jobs", "cli"]),
    ];
    let mut upward = Vec::new();
    for (module, targets) in &graph {
        for (layer, above) in forbidden {
            if top(module) != *layer {
                continue;
            }
            for target in targets {
                if above.contains(&top(target).as_str()) {
                    upward.push(format!("{module} -> {target}"));
                }
            }
        }
    }
    assert!(upward.is_empty(), "imports of a higher layer: {upward:#?}");
}

/// Only the store talks to the database: no module outside `store` names Diesel.
#[test]
fn only_the_store_uses_diesel() {
    let outside: Vec<String> = modules()
        .into_iter()
        .filter(|(name, code)| !name.starts_with("store") && code.contains("diesel"))
        .map(|(name, _)| name)
        .collect();
    assert!(outside.is_empty(), "Diesel outside the store: {outside:?}");
}
