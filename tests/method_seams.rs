//! The engine seams new methods plug into, end to end through an experiment file: loss terms on
//! block features (recorded per epoch, changing training), dynamic sparse training with regrowth
//! (SET, RigL: constant density, masked weights exactly zero), and GMP driven by dual-averaging
//! optimisers (pruned weights ranked by `|w ⊙ m|`, so they never come back).

mod common;

use sparselab::runner::{DeviceChoice, Options, ablate};
use std::path::PathBuf;

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str, name: &str, text: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("sparselab-seams-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("experiments")).unwrap();
        std::fs::write(dir.join("experiments").join(format!("{name}.toml")), text).unwrap();
        Self(dir)
    }

    fn options(&self) -> Options {
        Options {
            device: DeviceChoice::Flex,
            ..Options::new(&self.0)
        }
    }

    /// `final.json` of every run, keyed by arm.
    fn finals(&self, name: &str) -> Vec<(String, serde_json::Value)> {
        let dir = self.0.join("results").join(name);
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
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn loss_terms_are_trained_and_recorded() {
    let text = common::synthetic_spec(
        "description = \"loss-term seam\"\nseeds = 1\n",
        r#"[arms.plain]
model = { name = "resmlp", width = 16, depth = 2 }
optimizer = { name = "sgd" }

[arms.penalised]
model = { name = "resmlp", width = 16, depth = 2 }
optimizer = { name = "sgd" }
loss = { name = "feature-l2", beta = 0.5, every = 2 }
"#,
    )
    .replace("hidden = [32, 16]\n", "");
    let s = Scratch::new("loss", "loss", &text);
    let out = ablate("loss", &s.options()).unwrap();
    assert_eq!(out.trained, 2);
    let finals = s.finals("loss");
    let last = |arm: &str| {
        finals
            .iter()
            .find(|(a, _)| a == arm)
            .map(|(_, f)| f["last"].clone())
            .unwrap()
    };
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
    let s = Scratch::new("topology", "topology", &text);
    let out = ablate("topology", &s.options()).unwrap();
    assert_eq!(out.trained, 4);
    for (arm, fin) in s.finals("topology") {
        let sparsity = fin["last"]["weight_sparsity"].as_f64().unwrap();
        assert!((sparsity - 0.8).abs() < 0.01, "{arm}: sparsity {sparsity}");
    }
}
