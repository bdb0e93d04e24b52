#![allow(dead_code)] // each test crate uses a subset of the helpers

//! Synthetic sparse regression problems and a minibatch training loop that drives one optimiser
//! on one weight tensor, for method-level tests (support recovery, structure identification);
//! scratch project directories for end-to-end tests.

use burn::optim::Optimizer;
use burn::tensor::{Device, Tensor, TensorData};
use sparselab::core::rng::{ChaCha8Rng, Rng, SeedableRng, SliceRandom, normal, stream};
use sparselab::runner::{DeviceChoice, Options};
use std::path::{Path, PathBuf};

/// The data, model and training sections of the small synthetic ablations that the end-to-end
/// tests run (CPU and WGPU): 4 classes of 6×6 inputs, a 32-16 MLP, 2 epochs.
pub const SYNTHETIC_SETUP: &str = r#"
[data]
name = "synthetic"
validation = 64
synthetic = { classes = 4, shape = [1, 6, 6], train = 320, test = 128, noise = 1.5 }

[model]
name = "mlp-300-100"
hidden = [32, 16]

[train]
epochs = 2
batch = 32
lr = 0.05
"#;

/// The arms of the end-to-end ablations: dense SGD, GMP at two sparsities and a static mask.
pub const SMOKE_ARMS: &str = r#"[arms.dense]
optimizer = { name = "sgd" }

[arms.gmp]
optimizer = { name = "sgd" }
topology = { name = "gmp", start = 0.0, end = 0.5, every = 2 }
sweep = { "topology.sparsity" = [0.5, 0.9] }

[arms.static]
optimizer = { name = "sgd" }
topology = { name = "static", sparsity = 0.8 }
"#;

/// One arm of proximal SGD + ℓ1 whose strength a search sets for 50 % weight sparsity.
pub const TARGET_ARM: &str = r#"[arms.l1]
optimizer = { name = "proxsgd", rho = 1.0 }
regularizer = { name = "l1" }
target = { value = 0.5, tolerance = 0.05, range = [1e-4, 1.0], probes = 12 }
"#;

/// An experiment file: `preamble` (description, seeds), [`SYNTHETIC_SETUP`], then `arms`.
pub fn synthetic_spec(preamble: &str, arms: &str) -> String {
    format!("{preamble}\n{SYNTHETIC_SETUP}\n{arms}")
}

/// `Y = X·W* + ε` with `X` `[n, d]` standard normal, `W*` `[d, m]` whose rows (the input groups
/// of a linear layer in burn's `[d_in, d_out]` layout) are non-zero only on `support`.
pub struct Regression {
    pub x: Vec<Vec<f64>>,
    pub y: Vec<Vec<f64>>,
    pub truth: Vec<Vec<f64>>,
    pub d: usize,
    pub m: usize,
}

impl Regression {
    /// `relevant` of `d` input rows non-zero, entries ±(1…2), noise σ, `n` samples, fixed `seed`.
    pub fn new(d: usize, m: usize, relevant: usize, n: usize, noise: f64, seed: u64) -> Self {
        let mut rng = stream(seed, "sparse-regression");
        let mut truth = vec![vec![0.0; m]; d];
        for k in 0..relevant {
            for v in truth[k * (d / relevant)].iter_mut() {
                let magnitude = 1.0 + rng.random::<f64>();
                *v = if rng.random::<bool>() {
                    magnitude
                } else {
                    -magnitude
                };
            }
        }
        let x: Vec<Vec<f64>> = (0..n)
            .map(|_| (0..d).map(|_| f64::from(normal(&mut rng))).collect())
            .collect();
        let y = x
            .iter()
            .map(|row| {
                (0..m)
                    .map(|j| {
                        row.iter().zip(&truth).map(|(a, w)| a * w[j]).sum::<f64>()
                            + noise * f64::from(normal(&mut rng))
                    })
                    .collect()
            })
            .collect();
        Self { x, y, truth, d, m }
    }

    /// Whether each input row of the truth is non-zero.
    pub fn support(&self) -> Vec<bool> {
        self.truth
            .iter()
            .map(|row| row.iter().any(|v| *v != 0.0))
            .collect()
    }

