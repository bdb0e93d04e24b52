//! Contract of checkpoints with every registered method: a run stopped at any step, its
//! checkpoint written to bytes, read back and resumed in a new trainee (a new model build, with
//! other parameter ids), ends as the uninterrupted run does, bit for bit: the same epoch records
//! and final record (timings aside), and the same checkpoint, weights, masks, optimiser state and
//! all, at every later epoch boundary. The registries iterate, so a new topology, optimiser or
//! loss term is covered without a new test.
//!
//! Stops fall inside an epoch (at a step that is no multiple of the topologies' update interval,
//! and at one that is) and at an epoch boundary; one run is stopped twice.

use burn::tensor::Device;
use serde_json::{Value, json};
use sparselab::core::config::parse_config;
use sparselab::data::{DataConfig, Dataset};
use sparselab::runner::checkpoint::{Checkpoint, Owner};
use sparselab::runner::experiment::{PlannedRun, RunConfig};
use sparselab::runner::interrupt::Interrupted;
use sparselab::runner::jobs::on_all_cores;
use sparselab::runner::record::{EpochRecord, FinalRecord};
use sparselab::runner::resolve::{RunTables, resolve};
use sparselab::runner::train::{Observer, train};

const EPOCHS: usize = 3;
/// 256 training examples (320 less 64 for validation) in batches of 32.
const STEPS_PER_EPOCH: usize = 8;

/// Keeps every checkpoint; asks to stop after `stop_after` steps of this call, if set.
#[derive(Default)]
struct Recorder {
    stop_after: Option<usize>,
    steps: usize,
    checkpoints: Vec<Checkpoint>,
}

impl Observer for Recorder {
    fn step(&mut self, _: usize, _: usize, _: usize, _: f64) {}

    fn epoch(&mut self, _: &[EpochRecord]) -> anyhow::Result<()> {
        Ok(())
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        self.checkpoints.push(checkpoint.clone());
        Ok(())
    }

    fn stop(&mut self) -> bool {
        self.steps += 1;
        self.stop_after == Some(self.steps)
    }
}

/// A finished run: its records, and the checkpoints of its epoch boundaries by epoch.
struct Trained {
    outcome: FinalRecord,
    epochs: Vec<EpochRecord>,
    boundaries: Vec<(usize, Checkpoint)>,
}

fn owner(run: &PlannedRun) -> Owner {
    Owner {
        run_id: run.id.clone(),
        identity: run.config.identity().to_string(),
    }
}

/// Trains `run` from `resume` (through bytes, as a store keeps it), stopping after `stop_after`
/// steps if set: the finished run, or the checkpoint of the stop.
fn attempt(
    run: &PlannedRun,
    data: &Dataset,
    resume: Option<&Checkpoint>,
    stop_after: Option<usize>,
) -> Result<Trained, Box<Checkpoint>> {
    let resume = resume.map(|c| {
        let bytes = c.to_bytes(&owner(run)).unwrap();
        Checkpoint::from_bytes(bytes, &owner(run)).unwrap()
    });
    let mut recorder = Recorder {
        stop_after,
        ..Recorder::default()
    };
    match train(run, data, &Device::flex(), &mut recorder, resume) {
        Ok((outcome, epochs)) => Ok(Trained {
            outcome,
            epochs,
            boundaries: recorder
                .checkpoints
                .into_iter()
                .map(|c| (c.position.epoch, c))
                .collect(),
        }),
        Err(e) => {
            assert!(e.downcast_ref::<Interrupted>().is_some(), "{e:#}");
            Err(Box::new(
                recorder
                    .checkpoints
                    .pop()
                    .expect("a checkpoint at the stop"),
            ))
        }
    }
}

fn without_timings_epoch(e: &EpochRecord) -> EpochRecord {
    EpochRecord {
        epoch_seconds: 0.0,
        samples_per_sec: 0.0,
        ..e.clone()
    }
}

