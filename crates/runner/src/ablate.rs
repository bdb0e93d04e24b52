//! Running an ablation end to end: plan, skip finished runs, train the rest, write tables and
//! figures.

use crate::aggregate::RunResult;
use crate::checkpoint::Checkpoint;
use crate::device::{DeviceChoice, Selected, select};
use crate::env::Env;
use crate::experiment::{Ablation, PlannedRun};
use crate::interrupt::Interrupted;
use crate::lease::Taken;
use crate::progress::Progress;
use crate::record::EpochRecord;
use crate::search::Choice;
use crate::shard::Shard;
use crate::spec;
use crate::store::{RunWriter, Store, write_atomic};
use crate::train::{Observer, train};
use crate::wall_time;
use crate::{figure, table};
use anyhow::Context;
use sparselab_data::Dataset;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Where things are and how to run them.
#[derive(Clone, Debug)]
pub struct Options {
    /// Directory of experiment files.
    pub experiments: PathBuf,
    /// Results root.
    pub out: PathBuf,
    /// Apply each file's `[quick]` overrides.
    pub quick: bool,
    /// Override the number of seeds.
    pub seeds: Option<usize>,
    /// Device choice.
    pub device: DeviceChoice,
    /// Dataset directory override.
    pub data_dir: Option<PathBuf>,
    /// Runs trained concurrently (`--jobs`; 1 = one after another; `None` = one per core on the
    /// CPU backend, where two one-thread runs finish sooner than one two-thread run, and one on a
    /// GPU). Results do not depend on it ([`crate::jobs`]).
    pub jobs: Option<usize>,
    /// Train only the runs with these ids (`--only`; empty = every planned run).
    pub only: Vec<String>,
    /// Train only this shard of the planned runs (`--shard i/n`, or the SLURM array task's).
    pub shard: Option<Shard>,
    /// Refuse to train from a working tree with uncommitted changes: set for the committed
    /// results, whose runs must each name the commit that trained them (`--allow-dirty` clears
    /// it).
    pub refuse_dirty: bool,
    /// Keep every run's trained model next to its records (`model.safetensors`, never
    /// committed; `--keep-models`), so `cargo xtask export` need not train the run again.
    pub keep_models: bool,
}

impl Options {
    /// Defaults relative to the workspace root `root`.
    pub fn new(root: &Path) -> Self {
        Self {
            experiments: root.join("experiments"),
            out: root.join("results"),
            quick: false,
            seeds: None,
            device: DeviceChoice::Auto,
            data_dir: None,
            jobs: None,
            only: Vec::new(),
            shard: None,
            refuse_dirty: false,
            keep_models: false,
        }
    }

    /// The ablation `name` from the experiments directory, as these options plan it.
    pub fn load(&self, name: &str) -> anyhow::Result<Ablation> {
        let file = self.experiments.join(format!("{name}.toml"));
        if !file.is_file() {
            let known: Vec<String> = spec::list(&self.experiments)
                .map(|l| l.into_iter().map(|(n, _)| n).collect())
                .unwrap_or_default();
            anyhow::bail!(
                "no ablation `{name}` in {} (known: {})",
                self.experiments.display(),
                known.join(", ")
            );
        }
        Ok(spec::load(&file, self.quick, self.seeds)?)
    }
}

/// What an ablation produced.
#[derive(Debug)]
pub struct Outcome {
    /// The ablation's results directory.
    pub dir: PathBuf,
    /// Runs trained now.
    pub trained: usize,
    /// Runs found finished.
    pub skipped: usize,
    /// Runs this process set out to train that other processes sharing the store trained.
    pub by_others: usize,
    /// Files written (tables, CSVs, figures).
    pub files: Vec<PathBuf>,
}

struct RunObserver<'a> {
    writer: &'a RunWriter,
    progress: &'a Progress,
    /// The job training the run.
    slot: usize,
    /// Where to keep the trained model, and as what (`--keep-models`).
    keep: Option<(&'a Path, &'a str, &'a PlannedRun)>,
    /// The test accuracy of the last epoch so far.
    last_test_accuracy: f64,
    /// The trained network's measured inference speedups ([`crate::inference_speed`]).
    speedups: Option<[f64; 2]>,
}

