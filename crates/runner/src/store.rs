//! The results store: `results/<ablation>/<run-id>/` per run, written atomically.
//!
//! A run directory holds `config.json` and `env.json` (written when the run starts),
//! `epochs.json` (rewritten after every epoch), `checkpoint.bpk` while it trains
//! ([`crate::checkpoint`]: rewritten after every epoch and when the process is asked to stop,
//! deleted when the run finishes) and `final.json` (written last). Every file is written to a
//! temporary name and renamed, so an interrupted process never leaves a half-written file, and
//! a failed write (a full disk, a read-only directory) leaves the previous version in place. A
//! run without `final.json` is unfinished: the next `ablate` resumes it from its checkpoint, or
//! trains it from its start when it has none. Finished runs (including diverged ones) are
//! skipped.
//!
//! Several processes may share a store: a process writes a run's directory only while it holds
//! the run's lease, `<run-id>.lease` next to it ([`crate::lease`]), so each run is trained by one
//! process; finished runs are never written again, so reading them needs no lease.

use crate::aggregate::RunResult;
use crate::checkpoint::{Checkpoint, Owner};
use crate::env::Env;
use crate::experiment::{Ablation, PlannedRun};
use crate::lease::{Lease, Taken};
use crate::record::{EpochRecord, FinalRecord, best_validation, identification_from};
use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically (a temporary file in the same directory, then rename).
/// The temporary name is private to the call, process and host, so processes rendering the same
/// table at once never write into each other's temporary file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = crate::lease::private_name(path, "tmp");
    let written = std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        // Whatever part of the temporary file was written is of no use to anyone.
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