fn without_timings_final(f: &FinalRecord) -> Value {
    let mut v = serde_json::to_value(f).unwrap();
    for key in [
        "train_seconds",
        "wall_seconds",
        "samples_per_sec",
        "resumed",
    ] {
        v.as_object_mut().unwrap().remove(key);
    }
    v["last"]["epoch_seconds"] = json!(0.0);
    v["last"]["samples_per_sec"] = json!(0.0);
    v
}

fn without_timings_checkpoint(c: &Checkpoint) -> Checkpoint {
    let mut c = c.clone();
    c.position.epoch_seconds = 0.0;
    c.position.train_seconds = 0.0;
    c.position.wall_seconds = 0.0;
    c.position.resumed = 0;
    c.position.epochs = c
        .position
        .epochs
        .iter()
        .map(without_timings_epoch)
        .collect();
    c
}

/// `resumed` ends as `straight` did: same records and the same state at every epoch boundary
/// both passed.
fn assert_same(what: &str, straight: &Trained, resumed: &Trained) {
    assert_eq!(
        without_timings_final(&straight.outcome),
        without_timings_final(&resumed.outcome),
        "{what}: final record"
    );
    let strip = |e: &[EpochRecord]| e.iter().map(without_timings_epoch).collect::<Vec<_>>();
    assert_eq!(
        strip(&straight.epochs),
        strip(&resumed.epochs),
        "{what}: epochs"
    );
    assert!(!resumed.boundaries.is_empty() || resumed.epochs.len() == EPOCHS);
    for (epoch, c) in &resumed.boundaries {
        let (_, s) = (straight.boundaries.iter())
            .find(|(e, _)| e == epoch)
            .expect("the straight run passed the boundary");
        let (s, c) = (without_timings_checkpoint(s), without_timings_checkpoint(c));
        assert_eq!(
            s.position, c.position,
            "{what}: position after epoch {epoch}"
        );
        let t = (&s.trainee, &c.trainee);
        assert_eq!(
            t.0.values, t.1.values,
            "{what}: weights after epoch {epoch}"
        );
        assert_eq!(t.0.masks, t.1.masks, "{what}: masks after epoch {epoch}");
        assert_eq!(t.0.latent, t.1.latent, "{what}: latent after epoch {epoch}");
        assert_eq!(t.0.resets, t.1.resets, "{what}: resets after epoch {epoch}");
        // Bytes, compared without printing them.
        assert!(
            t.0.optimizer == t.1.optimizer,
            "{what}: optimiser state after epoch {epoch} ({} and {} bytes)",
            t.0.optimizer.len(),
            t.1.optimizer.len()
        );
        assert_eq!(
            t.0.topology, t.1.topology,
            "{what}: topology after epoch {epoch}"
        );
    }
}

fn data_config() -> DataConfig {
    parse_config(&json!({
        "name": "synthetic",
        "validation": 64,
        "synthetic": { "classes": 4, "shape": [1, 6, 6], "train": 320, "test": 64, "noise": 1.5 }
    }))
    .unwrap()
}

/// A member's defaults with a short update interval and sparsity 0.8 where it has those keys.
fn member(defaults: Value, name: &str) -> Value {
    let mut t = defaults;
    let map = t.as_object_mut().unwrap();
    for (key, value) in [("every", json!(3)), ("sparsity", json!(0.8))] {
        if map.contains_key(key) {
            map.insert(key.into(), value);
        }
    }
    map.insert("name".into(), json!(name));
    t
}

fn planned(tables: RunTables) -> PlannedRun {
    let resolved = resolve(&tables, "").unwrap();
    let config = RunConfig {
        data: data_config(),
        train: resolved.train,
        method: resolved.method,
        seed: 5,
    };
    PlannedRun {
        id: format!("contract-{}", config.identity()),
        arm: "contract".into(),
        label: "contract".into(),
        sweep: Default::default(),
        config,
    }
}

