//! Progress display: one bar for the ablation (runs done / total, ETA) and one for the current
//! run (epoch, loss, accuracy) on a terminal; one plain line per finished run otherwise.

use crate::record::{EpochRecord, FinalRecord, Status};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

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
    run: ProgressBar,
    tty: bool,
    done: usize,
    total: usize,
}

impl Progress {
    /// A display for `total` runs of which `done` are already finished.
    pub fn new(name: &str, total: usize, done: usize) -> Self {
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
        let run = multi.add(ProgressBar::new(0));
        run.set_style(
            ProgressStyle::with_template("  {prefix} [{bar:30}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        Self {
            multi,
            ablation,
            run,
            tty,
            done,
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

    /// A run starts.
    pub fn start_run(&mut self, label: &str, epochs: usize, steps_per_epoch: usize) {
        self.run.reset();
        self.run.set_length((epochs * steps_per_epoch) as u64);
        self.run.set_position(0);
        self.run.set_prefix(label.to_string());
        self.run.set_message("starting");
    }

    /// Training progress within the run.
    pub fn step(&self, epoch: usize, step_in_epoch: usize, steps_per_epoch: usize, loss: f64) {
        self.run
            .set_position(((epoch - 1) * steps_per_epoch + step_in_epoch) as u64);
        self.run
            .set_message(format!("epoch {epoch}, loss {loss:.4}"));
    }

    /// An epoch ended.
    pub fn epoch(&self, record: &EpochRecord) {
        self.run.set_message(format!(
            "epoch {}: loss {:.4}, {}, sparsity {:.1}%",
            record.epoch,
            record.train_loss,
            held_out(record),
            100.0 * record.weight_sparsity
        ));
    }

    /// A run ended.
    pub fn finish_run(&mut self, label: &str, outcome: &FinalRecord) {
        self.done += 1;
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
        self.println(&format!(
            "[{}/{}] {label}: {summary}",
            self.done, self.total
        ));
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.run.finish_and_clear();
        self.ablation.finish_and_clear();
    }
}
