//! Mid-run checkpoints: everything an interrupted run needs to go on from where it stopped and
//! end with the bits of an uninterrupted run.
//!
//! A checkpoint is one burnpack file (burn's record format), `checkpoint.bpk` in the run's
//! directory, written atomically after every epoch and when the process is asked to stop
//! ([`crate::interrupt`]), at a step boundary. It holds:
//!
//! - every parameter of the model (`w ⊙ m`, buffers included) as `param.<i>`, `i` the
//!   parameter's position in the model's [`ParamTable`](sparselab_core::ParamTable);
//! - the masks (`mask.<i>`), latent values (`latent.<i>`) and optimiser-state resets still
//!   pending (`reset.<i>`);
//! - the optimiser's burn record with parameters named by position (`optimizer`,
//!   [`sparselab_optimizers::state_record`]);
//! - as CBOR (`state`, exact for every float): where the loop stood ([`Position`]), the
//!   topology's own state, the loss terms' running sums and the epoch records so far.
//!
//! What a checkpoint leaves out is derived again: the learning rate is a function of the step,
//! the data order of an epoch is drawn from `(seed, epoch)` (the batches of the epoch in
//! progress already taken are drawn again and skipped), and the model, topology and optimiser
//! are built again from the run's configuration before the saved state replaces theirs.
//!
//! A checkpoint names the run's id, its configuration's identity and the [`FORMAT`]; one that
//! differs in any of them is refused, never loaded.

use crate::record::EpochRecord;
use anyhow::Context;
use burn_pack::{Bytes, DType, Reader, Tensor, Writer};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The format this version writes and reads; any change to what a checkpoint holds changes it.
pub const FORMAT: &str = "sparselab-checkpoint/1";

/// Where the training loop stood when the checkpoint was written.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Position {
    /// Epochs finished (the epoch in progress, 0-based).
    pub epoch: usize,
    /// Steps of the epoch in progress already taken (0 at an epoch boundary).
    pub step_in_epoch: usize,
    /// Steps taken in the whole run.
    pub step: usize,
    /// The epoch in progress's summed training loss so far (the device's f32 sum).
    pub loss_sum: f32,
    /// The epoch in progress's correct predictions so far.
    pub hits: i64,
    /// Seconds spent in the epoch in progress so far.
    pub epoch_seconds: f64,
    /// Seconds spent training (epochs only) so far.
    pub train_seconds: f64,
    /// Seconds the run has taken so far, evaluation included.
    pub wall_seconds: f64,
    /// The input-group zero pattern at the end of the last finished epoch (for churn).
    pub pattern: Vec<bool>,
    /// The records of the finished epochs.
    pub epochs: Vec<EpochRecord>,
    /// How many times the run was resumed before this checkpoint.
    pub resumed: usize,
}

/// A trainee's state in plain data, parameters named by their position in the model's table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TraineeState {
    /// Every parameter's values (flattened, burn's memory order), table order.
    pub values: Vec<Vec<f32>>,
    /// The masks in force, by position.
    pub masks: Vec<(usize, Vec<bool>)>,
    /// Latent values of masked parameters, by position.
    pub latent: Vec<(usize, Vec<f32>)>,
    /// Optimiser-state resets requested and not yet applied, by position.
    pub resets: Vec<(usize, Vec<bool>)>,
    /// The optimiser's portable burn record (burnpack bytes).
    pub optimizer: Vec<u8>,
    /// What the topology's `state` returned.
    pub topology: serde_json::Value,
    /// `(step, sparsity)` after each topology update since the last epoch record.
    pub trace: Vec<(usize, f64)>,
    /// Each loss term's running sum since the last epoch record (`None`: nothing added) and
    /// count.
    pub loss_sums: Vec<(Option<f32>, usize)>,
}

/// A whole checkpoint.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Checkpoint {
    /// Where the loop stood.
    pub position: Position,
    /// The model and its methods.
    pub trainee: TraineeState,
}

