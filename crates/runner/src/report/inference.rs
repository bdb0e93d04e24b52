//! The sparse-inference summary of the report and the README: LeNet-300-100's measured speedup,
//! every weight layer at one sparsity, read from the committed bench (`results/bench/bench.json`,
//! its "Sparse inference" section), beside the theoretical one.

use serde::Deserialize;
use std::fmt::Write;
use std::path::Path;

/// The model, sparsities and batches the summary states.
const MODEL: &str = "mlp-300-100";
const SPARSITIES: [f64; 2] = [0.95, 0.98];
const BATCHES: [usize; 2] = [1, 128];

/// One product of the bench's section (the fields the summary reads).
#[derive(Deserialize)]
struct Product {
    model: String,
    sparsity: f64,
    batch: usize,
    dense_us: f64,
    measured_speedup: f64,
}

#[derive(Deserialize)]
struct Env {
    cpu: Option<String>,
    git_commit: Option<String>,
}

#[derive(Deserialize)]
struct Bench {
    env: Env,
    #[serde(default)]
    sparse_inference: Vec<Product>,
}

/// LeNet-300-100's whole-network speedups from the bench: `(sparsity, batch, measured)`, with
/// the CPU and commit they were measured on.
pub struct Summary {
    /// The CPU.
    pub cpu: String,
    /// The bench's commit (short).
    pub commit: String,
    /// `(sparsity, batch, measured speedup)`.
    pub speedups: Vec<(f64, usize, f64)>,
}

/// The summary of `<results>/bench/bench.json`; `None` if it has no sparse-inference section.
///
/// # Errors
/// A bench file that cannot be read or parsed.
pub fn summary(results: &Path) -> anyhow::Result<Option<Summary>> {
    let path = results.join("bench/bench.json");
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)?;
    let bench: Bench = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("parsing {}: {e}", path.display()))?;
    let mut speedups = Vec::new();
    for s in SPARSITIES {
        for b in BATCHES {
            let layers: Vec<(f64, f64)> = (bench.sparse_inference.iter())
                .filter(|p| p.model == MODEL && p.sparsity == s && p.batch == b)
                .map(|p| (p.dense_us, p.dense_us / p.measured_speedup))
                .collect();
            if !layers.is_empty() {
                let (dense, sparse) =
                    (layers.iter()).fold((0.0, 0.0), |(d, s), (a, b)| (d + a, s + b));
                speedups.push((s, b, dense / sparse));
            }
        }
    }
    if speedups.is_empty() {
        return Ok(None);
    }
    Ok(Some(Summary {
        cpu: bench.env.cpu.unwrap_or_else(|| "an unnamed CPU".into()),
        commit: bench
            .env
            .git_commit
            .map_or("?".into(), |c| c.chars().take(7).collect()),
        speedups,
    }))
}

/// The summary's paragraph.
pub fn markdown(s: &Summary, bench_link: &str) -> String {
    let mut out = format!(
        "Sparse inference ({MODEL}, every weight layer at the sparsity, [bench]({bench_link}) \
         at {} on {}): measured speedup of the fastest Rust sparse product over flex's dense \
         matmul, theoretical in brackets —",
        s.commit, s.cpu
    );
    let parts: Vec<String> = (s.speedups.iter())
        .map(|(sp, b, x)| format!(" {sp} at batch {b}: {x:.1}× ({:.0}×)", 1.0 / (1.0 - sp)))
        .collect();
    let _ = writeln!(out, "{}.", parts.join(";"));
    out
}
