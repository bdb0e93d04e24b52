//! `topology_update/<topology>`: one mask update of every registered topology (host side: the
//! ranking, drop and regrowth on copies of the weights and of the dense gradient), reported per
//! update and amortised over its default update interval, relative to SGD's train step.

use crate::fixture::{BASELINE, MODEL, grads, setup};
use crate::timing::{Estimate, read_estimate};
use anyhow::Context;
use burn::tensor::Device;
use criterion::Criterion;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sparselab_models::Architecture;
use sparselab_runner::resolve::{RunTables, resolve};
use std::path::Path;

/// One topology's update cost.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TopologyBench {
    /// Registered name.
    pub topology: String,
    /// One mask update.
    pub update: Estimate,
    /// Steps between updates (its default config).
    pub every: Option<u64>,
    /// Update time ÷ interval ÷ SGD's train step (the amortised overhead per step).
    pub amortised_vs_sgd_step: Option<f64>,
}

/// Times one update of every registered topology; `sgd_train` is SGD's training step (seconds).
pub fn measure(
    c: &mut Criterion,
    device: &Device,
    batch: usize,
    criterion_dir: &Path,
    sgd_train: f64,
) -> anyhow::Result<Vec<TopologyBench>> {
    let topologies = sparselab_topology::registry().names();
    for name in &topologies {
        let s = setup(device, batch)?;
        let parts = resolve(
            &RunTables {
                topology: json!({ "name": name }),
                ..RunTables::named(MODEL, BASELINE)
            },
            "",
        )?
        .methods;
        let mut topology = parts.topology.context("a registered topology resolves")?;
        let table = s.model.describe();
        let masked: Vec<sparselab_core::ParamInfo> = table
            .iter()
            .filter(|p| topology.applies_to(p))
            .cloned()
            .collect();
        let ids: Vec<_> = masked.iter().map(|p| p.id).collect();
        let values = sparselab_core::param::host_values(&s.model, &ids);
        let g = sparselab_core::param::host_grads(&s.model, &grads(&s, &s.model), &ids);
        let weights: Vec<sparselab_topology::HostWeight<'_>> = masked
            .iter()
            .zip(&values)
            .map(|(info, v)| sparselab_topology::HostWeight { info, values: v })
            .collect();
        let ctx = sparselab_topology::TopologyContext {
            total_steps: 10_000,
            steps_per_epoch: 430,
            seed: 0,
        };
        topology.init(&ctx, &weights);
        c.bench_function(&format!("topology_update/{name}"), |b| {
            b.iter(|| topology.update(4_000, &weights, Some(&g)))
        });
    }
    let mut topology_rows = Vec::new();
    for name in &topologies {
        let update = read_estimate(criterion_dir, "topology_update", name)?;
        let every = sparselab_topology::registry()
            .get(name)
            .ok()
            .and_then(|e| e.defaults().get("every")?.as_u64());
        topology_rows.push(TopologyBench {
            topology: name.to_string(),
            amortised_vs_sgd_step: every.map(|e| update.mean / e as f64 / sgd_train),
            update,
            every,
        });
    }
    Ok(topology_rows)
}

/// The section of `bench.md`.
pub fn markdown(topology_rows: &[TopologyBench]) -> String {
    let mut md = String::new();
    md.push_str(
        "\n## Topology updates\n\nHost side, LeNet-300-100 weights and dense gradient): one update, and \
         amortised over the default update interval relative to SGD's train step.\n\n\
         | topology | update (ms) | every (steps) | amortised per step / SGD's train step |\n|---|---|---|---|\n",
    );
    for t in topology_rows {
        md.push_str(&format!(
            "| {} | {:.2} [{:.2}, {:.2}] | {} | {} |\n",
            t.topology,
            t.update.mean * 1e3,
            t.update.ci95.0 * 1e3,
            t.update.ci95.1 * 1e3,
            t.every.map_or("–".into(), |e| e.to_string()),
            t.amortised_vs_sgd_step
                .map_or("–".into(), |r| format!("{:.3}×", r))
        ));
    }
    md
}
