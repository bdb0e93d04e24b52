//! The WGPU path end to end (ignored by default: it needs a Vulkan/Metal/DX12 driver and, on a
//! software driver such as Mesa's lavapipe, a minute or two of shader compilation).
//!
//! Run with `cargo test --test wgpu -- --ignored`. Without an adapter it says so and passes.

mod common;

use sparselab::runner::device::{DeviceChoice, select};
use sparselab::runner::{Options, ablate};

/// One seed each of GMP and of RMDA with the group lasso.
fn spec() -> String {
    common::synthetic_spec(
        r#"description = "wgpu smoke"
seeds = 1"#,
        r#"[arms.gmp]
optimizer = { name = "sgd" }
topology = { name = "gmp", start = 0.0, end = 0.5, every = 2, sparsity = 0.8 }
[arms.rmda]
optimizer = { name = "rmda", c = 1.0 }
regularizer = { name = "group-lasso", lambda = 1e-3 }
"#,
    )
}

#[test]
#[ignore = "needs a WGPU adapter; slow on software drivers"]
fn training_on_wgpu_keeps_masks_exact_and_losses_finite() {
    if let Err(why) = select(DeviceChoice::Wgpu) {
        eprintln!("skipped: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sparselab-wgpu-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("experiments")).unwrap();
    std::fs::write(dir.join("experiments/smoke.toml"), spec()).unwrap();
    let opts = Options {
        device: DeviceChoice::Wgpu,
        ..Options::new(&dir)
    };
    let out = ablate("smoke", &opts).unwrap();
    assert_eq!(out.trained, 2);
    let csv = std::fs::read_to_string(dir.join("results/smoke/runs.csv")).unwrap();
    assert_eq!(csv.matches(",finished,").count(), 2, "{csv}");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "weight_sparsity").unwrap();
    let gmp = csv.lines().find(|l| l.contains(",gmp,")).unwrap();
    let sparsity: f64 = gmp.split(',').nth(col).unwrap().parse().unwrap();
    assert!(
        (sparsity - 0.8).abs() < 1e-3,
        "GMP on WGPU ends at {sparsity}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
