//! `cargo xtask export`: a finished run's trained network as a file ([`file`]: safetensors or
//! burnpack, dense weights in PyTorch's layout and CSR forms of the sparse ones).
//!
//! The weights come from the run's kept model (`model.safetensors`, written when the ablation
//! ran with `--keep-models`), or else from training the run again: training is deterministic,
//! and the export checks that the retrained run's records equal the stored ones, bits and all
//! (timings aside), before it writes anything. Either way, the exported weights are evaluated on
//! the test split once more, and must give the run's stored test accuracy exactly.

pub mod file;

use crate::ablate::{Options, choose_all};
use crate::experiment::PlannedRun;
use crate::record::EpochRecord;
use crate::resolve::resolve;
use crate::store::{Store, write_atomic};
use crate::train::{Observer, evaluate, train};
use crate::trainee::Trainee;
use anyhow::Context;
use burn::module::ParamId;
use burn::tensor::Device;
use file::{Container, decode, encode, metadata, tensors};
use sparselab_core::ParamTable;
use sparselab_core::param::{host_values, set_values};
use sparselab_data::Dataset;
use sparselab_models::{Architecture, InputShape, Model};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The name of a run's kept model in its directory.
pub const KEPT_MODEL: &str = "model.safetensors";

/// Every parameter's values of a trained model, table order.
fn all_values(model: &Model, table: &ParamTable) -> Vec<Vec<f32>> {
    let ids: Vec<ParamId> = table.iter().map(|p| p.id).collect();
    host_values(model, &ids)
}

/// The file of `run`'s trained `trainee`, in `container`.
pub fn model_file(
    container: Container,
    ablation: &str,
    run: &PlannedRun,
    trainee: &Trainee,
    test_accuracy: f64,
) -> anyhow::Result<Vec<u8>> {
    let values = all_values(trainee.model(), trainee.table());
    encode(
        container,
        &tensors(trainee.table(), &values),
        metadata(ablation, run, test_accuracy),
    )
}

/// Writes the kept model of a run that just finished (`ablate --keep-models`).
pub fn keep(
    dir: &Path,
    ablation: &str,
    run: &PlannedRun,
    trainee: &Trainee,
    test_accuracy: f64,
) -> anyhow::Result<()> {
    let bytes = model_file(
        Container::Safetensors,
        ablation,
        run,
        trainee,
        test_accuracy,
    )?;
    let path = dir.join(KEPT_MODEL);
    write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))
}

/// The input shape of `data`.
fn input_of(data: &Dataset) -> InputShape {
    InputShape {
        channels: data.shape[0],
        height: data.shape[1],
        width: data.shape[2],
        classes: data.classes,
    }
}

/// `run`'s model (built from its configuration) holding the weights of an export, and its test
/// accuracy on `data`.
///
/// # Errors
/// If the export is not of this run or does not fit its model.
pub fn load(
    bytes: &[u8],
    run: &PlannedRun,
    data: &Dataset,
    device: &Device,
) -> anyhow::Result<(Model, f64)> {
    let export = decode(bytes)?;
    let id = export
        .metadata
        .get("run_id")
        .map_or("(none)", String::as_str);
    anyhow::ensure!(
        id == run.id,
        "the export is of run `{id}`, not `{}`",
        run.id
    );
    let parts = resolve(&run.config.tables(), "")?.methods;
    let model = parts.model.build(input_of(data), device)?;
    let table = model.describe();
    let values = export.values(&table)?;
    let by_id: HashMap<ParamId, Vec<f32>> = table.iter().map(|p| p.id).zip(values).collect();
    let model = set_values(model, &by_id).map_err(anyhow::Error::msg)?;
    let (_, accuracy, _) = evaluate(&model, &data.test, data, device);
    Ok((model, accuracy))
}

/// Keeps the weights of a run trained again for an export.
#[derive(Default)]
struct Retrain {
    values: Option<Vec<Vec<f32>>>,
}

impl Observer for Retrain {
    fn step(&mut self, _: usize, _: usize, _: usize, _: f64) {}

    fn epoch(&mut self, epochs: &[EpochRecord]) -> anyhow::Result<()> {
        if let Some(e) = epochs.last() {
            eprintln!(
                "  epoch {}: test accuracy {:.2} %",
                e.epoch,
                100.0 * e.test_accuracy
            );
        }
        Ok(())
    }

    fn trained(&mut self, trainee: &Trainee) -> anyhow::Result<()> {
        self.values = Some(all_values(trainee.model(), trainee.table()));
        Ok(())
    }
}

