//! A store many processes share, and runs that survive their process: real processes (this test
//! binary started again as a child that runs one `ablate`) on one results directory train each
//! run exactly once and store the same bits as one process; shards split the runs; a process
//! killed with SIGKILL mid-run leaves a lease and a checkpoint that the next `ablate` takes over
//! at once and resumes; processes killed at random moments, checkpoint writes included, end in
//! the bits of one uninterrupted process; SIGTERM makes a process checkpoint its runs and stop,
//! and the next `ablate` resumes them, in a search as among the seed runs.

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
    sparselab::runner::interrupt::on_signals();
    match ablate("shared", &opts) {
        Ok(out) => println!("trained={}", out.trained),
        Err(e) => match e.downcast_ref::<sparselab::runner::ablate::AblationInterrupted>() {
            Some(stopped) => println!("stopped={}", stopped.checkpointed),
            None => panic!("ablate: {e:#}"),
        },
    }
}

fn spawn(project: &Path, shard: Option<&str>) -> Child {
    spawn_under(project, shard, None)
}

/// [`spawn`], run by bash with a limit on the size of any file it writes (`ulimit -f`, in KiB)
/// when `file_limit` is set: a write past it fails as on a full disk (EFBIG; SIGXFSZ ignored).
fn spawn_under(project: &Path, shard: Option<&str>, file_limit: Option<u64>) -> Child {
    let test = std::env::current_exe().expect("test binary");
    let mut cmd = match file_limit {
        Some(kib) => {
            let mut c = Command::new("bash");
            c.args([
                "-c",
                &format!("ulimit -f {kib}; trap '' XFSZ; exec \"$0\" \"$@\""),
            ])
            .arg(test);
            c
        }
        None => Command::new(test),
    };
    cmd.args(["child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(s) = shard {
        cmd.env(CHILD_SHARD, s);
    }
    cmd.spawn().expect("spawn child")
}

/// The count a finished child printed after `key=`.
fn reported(child: Child, key: &str) -> usize {
    let out = child.wait_with_output().expect("child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {key} in {stdout}"))
}

/// How many runs a finished child trained.
fn trained(child: Child) -> usize {
    reported(child, "trained")
}

