//! The engine seams new methods plug into, end to end through an experiment file: loss terms on
//! block features (recorded per epoch, changing training; CKA-SR lowering inter-layer CKA), dynamic sparse training with regrowth
//! (SET, RigL: constant density, masked weights exactly zero), and GMP driven by dual-averaging
//! optimisers (pruned weights ranked by `|w ⊙ m|`, so they never come back).

mod common;

use common::Scratch;
use sparselab::runner::ablate;

/// `final.json` of every run of ablation `name` under `s`, keyed by arm.
fn finals(s: &Scratch, name: &str) -> Vec<(String, serde_json::Value)> {
    let dir = s.0.join("results").join(name);
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.join("final.json").is_file() {
            let config: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p.join("config.json")).unwrap())
                    .unwrap();
            let fin: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(p.join("final.json")).unwrap())
                    .unwrap();
            out.push((config["arm"].as_str().unwrap_or_default().to_string(), fin));
        }
    }
    out
}

/// The `final.json` of the (single-seed) run of `arm`.
fn final_of(finals: &[(String, serde_json::Value)], arm: &str) -> serde_json::Value {
    finals
        .iter()
        .find(|(a, _)| a == arm)
        .map(|(_, f)| f.clone())
        .unwrap_or_else(|| panic!("no finished run of arm {arm}"))
}

/// Runs a one-seed synthetic ablation named `name` whose `arms` name their own models (the
/// shared setup's MLP is dropped), checks that `trained` runs trained, and returns the scratch
/// directory with every run's final record.
fn run_own_models(
    name: &str,
    arms: &str,
    trained: usize,
) -> (Scratch, Vec<(String, serde_json::Value)>) {
    let text = common::synthetic_spec(&format!("description = \"{name} seam\"\nseeds = 1\n"), arms)
        .replace("hidden = [32, 16]\n", "");
    let s = Scratch::with(&format!("seams-{}", name), name, &text);
    let out = ablate(name, &s.options()).unwrap();
    assert_eq!(out.trained, trained);
    let finals = finals(&s, name);
    (s, finals)
}

#[test]
fn loss_terms_are_trained_and_recorded() {
    let (_s, finals) = run_own_models(
        "loss",
        r#"[arms.plain]
model = { name = "resmlp", width = 16, depth = 2 }
optimizer = { name = "sgd" }

[arms.penalised]
model = { name = "resmlp", width = 16, depth = 2 }
optimizer = { name = "sgd" }
loss = { name = "feature-l2", beta = 0.5, every = 2 }
"#,
        2,
    );
    let last = |arm: &str| final_of(&finals, arm)["last"].clone();
    let penalised = last("penalised");
    let value = penalised["loss_terms"]["feature-l2"].as_f64().unwrap();
    assert!(value.is_finite() && value > 0.0, "{penalised}");
    assert!(last("plain").get("loss_terms").is_none());
    assert_ne!(
        penalised["train_loss"],
        last("plain")["train_loss"],
        "the term changes training"
    );
}