/// Every way of stopping `run`, each resumed and compared with the straight run.
fn check(what: &str, run: &PlannedRun, data: &Dataset) {
    let straight = attempt(run, data, None, None).unwrap_or_else(|_| panic!("{what}: stopped"));
    assert_eq!(straight.epochs.len(), EPOCHS, "{what}");
    // At an epoch boundary: the checkpoint written after epoch 1.
    let (_, boundary) = &straight.boundaries[0];
    let resumed = attempt(run, data, Some(boundary), None).unwrap_or_else(|_| panic!("{what}"));
    assert_same(
        &format!("{what}, resumed after epoch 1"),
        &straight,
        &resumed,
    );
    // Inside epochs, twice: after step 13 (topology updates are due every 3 steps), then after
    // step 18, on which an update is due. `stop` is asked after every step but an epoch's last,
    // and once more at each epoch boundary.
    let first = attempt(run, data, None, Some(STEPS_PER_EPOCH + 5))
        .err()
        .unwrap_or_else(|| panic!("{what}: did not stop"));
    assert_eq!(first.position.step, 13, "{what}");
    let second = attempt(run, data, Some(&first), Some(5))
        .err()
        .unwrap_or_else(|| panic!("{what}: did not stop again"));
    assert_eq!(second.position.step, 18, "{what}");
    assert_eq!(second.position.resumed, 1, "{what}");
    let resumed = attempt(run, data, Some(&second), None).unwrap_or_else(|_| panic!("{what}"));
    assert_eq!(resumed.outcome.resumed, 2, "{what}");
    assert_same(
        &format!("{what}, stopped at steps 13 and 24"),
        &straight,
        &resumed,
    );
}

#[test]
fn every_method_resumes_bit_for_bit() {
    on_all_cores(resume_contract).expect("a compute pool");
}

fn resume_contract() {
    let data = sparselab::data::load(&data_config(), None).unwrap();
    let train = json!({ "epochs": EPOCHS, "batch": 32, "lr": 0.05 });
    let mlp = json!({ "name": "mlp-300-100", "hidden": [24, 12] });
    let topologies = sparselab::topology::registry();
    let optimizers = sparselab::optimizers::registry();
    // Every topology with a momentum optimiser and a dual-averaging one (state that moves
    // weights under a mask), and every optimiser under a pruning schedule (resets pending).
    let mut cases: Vec<(String, RunTables)> = Vec::new();
    for topology in topologies.names() {
        for optimizer in ["sgd", "rmda"] {
            let mut opt = optimizers.get(optimizer).unwrap().defaults();
            opt["name"] = json!(optimizer);
            cases.push((
                format!("{topology} × {optimizer}"),
                RunTables {
                    model: mlp.clone(),
                    optimizer: opt,
                    topology: member(topologies.get(topology).unwrap().defaults(), topology),
                    train: train.clone(),
                    ..RunTables::default()
                },
            ));
        }
    }
    for optimizer in optimizers.names() {
        cases.push((
            format!("gmp × {optimizer}"),
            RunTables {
                model: mlp.clone(),
                optimizer: json!({ "name": optimizer }),
                topology: member(topologies.get("gmp").unwrap().defaults(), "gmp"),
                train: train.clone(),
                ..RunTables::default()
            },
        ));
    }
    let losses = sparselab::losses::registry();
    for loss in losses.names() {
        let mut term = losses.get(loss).unwrap().defaults();
        term["name"] = json!(loss);
        if term.get("every").is_some() {
            term["every"] = json!(3);
        }
        cases.push((
            format!("loss {loss}"),
            RunTables {
                model: json!({ "name": "resmlp", "width": 8, "depth": 3 }),
                optimizer: json!({ "name": "sgd" }),
                losses: vec![term],
                train: train.clone(),
                ..RunTables::default()
            },
        ));
    }
    for (what, tables) in cases {
        check(&what, &planned(tables), &data);
    }
}
