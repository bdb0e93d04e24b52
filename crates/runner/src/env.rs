//! The environment a result was measured in: device, versions, git commit, machine.

use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;

/// Recorded with every run (`env.json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Env {
    /// Device description (`flex (CPU, 2 threads)`, `wgpu (<adapter>)`).
    pub device: String,
    /// Backend (`flex` or `wgpu`).
    pub backend: String,
    /// sparselab version.
    pub sparselab_version: String,
    /// burn version (from Cargo.lock at build time).
    pub burn_version: String,
    /// rustc that built the binary.
    pub rustc: String,
    /// Build: `debug` (unoptimised) or `opt-level N` with `, debug assertions` when they are on
    /// (the workspace's one profile is `opt-level 3, debug assertions`; older results say
    /// `debug`, meaning optimised dependencies and opt-level 1 for sparselab's crates).
    pub profile: String,
    /// `git rev-parse HEAD` of the working tree, if it is a git checkout.
    pub git_commit: Option<String>,
    /// Whether the working tree had uncommitted changes (outside `results/`).
    pub git_dirty: Option<bool>,
    /// Operating system and architecture.
    pub os: String,
    /// CPU model (Linux `/proc/cpuinfo`).
    pub cpu: Option<String>,
    /// The vector unit sparselab's fused CPU kernels ran on (`sparselab_core::wide::width`: the
    /// same bits on any width, not the same speed); absent in results stored before it was
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_unit: Option<String>,
    /// Whether the CPU compute threads flushed subnormals to zero ([`crate::float_mode`]);
    /// absent on other backends and in results stored before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_subnormals: Option<bool>,
    /// Available hardware threads.
    pub threads: usize,
    /// Seconds since the Unix epoch when the ablation started.
    pub started_unix: u64,
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Whether the working tree has uncommitted changes outside `results/` (`None`: not a git
/// checkout, or git is missing).
pub fn uncommitted_changes() -> Option<bool> {
    uncommitted_changes_in(Path::new("."))
}

/// [`uncommitted_changes`] of the checkout that holds `dir`.
pub fn uncommitted_changes_in(dir: &Path) -> Option<bool> {
    let dir = dir.to_str()?;
    git(&[
        "-C",
        dir,
        "status",
        "--porcelain",
        "--",
        ":/",
        ":(top,exclude)results",
    ])
    .map(|s| !s.is_empty())
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
}

/// The `profile` field for a crate built at `opt_level`.
fn build_profile(opt_level: &str, debug_assertions: bool) -> String {
    let assertions = if debug_assertions {
        ", debug assertions"
    } else {
        ""
    };
    match opt_level {
        "0" => "debug".into(),
        level => format!("opt-level {level}{assertions}"),
    }
}

impl Env {
    /// Captures the environment for a device description and backend.
    pub fn capture(device: &str, backend: &str) -> Self {
        let commit = git(&["rev-parse", "HEAD"]);
        let dirty = commit.as_ref().and_then(|_| uncommitted_changes());
        Self {
            device: device.to_string(),
            backend: backend.to_string(),
            sparselab_version: env!("CARGO_PKG_VERSION").into(),
            burn_version: env!("SPARSELAB_BURN_VERSION").into(),
            rustc: env!("SPARSELAB_RUSTC_VERSION").into(),
            profile: build_profile(env!("SPARSELAB_OPT_LEVEL"), cfg!(debug_assertions)),
            git_commit: commit,
            git_dirty: dirty,
            os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            cpu: cpu_model(),
            vector_unit: Some(sparselab_core::wide::width().name().into()),
            flush_subnormals: (backend == "flex").then_some(crate::float_mode::AVAILABLE),
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            started_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }

    /// One line for tables: device, commit, versions.
    pub fn provenance(&self) -> String {
        format!(
            "Measured on {} ({}{}), sparselab {} at commit {}{}, burn {}, {}, {}.",
            self.device,
            self.cpu.as_deref().unwrap_or("unknown CPU"),
            self.vector_unit
                .as_deref()
                .map_or(String::new(), |v| format!(", {v}")),
            self.sparselab_version,
            self.git_commit
                .as_deref()
                .map_or("unknown", |c| &c[..c.len().min(12)]),
            if self.git_dirty == Some(true) {
                " (uncommitted changes)"
            } else {
                ""
            },
            self.burn_version,
            self.rustc,
            match self.profile.as_str() {
                "debug" | "release" => format!("{} build", self.profile),
                optimised => format!("built at {optimised}"),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_the_optimisation_level() {
        assert_eq!(build_profile("0", true), "debug");
        assert_eq!(build_profile("3", true), "opt-level 3, debug assertions");
        assert_eq!(build_profile("3", false), "opt-level 3");
        // This crate is built by the workspace's one optimised profile.
        assert_ne!(env!("SPARSELAB_OPT_LEVEL"), "0");
    }

    /// The build records the burn version the workspace's lock file pins (a build script that
    /// read another checkout's lock file recorded "unknown").
    #[test]
    fn the_build_records_the_locked_burn_version() {
        let lock = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock"),
        )
        .expect("the workspace's Cargo.lock");
        let pinned = format!(
            "name = \"burn\"\nversion = \"{}\"\n",
            env!("SPARSELAB_BURN_VERSION")
        );
        assert!(lock.contains(&pinned), "{}", env!("SPARSELAB_BURN_VERSION"));
    }

    /// Results stored before the vector unit was recorded still load, and their line is as it
    /// was; new ones name the unit.
    #[test]
    fn provenance_names_the_vector_unit_when_recorded() {
        let env = Env::capture("flex (CPU, 2 threads)", "flex");
        let unit = sparselab_core::wide::width().name();
        assert_eq!(env.vector_unit.as_deref(), Some(unit));
        let mut json = serde_json::to_value(&env).expect("serialises");
        let line = env.provenance();
        assert!(line.contains(&format!(", {unit}), sparselab")), "{line}");
        json.as_object_mut()
            .expect("an object")
            .remove("vector_unit");
        let old: Env = serde_json::from_value(json).expect("an env.json without the unit loads");
        assert_eq!(old.vector_unit, None);
        assert_eq!(old.provenance(), line.replace(&format!(", {unit}"), ""));
    }
}