/// Entries of `store` whose name ends with `suffix`, in run directories too.
fn files_ending(store: &Path, suffix: &str) -> Vec<String> {
    let names = |dir: &Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .map(|e| e.path().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut all = names(store);
    for run in common::run_dirs(store) {
        all.extend(names(&run));
    }
    all.retain(|n| n.ends_with(suffix));
    all
}

/// A finished store holds no lease, checkpoint or temporary file.
fn assert_nothing_left(store: &Path) {
    let left: Vec<String> = [".lease", ".tmp", "checkpoint.bpk"]
        .iter()
        .flat_map(|x| files_ending(store, x))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs whose final record says they were resumed from a checkpoint.
fn resumed_runs(store: &Path) -> usize {
    common::run_dirs(store)
        .iter()
        .filter(|d| {
            let text = std::fs::read_to_string(d.join("final.json")).unwrap_or_default();
            serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v.get("resumed").and_then(serde_json::Value::as_u64))
                .is_some_and(|n| n > 0)
        })
        .count()
}

/// Waits until `child` holds a lease on a run that has a checkpoint (it is mid-run).
fn wait_until_mid_run(child: &mut Child, store: &Path) {
    let started = Instant::now();
    let mid_run = || {
        let entries: Vec<_> = std::fs::read_dir(store)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        entries.iter().any(|p| {
            p.extension().is_some_and(|e| e == "lease")
                && store
                    .join(p.file_stem().expect("run id"))
                    .join("checkpoint.bpk")
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
}

/// A child on `project` sent SIGTERM once it is mid-run in `store`.
fn spawn_and_stop_mid_run(project: &Path, store: &Path) -> Child {
    let mut child = spawn(project, None);
    wait_until_mid_run(&mut child, store);
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(term.success());
    child
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
fn a_process_killed_mid_run_is_taken_over_at_once_and_resumed() {
    let s = Scratch::with("shared-killed", "shared", &spec(60));
    let store = s.0.join("results/shared");
    let mut child = spawn(&s.0, None);
    wait_until_mid_run(&mut child, &store);
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    let finished_before = common::run_dirs(&store)
        .iter()
        .filter(|d| d.join("final.json").is_file())
        .count();
    assert!(finished_before < 8, "killed before the ablation ended");
    // The dead holder's lease is taken over at once, not after a heartbeat timeout, and its run
    // goes on from its checkpoint.
    let rerun = Instant::now();
    let out = ablate("shared", &s.options()).expect("rerun");
    assert_eq!(out.trained, 8 - finished_before);
    assert!(rerun.elapsed() < sparselab::runner::lease::stale_after());
    assert_eq!(resumed_runs(&store), 1);
    assert_eq!(stored_values(&store), alone(&s));
    assert_nothing_left(&store);
}

/// Delays in milliseconds, drawn from a fixed seed (a linear congruential generator: the test
/// needs spread, not quality), spanning process start, training and checkpoint writes.
fn delays(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x5eed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            150 + (x >> 33) % 900
        })
        .collect()
}

#[test]
fn processes_killed_at_random_moments_end_in_the_bits_of_one_process() {
    let s = Scratch::with("shared-random-kills", "shared", &spec(200));
    let store = s.0.join("results/shared");
    let mut kills = 0;
    for delay in delays(12) {
        let mut child = spawn(&s.0, None);
        std::thread::sleep(Duration::from_millis(delay));
        if child.try_wait().expect("child").is_some() {
            break;
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reaped");
        kills += 1;
    }
    assert!(
        kills >= 6,
        "only {kills} kills landed before the ablation ended"
    );
    ablate("shared", &s.options()).expect("the last process");
    assert!(resumed_runs(&store) >= 1, "no run was resumed");
    assert_eq!(stored_values(&store), alone(&s));
    assert_nothing_left(&store);
}

#[test]
fn sigterm_checkpoints_the_runs_and_the_next_ablate_resumes_them() {
    let s = Scratch::with("shared-sigterm", "shared", &spec(60));
    let store = s.0.join("results/shared");
    let child = spawn_and_stop_mid_run(&s.0, &store);
    // The child stops at its next step, with its run's checkpoint written and its lease given
    // back.
    assert_eq!(reported(child, "stopped"), 1);
    assert!(files_ending(&store, ".lease").is_empty());
    assert_eq!(files_ending(&store, "checkpoint.bpk").len(), 1);
    let finished_before = common::run_dirs(&store)
        .iter()
        .filter(|d| d.join("final.json").is_file())
        .count();
    let out = ablate("shared", &s.options()).expect("rerun");
    assert_eq!(out.trained, 8 - finished_before);
    assert_eq!(resumed_runs(&store), 1);
    assert_eq!(stored_values(&store), alone(&s));
}

/// A stop during a strength search (its probes train one at a time before the seed runs) is a
/// stop like any other: the process checkpoints the probe, exits as stopped, and stores the span
/// it trained in, so the ablation's wall time keeps it.
#[test]
fn sigterm_during_a_search_checkpoints_the_probe_and_keeps_the_span() {
    let spec = common::synthetic_spec(
        "description = \"shared store, searched\"\nseeds = 2\n",
        common::TARGET_ARM,
    )
    .replace("epochs = 2", "epochs = 60");
    let s = Scratch::with("shared-sigterm-search", "shared", &spec);
    let store = s.0.join("results/shared");
    let child = spawn_and_stop_mid_run(&s.0, &store);
    assert_eq!(reported(child, "stopped"), 1);
    assert_eq!(files_ending(&store, "checkpoint.bpk").len(), 1);
    let sessions = sparselab::runner::wall_time::sessions(&store);
    assert_eq!(sessions.len(), 1, "the stopped process stored its span");
    assert!(sessions[0].ended_unix > sessions[0].started_unix);
}

#[test]
fn a_full_disk_stops_the_run_with_a_clear_error_and_leaves_the_store_valid() {
    let s = Scratch::with("shared-full-disk", "shared", &spec(6));
    let store = s.0.join("results/shared");
    // 16 KiB: a run's config and first records fit, its records and checkpoint soon do not.
    let out = spawn_under(&s.0, None, Some(16))
        .wait_with_output()
        .expect("child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the writes past the limit failed");
    assert!(
        stderr.contains("File too large") && stderr.contains(&*store.to_string_lossy()),
        "the error names the file and the cause: {stderr}"
    );
    assert!(
        files_ending(&store, ".tmp").is_empty(),
        "no temporary file is left"
    );
    // With room again, the next ablate finishes the store as one process would.
    ablate("shared", &s.options()).expect("rerun");
    assert_eq!(stored_values(&store), alone(&s));
}

#[test]
fn a_read_only_results_directory_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let s = Scratch::with("shared-read-only", "shared", &spec(2));
    let results = s.0.join("results");
    std::fs::create_dir_all(&results).expect("results");
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o555)).expect("chmod");
    // Permissions do not bind root: a root test process runs the ablate as `nobody`.
    let root = std::fs::write(results.join("probe"), b"").is_ok();
    let _ = std::fs::remove_file(results.join("probe"));
    let test = std::env::current_exe().expect("test binary");
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(test);
        c
    } else {
        Command::new(test)
    };
    let out = cmd
        .args(["child", "--exact", "--ignored", "--nocapture"])
        .env(CHILD, &s.0)
        .output()
        .expect("child");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "ablate into a read-only directory fails"
    );
    assert!(
        stderr.contains(&*results.join("shared").to_string_lossy())
            && stderr.contains("Permission denied"),
        "the error names the directory and the cause: {stderr}"
    );
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
