//! Mean inter-layer CKA of each stage (SPEC.md §1.3, §3), measured after every epoch.
//!
//! On a fixed validation subset (the first [`EXAMPLES`] examples of the validation split, in
//! stored order, or of the test split for data without one), in batches of [`BATCH`]: every
//! block's features, then minibatch CKA with the unbiased HSIC between every pair of blocks of a
//! stage, and the mean over pairs i < j. Stages with one block have no pairs and are left out.
//! The subset and the batching are the same for every run and epoch, so values are comparable
//! across arms.

use burn::tensor::{Device, Tensor};
use sparselab_data::loader::Order;
use sparselab_data::{Dataset, batches};
use sparselab_metrics::cka::{mean_off_diagonal, minibatch_cka_matrix};
use sparselab_models::{Architecture, Model};
use std::collections::BTreeMap;

/// Examples of the fixed subset.
pub const EXAMPLES: usize = 1000;
/// Rows per minibatch (k = 4 batches of 250).
pub const BATCH: usize = 250;

/// Mean inter-layer CKA by stage (`"stage 1"`, …; only stages with ≥ 2 blocks) of `model`
/// (without autodiff); empty when the model has no such stage.
pub fn stage_cka(model: &Model, data: &Dataset, device: &Device) -> BTreeMap<String, f64> {
    let split = if data.val.is_empty() {
        &data.test
    } else {
        &data.val
    };
    // per stage: per batch: per block features
    let mut stages: Vec<Vec<Vec<Tensor<2>>>> = Vec::new();
    for batch in batches(split, data.shape, BATCH, Order::Sequential, device).take(EXAMPLES / BATCH)
    {
        let features = model.forward(batch.images, true).features;
        if stages.is_empty() {
            stages = vec![Vec::new(); features.len()];
        }
        for (s, blocks) in features.into_iter().enumerate() {
            if blocks.len() >= 2 {
                stages[s].push(blocks);
            }
        }
    }
    stages
        .iter()
        .enumerate()
        .filter(|(_, b)| !b.is_empty())
        .filter_map(|(s, b)| {
            mean_off_diagonal(&minibatch_cka_matrix(b)).map(|v| (format!("stage {}", s + 1), v))
        })
        .collect()
}

/// Mean over stages of [`stage_cka`] (`None` when empty).
pub fn mean_cka(stages: &BTreeMap<String, f64>) -> Option<f64> {
    (!stages.is_empty()).then(|| stages.values().sum::<f64>() / stages.len() as f64)
}