/// Records as the store writes them (JSON text, read back), without what differs between two
/// trainings of one run (timings, measured speedups, resume counts). Text, since a float read back from text
/// need not have the bits it was written from.
fn comparable(final_json: &str, epochs_json: &str) -> anyhow::Result<serde_json::Value> {
    let mut v = serde_json::json!({
        "final": serde_json::from_str::<serde_json::Value>(final_json)?,
        "epochs": serde_json::from_str::<serde_json::Value>(epochs_json)?,
    });
    crate::record::without_timings(&mut v);
    Ok(v)
}

/// Exports run `run_id` of ablation `name` (as `opts` plans it) in `container` to `out` (default:
/// `<run dir>/model.<ext>`); returns the file's path and its test accuracy, which is the run's
/// stored one.
///
/// # Errors
/// An unknown run id (the error lists the ablation's runs), an unfinished run, a kept model of
/// another run, a retraining that does not reproduce the stored records, or an exported model
/// whose test accuracy is not the stored one.
pub fn export(
    name: &str,
    run_id: &str,
    container: Container,
    out: Option<PathBuf>,
    opts: &Options,
) -> anyhow::Result<(PathBuf, f64)> {
    let mut ablation = opts.load(name)?;
    let store = Store::new(&opts.out, &ablation);
    choose_all(&mut ablation, &mut |run| store.finished(run))?;
    let run = (ablation.runs.iter())
        .find(|r| r.id == run_id)
        .with_context(|| {
            let ids: Vec<String> = (ablation.runs.iter())
                .map(|r| format!("{} ({} seed {})", r.id, r.label, r.config.seed))
                .collect();
            format!(
                "ablation `{name}` has no run `{run_id}`; its runs: {}",
                ids.join(", ")
            )
        })?
        .clone();
    let dir = store.run_dir(&run.id);
    let stored = store.finished(&run)?.with_context(|| {
        format!(
            "run `{run_id}` of `{name}` has not finished (no final.json in {}); train it first \
             with `cargo xtask ablate {name}{}`",
            dir.display(),
            if opts.quick { " --quick" } else { "" }
        )
    })?;
    let stored_accuracy = (stored.outcome.last.as_ref())
        .map(|e| e.test_accuracy)
        .context("the run recorded no epoch")?;
    let selected = crate::device::select(opts.device).map_err(anyhow::Error::msg)?;
    let data = sparselab_data::load(&ablation.data, opts.data_dir.as_deref())?;
    let table = resolve(&run.config.tables(), "")?
        .methods
        .model
        .build(input_of(&data), &selected.device)?
        .describe();
    let kept = dir.join(KEPT_MODEL);
    let values = if kept.is_file() {
        let bytes = std::fs::read(&kept).with_context(|| format!("reading {}", kept.display()))?;
        decode(&bytes)
            .and_then(|e| e.values(&table))
            .with_context(|| format!("reading {}", kept.display()))?
    } else {
        eprintln!(
            "{name}: training run {run_id} again for its weights ({} epochs; `ablate \
             --keep-models` keeps them)",
            run.config.train.epochs
        );
        let mut observer = Retrain::default();
        let (outcome, epochs) = crate::jobs::on_all_cores(|| {
            train(&run, &data, &selected.device, &mut observer, None)
        })??;
        let read = |f: &str| {
            let path = dir.join(f);
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
        };
        let again = comparable(
            &serde_json::to_string(&outcome)?,
            &serde_json::to_string(&epochs)?,
        )?;
        anyhow::ensure!(
            again == comparable(&read("final.json")?, &read("epochs.json")?)?,
            "training run {run_id} again did not reproduce its stored records (another CPU \
             kind, or another version of sparselab than {}'s env.json names); nothing exported",
            dir.display()
        );
        observer.values.context("the run ended without a model")?
    };
    let bytes = encode(
        container,
        &tensors(&table, &values),
        metadata(name, &run, stored_accuracy),
    )?;
    let (_, accuracy) = load(&bytes, &run, &data, &selected.device)
        .with_context(|| format!("reading back the export of run {run_id}"))?;
    anyhow::ensure!(
        accuracy.to_bits() == stored_accuracy.to_bits(),
        "the exported model's test accuracy is {accuracy}, and the run stored {stored_accuracy}; \
         nothing exported"
    );
    let path = out.unwrap_or_else(|| dir.join(format!("model.{}", container.extension())));
    write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok((path, accuracy))
}