    /// Gradient of `(1/2|B|)·Σ_{i∈B} ‖x_i W − y_i‖²` at `w` (`[d, m]` row-major).
    fn gradient(&self, w: &[f32], batch: &[usize]) -> Vec<f32> {
        let mut g = vec![0.0f64; self.d * self.m];
        for &i in batch {
            for j in 0..self.m {
                let pred: f64 = (0..self.d)
                    .map(|k| self.x[i][k] * f64::from(w[k * self.m + j]))
                    .sum();
                let r = (pred - self.y[i][j]) / batch.len() as f64;
                for k in 0..self.d {
                    g[k * self.m + j] += r * self.x[i][k];
                }
            }
        }
        g.into_iter().map(|v| v as f32).collect()
    }

    /// Trains `opt` from zero with minibatches of `batch` for `epochs`; `lr(step, total)` gives
    /// the step size; `on_epoch` sees the weights after every epoch. Returns the final weights.
    pub fn fit<O: Optimizer>(
        &self,
        opt: &O,
        epochs: usize,
        batch: usize,
        lr: impl Fn(usize, usize) -> f64,
        mut on_epoch: impl FnMut(&[f32]),
    ) -> Vec<f32> {
        let device = Device::flex();
        let n = self.x.len();
        let mut w = Tensor::<2>::zeros([self.d, self.m], &device);
        let mut state = None;
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let total = epochs * n.div_ceil(batch);
        let mut step = 0;
        let host = |w: &Tensor<2>| {
            w.clone()
                .into_data()
                .try_into_vec_as::<f32>()
                .expect("f32 weights")
        };
        for _ in 0..epochs {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng);
            for b in order.chunks(batch) {
                step += 1;
                let g = self.gradient(&host(&w), b);
                let grad = Tensor::<2>::from_data(TensorData::new(g, [self.d, self.m]), &device);
                let (next, s) = opt.step(lr(step, total), w, grad, state);
                w = next;
                state = s;
            }
            on_epoch(&host(&w));
        }
        host(&w)
    }
}

/// `½·s₀·(1 + cos(π(n − 1)/N))`.
pub fn cosine(s0: f64) -> impl Fn(usize, usize) -> f64 {
    move |n, total| 0.5 * s0 * (1.0 + (std::f64::consts::PI * (n - 1) as f64 / total as f64).cos())
}

/// Zero pattern of the input rows of a `[d, m]` weight: `true` where the row is non-zero.
pub fn row_support(w: &[f32], m: usize) -> Vec<bool> {
    w.chunks(m)
        .map(|row| row.iter().any(|v| *v != 0.0))
        .collect()
}

/// A scratch project directory (`experiments/`, and `results/` once something trains), removed
/// when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// An empty project named after the test (`tag`) and the process.
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("sparselab-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("experiments")).unwrap();
        Self(dir)
    }

    /// A project holding one experiment file, `experiments/<name>.toml`.
    pub fn with(tag: &str, name: &str, text: &str) -> Self {
        let s = Self::new(tag);
        s.experiment(name, text);
        s
    }

    /// Writes `experiments/<name>.toml`.
    pub fn experiment(&self, name: &str, text: &str) {
        std::fs::write(
            self.0.join("experiments").join(format!("{name}.toml")),
            text,
        )
        .unwrap();
    }

    /// Options over this project, on the CPU.
    pub fn options(&self) -> Options {
        Options {
            device: DeviceChoice::Flex,
            ..Options::new(&self.0)
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The run directories of an ablation's store, sorted.
pub fn run_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// Every stored value of a run but its timings (which no two runs share: training times,
/// measured speedups, how often it was resumed).
pub use sparselab::runner::record::without_timings;

/// `epochs.json` and `final.json` of every run of an ablation, timings removed, by run id.
pub fn stored_values(dir: &Path) -> Vec<(String, serde_json::Value)> {
    run_dirs(dir)
        .into_iter()
        .map(|r| {
            let read = |f: &str| -> serde_json::Value {
                serde_json::from_str(&std::fs::read_to_string(r.join(f)).unwrap()).unwrap()
            };
            let mut v =
                serde_json::json!({ "epochs": read("epochs.json"), "final": read("final.json") });
            without_timings(&mut v);
            (r.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect()
}
