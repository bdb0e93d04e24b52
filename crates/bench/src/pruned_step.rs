//! `pruned_step/<topology>`: the engine's training step of the benchmarked model pruned to
//! [`TARGET`] sparsity by GMP, SET and RigL, paired with the dense step, long after the last mask
//! update.
//!
//! A pruned weight's gradient is 0, so whatever optimiser state it kept decays: momentum reaches
//! the subnormal range after about 800 steps and stays there, and on CPUs that take a microcode
//! assist on subnormal arithmetic (many Intel cores) every later step is several times slower,
//! while CPUs that do not (most AMD cores) show nothing. The warm-up trains past that point, so
//! a regression shows as a ratio above 1 on the first kind of CPU, and on every CPU as a
//! non-zero count of subnormal values in the weights and optimiser state.

use crate::fixture::{BASELINE, EngineSteps, MODEL, ROUND_STEPS};
use crate::timing::{BASELINE_ROUNDS, alternating_ratios, median, spread};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sparselab_runner::resolve::RunTables;
use sparselab_topology::{Mask, TopologyContext};

/// The pruned networks' sparsity.
pub const TARGET: f64 = 0.9;
/// The topologies measured: pruning and dynamic sparse training, whose masks zero weights that
/// had trained (a static mask never had them non-zero).
pub const TOPOLOGIES: [&str; 3] = ["gmp", "set", "rigl"];
/// Steps over which the topologies schedule their mask updates (one every
/// [`UPDATE_EVERY`]).
pub const SCHEDULE_STEPS: usize = 400;
/// Steps between mask updates.
const UPDATE_EVERY: usize = 20;
/// Steps trained before the timing: the schedule, then enough for momentum 0.9 of a zero
/// gradient to decay from 1 below the smallest normal f32 (`0.9^n < 2⁻¹²⁶` from n = 829).
pub const WARM_UP_STEPS: usize = SCHEDULE_STEPS + 900;

/// One pruned network's step against the dense step.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PrunedStepBench {
    /// The topology that pruned it.
    pub topology: String,
    /// The sparsity of its masked tensors after the warm-up.
    pub sparsity: f64,
    /// Its training step ÷ the dense step: the median of [`Self::rounds_vs_dense`].
    pub ratio_vs_dense: f64,
    /// Per round of the pairing, its mean step ÷ the dense mean step.
    pub rounds_vs_dense: Vec<f64>,
    /// Weights and optimiser state entries holding a subnormal value after the warm-up.
    pub subnormal_values: usize,
}

/// `steps`, trained [`WARM_UP_STEPS`] steps.
fn warmed_up(mut steps: EngineSteps) -> EngineSteps {
    for _ in 0..WARM_UP_STEPS {
        std::hint::black_box(steps.step());
    }
    steps
}

/// Measures every topology of [`TOPOLOGIES`] against the dense step (SGD with momentum on
/// [`MODEL`], batch `batch`).
pub fn measure(base: &Device, batch: usize) -> anyhow::Result<Vec<PrunedStepBench>> {
    let ctx = TopologyContext {
        total_steps: SCHEDULE_STEPS,
        steps_per_epoch: SCHEDULE_STEPS,
        seed: 0,
    };
    let dense_plain = RunTables::named(MODEL, BASELINE);
    let mut dense = warmed_up(EngineSteps::in_context(
        base,
        batch,
        &dense_plain,
        ctx.clone(),
    )?);
    let mut rows = Vec::new();
    for topology in TOPOLOGIES {
        let plain = RunTables {
            topology: json!({ "name": topology, "sparsity": TARGET, "every": UPDATE_EVERY }),
            ..dense_plain.clone()
        };
        let mut pruned = warmed_up(EngineSteps::in_context(base, batch, &plain, ctx.clone())?);
        let trainee = &pruned.trainee;
        let masks: Vec<Mask> = (trainee.masked().iter())
            .filter_map(|p| {
                let keep = trainee.masks().get(p.id)?.to_vec();
                Some(Mask { id: p.id, keep })
            })
            .collect();
        let sparsity = Mask::overall_sparsity(&masks);
        let subnormal_values = trainee.subnormals().iter().map(|(_, n)| n).sum();
        let rounds = alternating_ratios(|| dense.round(), || pruned.round());
        rows.push(PrunedStepBench {
            topology: topology.to_string(),
            sparsity,
            ratio_vs_dense: median(&rounds),
            rounds_vs_dense: rounds,
            subnormal_values,
        });
    }
    Ok(rows)
}

/// The section of `bench.md`.
pub fn markdown(rows: &[PrunedStepBench], batch: usize) -> String {
    let (rounds, round_steps) = (BASELINE_ROUNDS, ROUND_STEPS);
    let mut md = format!(
        "\n## Pruned networks: {MODEL} at sparsity {TARGET}, batch {batch}\n\n\
         The engine's training step (momentum SGD) of a network pruned by each topology \
         (mask updates every {UPDATE_EVERY} steps over the first {SCHEDULE_STEPS}), after \
         {WARM_UP_STEPS} steps, long enough for a pruned weight's momentum to decay into \
         subnormal floats were it kept; paired with the dense step trained as long, measured \
         alternately (dense, pruned, … {rounds} rounds of {round_steps} steps); a round's ratio is \
         the pruned mean step ÷ the dense one, and the column gives the median over rounds with \
         the rounds' range. `subnormal values`: weights and optimiser state entries holding a \
         subnormal float after the warm-up, which makes steps several times slower on CPUs \
         that compute them by microcode (many Intel cores); 0 on every CPU while pruned weights \
         carry no state and compute threads flush subnormals.\n\n\
         | topology | sparsity | step / dense step (paired) | subnormal values |\n|---|---|---|---|\n"
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {:.3} | {} | {} |\n",
            r.topology,
            r.sparsity,
            spread(&r.rounds_vs_dense),
            r.subnormal_values
        ));
    }
    md
}
