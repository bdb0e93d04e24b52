//! The committed report: the README's results block and `results/REPORT.md` are exactly what
//! `cargo xtask report` renders from the committed runs, so a number or verdict edited by hand,
//! or runs re-trained without re-rendering, fail here.

mod common;

use sparselab::runner::report::{self, readme};
use std::path::PathBuf;

#[test]
fn the_committed_report_is_what_the_committed_runs_give() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let built = report::build(&root.join("experiments"), &root.join("results"))
        .expect("every committed ablation loads");
    let text = std::fs::read_to_string(root.join("README.md")).expect("README.md");
    let block = readme::block(&text).expect("README.md has the report's markers");
    assert_eq!(
        block,
        readme::summary(&built),
        "README.md's results block is not what the committed runs give: run `cargo xtask report`"
    );
    let committed = std::fs::read_to_string(root.join("results/REPORT.md")).expect("REPORT.md");
    assert_eq!(
        committed,
        report::markdown(&built),
        "results/REPORT.md is not what the committed runs give: run `cargo xtask report`"
    );
    // Every claim's evidence has its own heading, so each row of the claims table links to it.
    let ids: std::collections::BTreeSet<&str> =
        built.claims.iter().map(|e| e.claim.id.as_str()).collect();
    let headings: Vec<&str> = (committed.lines())
        .filter(|l| {
            l.strip_prefix("### ")
                .and_then(|h| h.split(' ').next())
                .is_some_and(|id| ids.contains(id))
        })
        .collect();
    let distinct: std::collections::BTreeSet<&str> = headings.iter().copied().collect();
    assert_eq!(headings.len(), built.claims.len(), "one heading per claim");
    assert_eq!(distinct.len(), headings.len(), "two claims share a heading");
    // Every claim of SPEC §5 is there, tested or saying why not.
    let ids: Vec<&str> = built.claims.iter().map(|e| e.claim.id.as_str()).collect();
    for id in [
        "S1", "S2", "S3", "S4", "S5", "G1", "G2", "G3", "G5", "L1", "L2", "L3", "L4", "K1", "K2",
        "K3", "K4", "K5", "R1", "R2", "R3", "R4",
    ] {
        assert!(
            ids.contains(&id),
            "claim {id} of SPEC §5 is declared nowhere"
        );
    }
}

/// An ablation not trained yet (new, or retrained at a new budget after its old runs were
/// removed) still lists its claims: untested, saying which command trains them, with no link to
/// a table that does not exist.
#[test]
fn claims_of_an_untrained_ablation_are_untested_and_say_what_trains_them() {
    let spec = common::synthetic_spec(
        "description = \"new\"\nseeds = 2\n",
        r#"[arms.a]
optimizer = { name = "sgd" }
[arms.b]
optimizer = { name = "sgd" }
train = { lr = 0.01 }

[[claims]]
id = "B1"
claim = "a beats b"
paper = "nobody"
pairs = [{ arms = ["a", "b"] }]
"#,
    );
    let s = common::Scratch::with("report-untrained", "fresh", &spec);
    let built = report::build(&s.0.join("experiments"), &s.0.join("results")).expect("builds");
    let claim = built
        .claims
        .iter()
        .find(|e| e.claim.id == "B1")
        .expect("the claim is listed");
    assert_eq!(claim.ablation.as_deref(), Some("fresh"));
    assert!(
        claim
            .verdict
            .label()
            .contains("`cargo xtask ablate fresh` trains them"),
        "{}",
        claim.verdict.label()
    );
    let table = report::claims_table(&built, "");
    assert!(!table.contains("fresh/table.md"), "{table}");
}
