//! Contract of every registered topology with every registered optimiser, through the real
//! training step (`Trainee::step`): the registries iterate, so a new topology or optimiser is
//! covered without a new test.
//!
//! - masked entries of a topology that zeroes them stay exactly 0.0 after every step;
//! - a topology that promises monotone masks never regrows a pruned weight (with dual-averaging
//!   optimisers too, whose state revives values under the mask);
//! - the final sparsity of the masked tensors is the topology's target (or, for a topology that
//!   only steers towards it, closer to it than at the start);
//! - a weight zeroed for good carries no optimiser state: every per-entry state value of a
//!   masked entry is exactly 0.0 after every step;
//! - after training past its last mask update no weight and no optimiser state value is
//!   subnormal (a pruned weight's decaying state would be, and subnormal arithmetic is several
//!   times slower on many CPUs: `runner::float_mode`).
//!
//! Training runs on the compute pool every run trains on (`runner::jobs`), as in an ablation.

use burn::tensor::Device;
use serde_json::{Value, json};
use sparselab::core::config::parse_config;
use sparselab::data::loader::Order;
use sparselab::data::{DataConfig, batches};
use sparselab::models::InputShape;
use sparselab::runner::experiment::RunConfig;
use sparselab::runner::jobs::on_all_cores;
use sparselab::runner::resolve::{RunTables, resolve};
use sparselab::runner::schedule::TrainConfig;
use sparselab::runner::trainee::Trainee;
use sparselab::topology::{MaskedEntries, TopologyContext};

/// A topology's defaults with a short update interval and sparsity 0.8 where it has those keys.
fn topology_table(name: &str) -> Value {
    let registry = sparselab::topology::registry();
    let mut t = registry.get(name).unwrap().defaults();
    let map = t.as_object_mut().unwrap();
    for (key, value) in [("every", json!(2)), ("sparsity", json!(0.8))] {
        if map.contains_key(key) {
            map.insert(key.into(), value);
        }
    }
    map.insert("name".into(), json!(name));
    t
}

/// Fraction of pruned entries over all masks (a dense start has no masks: sparsity 0).
fn sparsity(masks: &[Vec<bool>]) -> f64 {
    let (kept, total) = masks
        .iter()
        .flatten()
        .fold((0, 0), |(k, n), m| (k + usize::from(*m), n + 1));
    1.0 - kept as f64 / total.max(1) as f64
}

/// Steps trained after the last mask update: enough for the momentum of an entry whose gradient
/// is 0 to decay from 1 past the smallest normal f32 (`0.9^n < 2⁻¹²⁶` from n = 829), so a state
/// left decaying would turn subnormal.
const TAIL_STEPS: usize = 850;

/// Where an entry is masked in `masks` (one per masked parameter, in `trainee.masked()` order) and
/// its per-entry state value is not 0.0: `(state name, entry, value)`.
fn state_of_masked_entries_under(
    trainee: &Trainee,
    masks: &[Vec<bool>],
) -> Vec<(String, usize, f32)> {
    let mut found = Vec::new();
    for state in trainee.optimizer_state() {
        let Some(keep) = (trainee.masked().iter().zip(masks))
            .find(|(p, _)| p.id == state.param)
            .map(|(_, keep)| keep)
        else {
            continue;
        };
        if state.values.len() == keep.len() {
            found.extend(
                (state.values.iter().zip(keep).enumerate())
                    .filter(|(_, (v, k))| !**k && **v != 0.0)
                    .map(|(i, (v, _))| (state.name.clone(), i, *v)),
            );
        }
    }
    found
}

#[test]
fn every_topology_with_every_optimizer() {
    on_all_cores(topology_contract).expect("a compute pool");
}

