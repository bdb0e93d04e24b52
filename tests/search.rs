//! Target sparsity and tuning grids (`crates/runner/src/search.rs`) end to end on synthetic data,
//! and the errors of experiment files that ask for them, or declare claims.

mod common;

use common::Scratch;
use sparselab::runner::{ablate, plot};

/// Proximal SGD + ℓ1 asked for 50 % weight sparsity: the search finds a λ that reaches it in
/// seed 0, both seeds train there, the table says what was chosen, and a rerun (or a plot) reuses
/// every stored probe instead of training again.
#[test]
fn a_target_is_reached_and_its_probes_are_reused() {
    let spec = common::synthetic_spec("description = \"target\"\nseeds = 2\n", common::TARGET_ARM);
    let s = Scratch::with("search-target", "s", &spec);
    let first = ablate("s", &s.options()).expect("the target is reachable");
    let table = std::fs::read_to_string(first.dir.join("table.md")).unwrap();
    assert!(
        table.contains("How open hyperparameters were chosen"),
        "{table}"
    );
    assert!(table.contains("regularizer.lambda"), "{table}");
    assert!(
        table.contains("Compute: the 2 runs above took"),
        "the table says what its runs cost: {table}"
    );
    let runs = std::fs::read_to_string(first.dir.join("runs.csv")).unwrap();
    let sparsity: Vec<f64> = runs
        .lines()
        .skip(1)
        .map(|l| {
            let header: Vec<&str> = runs.lines().next().unwrap().split(',').collect();
            let col = header.iter().position(|h| *h == "weight_sparsity").unwrap();
            l.split(',').nth(col).unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(sparsity.len(), 2, "both seeds ran at the choice");
    assert!(
        (sparsity[0] - 0.5).abs() <= 0.05,
        "seed 0 reached {}",
        sparsity[0]
    );
    assert!(first.trained >= 2, "probes and seed 1 trained");
    let again = ablate("s", &s.options()).expect("a rerun");
    assert_eq!(again.trained, 0, "a rerun replays the stored probes");
    plot("s", &s.options()).expect("plotting finds the choice from stored probes");
    let replayed = std::fs::read_to_string(first.dir.join("table.md")).unwrap();
    assert_eq!(
        replayed, table,
        "a replay from the store takes the search's path and renders the same table"
    );
}

/// A tuning grid: seed 0 trains at every value, the value of best validation accuracy is chosen
/// and every seed runs there.
#[test]
fn a_tuning_grid_is_chosen_on_validation() {
    let spec = common::synthetic_spec(
        "description = \"tune\"\nseeds = 2\n",
        r#"[arms.sgd]
optimizer = { name = "sgd" }
tune = { "train.lr" = [0.0001, 0.05] }
"#,
    );
    let s = Scratch::with("search-tune", "s", &spec);
    let outcome = ablate("s", &s.options()).expect("tunes");
    let table = std::fs::read_to_string(outcome.dir.join("table.md")).unwrap();
    // The tiny learning rate barely trains: validation picks 0.05.
    assert!(table.contains("train.lr = 0.05"), "{table}");
    assert_eq!(outcome.trained, 3, "two grid values and one more seed");
}

/// Experiment files that ask for what cannot be done get one error naming the file and key.
#[test]
fn search_and_claim_errors_name_file_and_key() {
    let cases = [
        (
            "no-strength",
            "[arms.dense]\noptimizer = { name = \"sgd\" }\ntarget = { value = 0.5 }\n",
            vec!["arms.dense.target", "no strength to search"],
        ),
        (
            "unknown-tune-key",
            "[arms.dense]\noptimizer = { name = \"sgd\" }\ntune = { \"optimizer.nope\" = [1] }\n",
            vec!["arms.dense.tune.optimizer.nope", "nope"],
        ),
        (
            "claim-unknown-arm",
            "[arms.dense]\noptimizer = { name = \"sgd\" }\n\n[[claims]]\nid = \"X1\"\nclaim = \"c\"\npaper = \"p\"\npairs = [{ arms = [\"dense\", \"gmp\"] }]\n",
            vec!["claims[0].arms", "unknown arm `gmp`", "allowed: dense"],
        ),
        (
            "trend-domain-too-narrow",
            "[arms.sgd]\noptimizer = { name = \"sgd\" }\nsweep = { \"train.lr\" = [0.01, 0.1] }\n\n[[claims]]\nid = \"X2\"\nclaim = \"c\"\npaper = \"p\"\ntrends = [{ arm = \"sgd\", over = \"train.lr\", within = [0.05, 1.0] }]\n",
            vec!["claims[0].trends[0].within", "holds 1 sweep point(s)"],
        ),
    ];
    for (tag, arms, wanted) in cases {
        let spec = common::synthetic_spec("description = \"errors\"\n", arms);
        let s = Scratch::with(&format!("search-{}", tag), "s", &spec);
        let err = ablate("s", &s.options()).expect_err(tag).to_string();
        assert!(err.contains("s.toml"), "{tag}: {err}");
        for w in wanted {
            assert!(err.contains(w), "{tag}: `{w}` not in {err}");
        }
    }
    // An unreachable target says the closest it reached.
    let spec = common::synthetic_spec(
        "description = \"unreachable\"\nseeds = 1\n",
        r#"[arms.l1]
optimizer = { name = "proxsgd", rho = 1.0 }
regularizer = { name = "l1" }
target = { value = 0.999, tolerance = 0.0001, range = [1e-6, 1e-5], probes = 2 }
"#,
    );
    let s = Scratch::with("search-unreachable", "s", &spec);
    let err = ablate("s", &s.options())
        .expect_err("unreachable")
        .to_string();
    assert!(
        err.contains("s.toml: arms.l1.target") && err.contains("closest reached"),
        "{err}"
    );
}