impl Observer for RunObserver<'_> {
    fn step(&mut self, epoch: usize, step_in_epoch: usize, steps_per_epoch: usize, loss: f64) {
        self.progress
            .step(self.slot, epoch, step_in_epoch, steps_per_epoch, loss);
    }

    fn epoch(&mut self, epochs: &[EpochRecord]) -> anyhow::Result<()> {
        if let Some(last) = epochs.last() {
            self.progress.epoch(self.slot, last);
            self.last_test_accuracy = last.test_accuracy;
        }
        self.writer.epochs(epochs)
    }

    fn trained(&mut self, trainee: &crate::trainee::Trainee) -> anyhow::Result<()> {
        self.speedups = Some(crate::inference_speed::measured_speedups(
            trainee.model(),
            trainee.table(),
        ));
        match self.keep {
            Some((dir, ablation, run)) => {
                crate::export::keep(dir, ablation, run, trainee, self.last_test_accuracy)
            }
            None => Ok(()),
        }
    }

    fn checkpoint(&mut self, checkpoint: &Checkpoint) -> anyhow::Result<()> {
        self.writer.checkpoint(checkpoint)
    }

    fn stop(&mut self) -> bool {
        crate::interrupt::requested()
    }
}

/// The device, data and environment of the runs an `ablate` trains, set up at the first run to
/// train (an ablation whose runs are all stored needs none of them).
struct Trainer<'a> {
    opts: &'a Options,
    ablation: &'a Ablation,
    ready: Option<(Selected, Dataset)>,
    /// Probes trained now.
    probes: usize,
}

impl<'a> Trainer<'a> {
    fn new(opts: &'a Options, ablation: &'a Ablation) -> Self {
        Self {
            opts,
            ablation,
            ready: None,
            probes: 0,
        }
    }

    /// The device and data, refusing first to train into the committed results from a dirty
    /// tree.
    fn ready(&mut self) -> anyhow::Result<&(Selected, Dataset)> {
        if self.ready.is_none() {
            if self.opts.refuse_dirty
                && crate::env::uncommitted_changes_in(&self.opts.experiments) == Some(true)
            {
                anyhow::bail!(
                    "the working tree has uncommitted changes, and {} holds the committed results: every \
                     run there must name the commit that trained it. Commit first, train elsewhere with \
                     --out DIR, or pass --allow-dirty to train here anyway (env.json then records the \
                     dirty tree, and the report flags the ablation).",
                    self.opts.out.display()
                );
            }
            let selected = select(self.opts.device).map_err(anyhow::Error::msg)?;
            let data = sparselab_data::load(&self.ablation.data, self.opts.data_dir.as_deref())?;
            self.ready = Some((selected, data));
        }
        Ok(self.ready.as_ref().expect("set above"))
    }

    /// `run` from the store, or trained now on every core (a search's probe).
    fn probe(&mut self, store: &Store, run: &PlannedRun) -> anyhow::Result<RunResult> {
        if let Some(r) = store.finished(run)? {
            return Ok(r);
        }
        let name = self.ablation.name.clone();
        let keep_models = self.opts.keep_models;
        let (selected, data) = self.ready()?;
        let env = Env::capture(&selected.description, selected.backend);
        let progress = Progress::new(&name, 1, 0, 1);
        let label = format!("{} (search)", run_label(run));
        loop {
            let attempt = crate::jobs::on_all_cores(|| {
                train_one(
                    store,
                    &name,
                    run,
                    (selected, data),
                    &env,
                    &progress,
                    0,
                    &label,
                    keep_models,
                )
            })??;
            match attempt {
                Attempt::Done { trained } => {
                    self.probes += usize::from(trained);
                    // The search decides from the stored record, as a replay in another
                    // process will (the in-memory floats can differ from the parsed ones in
                    // their last bit).
                    return store.finished(run)?.ok_or_else(|| {
                        anyhow::anyhow!(
                            "run {} finished, yet {} holds no record of it",
                            run.id,
                            store.run_dir(&run.id).display()
                        )
                    });
                }
                // Another process trains this probe: the search needs it, so wait.
                Attempt::Held => std::thread::sleep(POLL),
                Attempt::Stopped { checkpointed } => {
                    return Err(AblationInterrupted {
                        checkpointed: usize::from(checkpointed),
                    }
                    .into());
                }
            }
        }
    }
}