/// The plain-data part, stored as CBOR.
#[derive(Serialize, Deserialize)]
struct Plain {
    position: Position,
    topology: serde_json::Value,
    trace: Vec<(usize, f64)>,
    loss_sums: Vec<(Option<f32>, usize)>,
}

/// Which run a checkpoint belongs to: its id and its configuration's identity (as JSON text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The run id.
    pub run_id: String,
    /// `RunConfig::identity`, serialised.
    pub identity: String,
}

fn tensor(name: String, dtype: DType, len: usize, bytes: Vec<u8>) -> Tensor {
    Tensor::new(name, dtype, [len], None, Bytes::from_bytes_vec(bytes))
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn flag_bytes(v: &[bool]) -> Vec<u8> {
    v.iter().map(|&b| u8::from(b)).collect()
}

impl Checkpoint {
    /// The checkpoint as burnpack bytes, naming `owner`.
    pub fn to_bytes(&self, owner: &Owner) -> anyhow::Result<Vec<u8>> {
        let t = &self.trainee;
        let mut tensors = Vec::new();
        for (i, v) in t.values.iter().enumerate() {
            tensors.push(tensor(
                format!("param.{i}"),
                DType::F32,
                v.len(),
                f32_bytes(v),
            ));
        }
        for (i, m) in &t.masks {
            tensors.push(tensor(
                format!("mask.{i}"),
                DType::U8,
                m.len(),
                flag_bytes(m),
            ));
        }
        for (i, v) in &t.latent {
            tensors.push(tensor(
                format!("latent.{i}"),
                DType::F32,
                v.len(),
                f32_bytes(v),
            ));
        }
        for (i, r) in &t.resets {
            tensors.push(tensor(
                format!("reset.{i}"),
                DType::U8,
                r.len(),
                flag_bytes(r),
            ));
        }
        let n = t.optimizer.len();
        tensors.push(tensor(
            "optimizer".into(),
            DType::U8,
            n,
            t.optimizer.clone(),
        ));
        let mut plain = Vec::new();
        ciborium::into_writer(
            &Plain {
                position: self.position.clone(),
                topology: t.topology.clone(),
                trace: t.trace.clone(),
                loss_sums: t.loss_sums.clone(),
            },
            &mut plain,
        )
        .context("encoding a checkpoint's state")?;
        tensors.push(tensor("state".into(), DType::U8, plain.len(), plain));
        let bytes = Writer::new(tensors)
            .with_metadata("format", FORMAT)
            .with_metadata("run_id", &owner.run_id)
            .with_metadata("identity", &owner.identity)
            .into_bytes()
            .context("encoding a checkpoint")?;
        Ok(bytes.to_vec())
    }

    /// Reads a checkpoint written for `owner`; refuses one of another format, run or
    /// configuration.
    pub fn from_bytes(bytes: Vec<u8>, owner: &Owner) -> anyhow::Result<Self> {
        let reader =
            Reader::from_bytes(Bytes::from_bytes_vec(bytes)).context("not a burnpack file")?;
        let meta = reader.metadata();
        let get = |key: &str| meta.get(key).map_or("(none)", String::as_str);
        anyhow::ensure!(
            get("format") == FORMAT,
            "it has format `{}`, and this sparselab reads `{FORMAT}`",
            get("format")
        );
        anyhow::ensure!(
            get("run_id") == owner.run_id,
            "it belongs to run `{}`, not `{}`",
            get("run_id"),
            owner.run_id
        );
        anyhow::ensure!(
            get("identity") == owner.identity,
            "it was written for another configuration ({} instead of {})",
            get("identity"),
            owner.identity
        );
        let mut parts: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for t in reader.into_tensors().context("reading its tensors")? {
            let (name, _, _, _, bytes) = t.into_parts().context("reading a tensor")?;
            parts.insert(name, bytes.to_vec());
        }
        let mut take = |name: &str| {
            parts
                .remove(name)
                .with_context(|| format!("it has no `{name}`"))
        };
        let plain: Plain =
            ciborium::from_reader(take("state")?.as_slice()).context("decoding its state")?;
        let optimizer = take("optimizer")?;
        let mut trainee = TraineeState {
            optimizer,
            topology: plain.topology,
            trace: plain.trace,
            loss_sums: plain.loss_sums,
            ..TraineeState::default()
        };
        let mut values: BTreeMap<usize, Vec<f32>> = BTreeMap::new();
        for (name, bytes) in parts {
            let (kind, i) = name
                .split_once('.')
                .and_then(|(k, i)| Some((k.to_string(), i.parse::<usize>().ok()?)))
                .with_context(|| format!("it has an unknown part `{name}`"))?;
            let floats = || -> anyhow::Result<Vec<f32>> {
                anyhow::ensure!(bytes.len() % 4 == 0, "`{name}` is not a list of f32");
                Ok(bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect())
            };
            let flags = || bytes.iter().map(|&b| b != 0).collect::<Vec<bool>>();
            match kind.as_str() {
                "param" => {
                    values.insert(i, floats()?);
                }
                "mask" => trainee.masks.push((i, flags())),
                "latent" => trainee.latent.push((i, floats()?)),
                "reset" => trainee.resets.push((i, flags())),
                _ => anyhow::bail!("it has an unknown part `{name}`"),
            }
        }
        anyhow::ensure!(
            values.keys().copied().eq(0..values.len()),
            "its parameters are not numbered 0 to {}",
            values.len()
        );
        trainee.values = values.into_values().collect();
        Ok(Self {
            position: plain.position,
            trainee,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        Owner {
            run_id: "abc".into(),
            identity: "{\"seed\":1}".into(),
        }
    }

    fn sample() -> Checkpoint {
        Checkpoint {
            position: Position {
                epoch: 2,
                step_in_epoch: 3,
                step: 40,
                loss_sum: 0.1 + 0.2,
                hits: 17,
                pattern: vec![true, false],
                epochs: vec![EpochRecord {
                    epoch: 1,
                    train_loss: std::f64::consts::PI / 7.0,
                    ..EpochRecord::default()
                }],
                ..Position::default()
            },
            trainee: TraineeState {
                values: vec![vec![1.0, -0.0, f32::MIN_POSITIVE / 3.0], vec![]],
                masks: vec![(0, vec![true, false, true])],
                latent: vec![(0, vec![1.0, 2.5, 3.0])],
                resets: vec![(0, vec![false, true, false])],
                optimizer: vec![1, 2, 3],
                topology: serde_json::json!({ "gamma_bits": 4_607_182_418_800_017_408_u64 }),
                trace: vec![(10, 1.0 / 3.0)],
                loss_sums: vec![(Some(0.7), 3), (None, 0)],
            },
        }
    }

    /// Every field reads back with the same bits (floats through CBOR, not text).
    #[test]
    fn a_checkpoint_reads_back_exactly() {
        let c = sample();
        let back = Checkpoint::from_bytes(c.to_bytes(&owner()).unwrap(), &owner()).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.trainee.values[0][1].to_bits(), (-0.0f32).to_bits());
    }

    #[test]
    fn another_run_configuration_or_format_is_refused() {
        let bytes = sample().to_bytes(&owner()).unwrap();
        let other_run = Owner {
            run_id: "abd".into(),
            ..owner()
        };
        let other_config = Owner {
            identity: "{\"seed\":2}".into(),
            ..owner()
        };
        for (who, says) in [
            (other_run, "belongs to run"),
            (other_config, "configuration"),
        ] {
            let e = Checkpoint::from_bytes(bytes.clone(), &who).unwrap_err();
            assert!(format!("{e:#}").contains(says), "{e:#}");
        }
        let e = Checkpoint::from_bytes(b"not a checkpoint".to_vec(), &owner()).unwrap_err();
        assert!(format!("{e:#}").contains("burnpack"), "{e:#}");
        let old = Writer::new(Vec::new())
            .with_metadata("format", "sparselab-checkpoint/0")
            .into_bytes()
            .unwrap()
            .to_vec();
        let e = Checkpoint::from_bytes(old, &owner()).unwrap_err();
        assert!(format!("{e:#}").contains("format"), "{e:#}");
    }
}
