//! `cargo xtask`: the command line of sparselab, a thin layer over `sparselab-runner`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sparselab_bench::BenchOptions;
use sparselab_core::Registry;
use sparselab_runner::ablate::AblationInterrupted;
use sparselab_runner::shard::Shard;
use sparselab_runner::{DeviceChoice, Options, spec};
use std::path::{Path, PathBuf};

/// Train sparse networks, run named ablations, render paper-style figures and tables.
#[derive(Parser)]
#[command(name = "cargo xtask", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the ablations in experiments/ and the registered methods.
    List,
    /// Run a named ablation: train every unfinished run, write results, tables and figures.
    ///
    /// Runs already finished under the output directory are skipped; an interrupted run resumes
    /// from its checkpoint. SIGTERM, SIGUSR1 or Ctrl-C make the runs in progress checkpoint and
    /// stop (exit status 75); run the same command again to resume them.
    Ablate {
        /// Ablation name (a file experiments/<name>.toml).
        name: String,
        /// Apply the file's [quick] overrides: a data subset and few steps, about a minute on 2
        /// cores. Results go to <out>/<name>-quick.
        #[arg(long)]
        quick: bool,
        /// Device: auto (WGPU if a GPU adapter exists, else flex), wgpu, or flex (CPU).
        #[arg(long, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
        /// Number of seeds (overrides the file).
        #[arg(long)]
        seeds: Option<usize>,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Directory of the dataset's files (default: SPARSELAB_DATA_DIR or the dataset's usual
        /// location, e.g. /usr/share/datasets/fashion-mnist).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Directory of experiment files.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Runs trained at once, each on cores/N compute threads; results are the same as with
        /// one job [default: one per core on the CPU backend (sooner than one run on every
        /// core), one on a GPU].
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=256))]
        jobs: Option<u64>,
        /// Train only the run with this id (a directory name under the results; repeatable).
        #[arg(long, value_name = "RUN_ID")]
        only: Vec<String>,
        /// Train only part i of n of the planned runs (1 ≤ i ≤ n; each run belongs to exactly
        /// one part, whatever else is planned) [default: the SLURM array task's part, when run as
        /// one]. Any number of processes may share one results directory, sharded or not: each
        /// run is trained once.
        #[arg(long, value_name = "I/N")]
        shard: Option<Shard>,
        /// Train into the committed results/ even though the working tree has uncommitted
        /// changes (refused otherwise: a committed run must name the commit that trained it).
        #[arg(long)]
        allow_dirty: bool,
        /// Keep every run's trained model next to its records (model.safetensors; never
        /// committed), so `export` need not train the run again.
        #[arg(long)]
        keep_models: bool,
    },
    /// Export a finished run's trained network: dense weights in PyTorch's layout and the CSR
    /// form of every sparse weight, with the run's configuration (docs/export.md). Without a
    /// kept model (`ablate --keep-models`) the run is trained again, and must reproduce its
    /// stored records; the file's test accuracy is checked against the stored one.
    Export {
        /// Ablation name.
        name: String,
        /// The run's id (its directory name under the results).
        run_id: String,
        /// File format: safetensors or burnpack.
        #[arg(long, default_value = "safetensors")]
        format: sparselab_runner::export::file::Container,
        /// Where to write it [default: model.<ext> in the run's directory].
        #[arg(long)]
        to: Option<PathBuf>,
        /// The run is one of the quick-mode results.
        #[arg(long)]
        quick: bool,
        /// Device for training the run again and evaluating the export.
        #[arg(long, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Directory of the dataset's files.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Directory of experiment files.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
    },
    /// Re-render tables and figures of an ablation from stored results, without training.
    Plot {
        /// Ablation name.
        name: String,
        /// Plot the quick-mode results.
        #[arg(long)]
        quick: bool,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Directory of experiment files.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
    },
    /// Write results/REPORT.md from every ablation's stored runs: the papers' claims with
    /// computed verdicts, one leaderboard per model and budget, where the runs come from; and the
    /// README's summary between its markers.
    Report {
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Directory of experiment files.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Leave README.md alone.
        #[arg(long)]
        no_readme: bool,
    },
    /// Write sbatch scripts that train an ablation as a SLURM array job (one shard per task, all
    /// sharing one results directory, requeued on USR1 before the time limit) and render its
    /// tables, figures and report after it; submit them with the printed command.
    Slurm {
        /// Ablation name.
        name: String,
        /// Array tasks, each training its shard of the runs.
        #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
        tasks: u64,
        /// CPU cores per task.
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
        cpus: u64,
        /// Seconds before the time limit at which SLURM tells a task to requeue.
        #[arg(long, default_value_t = 300)]
        signal_seconds: u64,
        /// Apply the file's [quick] overrides.
        #[arg(long)]
        quick: bool,
        /// Device of every task: auto, wgpu or flex.
        #[arg(long, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
        /// Results root.
        #[arg(long, default_value = "results")]
        out: PathBuf,
        /// Directory of experiment files.
        #[arg(long, default_value = "experiments")]
        experiments: PathBuf,
        /// Where the scripts (and the tasks' logs) go: <DIR>/<name>/.
        #[arg(long, default_value = "slurm")]
        dir: PathBuf,
        /// Options for sbatch after `--`, e.g. `-- --time=04:00:00 --partition=cpu`.
        #[arg(last = true)]
        sbatch: Vec<String>,
    },
    /// Benchmark training throughput against PyTorch (LeNet-300-100, LeNet-5; set
    /// SPARSELAB_PYTHON to a Python with torch, else `python3` is tried) and each optimiser's step
    /// time relative to SGD, with criterion; writes bench.json and bench.md.
    Bench {
        /// Device: auto, wgpu or flex.
        #[arg(long, default_value_t = DeviceChoice::Auto)]
        device: DeviceChoice,
        /// Batch size.
        #[arg(long, default_value_t = 128)]
        batch: usize,
        /// Seconds of measurement per benchmark.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Output directory.
        #[arg(long, default_value = "results/bench")]
        out: PathBuf,
    },
}

