//! Throughput benchmarks (`cargo xtask bench`), measured with criterion on the chosen device,
//! each section in a file of its own:
//!
//! - [`pytorch`]: the engine's dense step on LeNet-300-100 and LeNet-5, interleaved with the
//!   PyTorch reference ([`reference`]) when torch is installed;
//! - [`optimizers`]: every optimiser × regularizer pair's training step and update, relative to
//!   SGD's;
//! - [`lpsgd_bound`]: LpSGD's three powers per constrained weight alone, a lower bound on its
//!   step ÷ SGD's on the machine;
//! - [`vector_width`]: the hot fused kernels at the CPU's widest vector unit and at the
//!   baseline width, so a kernel that stops vectorising shows;
//! - [`loss_terms`]: CKA-SR's cost on the engine's step;
//! - [`pruned_step`]: the step of networks pruned by GMP, SET and RigL long after pruning, paired
//!   with the dense step, and the subnormal values they hold;
//! - [`topology_updates`]: one mask update of every topology;
//! - [`sparse_inference`]: a pruned layer's product with a batch, dense against sparse
//!   (sparselab's CSR kernel, sprs, faer, PyTorch), measured and theoretical speedups.
//!
//! The shared workload is in [`fixture`], the timing statistics (criterion's estimates, paired
//! ratios in alternating rounds) in [`timing`]. Results are written to `bench.json` and
//! `bench.md`, headed by the machine they were measured on. Timings are never asserted in
//! tests: this is where they live.

pub mod fixture;
pub mod loss_terms;
pub mod lpsgd_bound;
pub mod optimizers;
pub mod pruned_step;
pub mod pytorch;
pub mod reference;
pub mod sparse_inference;
pub mod timing;
pub mod topology_updates;
pub mod vector_width;

use criterion::Criterion;
use fixture::{BASELINE, setup};
use lpsgd_bound::{LpSgdBound, PowerWork};
use serde_json::json;
use sparselab_optimizers::SparseOptimizer;
use sparselab_runner::device::{DeviceChoice, select};
use sparselab_runner::env::Env;
use sparselab_runner::store::write_atomic;
use std::path::PathBuf;
use std::time::Duration;

/// The step-time ratio to SGD's that every optimiser aims at.
const STEP_GOAL_VS_SGD: f64 = 1.10;

/// What to measure and where to write it.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Device choice.
    pub device: DeviceChoice,
    /// Batch size.
    pub batch: usize,
    /// Output directory (`bench.json`, `bench.md`, criterion's raw data under `criterion/`).
    pub out: PathBuf,
    /// Seconds of measurement per benchmark.
    pub seconds: f64,
    /// The PyTorch reference script (`xtask/reference/pytorch_reference.py`).
    pub reference_script: PathBuf,
}

/// Runs the benchmarks and writes `bench.json` and `bench.md` under `opts.out`.
pub fn run(opts: &BenchOptions) -> anyhow::Result<Vec<PathBuf>> {
    // Measured the way runs train: inside the compute pool.
    sparselab_runner::jobs::on_all_cores(|| measure(opts))?
}

