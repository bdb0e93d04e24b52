//! The PyTorch reference that `cargo xtask bench` pairs itself with.
//!
//! `xtask/reference/pytorch_reference.py step --model M --batch B` trains the same model at the
//! same batch size on the same kind of input (standard-normal Fashion-MNIST-shaped images, labels
//! `i mod 10`) with PyTorch's momentum SGD and prints one JSON object ([`ReferenceStep`]). The
//! Python is `SPARSELAB_PYTHON` if set, else `python3`; when it cannot import torch the bench says
//! so and reports sparselab alone.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variable naming the Python interpreter to use.
pub const PYTHON_ENV: &str = "SPARSELAB_PYTHON";

/// A Python that can import torch.
#[derive(Clone, Debug)]
pub struct Reference {
    /// The interpreter.
    pub python: PathBuf,
    /// The reference script.
    pub script: PathBuf,
    /// `torch.__version__`.
    pub torch: String,
    /// `sys.version` (first word).
    pub python_version: String,
}

/// One measurement of the reference script (`step` mode).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReferenceStep {
    /// Model name (sparselab's registry name).
    pub model: String,
    /// Batch size.
    pub batch: usize,
    /// Mean seconds per training step.
    pub step_seconds: f64,
    /// Median over the samples of the seconds per training step.
    pub median_step_seconds: f64,
    /// 95% interval of the mean.
    pub ci95: (f64, f64),
    /// `batch / step_seconds`.
    pub samples_per_sec: f64,
    /// torch version.
    pub torch: String,
    /// Intra-op threads torch used.
    pub threads: usize,
}

/// PyTorch's timing of one sparse-inference product (`sparse` mode).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SparseTiming {
    /// `layer/sparsity/batch` indices, as the manifest names it.
    pub key: String,
    /// `torch.mm` on the dense matrix.
    pub dense_seconds: f64,
    /// `torch.sparse.mm` on its CSR form.
    pub sparse_seconds: f64,
}

impl Reference {
    /// Finds a Python with torch, or says why there is none.
    pub fn find(script: &Path) -> Result<Self, String> {
        if !script.is_file() {
            return Err(format!(
                "the reference script {} is missing",
                script.display()
            ));
        }
        let python =
            std::env::var_os(PYTHON_ENV).map_or_else(|| PathBuf::from("python3"), PathBuf::from);
        let out = Command::new(&python)
            .args([
                "-c",
                "import sys, torch; print(torch.__version__); print(sys.version.split()[0])",
            ])
            .output()
            .map_err(|e| {
                format!(
                    "no Python at `{}` ({e}); set {PYTHON_ENV}",
                    python.display()
                )
            })?;
        if !out.status.success() {
            return Err(format!(
                "`{}` cannot import torch; install it (`pip install torch numpy`) or set \
                 {PYTHON_ENV} to a Python that has it",
                python.display()
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        Ok(Self {
            python,
            script: script.to_path_buf(),
            torch: lines.next().unwrap_or("unknown").to_string(),
            python_version: lines.next().unwrap_or("unknown").to_string(),
        })
    }

    /// Runs the script with `args` and reads the JSON its last output line holds.
    fn run<T: serde::de::DeserializeOwned>(&self, args: &[&std::ffi::OsStr]) -> anyhow::Result<T> {
        let out = Command::new(&self.python)
            .arg(&self.script)
            .args(args)
            .output()
            .with_context(|| format!("running {}", self.script.display()))?;
        anyhow::ensure!(
            out.status.success(),
            "{} failed: {}",
            self.script.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .with_context(|| format!("reading the reference's output `{line}`"))
    }

    /// Times the reference training step of `model` at `batch` with `threads` threads for
    /// `seconds` (after one second of warm-up).
    pub fn step(
        &self,
        model: &str,
        batch: usize,
        threads: usize,
        seconds: f64,
    ) -> anyhow::Result<ReferenceStep> {
        let (batch, threads, seconds) =
            (batch.to_string(), threads.to_string(), seconds.to_string());
        let args = [
            "step",
            "--model",
            model,
            "--batch",
            &batch,
            "--threads",
            &threads,
            "--seconds",
            &seconds,
        ];
        self.run(&args.map(std::ffi::OsStr::new))
    }

    /// Times the products a sparse-inference `manifest` names, in its order.
    pub fn sparse(&self, manifest: &Path) -> anyhow::Result<Vec<SparseTiming>> {
        self.run(&[
            "sparse".as_ref(),
            "--manifest".as_ref(),
            manifest.as_os_str(),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_script_or_python_is_a_reason_not_a_failure() {
        let missing = Reference::find(Path::new("/nonexistent/reference.py")).unwrap_err();
        assert!(missing.contains("is missing"), "{missing}");
    }

    #[test]
    fn the_reference_output_parses() {
        let line = r#"{"model": "lenet5", "batch": 128, "step_seconds": 0.01, "median_step_seconds": 0.0098, "ci95": [0.009, 0.011], "samples_per_sec": 12800.0, "torch": "2.15.0", "threads": 2}"#;
        let r: ReferenceStep = serde_json::from_str(line).expect("parses");
        assert_eq!((r.model.as_str(), r.batch, r.threads), ("lenet5", 128, 2));
    }
}