/// How often a process looks again at runs that other processes train.
const POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// What became of a run a process set out to train.
enum Attempt {
    /// The run is finished (its record is in the store): `trained` here, or found finished by
    /// another process.
    Done { trained: bool },
    /// Another live process holds its lease.
    Held,
    /// The process was asked to stop ([`crate::interrupt`]): the run wrote a checkpoint
    /// (`checkpointed`) or was not started.
    Stopped { checkpointed: bool },
}

/// The error of an `ablate` stopped on request ([`crate::interrupt`]): every run it was
/// training wrote a checkpoint, and running the same command again resumes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AblationInterrupted {
    /// Runs that wrote a checkpoint.
    pub checkpointed: usize,
}

impl std::fmt::Display for AblationInterrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let runs = match self.checkpointed {
            1 => "1 run".to_string(),
            n => format!("{n} runs"),
        };
        write!(
            f,
            "stopped on request: {runs} wrote a checkpoint; run the same command again to resume"
        )
    }
}

impl std::error::Error for AblationInterrupted {}

/// Trains `run` into the store under its lease, reporting to `progress` as job `slot`; a run
/// another live process holds is left to it.
#[allow(clippy::too_many_arguments)]
fn train_one(
    store: &Store,
    ablation: &str,
    run: &PlannedRun,
    (selected, data): (&Selected, &Dataset),
    env: &Env,
    progress: &Progress,
    slot: usize,
    label: &str,
    keep_models: bool,
) -> anyhow::Result<Attempt> {
    if crate::interrupt::requested() {
        return Ok(Attempt::Stopped {
            checkpointed: false,
        });
    }
    let Taken::Ours(lease) = store.lease(run)? else {
        return Ok(Attempt::Held);
    };
    // Another process may have finished the run between our look and the lease.
    if store.finished(run)?.is_some() {
        return Ok(Attempt::Done { trained: false });
    }
    let (writer, checkpoint) = store.open(ablation, run, env)?;
    progress.start_run(
        slot,
        label,
        run.config.train.epochs,
        data.train.len().div_ceil(run.config.train.batch),
    );
    if let Some(c) = &checkpoint {
        progress.println(&format!(
            "{label}: resumed from its checkpoint at epoch {}, step {}",
            c.position.epoch + 1,
            c.position.step
        ));
    }
    let dir = store.run_dir(&run.id);
    let mut observer = RunObserver {
        writer: &writer,
        progress,
        slot,
        keep: keep_models.then_some((dir.as_path(), ablation, run)),
        last_test_accuracy: f64::NAN,
        speedups: None,
    };
    let (mut outcome, _) = match train(run, data, &selected.device, &mut observer, checkpoint) {
        Err(e) if e.downcast_ref::<Interrupted>().is_some() => {
            progress.println(&format!("{label}: {e}"));
            return Ok(Attempt::Stopped { checkpointed: true });
        }
        trained => trained.with_context(|| format!("run {} ({label})", run.id))?,
    };
    if let Some([b1, b128]) = observer.speedups {
        (outcome.measured_speedup_b1, outcome.measured_speedup_b128) = (Some(b1), Some(b128));
    }
    writer.finish(&outcome)?;
    drop(lease);
    progress.finish_run(label, &outcome);
    Ok(Attempt::Done { trained: true })
}

/// Runs every search of `ablation` through `oracle` and adds the runs at each choice to the
/// plan; a search the oracle cannot finish (plotting without training) is left out.
pub(crate) fn choose_all(
    ablation: &mut Ablation,
    oracle: &mut crate::search::Oracle<'_>,
) -> anyhow::Result<Vec<Choice>> {
    let mut choices = Vec::new();
    for s in &ablation.searches {
        // A stop on request passes through unchanged: the caller tells it from a failure by
        // its type.
        let choice = crate::search::choose(s, oracle).map_err(|e| match e {
            e if e.is::<AblationInterrupted>() => e,
            e => anyhow::anyhow!("{}: {e:#}", ablation.file.display()),
        })?;
        choices.extend(choice);
    }
    for c in &choices {
        ablation.runs.extend(c.runs.iter().cloned());
    }
    Ok(choices)
}