/// CKA-SR end to end (SPEC §1.3): the term is recorded, every run of a model with a stage of
/// ≥ 2 blocks records its mean inter-layer CKA per epoch (per stage for the three-stage ResNet),
/// and a strong full CKA-SR ends with lower inter-layer CKA than the same run without it. The final record holds the histogram of
/// every weight entry.
#[test]
fn cka_sr_lowers_inter_layer_cka_and_is_recorded() {
    let (s, finals) = run_own_models(
        "cka",
        r#"[arms.plain]
model = { name = "resmlp", width = 16, depth = 3 }
optimizer = { name = "sgd", momentum = 0.9 }

[arms.cka]
model = { name = "resmlp", width = 16, depth = 3 }
compare = "plain"
optimizer = { name = "sgd", momentum = 0.9 }
loss = { name = "cka-sr", beta = 1.0, samples = 0, every = 1 }

[arms.resnet]
model = { name = "resnet-cifar", blocks = [2, 2, 2], width = 2 }
optimizer = { name = "sgd", momentum = 0.9 }
topology = { name = "static", distribution = "erk", sparsity = 0.5 }
loss = { name = "cka-sr", beta = 1e-3, samples = 8, every = 2 }

[table]
compare_on = ["test_accuracy", "cka"]
"#,
        3,
    );
    let fin = |arm: &str| final_of(&finals, arm);
    let (plain, cka) = (fin("plain"), fin("cka"));
    let term = cka["last"]["loss_terms"]["cka-sr"].as_f64().unwrap();
    assert!(term.is_finite() && term > 0.0, "{cka}");
    let similarity = |f: &serde_json::Value| f["last"]["cka"].as_f64().unwrap();
    assert!(
        (-1.0..=1.0).contains(&similarity(&plain)),
        "{}",
        plain["last"]
    );
    assert!(plain["last"]["stage_cka"]["stage 1"].is_f64());
    assert!(
        similarity(&cka) < similarity(&plain) - 0.05,
        "CKA-SR lowers inter-layer CKA: {} vs {}",
        similarity(&cka),
        similarity(&plain)
    );
    // resmlp 36→16, 3 blocks of 16×16 twice, 16→4.
    let h = &plain["weight_histogram"];
    let counted: u64 = h["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum::<u64>()
        + h["zeros"].as_u64().unwrap();
    assert_eq!(counted, 36 * 16 + 6 * 16 * 16 + 16 * 4);
    // The table compares the CKA-SR arm with its host on both listed metrics.
    let table = std::fs::read_to_string(s.0.join("results/cka/table.md")).unwrap();
    assert!(table.contains("Δ mean inter-layer CKA (within stages) ± 95% CI vs compared arms"));
    let row = table.lines().find(|l| l.starts_with("| cka |")).unwrap();
    assert_eq!(row.matches(" vs plain").count(), 2, "{row}");
    // The paper's model family: three stages, each with its own inter-layer CKA.
    let resnet = fin("resnet");
    let stages = resnet["last"]["stage_cka"].as_object().unwrap();
    assert_eq!(
        stages.keys().collect::<Vec<_>>(),
        ["stage 1", "stage 2", "stage 3"]
    );
    assert!(
        resnet["last"]["loss_terms"]["cka-sr"]
            .as_f64()
            .unwrap()
            .is_finite()
    );
}

#[test]
fn dynamic_sparse_and_gmp_with_dual_averaging() {
    let text = common::synthetic_spec(
        "description = \"topology seams\"\nseeds = 1\n",
        r#"[arms.set]
optimizer = { name = "sgd" }
topology = { name = "set", sparsity = 0.8, every = 3 }

[arms.rigl]
optimizer = { name = "sgd" }
topology = { name = "rigl", sparsity = 0.8, every = 3 }

[arms.gmp-xrda]
optimizer = { name = "xrda" }
topology = { name = "gmp", sparsity = 0.8, start = 0.0, end = 0.5, every = 2 }

[arms.gmp-rmda]
optimizer = { name = "rmda", c = 0.5 }
topology = { name = "gmp", sparsity = 0.8, start = 0.0, end = 0.5, every = 2 }
"#,
    )
    .replace("lr = 0.05\n", "lr = 0.05\nschedule = \"constant\"\n");
    let s = Scratch::with("seams-topology", "topology", &text);
    let out = ablate("topology", &s.options()).unwrap();
    assert_eq!(out.trained, 4);
    for (arm, fin) in finals(&s, "topology") {
        let sparsity = fin["last"]["weight_sparsity"].as_f64().unwrap();
        assert!((sparsity - 0.8).abs() < 0.01, "{arm}: sparsity {sparsity}");
    }
}

/// LpSGD with semi-pruning end to end: rows stay on their spheres (so the Hoyer report is
/// written with its predictions), semi-pruning records its walk after every update and moves
/// towards the target, and a p list that does not fit the model fails naming the key.
#[test]
fn lp_sphere_with_semi_pruning() {
    let text = common::synthetic_spec(
        "description = \"Lp-sphere seams\"\nseeds = 1\n",
        r#"[arms.lp-semi]
optimizer = { name = "lpsgd", p = [1.3, 1.1] }
topology = { name = "semi-prune", sparsity = 0.7, every = 2 }

[[figures]]
kind = "steps"
file = "walk"

[[figures]]
kind = "hoyer"
file = "hoyer"
"#,
    );
    let s = Scratch::with("seams-lp", "lp", &text);
    let out = ablate("lp", &s.options()).unwrap();
    assert_eq!(out.trained, 1);
    let (_, fin) = &finals(&s, "lp")[0];
    let spheres = fin["spheres"].as_array().unwrap();
    let layers: Vec<(&str, f64)> = spheres
        .iter()
        .map(|l| (l["layer"].as_str().unwrap(), l["p"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        layers,
        vec![("hidden.0.weight", 1.3), ("hidden.1.weight", 1.1)]
    );
    for l in spheres {
        let h = l["hoyer"].as_f64().unwrap();
        assert!(
            (0.0..=1.0).contains(&h) && l["closed_form"].as_f64().is_some(),
            "{l}"
        );
    }
    let dir = s.0.join("results/lp");
    for f in ["hoyer.md", "walk.svg", "hoyer.png"] {
        assert!(dir.join(f).is_file(), "{f}");
    }
    let epochs: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.join("epochs.json").is_file())
                .unwrap()
                .join("epochs.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let trace: Vec<f64> = epochs
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["sparsity_trace"].as_array().cloned().unwrap_or_default())
        .map(|pair| pair[1].as_f64().unwrap())
        .collect();
    assert!(trace.len() >= 3, "{trace:?}");
    assert!(
        (trace[trace.len() - 1] - 0.7).abs() < (0.2f64 - 0.7).abs(),
        "semi-pruning moved from s0 = 0.2 towards 0.7: {trace:?}"
    );

    let wrong = text.replace("p = [1.3, 1.1]", "p = [1.3, 1.1, 1.05]");
    let s = Scratch::with("seams-lp-wrong", "lp", &wrong);
    let msg = format!("{:#}", ablate("lp", &s.options()).unwrap_err());
    assert!(
        msg.contains("optimizer.p") && msg.contains("2 sphere-constrained layers"),
        "{msg}"
    );
}
