//! `cargo xtask slurm`: the sbatch scripts that train an ablation as a SLURM array job, and a job
//! that renders its tables, figures and report once every task has ended. sparselab schedules
//! nothing itself; these are plain scripts for the scheduler a cluster already has.
//!
//! Each array task runs `ablate` on its shard (taken from `SLURM_ARRAY_TASK_ID`), all tasks on
//! one results directory: the store's leases make a run trained once even when tasks overlap
//! (a requeued task, a second submission), and a run whose task died is taken over by the next
//! `ablate` that looks at it.

use std::fmt::Write;
use std::path::{Path, PathBuf};

/// What the scripts run.
#[derive(Clone, Debug)]
pub struct Job {
    /// Ablation name.
    pub ablation: String,
    /// Array tasks (shards).
    pub tasks: u64,
    /// CPU cores per task.
    pub cpus: u64,
    /// Seconds before the time limit at which SLURM signals a task (`--signal=B:USR1@s`).
    pub signal_seconds: u64,
    /// The xtask binary the tasks run (the one writing the scripts, so tasks run the same build).
    pub xtask: PathBuf,
    /// The project root the tasks work in.
    pub root: PathBuf,
    /// Flags passed on to `ablate` (device, results root, quick mode, ...).
    pub ablate_flags: Vec<String>,
    /// Flags passed on to `plot` and `report` (results root, quick mode).
    pub render_flags: Vec<String>,
    /// Extra `#SBATCH` options for both jobs (partition, time, account, ...).
    pub sbatch: Vec<String>,
    /// Where the tasks' logs go.
    pub logs: PathBuf,
}

/// The three scripts: the array job, the rendering job, and the two submissions chained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scripts {
    /// The array job: one task per shard.
    pub array: String,
    /// Tables, figures and the report, after every task has ended well.
    pub render: String,
    /// Submits both, the second depending on the first (`--dependency=afterok`).
    pub submit: String,
}

