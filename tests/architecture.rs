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

/// The research crates: each depends on `core` and on what its line of [`crate_dependencies_point_down`] adds.
const RESEARCH: [&str; 8] = [
    "data",
    "models",
    "regularizers",
    "optimizers",
    "topology",
    "losses",
    "metrics",
    "inference",
];

/// Architecture Invariant: dependencies point down. `core` depends on no sparselab crate; each
/// research crate depends only on `core` (optimisers also on regularizers, whose prox they
/// apply; loss terms also on metrics, whose CKA they differentiate); only the runner composes
/// them, and only the bench builds on the runner. A new crate must be placed here.
#[test]
fn crate_dependencies_point_down() {
    let research: Vec<&str> = std::iter::once("core").chain(RESEARCH).collect();
    let bench: Vec<&str> = research.iter().copied().chain(["runner"]).collect();
    let allowed: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("core", &[][..]),
        ("data", &["core"][..]),
        ("models", &["core"][..]),
        ("regularizers", &["core"][..]),
        ("optimizers", &["core", "regularizers"][..]),
        ("topology", &["core"][..]),
        ("losses", &["core", "metrics"][..]),
        ("metrics", &["core"][..]),
        ("inference", &["core"][..]),
        ("runner", &research[..]),
        ("bench", &bench[..]),
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

/// The non-test code of a Rust file (everything before its `#[cfg(test)]` module).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    text.split("#[cfg(test)]").next().unwrap_or("").to_string()
}

/// Architecture Invariant: only `data` (datasets), `runner` (the results store, figures),
/// `bench` and `xtask` touch the filesystem. Methods, models, metrics and the shared
/// vocabulary compute; they never read or write files.
#[test]
fn only_data_runner_and_bench_touch_the_filesystem() {
    for krate in std::iter::once("core")
        .chain(RESEARCH)
        .filter(|c| *c != "data")
    {
        let mut files = Vec::new();
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
        for f in files {
            let text = code(&f);
            for io in ["std::fs", "fs::", "File::", "OpenOptions", "include_bytes!"] {
                assert!(
                    !text.contains(io),
                    "{} uses `{io}`: only data, runner and bench touch files",
                    f.display()
                );
            }
        }
    }
}

/// The files of the methods a crate registers (`Entry::of::<... crate::<file>::...>` lines of
/// its `registry.rs`).
fn method_files(krate: &str) -> Vec<PathBuf> {
    let src = root().join("crates").join(krate).join("src");
    let registry = std::fs::read_to_string(src.join("registry.rs")).unwrap();
    let mut files: Vec<PathBuf> = registry
        .lines()
        .filter(|l| l.contains("Entry::of::<"))
        .filter_map(|l| l.split("crate::").nth(1)?.split("::").next())
        .map(|module| src.join(format!("{module}.rs")))
        .collect();
    files.sort();
    files.dedup();
    assert!(
        !files.is_empty(),
        "{krate} registers methods in registry.rs"
    );
    files
}

/// Architecture Invariant: a method is written against the method-facing API: `Lane` and
/// `elementwise!` for its updates, the prox machinery and the host passes' functions for its
/// proxes. It never writes an in-place pass itself (`core::speed`'s primitives: in-place
/// passes, per-unit folds, vectorised powers, vector-width dispatch); a method with a
/// hand-written in-place form keeps it in a file of its own (`lpsgd/fused.rs`). So a new method
/// is one file and one registration line, and its author never opens `core/src/speed`,
/// `regularizers/src/host` or `models/src/flex_kernels`.
#[test]
fn method_files_never_call_the_speed_layer() {
    let speed = [
        "sparselab_core::fused",
        "sparselab_core::wide",
        "sparselab_core::units",
        "sparselab_core::powf",
        "sparselab_core::speed",
        "update_in_place",
        "map_in_place",
        "widest!",
    ];
    for krate in ["optimizers", "regularizers", "topology", "losses"] {
        for f in method_files(krate) {
            let text = code(&f);
            for s in speed {
                assert!(
                    !text.contains(s),
                    "{}: a method file calls the speed layer (`{s}`); use `elementwise!` or move the in-place form to a file of its own",
                    f.display()
                );
            }
        }
    }
}

/// Architecture Invariant: every registry lives in a `registry.rs` of its own, apart from its
/// trait, so no method crate has an import loop (a method file imports the trait; the registry
/// imports the methods).
#[test]
fn registries_live_apart_from_their_traits() {
    for krate in ["optimizers", "regularizers", "topology", "losses", "models"] {
        let mut files = Vec::new();
        rust_files(&root().join("crates").join(krate).join("src"), &mut files);
        for f in files {
            let defines_registry =
                code(&f).contains("fn registry()") || code(&f).contains("models! {");
            assert!(
                !defines_registry || f.ends_with("registry.rs"),
                "{}: the registry belongs in registry.rs",
                f.display()
            );
        }
    }
}