/// Runs ablation `name`: every search first (its probes one after another), then every planned
/// run that has not finished (an interrupted one resumes from its checkpoint; `opts.jobs` at a
/// time); then tables and figures are rendered from all runs. With `--only`, searches use stored probes only.
///
/// The span this process trained in is stored ([`wall_time`]) however the training ends:
/// finished, stopped on request (in a search or among the seed runs) or failed, so the
/// ablation's wall time counts every minute spent on it.
pub fn ablate(name: &str, opts: &Options) -> anyhow::Result<Outcome> {
    let started_unix = wall_time::now_unix();
    let mut ablation = opts.load(name)?;
    let store = Store::new(&opts.out, &ablation);
    let planned = ablation.clone();
    let mut trainer = Trainer::new(opts, &planned);
    let trained_here = AtomicUsize::new(0);
    let training = train_planned(&mut ablation, &store, &mut trainer, &trained_here);
    let runs_trained = trained_here.into_inner();
    let trained = runs_trained + trainer.probes;
    let stopped = matches!(&training, Err(e) if e.is::<AblationInterrupted>());
    let recorded = if trained > 0 || stopped {
        wall_time::record_until_now(store.dir(), started_unix, trained)
    } else {
        Ok(())
    };
    // The training's own error comes first: it is what the user must act on.
    let Trained {
        choices,
        results,
        todo,
        skipped,
    } = training?;
    recorded?;
    let files = render(&ablation, &store, &results, &choices)?;
    // Probes trained now that a choice kept are among the stored runs found above.
    let kept_probes = choices
        .iter()
        .flat_map(|c| c.runs.first())
        .filter(|r| results.iter().any(|x| x.run.id == r.id))
        .count()
        .min(trainer.probes);
    Ok(Outcome {
        dir: store.dir().to_path_buf(),
        trained,
        by_others: todo - runs_trained,
        skipped: skipped - kept_probes,
        files,
    })
}

/// What [`train_planned`] leaves for rendering.
struct Trained {
    choices: Vec<Choice>,
    /// Every finished run of the plan.
    results: Vec<RunResult>,
    /// Runs this process set out to train.
    todo: usize,
    /// Runs found finished before training.
    skipped: usize,
}