/// [`run`]'s measurements, on the calling thread.
fn measure(opts: &BenchOptions) -> anyhow::Result<Vec<PathBuf>> {
    let selected = select(opts.device).map_err(anyhow::Error::msg)?;
    if let Some(note) = &selected.note {
        eprintln!("device: {note}");
    }
    let device = &selected.device;
    let criterion_dir = opts.out.join("criterion");
    std::fs::create_dir_all(&criterion_dir)?;
    let mut c = Criterion::default()
        .output_directory(&criterion_dir)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs_f64(opts.seconds.max(0.5)))
        .sample_size(20)
        .without_plots();
    let reference = reference::Reference::find(&opts.reference_script);
    if let Err(why) = &reference {
        eprintln!("PyTorch reference skipped: {why}");
    }
    let paired = pytorch::measure(
        &mut c,
        opts,
        device,
        &criterion_dir,
        reference.as_ref().ok(),
    )?;
    let optimizers = optimizers::measure(&mut c, opts, device, &criterion_dir)?;
    let sgd = optimizers
        .iter()
        .find(|r| r.optimizer == BASELINE && r.regularizer.is_none())
        .ok_or_else(|| anyhow::anyhow!("the sgd baseline is not registered"))?;
    let sgd_train = sgd.train_step.mean;
    // The powers and the fused kernels run on the host: flex only.
    let on_host = selected.backend == "flex";
    let lpsgd_bound = match on_host {
        true => {
            let mut work = PowerWork::new(&setup(device, opts.batch)?.model)?;
            c.bench_function("bound/lpsgd_powers", |b| b.iter(|| work.run()));
            let lpsgd = sparselab_optimizers::lpsgd::LpSgd::NAME;
            match optimizers.iter().find(|r| r.optimizer == lpsgd) {
                Some(row) => Some(LpSgdBound::new(
                    &work,
                    timing::read_estimate(&criterion_dir, "bound", "lpsgd_powers")?,
                    sgd_train,
                    sgd.optimizer_step.mean,
                    row.train_ratio_vs_sgd,
                )),
                None => None,
            }
        }
        false => None,
    };
    let widths = match on_host {
        true => vector_width::measure(device, opts.batch)?,
        false => Vec::new(),
    };
    let losses = loss_terms::measure(&mut c, device, opts.batch, &criterion_dir)?;
    let pruned = pruned_step::measure(device, opts.batch)?;
    let topologies =
        topology_updates::measure(&mut c, device, opts.batch, &criterion_dir, sgd_train)?;
    let sparse = match on_host {
        true => sparse_inference::measure(
            device,
            reference.as_ref().ok(),
            &criterion_dir.join("sparse-inference"),
        )?,
        false => Vec::new(),
    };

    let env = Env::capture(&selected.description, selected.backend);
    let summary = json!({
        "model": fixture::MODEL,
        "input": [1, 28, 28],
        "batch": opts.batch,
        "env": env,
        "pytorch": reference.as_ref().ok().map(|r| json!({ "torch": r.torch, "python": r.python_version })),
        "pytorch_skipped": reference.as_ref().err(),
        "paired": paired,
        "optimizers": optimizers,
        "lpsgd_bound": lpsgd_bound,
        "vector_width": widths,
        "topologies": topologies,
        "loss_terms": losses,
        "pruned_steps": pruned,
        "sparse_inference": sparse,
    });
    std::fs::create_dir_all(&opts.out)?;
    let json_path = opts.out.join("bench.json");
    write_atomic(
        &json_path,
        serde_json::to_string_pretty(&summary)?.as_bytes(),
    )?;
    let mut md = format!(
        "# Benchmarks\n\n{}\n\n{}\n\n",
        env.provenance(),
        match &reference {
            Ok(r) => format!(
                "PyTorch {} on Python {} (`{}`).",
                r.torch,
                r.python_version,
                r.python.display()
            ),
            Err(why) => format!("PyTorch not measured: {why}."),
        }
    );
    md.push_str(&pytorch::markdown(opts.batch, &paired));
    md.push_str(&optimizers::markdown(&optimizers, opts.batch));
    if let Some(bound) = &lpsgd_bound {
        md.push_str(&bound.markdown(STEP_GOAL_VS_SGD));
    }
    md.push_str(&vector_width::markdown(&widths));
    md.push_str(&topology_updates::markdown(&topologies));
    md.push_str(&loss_terms::markdown(&losses));
    md.push_str(&pruned_step::markdown(&pruned, opts.batch));
    if !sparse.is_empty() {
        md.push_str(&sparse_inference::markdown(&sparse));
    }
    let md_path = opts.out.join("bench.md");
    write_atomic(&md_path, md.as_bytes())?;
    Ok(vec![json_path, md_path])
}
