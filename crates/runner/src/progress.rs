//! Progress display: one bar for the ablation (runs done / total, ETA) and one per job for the
//! run it trains (epoch, loss, accuracy) on a terminal; one plain line per finished run
//! otherwise. Every method takes `&self`, so concurrent jobs share one display.

use crate::record::{EpochRecord, FinalRecord, Status};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The held-out accuracy shown while training: validation, so that nobody tunes on the test
/// set by watching the progress bar (test accuracy only when there is no validation split; the
/// tables report both).
fn held_out(record: &EpochRecord) -> String {
    match record.val_accuracy {
        Some(v) => format!("val acc {:.2}%", 100.0 * v),
        None => format!("test acc {:.2}%", 100.0 * record.test_accuracy),
    }
}

/// Progress of an ablation.
pub struct Progress {
    multi: MultiProgress,
    ablation: ProgressBar,
    /// One bar per job (`slot`).
    runs: Vec<ProgressBar>,
    tty: bool,
    done: AtomicUsize,
    total: usize,
}

impl Progress {
    /// A display for `total` runs of which `done` are already finished, trained by `jobs`
    /// concurrent jobs.
    pub fn new(name: &str, total: usize, done: usize, jobs: usize) -> Self {
        let tty = std::io::stderr().is_terminal();
        let target = if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let multi = MultiProgress::with_draw_target(target);
        let ablation = multi.add(ProgressBar::new(total as u64));
        ablation.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{bar:30}] {pos}/{len} runs, {elapsed} elapsed, ETA {eta}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        ablation.set_prefix(name.to_string());
        ablation.set_position(done as u64);
        ablation.reset_eta();
        let runs = (0..jobs.max(1))
            .map(|_| {
                let run = multi.add(ProgressBar::new(0));
                run.set_style(
                    ProgressStyle::with_template("  {prefix} [{bar:30}] {msg}")
                        .expect("valid template")
                        .progress_chars("=> "),
                );
                run
            })
            .collect();
        Self {
            multi,
            ablation,
            runs,
            tty,
            done: AtomicUsize::new(done),
            total,
        }
    }

    /// Prints a line above the bars (or to stderr without a terminal).
    pub fn println(&self, line: &str) {
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn bar(&self, slot: usize) -> &ProgressBar {
        &self.runs[slot % self.runs.len()]
    }

    /// Job `slot` starts a run.
    pub fn start_run(&self, slot: usize, label: &str, epochs: usize, steps_per_epoch: usize) {
        let run = self.bar(slot);
        run.reset();
        run.set_length((epochs * steps_per_epoch) as u64);
        run.set_position(0);
        run.set_prefix(label.to_string());
        run.set_message("starting");
    }

    /// Training progress within job `slot`'s run.
    pub fn step(
        &self,
        slot: usize,
        epoch: usize,
        step_in_epoch: usize,
        steps_per_epoch: usize,
        loss: f64,
    ) {
        let run = self.bar(slot);
        run.set_position(((epoch - 1) * steps_per_epoch + step_in_epoch) as u64);
        run.set_message(format!("epoch {epoch}, loss {loss:.4}"));
    }

    /// An epoch of job `slot`'s run ended.
    pub fn epoch(&self, slot: usize, record: &EpochRecord) {
        self.bar(slot).set_message(format!(
            "epoch {}: loss {:.4}, {}, sparsity {:.1}%",
            record.epoch,
            record.train_loss,
            held_out(record),
            100.0 * record.weight_sparsity
        ));
    }

    /// A run ended.
    pub fn finish_run(&self, label: &str, outcome: &FinalRecord) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        self.ablation.inc(1);
        let summary = match (&outcome.status, &outcome.last) {
            (Status::Finished, Some(last)) => format!(
                "{}, sparsity {:.1}%, {:.0} samples/s, {:.0}s",
                held_out(last),
                100.0 * last.weight_sparsity,
                outcome.samples_per_sec,
                outcome.wall_seconds
            ),
            _ => format!(
                "diverged: {}",
                outcome.note.as_deref().unwrap_or("non-finite loss")
            ),
        };
        self.println(&format!("[{done}/{}] {label}: {summary}", self.total));
    }

    /// Removes the bars.
    pub fn finish(&self) {
        for run in &self.runs {
            run.finish_and_clear();
        }
        self.ablation.finish_and_clear();
    }
}