/// The workspace root (xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Relative paths are taken from the workspace root, so `cargo xtask` works from any directory.
fn at_root(p: PathBuf) -> PathBuf {
    if p.is_absolute() { p } else { root().join(p) }
}

fn print_registry<T: ?Sized>(registry: &Registry<T>) {
    let kind = registry.kind();
    let plural = kind
        .strip_suffix('y')
        .map_or_else(|| format!("{kind}s"), |stem| format!("{stem}ies"));
    println!("\n{plural}:");
    for e in registry.entries() {
        println!("  {:<16} {}", e.name, e.summary);
    }
}

fn main() -> anyhow::Result<()> {
    xtask::heap::keep_freed_memory();
    match Cli::parse().command {
        Command::List => {
            let dir = root().join("experiments");
            println!("ablations (cargo xtask ablate <name>):");
            for (name, description) in spec::list(&dir)? {
                match description {
                    Ok(d) => println!("  {name:<26} {d}"),
                    Err(e) => println!("  {name:<26} INVALID: {e}"),
                }
            }
            print_registry(&sparselab_optimizers::registry());
            print_registry(&sparselab_regularizers::registry());
            print_registry(&sparselab_topology::registry());
            print_registry(&sparselab_losses::registry());
            print_registry(&sparselab_models::registry());
        }
        Command::Ablate {
            name,
            quick,
            device,
            seeds,
            out,
            data_dir,
            experiments,
            jobs,
            only,
            shard,
            allow_dirty,
            keep_models,
        } => {
            let out = at_root(out);
            let shard = match shard {
                Some(s) => Some(s),
                None => Shard::from_slurm().map_err(anyhow::Error::msg)?,
            };
            let opts = Options {
                experiments: at_root(experiments),
                refuse_dirty: !quick && !allow_dirty && out == root().join("results"),
                out,
                quick,
                seeds,
                device,
                data_dir,
                jobs: jobs.map(|j| j as usize),
                only,
                shard,
                keep_models,
            };
            sparselab_runner::interrupt::on_signals();
            let outcome = match sparselab_runner::ablate(&name, &opts) {
                Err(e) if e.downcast_ref::<AblationInterrupted>().is_some() => {
                    eprintln!("{name}: {e}");
                    std::process::exit(sparselab_runner::interrupt::EXIT_STOPPED.into());
                }
                outcome => outcome?,
            };
            let table = outcome.dir.join("table.md");
            if let Ok(text) = std::fs::read_to_string(&table) {
                println!("\n{text}");
            }
            let others = match outcome.by_others {
                0 => String::new(),
                n => format!(", {n} by other processes"),
            };
            println!(
                "{name}: {} runs trained{others}, {} already finished; results in {}",
                outcome.trained,
                outcome.skipped,
                outcome.dir.display()
            );
            for f in outcome.files {
                println!("  {}", f.display());
            }
        }
        Command::Export {
            name,
            run_id,
            format,
            to,
            quick,
            device,
            out,
            data_dir,
            experiments,
        } => {
            let opts = Options {
                experiments: at_root(experiments),
                out: at_root(out),
                quick,
                device,
                data_dir,
                ..Options::new(&root())
            };
            let (path, accuracy) =
                sparselab_runner::export::export(&name, &run_id, format, to, &opts)?;
            println!(
                "{} (test accuracy {:.2} %, the run's stored value)",
                path.display(),
                100.0 * accuracy
            );
        }
        Command::Plot {
            name,
            quick,
            out,
            experiments,
        } => {
            let opts = Options {
                experiments: at_root(experiments),
                out: at_root(out),
                quick,
                ..Options::new(&root())
            };
            let outcome = sparselab_runner::plot(&name, &opts)?;
            for f in outcome.files {
                println!("{}", f.display());
            }
        }
        Command::Report {
            out,
            experiments,
            no_readme,
        } => {
            let report =
                sparselab_runner::report::build(&at_root(experiments), &at_root(out.clone()))?;
            let readme = root().join("README.md");
            let files = sparselab_runner::report::write(
                &report,
                &at_root(out),
                (!no_readme).then_some(readme.as_path()),
            )?;
            for e in &report.claims {
                println!("{:<4} {}", e.claim.id, e.verdict.label());
            }
            for f in files {
                println!("{}", f.display());
            }
        }
        Command::Slurm {
            name,
            tasks,
            cpus,
            signal_seconds,
            quick,
            device,
            out,
            experiments,
            dir,
            sbatch,
        } => {
            let (out, experiments) = (at_root(out), at_root(experiments));
            let runs = Options {
                experiments: experiments.clone(),
                quick,
                ..Options::new(&root())
            }
            .load(&name)?
            .runs
            .len() as u64;
            if tasks > runs {
                anyhow::bail!(
                    "--tasks {tasks}: ablation `{name}` plans {runs} runs (before any search), \
                     so at most {runs} tasks have work"
                );
            }
            let dir = at_root(dir).join(&name);
            let mut render_flags = vec![
                "--out".to_string(),
                out.display().to_string(),
                "--experiments".into(),
                experiments.display().to_string(),
            ];
            if quick {
                render_flags.push("--quick".into());
            }
            let ablate_flags = ["--device".to_string(), device.to_string()]
                .into_iter()
                .chain(render_flags.iter().cloned())
                .collect();
            let scripts = xtask::slurm::scripts(&xtask::slurm::Job {
                ablation: name.clone(),
                tasks,
                cpus,
                signal_seconds,
                xtask: std::env::current_exe().context("the path of this xtask binary")?,
                root: root(),
                ablate_flags,
                render_flags,
                sbatch,
                logs: dir.join("logs"),
            });
            std::fs::create_dir_all(dir.join("logs"))
                .with_context(|| format!("creating {}", dir.display()))?;
            for (file, text) in [
                ("array.sbatch", &scripts.array),
                ("render.sbatch", &scripts.render),
                ("submit.sh", &scripts.submit),
            ] {
                let path = dir.join(file);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                println!("{}", path.display());
            }
            println!("submit with: bash {}", dir.join("submit.sh").display());
        }
        Command::Bench {
            device,
            batch,
            seconds,
            out,
        } => {
            if batch == 0 {
                anyhow::bail!("--batch must be at least 1");
            }
            let files = sparselab_bench::run(&BenchOptions {
                device,
                batch,
                out: at_root(out),
                seconds,
                reference_script: root().join("xtask/reference/pytorch_reference.py"),
            })?;
            for f in files {
                println!("{}", f.display());
            }
        }
    }
    Ok(())
}
