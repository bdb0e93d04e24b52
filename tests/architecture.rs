//! The "Architecture Invariant"s of ARCHITECTURE.md that can be checked mechanically.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `[dependencies]` of `crates/<name>/Cargo.toml`.
fn dependencies(name: &str) -> Vec<String> {
    let path = root().join("crates").join(name).join("Cargo.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = text.parse().unwrap();
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|t| t.keys().cloned().collect())
        .unwrap_or_default()
}

/// Architecture Invariant: dependencies point down. `core` depends on no sparselab crate; each
/// research crate depends only on `core` (optimisers also on regularizers, whose prox they
/// apply; loss terms also on metrics, whose CKA they differentiate); only the runner composes them. A new crate must be placed here.
#[test]
fn crate_dependencies_point_down() {
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("core", &[][..]),
        ("data", &["core"][..]),
        ("models", &["core"][..]),
        ("regularizers", &["core"][..]),
        ("optimizers", &["core", "regularizers"][..]),
        ("topology", &["core"][..]),
        ("losses", &["core", "metrics"][..]),
        ("metrics", &["core"][..]),
        (
            "runner",
            &[
                "core",
                "data",
                "models",
                "regularizers",
                "optimizers",
                "topology",
                "losses",
                "metrics",
            ][..],
        ),
        (
            "bench",
            &[
                "core",
                "data",
                "models",
                "regularizers",
                "optimizers",
                "topology",
                "runner",
            ][..],
        ),
    ]);
    let crates: Vec<String> = std::fs::read_dir(root().join("crates"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    for name in &crates {
        let Some(ok) = allowed.get(name.as_str()) else {
            panic!("crates/{name} is not placed in the dependency map of ARCHITECTURE.md");
        };
        for dep in dependencies(name) {
            if let Some(inner) = dep.strip_prefix("sparselab-") {
                assert!(
                    ok.contains(&inner),
                    "crates/{name} must not depend on {dep}"
                );
            }
        }
    }
}

/// Architecture Invariant: `core`'s external dependencies are burn, serde (+ serde_json,
/// serde_path_to_error), thiserror, rand (+ rand_chacha) and rayon (burn's CPU compute pool) —
/// the vocabulary every crate shares.
#[test]
fn core_depends_only_on_its_vocabulary() {
    let ok = [
        "burn",
        "serde",
        "serde_json",
        "serde_path_to_error",
        "thiserror",
        "rand",
        "rand_chacha",
        "rayon",
    ];
    for dep in dependencies("core") {
        assert!(ok.contains(&dep.as_str()), "core must not depend on {dep}");
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Architecture Invariant: methods never match parameter names. Regularizers, optimisers,
/// topologies and loss terms select what they act on from `ParamTable` roles and flags; no code
/// of theirs outside tests reads a parameter's `path` or `layer`. (Models name their own layers
/// once, to say which is the classifier; metrics use paths only as labels in reports.)
#[test]
fn methods_never_read_parameter_names() {
    for krate in ["regularizers", "optimizers", "topology", "losses"] {
        let mut files = Vec::new();
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            for (i, line) in code.lines().enumerate() {
                let l = line.trim_start();
                if l.starts_with("//") {
                    continue;
                }
                for field in [".path", ".layer"] {
                    let mut rest = l;
                    while let Some(at) = rest.find(field) {
                        let after = &rest[at + field.len()..];
                        let next = after.chars().next();
                        assert!(
                            next.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '('),
                            "{}:{}: reads a parameter name: {l}",
                            f.display(),
                            i + 1
                        );
                        rest = after;
                    }
                }
            }
        }
    }
}