pub(crate) fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    write_atomic(path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// A run's checkpoint, in its directory.
const CHECKPOINT: &str = "checkpoint.bpk";

/// The directory of one ablation's results.
#[derive(Clone, Debug)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The store of `ablation` under `out` (`<out>/<name>`, or `<out>/<name>-quick` in quick
    /// mode, so smoke runs never mix with the real experiment).
    pub fn new(out: &Path, ablation: &Ablation) -> Self {
        let name = if ablation.quick {
            format!("{}-quick", ablation.name)
        } else {
            ablation.name.clone()
        };
        Self {
            dir: out.join(name),
        }
    }

    /// The ablation's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Removes the temporary files that processes of this host killed mid-write left in the
    /// ablation's directory (a table being rendered, say); those of live processes stay.
    pub fn remove_abandoned_temporaries(&self) {
        for entry in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            if crate::lease::abandoned_private_name(&entry.file_name().to_string_lossy()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// A run's directory.
    pub fn run_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// The stored result of `run`, if it finished (or diverged). Its identification epoch and its
    /// model-selection epoch are derived again from the stored epochs ([`identification_from`],
    /// [`best_validation`]), so results written under an older rule are shown under the current
    /// one.
    pub fn finished(&self, run: &PlannedRun) -> anyhow::Result<Option<RunResult>> {
        self.read_finished(run).with_context(|| {
            format!(
                "the stored record of run {} is damaged; delete {} and the next `ablate` trains the run again",
                run.id,
                self.run_dir(&run.id).display()
            )
        })
    }

    fn read_finished(&self, run: &PlannedRun) -> anyhow::Result<Option<RunResult>> {
        let dir = self.run_dir(&run.id);
        if !dir.join("final.json").is_file() {
            return Ok(None);
        }
        let mut outcome: FinalRecord = read_json(&dir.join("final.json"))?;
        // A process killed between writing `final.json` and deleting the checkpoint leaves it;
        // a finished run is never opened again, so no one reads it.
        let _ = std::fs::remove_file(dir.join(CHECKPOINT));
        // A run that diverged in its first epoch recorded no epoch, so it has no `epochs.json`;
        // for any other run the file must be there.
        let epochs_file = dir.join("epochs.json");
        let epochs: Vec<EpochRecord> = if outcome.epochs == 0 && !epochs_file.exists() {
            Vec::new()
        } else {
            read_json(&epochs_file)?
        };
        outcome.identification_epoch = identification_from(&epochs);
        let best = best_validation(&epochs);
        outcome.best_val_epoch = best.map(|e| e.epoch);
        outcome.test_accuracy_at_best_val = best.map(|e| e.test_accuracy);
        Ok(Some(RunResult {
            run: run.clone(),
            outcome,
            epochs,
        }))
    }

    /// The whole-run wall time (seconds, evaluation included) of the finished run `id`, if it is
    /// stored: what a search probe cost, read without planning it again.
    pub fn wall_seconds(&self, id: &str) -> Option<f64> {
        read_json::<FinalRecord>(&self.run_dir(id).join("final.json"))
            .ok()
            .map(|f| f.wall_seconds)
    }

    /// Takes `run`'s lease ([`crate::lease`]): the right to train it, held until dropped.
    pub fn lease(&self, run: &PlannedRun) -> anyhow::Result<Taken> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        Lease::take(&self.dir.join(format!("{}.lease", run.id)))
    }

    /// Opens `run` to train it: with its checkpoint when an interrupted attempt left one (its
    /// records so far kept), else afresh (any unfinished attempt cleared, config and
    /// environment written).
    ///
    /// # Errors
    /// A checkpoint that cannot be resumed (damaged, of another configuration or format) is
    /// refused, with its path and what to do.
    pub fn open(
        &self,
        ablation: &str,
        run: &PlannedRun,
        env: &Env,
    ) -> anyhow::Result<(RunWriter, Option<Checkpoint>)> {
        let dir = self.run_dir(&run.id);
        let writer = RunWriter {
            owner: Owner {
                run_id: run.id.clone(),
                identity: run.config.identity().to_string(),
            },
            dir: dir.clone(),
        };
        // A writer killed mid-write leaves its temporary file; under the lease no one else
        // writes here, so any left is of no use.
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let path = writer.checkpoint_path();
        if path.is_file() {
            let checkpoint = std::fs::read(&path)
                .map_err(anyhow::Error::from)
                .and_then(|bytes| Checkpoint::from_bytes(bytes, &writer.owner))
                .with_context(|| {
                    format!(
                        "the checkpoint {} cannot be resumed; delete it and the next `ablate` \
                         trains run {} from its start",
                        path.display(),
                        run.id
                    )
                })?;
            return Ok((writer, Some(checkpoint)));
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        write_json(
            &dir.join("config.json"),
            &json!({
                "run_id": run.id,
                "ablation": ablation,
                "arm": run.arm,
                "label": run.label,
                "sweep": run.sweep,
                "config": run.config.to_json(),
                "identity": run.config.identity(),
            }),
        )?;
        write_json(&dir.join("env.json"), env)?;
        Ok((writer, None))
    }
}

/// Writes one run's records as it trains.
#[derive(Debug)]
pub struct RunWriter {
    dir: PathBuf,
    owner: Owner,
}

impl RunWriter {
    fn checkpoint_path(&self) -> PathBuf {
        self.dir.join(CHECKPOINT)
    }

    /// Records the epochs so far (called after every epoch).
    pub fn epochs(&self, epochs: &[EpochRecord]) -> anyhow::Result<()> {
        write_json(&self.dir.join("epochs.json"), &epochs)
    }

    /// Replaces the run's checkpoint.
    pub fn checkpoint(&self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        let path = self.checkpoint_path();
        let bytes = checkpoint.to_bytes(&self.owner)?;
        write_atomic(&path, &bytes).with_context(|| format!("writing {}", path.display()))
    }

    /// Records the outcome: the run is done, and its checkpoint is deleted.
    pub fn finish(self, outcome: &FinalRecord) -> anyhow::Result<()> {
        write_json(&self.dir.join("final.json"), outcome)?;
        let path = self.checkpoint_path();
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("deleting {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("sparselab-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("x.json");
        write_atomic(&p, b"1").unwrap();
        write_atomic(&p, b"2").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"2");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A write that fails after its temporary file was made (here the rename: the target is a
    /// directory that is not empty) removes that file and leaves the target as it was.
    #[test]
    fn a_failed_write_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("sparselab-store-fail-{}", std::process::id()));
        let target = dir.join("x.json");
        std::fs::create_dir_all(target.join("inside")).unwrap();
        assert!(write_atomic(&target, b"1").is_err());
        let names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["x.json"], "{names:?}");
        assert!(target.join("inside").is_dir());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
