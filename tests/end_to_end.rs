//! End to end: a small ablation on synthetic data through spec → training → store → tables and
//! figures, then resume, divergence and experiment-file errors.

mod common;

use common::{Scratch, run_dirs, stored_values};
use sparselab::runner::{Options, ablate, plot};
use std::collections::BTreeSet;
use std::path::Path;

/// The smoke ablation: two seeds of dense SGD, GMP (two sparsities) and a static mask.
fn spec() -> String {
    common::synthetic_spec(
        r#"description = "synthetic smoke ablation"
seeds = 2
"#,
        &format!(
            "{}{}",
            common::SMOKE_ARMS,
            r#"
[[figures]]
kind = "final"
file = "acc_vs_compression"
x = "compression"
y = "test_accuracy"
log_x = true
reference = ["dense"]

[[figures]]
kind = "epochs"
file = "sparsity"
y = "weight_sparsity"
"#
        ),
    )
}

#[test]
fn synthetic_ablation_end_to_end_and_resume() {
    let s = Scratch::new("e2e-resume");
    s.experiment("smoke", &spec());
    let opts = s.options();

    let first = ablate("smoke", &opts).unwrap();
    // dense + 2 gmp sparsities + static = 4 configurations × 2 seeds
    assert_eq!((first.trained, first.skipped), (8, 0));
    let dir = s.0.join("results/smoke");
    let runs = run_dirs(&dir);
    assert_eq!(runs.len(), 8);
    for r in &runs {
        for f in ["config.json", "env.json", "epochs.json", "final.json"] {
            assert!(r.join(f).is_file(), "{} lacks {f}", r.display());
        }
        let epochs: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(r.join("epochs.json")).unwrap()).unwrap();
        assert_eq!(epochs.as_array().unwrap().len(), 2);
    }
    for f in [
        "table.md",
        "runs.csv",
        "epochs.csv",
        "acc_vs_compression.svg",
        "acc_vs_compression.png",
        "sparsity.svg",
        "sparsity.png",
    ] {
        let p = dir.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 100,
            "{f}"
        );
    }
    let png = std::fs::read(dir.join("acc_vs_compression.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(table.contains("| gmp (sparsity=0.9) | 2 |"), "{table}");
    let csv = std::fs::read_to_string(dir.join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9);

    // The GMP run at 0.9 ends at exactly 90% weight sparsity (the mask survives training).
    let final_sparsity = |sparsity: &str| -> Vec<f64> {
        runs.iter()
            .filter_map(|r| {
                let config = std::fs::read_to_string(r.join("config.json")).unwrap();
                let fin: serde_json::Value =
                    serde_json::from_str(&std::fs::read_to_string(r.join("final.json")).unwrap())
                        .unwrap();
                config
                    .contains(&format!("\"topology.sparsity\": {sparsity}"))
                    .then(|| fin["last"]["weight_sparsity"].as_f64().unwrap())
            })
            .collect()
    };
    let s90 = final_sparsity("0.9");
    assert_eq!(s90.len(), 2);
    assert!(s90.iter().all(|s| (s - 0.9).abs() < 1e-3), "{s90:?}");

    // Everything finished: a second invocation trains nothing.
    let again = ablate("smoke", &opts).unwrap();
    assert_eq!((again.trained, again.skipped), (0, 8));

    // Interrupt one run (its final.json never got written): only it is trained again.
    let victim = &runs[3];
    std::fs::remove_file(victim.join("final.json")).unwrap();
    let resumed = ablate("smoke", &opts).unwrap();
    assert_eq!((resumed.trained, resumed.skipped), (1, 7));
    assert!(victim.join("final.json").is_file());

    // The table's wall time counts the two invocations that trained (the one that trained
    // nothing left no session).
    let sessions = sparselab::runner::wall_time::sessions(&dir);
    assert_eq!(
        sessions.iter().map(|s| s.trained).collect::<BTreeSet<_>>(),
        BTreeSet::from([8, 1])
    );
    let table = std::fs::read_to_string(dir.join("table.md")).unwrap();
    assert!(
        table.contains("Wall time: ") && table.contains("(2 training sessions;"),
        "{table}"
    );

    // Plot re-renders from stored results without training.
    std::fs::remove_file(dir.join("table.md")).unwrap();
    let plotted = plot("smoke", &opts).unwrap();
    assert_eq!(plotted.trained, 0);
    assert!(dir.join("table.md").is_file());

    // A damaged record stops plot and ablate with its path and what to do, and is never
    // silently trained again.
    let record = victim.join("final.json");
    let text = std::fs::read_to_string(&record).unwrap();
    std::fs::write(&record, &text[..text.len() / 2]).unwrap();
    for err in [
        plot("smoke", &opts).unwrap_err(),
        ablate("smoke", &opts).unwrap_err(),
    ] {
        let err = format!("{err:#}");
        assert!(err.contains("damaged"), "{err}");
        assert!(
            err.contains(&format!("delete {}", victim.display())),
            "{err}"
        );
        assert!(err.contains("final.json"), "{err}");
    }
    assert_eq!(
        std::fs::read_to_string(&record).unwrap(),
        text[..text.len() / 2]
    );
}

#[test]
fn diverging_runs_are_recorded_and_the_ablation_goes_on() {
    let s = Scratch::new("e2e-diverge");
    let spec = spec()
        .replace("lr = 0.05", "lr = 0.05\nepochs = 1")
        .replace("epochs = 2\n", "")
        + r#"
[arms.exploding]
optimizer = { name = "sgd", momentum = 0.0 }
train = { lr = 1e30 }
"#;
    s.experiment("diverge", &spec);
    let out = ablate("diverge", &s.options()).unwrap();
    assert_eq!(out.trained, 10);
    let table = std::fs::read_to_string(s.0.join("results/diverge/table.md")).unwrap();
    assert!(table.contains("| exploding | 0 (2 diverged) |"), "{table}");
    let csv = std::fs::read_to_string(s.0.join("results/diverge/runs.csv")).unwrap();
    assert_eq!(csv.matches(",diverged,").count(), 2, "{csv}");
    // Runs that diverged before finishing an epoch have no epochs.json; re-rendering loads them.
    plot("diverge", &s.options()).unwrap();
}

#[test]
fn experiment_errors_name_file_key_and_allowed_values() {
    let s = Scratch::new("e2e-errors");
    let cases = [
        (
            "seeds-mistyped",
            spec().replace("seeds = 2", "seeds = 2000000"),
            vec!["seeds", "2000000", "seeds <= 1000"],
        ),
        (
            "sweep-explodes",
            spec().replace(
                "sweep = { \"topology.sparsity\" = [0.5, 0.9] }",
                &format!(
                    "sweep = {{ \"topology.sparsity\" = [0.5, 0.9], \"topology.every\" = [{}], \"train.lr\" = [{}] }}",
                    (1..=400).map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                    (1..=400).map(|i| format!("{i}.0")).collect::<Vec<_>>().join(", ")
                ),
            ),
            vec!["arms.gmp.sweep", "320000 points", "zip = true"],
        ),
        (
            "unknown-key",
            spec().replace("lr = 0.05", "lr = 0.05\nlearning_rate = 1"),
            vec!["train", "learning_rate", "epochs"],
        ),
        (
            "unknown-method",
            spec().replace("name = \"gmp\"", "name = \"gmq\""),
            vec!["arms.gmp.topology.name", "gmq", "gmp, static"],
        ),
        (
            "unknown-compared-metric",
            format!("{}\n[table]\ncompare_on = [\"acuracy\"]\n", spec()),
            vec!["table.compare_on", "acuracy", "test_accuracy"],
        ),
        (
            "out-of-range",
            spec().replace("sparsity = 0.8", "sparsity = 1.2"),
            vec!["arms.static.topology.sparsity", "1.2", "< 1"],
        ),
        (
            "bad-sweep",
            spec().replace(
                "\"topology.sparsity\" = [0.5, 0.9]",
                "\"lossy.beta\" = [1.0]",
            ),
            vec!["arms.gmp.sweep.lossy.beta", "unknown component", "loss, train"],
        ),
        (
            "sweep-absent-loss",
            spec().replace(
                "\"topology.sparsity\" = [0.5, 0.9]",
                "\"loss.beta\" = [1.0]",
            ),
            vec!["arms.gmp.sweep.loss.beta", "no loss to sweep"],
        ),
        (
            "unknown-loss",
            spec().replace(
                "topology = { name = \"static\", sparsity = 0.8 }",
                "loss = { name = \"cka\" }",
            ),
            vec!["arms.static.loss.name", "unknown loss term `cka`", "feature-l2"],
        ),
        (
            "lp-p",
            spec().replace(
                "optimizer = { name = \"sgd\" }\ntopology = { name = \"static\", sparsity = 0.8 }",
                "optimizer = { name = \"lpsgd\", p = 1.0 }",
            ),
            vec!["arms.static.optimizer.p", "finite p > 1"],
        ),
        (
            "zip-lengths",
            spec().replace(
                "sweep = { \"topology.sparsity\" = [0.5, 0.9] }",
                "zip = true\nsweep = { \"topology.sparsity\" = [0.5, 0.9], \"topology.every\" = [2] }",
            ),
            vec!["arms.gmp.sweep.topology.sparsity", "zip = true", "same length"],
        ),
        (
            "toml-syntax",
            spec().replace("[model]", "[model"),
            vec!["TOML"],
        ),
        (
            "no-prox",
            spec().replace(
                "topology = { name = \"static\", sparsity = 0.8 }",
                "regularizer = { name = \"l1\" }",
            ),
            vec!["arms.static.regularizer", "no prox"],
        ),
        (
            "rmda-cosine",
            spec().replace("lr = 0.05", "lr = 0.05\nschedule = \"cosine\"").replace(
                "optimizer = { name = \"sgd\" }\ntopology = { name = \"static\", sparsity = 0.8 }",
                "optimizer = { name = \"rmda\" }",
            ),
            vec!["arms.static.train.schedule", "constant, step"],
        ),
        (
            "bad-figure",
            spec().replace("y = \"weight_sparsity\"", "y = \"sparsityy\""),
            vec!["figures[1].y", "weight_sparsity"],
        ),
    ];
    for (name, text, needles) in cases {
        s.experiment(name, &text);
        let err = ablate(name, &s.options());
        let msg = format!("{:#}", err.expect_err(name));
        assert!(msg.contains(&format!("{name}.toml")), "{name}: {msg}");
        for n in needles {
            assert!(msg.contains(n), "{name}: `{n}` missing in: {msg}");
        }
    }
    let err = ablate("nonexistent", &s.options()).unwrap_err().to_string();
    assert!(err.contains("no ablation `nonexistent`"), "{err}");
}

/// `--jobs 2` trains the runs concurrently, each job on half the cores, and stores exactly what
/// one job stores. The layers are large enough (128×784×300) that one job's matrix products run
/// on two threads and each of two jobs' on one, so this also pins that the kernels' thread count
/// does not change the arithmetic.
#[test]
fn parallel_jobs_store_what_one_job_stores_bit_for_bit() {
    let spec = spec()
        .replace(
            "shape = [1, 6, 6], train = 320",
            "shape = [1, 28, 28], train = 384",
        )
        .replace("hidden = [32, 16]", "hidden = [300, 100]")
        .replace("batch = 32", "batch = 128");
    let (one, two) = (Scratch::new("e2e-jobs1"), Scratch::new("e2e-jobs2"));
    one.experiment("smoke", &spec);
    two.experiment("smoke", &spec);
    let serial = ablate(
        "smoke",
        &Options {
            jobs: Some(1),
            ..one.options()
        },
    )
    .unwrap();
    let parallel = ablate(
        "smoke",
        &Options {
            jobs: Some(2),
            ..two.options()
        },
    )
    .unwrap();
    assert_eq!((serial.trained, parallel.trained), (8, 8));
    let (a, b) = (
        stored_values(&one.0.join("results/smoke")),
        stored_values(&two.0.join("results/smoke")),
    );
    assert_eq!(a.len(), 8);
    for ((id_a, va), (id_b, vb)) in a.iter().zip(&b) {
        assert_eq!(id_a, id_b);
        assert_eq!(va, vb, "run {id_a} differs between one and two jobs");
    }
    // The tables agree too, but for the provenance line naming the jobs and the timing columns
    // (measured speedups among them).
    let table = |s: &Scratch| {
        let text = std::fs::read_to_string(s.0.join("results/smoke/table.md")).unwrap();
        let rows: Vec<Vec<String>> = text
            .lines()
            .filter(|l| l.starts_with('|'))
            .map(|l| l.split('|').map(str::to_string).collect())
            .collect();
        let timing: Vec<bool> = rows[0]
            .iter()
            .map(|h| h.contains("time (s)") || h.contains("samples/s") || h.contains("measured"))
            .collect();
        assert!(timing.contains(&true), "the table has a timing column");
        rows.into_iter()
            .map(|r| {
                r.into_iter()
                    .zip(&timing)
                    .filter(|(_, t)| !**t)
                    .map(|(c, _)| c)
                    .collect::<Vec<_>>()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(table(&one), table(&two));
}

/// `--only` trains just the named runs; an id the ablation does not plan is an error naming the
/// flag and listing the planned ids.
#[test]
fn only_trains_the_named_runs() {
    let s = Scratch::new("e2e-only");
    s.experiment("smoke", &spec());
    let err = ablate(
        "smoke",
        &Options {
            only: vec!["nope".into()],
            ..s.options()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("--only nope") && err.contains("dense seed 0"),
        "{err}"
    );
    let all = sparselab::runner::spec::load(&s.0.join("experiments/smoke.toml"), false, None)
        .unwrap()
        .runs;
    let picked = vec![all[1].id.clone(), all[4].id.clone()];
    let out = ablate(
        "smoke",
        &Options {
            only: picked.clone(),
            jobs: Some(2),
            ..s.options()
        },
    )
    .unwrap();
    assert_eq!((out.trained, out.skipped), (2, 0));
    let trained: Vec<String> = run_dirs(&s.0.join("results/smoke"))
        .iter()
        .map(|r| r.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut expected = picked;
    expected.sort();
    assert_eq!(trained, expected);
}

/// `git` in `dir`, which must succeed.
fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .status()
        .expect("git runs");
    assert!(status.success(), "git {args:?}");
}

/// Commits everything in `dir`.
fn commit_all(dir: &Path) {
    git(dir, &["add", "."]);
    git(
        dir,
        &[
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-qm",
            "x",
        ],
    );
}

/// Training into the committed results refuses a working tree with uncommitted changes (a run
/// there must name the commit that trained it), says what to do instead, and goes ahead once
/// the tree is clean; results themselves never make a tree dirty.
#[test]
fn the_committed_results_refuse_a_dirty_tree() {
    let s = Scratch::new("e2e-dirty");
    s.experiment("smoke", &spec());
    git(&s.0, &["init", "-q"]);
    commit_all(&s.0);
    std::fs::write(s.0.join("notes.txt"), "uncommitted").unwrap();
    let opts = Options {
        refuse_dirty: true,
        ..s.options()
    };
    let err = ablate("smoke", &opts).expect_err("a dirty tree is refused");
    assert!(err.to_string().contains("uncommitted changes"), "{err}");
    assert!(err.to_string().contains("--allow-dirty"), "{err}");
    commit_all(&s.0);
    let outcome = ablate("smoke", &opts).expect("a clean tree trains");
    assert!(outcome.trained > 0);
    assert!(s.0.join("results").is_dir());
}