/// `s` quoted for bash.
fn quoted(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-=:@%+,".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

fn path(p: &Path) -> String {
    quoted(&p.to_string_lossy())
}

/// The interpreter line, `about` as comments, and the `#SBATCH` options both jobs share; `log`
/// names the job's log file in [`Job::logs`].
fn header(out: &mut String, job: &Job, name: &str, cpus: u64, about: &str, log: &str) {
    let _ = writeln!(out, "#!/bin/bash");
    for line in about.lines() {
        let _ = writeln!(out, "# {line}");
    }
    let _ = writeln!(out, "#SBATCH --job-name={}", quoted(name));
    let _ = writeln!(out, "#SBATCH --cpus-per-task={cpus}");
    let _ = writeln!(out, "#SBATCH --output={}", path(&job.logs.join(log)));
    for extra in &job.sbatch {
        let _ = writeln!(out, "#SBATCH {}", quoted(extra));
    }
}

/// The scripts for `job`.
pub fn scripts(job: &Job) -> Scripts {
    let name = format!("sparselab-{}", job.ablation);
    let xtask = path(&job.xtask);
    let mut array = String::new();
    let about = format!(
        "Trains ablation `{}` as {} SLURM array tasks, each its shard of the runs, all in one \
         results directory.\nWritten by `cargo xtask slurm`; submit with submit.sh.",
        job.ablation, job.tasks
    );
    header(&mut array, job, &name, job.cpus, &about, "%x-%A_%a.out");
    let _ = writeln!(array, "#SBATCH --array=0-{}", job.tasks.saturating_sub(1));
    let _ = writeln!(array, "#SBATCH --requeue");
    // A requeued task writes to the same log: keep what its earlier attempts wrote.
    let _ = writeln!(array, "#SBATCH --open-mode=append");
    let _ = writeln!(array, "#SBATCH --signal=B:USR1@{}", job.signal_seconds);
    let _ = writeln!(array, "set -uo pipefail\ncd {}", path(&job.root));
    let _ = writeln!(
        array,
        "# Before the time limit (or on preemption) SLURM sends USR1 to this script: pass it on to \
         ablate, whose runs in\n# progress write a checkpoint and stop, then requeue this task; \
         the requeued task resumes them. Finished runs are\n# kept; a run whose task died \
         without a word is taken over, from its checkpoint, by any task that finds its lease\n\
         # abandoned."
    );
    let _ = writeln!(array, "requeue=0\npid=");
    let _ = writeln!(
        array,
        "trap 'requeue=1; kill -USR1 \"$pid\" 2>/dev/null' USR1"
    );
    let mut ablate = vec![xtask.clone(), "ablate".into(), quoted(&job.ablation)];
    ablate.extend(job.ablate_flags.iter().map(|f| quoted(f)));
    // In the background and waited for: bash runs a trap only between commands, and `wait`
    // returns as soon as the signal arrives, while ablate may still be writing checkpoints; the
    // last `wait` gives ablate's own exit status.
    let _ = writeln!(array, "{} &\npid=$!", ablate.join(" "));
    let _ = writeln!(
        array,
        "while kill -0 \"$pid\" 2>/dev/null; do wait \"$pid\"; done\nwait \"$pid\"\nstatus=$?"
    );
    let _ = writeln!(
        array,
        "if [ \"$requeue\" = 1 ]; then\n  scontrol requeue \
         \"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\"\nfi\nexit \"$status\""
    );

    let mut render = String::new();
    let about = format!(
        "Renders ablation `{}`'s tables and figures and the report, once every array task has \
         ended well.\nWritten by `cargo xtask slurm`; submitted by submit.sh.",
        job.ablation
    );
    header(
        &mut render,
        job,
        &format!("{name}-render"),
        1,
        &about,
        "%x-%j.out",
    );
    let _ = writeln!(render, "set -euo pipefail\ncd {}", path(&job.root));
    let flags: Vec<String> = job.render_flags.iter().map(|f| quoted(f)).collect();
    let _ = writeln!(
        render,
        "{xtask} plot {} {}",
        quoted(&job.ablation),
        flags.join(" ")
    );
    let report: Vec<&String> = flags.iter().filter(|f| *f != "--quick").collect();
    let _ = writeln!(
        render,
        "{xtask} report --no-readme {}",
        report
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    );

    let submit = String::from(
        "#!/bin/bash\n# Submits the array job, then the rendering job to run after it.\n\
         set -euo pipefail\ncd \"$(dirname \"$0\")\"\njob=$(sbatch --parsable array.sbatch)\n\
         sbatch --dependency=afterok:\"${job%%;*}\" render.sbatch\n\
         echo \"submitted array job $job\"\n",
    );
    Scripts {
        array,
        render,
        submit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            ablation: "pruning-baselines".into(),
            tasks: 4,
            cpus: 2,
            signal_seconds: 120,
            xtask: PathBuf::from("/proj/target/debug/xtask"),
            root: PathBuf::from("/proj dir"),
            ablate_flags: vec!["--device".into(), "flex".into()],
            render_flags: vec!["--out".into(), "results".into()],
            sbatch: vec!["--time=02:00:00".into(), "--partition=cpu".into()],
            logs: PathBuf::from("/proj dir/slurm/logs"),
        }
    }

    #[test]
    fn the_array_job_requeues_on_the_signal_and_runs_one_ablate_per_task() {
        let s = scripts(&job());
        for script in [&s.array, &s.render, &s.submit] {
            assert!(script.starts_with("#!/bin/bash\n"), "{script}");
        }
        // sbatch reads options up to the first command.
        for script in [&s.array, &s.render] {
            let first_command = (script.lines())
                .position(|l| !l.starts_with('#'))
                .expect("a command");
            let lines: Vec<&str> = script.lines().collect();
            let last_option = (lines.iter())
                .rposition(|l| l.starts_with("#SBATCH"))
                .expect("options");
            assert!(last_option < first_command, "{script}");
        }
        for line in [
            "#SBATCH --array=0-3",
            "#SBATCH --requeue",
            "#SBATCH --signal=B:USR1@120",
            "#SBATCH --cpus-per-task=2",
            "#SBATCH --time=02:00:00",
            "#SBATCH --output='/proj dir/slurm/logs/%x-%A_%a.out'",
            "cd '/proj dir'",
            "/proj/target/debug/xtask ablate pruning-baselines --device flex &",
            "pid=$!",
            "trap 'requeue=1; kill -USR1 \"$pid\" 2>/dev/null' USR1",
            "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"",
            "exit \"$status\"",
        ] {
            assert!(s.array.lines().any(|l| l == line), "{line} in\n{}", s.array);
        }
        assert!(
            s.render
                .contains("/proj/target/debug/xtask plot pruning-baselines --out results")
        );
        assert!(s.render.contains("report --no-readme --out results"));
        assert!(!s.render.contains("--array"));
        assert!(s.submit.contains("--dependency=afterok:"));
    }

    #[test]
    fn arguments_are_quoted_for_bash() {
        assert_eq!(quoted("--time=02:00:00"), "--time=02:00:00");
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted("it's"), r"'it'\''s'");
        assert_eq!(quoted(""), "''");
    }
}