/// The searches and then the seed runs of `ablation`, counting the runs trained to the end in
/// `trained_here` (probes in `trainer`).
fn train_planned(
    ablation: &mut Ablation,
    store: &Store,
    trainer: &mut Trainer<'_>,
    trained_here: &AtomicUsize,
) -> anyhow::Result<Trained> {
    let opts = trainer.opts;
    let name = ablation.name.clone();
    let choices = if opts.only.is_empty() {
        choose_all(ablation, &mut |run| trainer.probe(store, run).map(Some))?
    } else {
        choose_all(ablation, &mut |run| store.finished(run))?
    };
    if let Some(unknown) = opts
        .only
        .iter()
        .find(|id| !ablation.runs.iter().any(|r| &r.id == *id))
    {
        anyhow::bail!(
            "--only {unknown}: ablation `{name}` plans no run with that id (its runs: {})",
            ablation
                .runs
                .iter()
                .map(|r| format!("{} = {}", r.id, run_label(r)))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    let mut results = Vec::new();
    let mut todo: Vec<&PlannedRun> = Vec::new();
    for run in &ablation.runs {
        match store.finished(run)? {
            Some(r) => results.push(r),
            // Two arms may plan the same run (a search can choose what another arm fixes): it
            // trains once, and both read it.
            None if todo.iter().any(|t| t.id == run.id) => {}
            None if !opts.shard.is_none_or(|s| s.contains(&run.id)) => {}
            None if opts.only.is_empty() || opts.only.contains(&run.id) => todo.push(run),
            None => {}
        }
    }
    let skipped = results.len();
    if !todo.is_empty() {
        let (selected, data) = trainer.ready()?;
        let cores = crate::jobs::cores();
        let jobs = opts
            .jobs
            .unwrap_or(if selected.backend == "wgpu" { 1 } else { cores })
            .clamp(1, todo.len());
        let progress = Progress::new(&ablation.name, skipped + todo.len(), skipped, jobs);
        if let Some(note) = &selected.note {
            progress.println(&format!("device: {note}"));
        }
        let threads = crate::jobs::threads_per_job(cores, jobs);
        let description = match (jobs, selected.backend) {
            (1, _) | (_, "wgpu") => selected.description.clone(),
            _ => format!("flex (CPU, {threads} threads per job, {jobs} jobs)"),
        };
        let env = Env::capture(&description, selected.backend);
        progress.println(&format!(
            "{}: {} runs ({skipped} already finished) on {description}, {} train / {} val / {} test examples",
            ablation.name,
            ablation.runs.len(),
            data.train.len(),
            data.val.len(),
            data.test.len()
        ));
        // Runs other processes hold are looked at again until they are finished (or their
        // holder is gone and this process takes them over).
        let mut waiting: Vec<&PlannedRun> = todo.clone();
        let mut said = false;
        let stopped = AtomicUsize::new(0);
        while !waiting.is_empty() {
            let held = std::sync::Mutex::new(Vec::new());
            crate::jobs::for_each_parallel(waiting.len(), jobs, |slot, i| {
                let run = waiting[i];
                let label = run_label(run);
                let attempt = train_one(
                    store,
                    &ablation.name,
                    run,
                    (selected, data),
                    &env,
                    &progress,
                    slot,
                    &label,
                    opts.keep_models,
                )?;
                match attempt {
                    Attempt::Done { trained } => {
                        trained_here.fetch_add(usize::from(trained), Ordering::Relaxed);
                    }
                    Attempt::Held => held
                        .lock()
                        .map_err(|_| anyhow::anyhow!("a job thread panicked"))?
                        .push(i),
                    Attempt::Stopped { checkpointed } => {
                        stopped.fetch_add(usize::from(checkpointed), Ordering::Relaxed);
                    }
                }
                Ok(())
            })?;
            if crate::interrupt::requested() {
                progress.finish();
                return Err(AblationInterrupted {
                    checkpointed: stopped.into_inner(),
                }
                .into());
            }
            let mut held = held
                .into_inner()
                .map_err(|_| anyhow::anyhow!("a job thread panicked"))?;
            held.sort_unstable();
            if held.len() == waiting.len() {
                if !said {
                    progress.println(&format!(
                        "{} runs are being trained by other processes sharing {}; waiting for them",
                        held.len(),
                        store.dir().display()
                    ));
                    said = true;
                }
                std::thread::sleep(POLL);
            }
            waiting = held.into_iter().map(|i| waiting[i]).collect();
        }
        progress.finish();
        results = Vec::new();
        for run in &ablation.runs {
            results.extend(store.finished(run)?);
        }
    }
    Ok(Trained {
        choices,
        results,
        todo: todo.len(),
        skipped,
    })
}

/// A run's label in progress lines: arm label, sweep point, seed.
fn run_label(run: &PlannedRun) -> String {
    match run.sweep_label() {
        s if s.is_empty() => format!("{} seed {}", run.label, run.config.seed),
        s => format!("{} ({s}) seed {}", run.label, run.config.seed),
    }
}

/// Re-renders tables and figures of ablation `name` from stored results, without training.
pub fn plot(name: &str, opts: &Options) -> anyhow::Result<Outcome> {
    let mut ablation = opts.load(name)?;
    let store = Store::new(&opts.out, &ablation);
    let searches = ablation.searches.len();
    let choices = choose_all(&mut ablation, &mut |run| store.finished(run))?;
    if choices.len() < searches {
        eprintln!(
            "note: {} of {searches} searches have not finished; their arm points are left out",
            searches - choices.len()
        );
    }
    let mut results = Vec::new();
    for run in &ablation.runs {
        if let Some(r) = store.finished(run)? {
            results.push(r);
        }
    }
    if results.is_empty() {
        anyhow::bail!(
            "no finished runs of `{name}` in {} (run `cargo xtask ablate {name}{}` first)",
            store.dir().display(),
            if opts.quick { " --quick" } else { "" }
        );
    }
    let missing = ablation.runs.len() - results.len();
    if missing > 0 {
        eprintln!(
            "note: {missing} of {} planned runs have no results yet; plotting the rest",
            ablation.runs.len()
        );
    }
    let files = render(&ablation, &store, &results, &choices)?;
    Ok(Outcome {
        dir: store.dir().to_path_buf(),
        trained: 0,
        by_others: 0,
        skipped: results.len(),
        files,
    })
}

/// Distinct provenance lines of the runs (device, commit, versions).
fn provenance(store: &Store, results: &[RunResult]) -> String {
    let lines: BTreeSet<String> = results
        .iter()
        .filter_map(|r| {
            let text = std::fs::read_to_string(store.run_dir(&r.run.id).join("env.json")).ok()?;
            serde_json::from_str::<Env>(&text)
                .ok()
                .map(|e| e.provenance())
        })
        .collect();
    lines.into_iter().collect::<Vec<_>>().join("\n")
}

/// What the table's runs cost: the runs' own wall times (training and evaluation) summed, and
/// those of the search probes that were not chosen (probes train one at a time on every core,
/// the runs as parallel jobs, so the sums are compute, not the ablation's elapsed time).
fn compute(store: &Store, results: &[RunResult], choices: &[Choice]) -> String {
    let duration = |seconds: f64| match seconds {
        s if s < 120.0 => format!("{s:.0} s"),
        s if s < 7200.0 => format!("{:.0} min", s / 60.0),
        s => format!("{:.1} h", s / 3600.0),
    };
    let runs: f64 = results.iter().map(|r| r.outcome.wall_seconds).sum();
    let chosen: BTreeSet<&str> = results.iter().map(|r| r.run.id.as_str()).collect();
    let others: BTreeSet<&str> = choices
        .iter()
        .flat_map(|c| c.probes.iter().map(|p| p.run.as_str()))
        .filter(|id| !chosen.contains(id))
        .collect();
    let probes: f64 = others.iter().filter_map(|id| store.wall_seconds(id)).sum();
    let mut out = format!(
        "\nCompute: the {} runs above took {} of run time (each run's wall time, training and \
         evaluation, summed)",
        results.len(),
        duration(runs)
    );
    if !others.is_empty() {
        out.push_str(&format!(
            "; the {} other search probes took {} more",
            others.len(),
            duration(probes)
        ));
    }
    let sessions = wall_time::sessions(store.dir());
    if !sessions.is_empty() {
        out.push_str(&format!(
            ". Wall time: {} ({} training session{}; the time at least one of them was \
             training, so sessions sharing the store count once and the gaps between an \
             interruption and its resumption not at all)",
            duration(wall_time::busy_seconds(&sessions)),
            sessions.len(),
            if sessions.len() == 1 { "" } else { "s" }
        ));
    }
    out.push_str(".\n");
    out
}

/// Writes `table.md`, `runs.csv`, `epochs.csv`, `hoyer.md` (runs with Lp-sphere layers) and
/// every figure of `ablation`.
pub fn render(
    ablation: &Ablation,
    store: &Store,
    results: &[RunResult],
    choices: &[Choice],
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(store.dir())?;
    store.remove_abandoned_temporaries();
    let mut files = Vec::new();
    let mut write = |name: &str, text: String| -> anyhow::Result<()> {
        let path = store.dir().join(name);
        write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
        files.push(path);
        Ok(())
    };
    let mut table = table::markdown(ablation, results, &provenance(store, results));
    table.push_str(&crate::search::markdown(choices));
    table.push_str(&compute(store, results, choices));
    write("table.md", table)?;
    write("runs.csv", table::runs_csv(results))?;
    write("epochs.csv", table::epochs_csv(results))?;
    if let Some(hoyer) = crate::sphere_report::markdown(results) {
        write("hoyer.md", hoyer)?;
    }
    for spec in &ablation.figures {
        files.extend(figure::render(spec, results, store.dir())?);
    }
    Ok(files)
}
