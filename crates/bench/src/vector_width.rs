//! `vector_width/<case>`: the update of optimisers whose fused kernels run inside
//! `sparselab_core::wide::widest`, at the CPU's widest vector unit and at the baseline width,
//! measured alternately on one thread. Tests check that the two widths give the same bits, but
//! no test can see speed: a kernel that stops vectorising (the traps `core::wide` lists) keeps
//! its bits and loses its lanes, and shows here as a ratio that falls towards 1.

use crate::optimizers::{CaseSteps, Timed};
use crate::timing::{alternating_ratios, median, spread};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use sparselab_core::wide::{Width, width, with_baseline};

/// The cases: a prox with a scalar threshold, with a per-element threshold map, ProxSSI's
/// Newton solve for the group lasso in its metric, and LpSGD's powers.
const CASES: [(&str, Option<&str>); 4] = [
    ("proxsgd", Some("l1")),
    ("proxsgd", Some("reweighted-l1")),
    ("proxssi", Some("group-lasso")),
    ("lpsgd", None),
];

/// One case's update at both widths.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WidthBench {
    /// Optimiser.
    pub optimizer: String,
    /// Regularizer.
    pub regularizer: Option<String>,
    /// The widest unit's name.
    pub widest: String,
    /// The update at the baseline width ÷ at the widest: the median of [`Self::rounds`].
    pub speedup: f64,
    /// Per round, the baseline's median update ÷ the widest's.
    pub rounds: Vec<f64>,
}

/// Measures every case of [`CASES`] on a one-thread pool (the width is chosen per thread).
pub fn measure(device: &Device, batch: usize) -> anyhow::Result<Vec<WidthBench>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let widest = width();
    let mut rows = Vec::new();
    for (optimizer, regularizer) in CASES {
        let mut case = CaseSteps::new(device, batch, optimizer, regularizer)?;
        let rounds = pool.install(|| {
            // Both closures step the same case, one round at a time.
            let case = std::cell::RefCell::new(&mut case);
            alternating_ratios(
                || case.borrow_mut().round(Timed::Update),
                || with_baseline(|| case.borrow_mut().round(Timed::Update)),
            )
        });
        rows.push(WidthBench {
            optimizer: optimizer.to_string(),
            regularizer: regularizer.map(str::to_string),
            widest: widest.name().to_string(),
            speedup: median(&rounds),
            rounds,
        });
    }
    Ok(rows)
}

/// The section of `bench.md` (empty when nothing was measured: not on the CPU backend).
pub fn markdown(rows: &[WidthBench]) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let mut md = format!(
        "\n## Vector width of the fused kernels\n\n\
         Each optimiser's update on one thread, at the widest vector unit ({}) and at the \
         baseline width ({}), measured alternately; a round's ratio is the baseline's median \
         update ÷ the widest's, and the column gives the median over rounds with the rounds' \
         range. The two widths give the same bits (tested); a ratio near 1 where it was higher \
         means a kernel stopped vectorising.\n\n\
         | optimizer | regularizer | baseline ÷ widest (paired) |\n|---|---|---|\n",
        first.widest,
        Width::Baseline.name(),
    );
    for r in rows {
        md.push_str(&format!(
            "| {} | {} | {} |\n",
            r.optimizer,
            r.regularizer.as_deref().unwrap_or("–"),
            spread(&r.rounds)
        ));
    }
    md
}
