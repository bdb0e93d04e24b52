//! A store many processes share: real processes (this test binary started again as a child that
//! runs one `ablate`) on one results directory train each run exactly once and store the same
//! bits as one process; shards split the runs; a process killed with SIGKILL mid-run leaves a
//! lease and a half-written run that the next `ablate` takes over at once and trains again.

mod common;

use common::{Scratch, stored_values};
use sparselab::runner::shard::Shard;
use sparselab::runner::{Options, ablate, spec};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Eight runs: two seeds of four arms.
fn spec(epochs: usize) -> String {
    common::synthetic_spec(
        "description = \"shared store\"\nseeds = 2\n",
        common::SMOKE_ARMS,
    )
    .replace("epochs = 2", &format!("epochs = {epochs}"))
}

const CHILD: &str = "SPARSELAB_TEST_CHILD";
const CHILD_SHARD: &str = "SPARSELAB_TEST_SHARD";

/// Not a test of its own: started by the tests below as a child process, with [`CHILD`] naming
/// a project; it runs the project's `shared` ablation with one job, as `cargo xtask ablate`
/// would, and prints how many runs it trained.
#[test]
#[ignore = "a child process of the tests below, which start it with --ignored"]
fn child() {
    let Ok(dir) = std::env::var(CHILD) else {
        return;
    };
    let shard = std::env::var(CHILD_SHARD)
        .ok()
        .map(|s| s.parse::<Shard>().expect("shard"));
    let opts = Options {
        jobs: Some(1),
        shard,
        device: sparselab::runner::DeviceChoice::Flex,
        ..Options::new(Path::new(&dir))
    };
    let out = ablate("shared", &opts).expect("ablate");
    println!("trained={}", out.trained);
}

fn spawn(project: &Path, shard: Option<&str>) -> Child {
    let mut cmd = Command::new(std::env::current_exe().expect("test binary"));
    cmd.args(["child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(s) = shard {
        cmd.env(CHILD_SHARD, s);
    }
    cmd.spawn().expect("spawn child")
}

/// How many runs a finished child trained.
fn trained(child: Child) -> usize {
    let out = child.wait_with_output().expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("trained="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {stdout}"))
}

/// The ablation trained by this process alone, into `<project>/alone`.
fn alone(s: &Scratch) -> Vec<(String, serde_json::Value)> {
    let opts = Options {
        out: s.0.join("alone"),
        ..s.options()
    };
    ablate("shared", &opts).expect("one process");
    stored_values(&s.0.join("alone/shared"))
}

#[test]
fn four_processes_on_one_store_train_each_run_once() {
    let s = Scratch::with("shared-four", "shared", &spec(2));
    let children: Vec<Child> = (0..4).map(|_| spawn(&s.0, None)).collect();
    let total: usize = children.into_iter().map(trained).sum();
    assert_eq!(total, 8, "each of the 8 runs is trained exactly once");
    assert_eq!(stored_values(&s.0.join("results/shared")), alone(&s));
    let leftovers: Vec<_> = std::fs::read_dir(s.0.join("results/shared"))
        .expect("store")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.contains(".lease") || n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn shards_split_the_runs_between_processes() {
    let s = Scratch::with("shared-shards", "shared", &spec(2));
    let planned = spec::load(&s.0.join("experiments/shared.toml"), false, None)
        .expect("plan")
        .runs;
    let shards = ["1/3", "2/3", "3/3"];
    let children: Vec<Child> = shards.iter().map(|sh| spawn(&s.0, Some(sh))).collect();
    for (sh, child) in shards.iter().zip(children) {
        let shard: Shard = sh.parse().expect("shard");
        let expected = planned.iter().filter(|r| shard.contains(&r.id)).count();
        assert_eq!(trained(child), expected, "shard {sh}");
    }
    assert_eq!(stored_values(&s.0.join("results/shared")), alone(&s));
}

#[test]
fn a_process_killed_mid_run_is_taken_over_at_once() {
    let s = Scratch::with("shared-killed", "shared", &spec(60));
    let store = s.0.join("results/shared");
    let mut child = spawn(&s.0, None);
    // Kill it while it holds a lease on a run that has recorded an epoch.
    let started = Instant::now();
    let mid_run = || {
        let entries: Vec<_> = std::fs::read_dir(&store)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.iter().any(|p| {
            p.extension().is_some_and(|e| e == "lease")
                && store
                    .join(p.file_stem().expect("run id"))
                    .join("epochs.json")
                    .is_file()
        })
    };
    while !mid_run() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child never got mid-run"
        );
        assert!(
            child.try_wait().expect("child").is_none(),
            "the child ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let finished_before = common::run_dirs(&store)
        .iter()
        .filter(|d| d.join("final.json").is_file())
        .count();
    assert!(finished_before < 8, "killed before the ablation ended");
    // The dead holder's lease is taken over at once, not after a heartbeat timeout.
    let rerun = Instant::now();
    let out = ablate("shared", &s.options()).expect("rerun");
    assert_eq!(out.trained, 8 - finished_before);
    assert!(rerun.elapsed() < sparselab::runner::lease::stale_after());
    assert_eq!(stored_values(&store), alone(&s));
}