fn topology_contract() {
    let data_config: DataConfig = parse_config(&json!({
        "name": "synthetic",
        "validation": 64,
        "synthetic": { "classes": 4, "shape": [1, 6, 6], "train": 320, "test": 64, "noise": 1.5 }
    }))
    .unwrap();
    let data = sparselab::data::load(&data_config, None).unwrap();
    let train_table = json!({ "epochs": 3, "batch": 32, "lr": 0.05 });
    let train: TrainConfig = parse_config(&train_table).unwrap();
    let input = InputShape {
        channels: 1,
        height: 6,
        width: 6,
        classes: 4,
    };
    let steps_per_epoch = data.train.len().div_ceil(train.batch);
    let ctx = TopologyContext {
        total_steps: steps_per_epoch * train.epochs,
        steps_per_epoch,
        seed: 3,
    };
    let device = Device::flex();
    for topology in sparselab::topology::registry().names() {
        for optimizer in sparselab::optimizers::registry().names() {
            let what = format!("{topology} × {optimizer}");
            let tables = RunTables {
                model: json!({ "name": "mlp-300-100", "hidden": [24, 12] }),
                optimizer: json!({ "name": optimizer }),
                topology: topology_table(topology),
                train: train_table.clone(),
                ..RunTables::default()
            };
            let resolved = resolve(&tables, "").unwrap();
            let config = RunConfig {
                data: data_config.clone(),
                train: resolved.train,
                method: resolved.method,
                seed: 3,
            };
            let mut trainee = Trainee::new(&config, input, &device, ctx.clone()).unwrap();
            let t = trainee.topology().unwrap();
            let (zeroed, monotone, target, exact) = (
                t.masked_entries() == MaskedEntries::Zeroed,
                t.monotone(),
                t.target_sparsity(),
                t.reaches_target_exactly(),
            );
            let ids: Vec<_> = trainee.masked().iter().map(|p| p.id).collect();
            let keep = |tr: &Trainee| -> Vec<Vec<bool>> {
                ids.iter()
                    .map(|id| tr.masks().get(*id).map_or_else(Vec::new, <[bool]>::to_vec))
                    .collect()
            };
            let initial = keep(&trainee);
            let mut previous = initial.clone();
            let mut step = 0;
            for epoch in 0..train.epochs {
                let order = Order::Shuffled {
                    seed: 3,
                    epoch,
                    augment: data.augment,
                };
                for batch in batches(
                    &data.train,
                    data.shape,
                    train.batch,
                    order,
                    &device.clone().autodiff(),
                ) {
                    step += 1;
                    let _ = trainee.step(batch, train.lr, step);
                    let now = keep(&trainee);
                    if zeroed {
                        for (values, mask) in trainee.masked_values().iter().zip(&now) {
                            for (v, k) in values.iter().zip(mask) {
                                assert!(
                                    *k || *v == 0.0,
                                    "{what}: masked weight {v} at step {step}"
                                );
                            }
                        }
                        // The masks this step's update ran under; new ones restart at the next.
                        let kept_state = state_of_masked_entries_under(&trainee, &previous);
                        assert!(
                            kept_state.is_empty(),
                            "{what}: state of masked entries at step {step}: {:?}",
                            &kept_state[..kept_state.len().min(3)]
                        );
                    }
                    if monotone {
                        for (old, new) in previous.iter().zip(&now) {
                            for (o, n) in old.iter().zip(new) {
                                assert!(
                                    *o || !*n || old.is_empty(),
                                    "{what}: regrown at step {step}"
                                );
                            }
                        }
                    }
                    previous = now;
                }
            }
            // Past the last mask update, long enough for a left-over state to turn subnormal.
            let autodiff = device.clone().autodiff();
            let tail = (train.epochs..).flat_map(|epoch| {
                let order = Order::Shuffled {
                    seed: 3,
                    epoch,
                    augment: data.augment,
                };
                batches(&data.train, data.shape, train.batch, order, &autodiff)
            });
            for batch in tail.take(TAIL_STEPS) {
                step += 1;
                let _ = trainee.step(batch, train.lr, step);
            }
            let found = trainee.subnormals();
            assert!(found.is_empty(), "{what}: subnormal values in {found:?}");
            if zeroed {
                let kept_state = state_of_masked_entries_under(&trainee, &keep(&trainee));
                assert!(
                    kept_state.is_empty(),
                    "{what}: state of masked entries at the end"
                );
            }
            let (final_sparsity, initial_sparsity) = (sparsity(&previous), sparsity(&initial));
            if exact {
                assert!(
                    (final_sparsity - target).abs() < 0.02,
                    "{what}: final sparsity {final_sparsity} vs target {target}"
                );
            } else {
                assert!(
                    (final_sparsity - target).abs() < (initial_sparsity - target).abs(),
                    "{what}: sparsity went from {initial_sparsity} to {final_sparsity}, not towards {target}"
                );
            }
        }
    }
}
