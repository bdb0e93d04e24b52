//! Sparse inference: the product of a pruned layer with a batch, `Y = W·X` (`W` `[out, K]`,
//! `X` `[K, N]`), dense against sparse, for every weight layer of LeNet-300-100 and LeNet-5 at
//! sparsity 0.5 to 0.99 and batch 1, 32 and 128 (a convolution as its im2col product: `K` =
//! in·kh·kw, `N` = batch × output positions).
//!
//! Each product is timed with flex's dense matmul (what sparselab's forward runs), sparselab's
//! CSR kernel ([`sparselab_inference::spmm`]), `sprs`' CSR × dense product, `faer`'s sparse ×
//! dense product and, where torch is installed, PyTorch's dense `torch.mm` and
//! `torch.sparse.mm` on a CSR tensor, on the same matrices (written to files the reference
//! script reads). The measured speedup is dense ÷ the fastest sparse product; the theoretical
//! one, dense FLOPs ÷ non-zero FLOPs, is 1 / (1 − sparsity). The masks are drawn at random at the
//! exact sparsity; the timing is a median over rounds of at least a few milliseconds each.

use crate::reference::Reference;
use burn::tensor::{Device, Tensor, TensorData};
use serde::Serialize;
use sparselab_core::rng::{Rng, SliceRandom, normal, stream};
use sparselab_inference::csr::Csr;
use sparselab_inference::spmm::spmm;
use std::fmt::Write;
use std::path::Path;

/// A weight layer's product shape.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Layer {
    /// The model (sparselab's registry name).
    pub model: &'static str,
    /// The layer.
    pub layer: &'static str,
    /// Output units (rows of `W`).
    pub out: usize,
    /// Inputs per unit (columns of `W`).
    pub k: usize,
    /// Output positions per example (1 for a linear layer).
    pub positions: usize,
}

/// LeNet-300-100's and LeNet-5's weight layers on 28 × 28 inputs (SPEC §4).
pub const LAYERS: [Layer; 8] = [
    Layer {
        model: "mlp-300-100",
        layer: "hidden.0",
        out: 300,
        k: 784,
        positions: 1,
    },
    Layer {
        model: "mlp-300-100",
        layer: "hidden.1",
        out: 100,
        k: 300,
        positions: 1,
    },
    Layer {
        model: "mlp-300-100",
        layer: "head",
        out: 10,
        k: 100,
        positions: 1,
    },
    Layer {
        model: "lenet5",
        layer: "conv1",
        out: 6,
        k: 25,
        positions: 784,
    },
    Layer {
        model: "lenet5",
        layer: "conv2",
        out: 16,
        k: 150,
        positions: 100,
    },
    Layer {
        model: "lenet5",
        layer: "fc1",
        out: 120,
        k: 400,
        positions: 1,
    },
    Layer {
        model: "lenet5",
        layer: "fc2",
        out: 84,
        k: 120,
        positions: 1,
    },
    Layer {
        model: "lenet5",
        layer: "head",
        out: 10,
        k: 84,
        positions: 1,
    },
];

/// The sparsities measured.
pub const SPARSITIES: [f64; 6] = [0.5, 0.8, 0.9, 0.95, 0.98, 0.99];
/// The batch sizes measured.
pub const BATCHES: [usize; 3] = [1, 32, 128];

/// One product's timings, in microseconds.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The layer.
    #[serde(flatten)]
    pub layer: Layer,
    /// Sparsity of `W`.
    pub sparsity: f64,
    /// Batch size.
    pub batch: usize,
    /// flex's dense matmul.
    pub dense_us: f64,
    /// sparselab's CSR kernel.
    pub sparselab_us: f64,
    /// sprs' CSR × dense product (one thread: sprs has no parallel one).
    pub sprs_us: f64,
    /// faer's sparse × dense product, on every core.
    pub faer_us: f64,
    /// PyTorch's dense product, when measured.
    pub torch_dense_us: Option<f64>,
    /// PyTorch's `torch.sparse.mm` on a CSR tensor, when measured.
    pub torch_sparse_us: Option<f64>,
    /// `dense_us` ÷ the fastest of sparselab's, sprs' and faer's.
    pub measured_speedup: f64,
    /// 1 / (1 − sparsity).
    pub theoretical_speedup: f64,
}

/// Median seconds per call of `f`: 7 rounds of at least 3 ms, after a warm-up.
fn seconds_per_call(f: impl FnMut()) -> f64 {
    sparselab_inference::timing::seconds_per_call(7, 0.003, f)
}

/// A `[rows, cols]` row-major matrix of standard-normal values with exactly
/// `round(sparsity · rows · cols)` zeros at random places.
fn sparse_matrix(rows: usize, cols: usize, sparsity: f64, seed: u64) -> Vec<f32> {
    let mut rng = stream(seed, "sparse-inference");
    let mut w: Vec<f32> = (0..rows * cols).map(|_| normal(&mut rng)).collect();
    let mut order: Vec<usize> = (0..w.len()).collect();
    order.shuffle(&mut rng);
    let zeros = (sparsity * w.len() as f64).round() as usize;
    for &i in &order[..zeros] {
        w[i] = 0.0;
    }
    w
}

fn dense_input(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = stream(seed, "sparse-inference-input");
    (0..rows * cols)
        .map(|_| rng.random::<f32>() - 0.5)
        .collect()
}

fn write_f32(path: &Path, v: &[f32]) -> anyhow::Result<()> {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes)?;
    Ok(())
}

/// The timings of every layer, sparsity and batch on `device` (flex), paired with PyTorch's
/// when `reference` is given (its script's `sparse` mode, reading the matrices from `scratch`).
pub fn measure(
    device: &Device,
    reference: Option<&Reference>,
    scratch: &Path,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut manifest = Vec::new();
    std::fs::create_dir_all(scratch)?;
    for (l, layer) in LAYERS.iter().enumerate() {
        for &batch in &BATCHES {
            let n = batch * layer.positions;
            let x = dense_input(layer.k, n, l as u64);
            let x_name = format!("x-{l}-{batch}.f32");
            if reference.is_some() {
                write_f32(&scratch.join(&x_name), &x)?;
            }
            let x_tensor = Tensor::<2>::from_data(TensorData::new(x.clone(), [layer.k, n]), device);
            let x_sprs = ndarray::ArrayView2::from_shape((layer.k, n), &x)?;
            let x_faer = faer::Mat::<f32>::from_fn(layer.k, n, |i, j| x[i * n + j]);
            for (s, &sparsity) in SPARSITIES.iter().enumerate() {
                let w = sparse_matrix(layer.out, layer.k, sparsity, (l * 100 + s) as u64);
                let w_name = format!("w-{l}-{s}.f32");
                if reference.is_some() && batch == BATCHES[0] {
                    write_f32(&scratch.join(&w_name), &w)?;
                }
                manifest.push(serde_json::json!({
                    "key": format!("{l}/{s}/{batch}"),
                    "w": w_name, "x": x_name, "out": layer.out, "k": layer.k, "n": n,
                }));
                let w_tensor = Tensor::<2>::from_data(
                    TensorData::new(w.clone(), [layer.out, layer.k]),
                    device,
                );
                let dense = seconds_per_call(|| {
                    let y = w_tensor.clone().matmul(x_tensor.clone());
                    std::hint::black_box(y);
                });
                let csr = Csr::from_dense(&w, layer.out);
                let mut y = vec![0.0f32; layer.out * n];
                let ours = seconds_per_call(|| spmm(&csr, &x, n, &mut y));
                let w_sprs = sprs::CsMat::new(
                    (layer.out, layer.k),
                    csr.indptr.clone(),
                    csr.indices.iter().map(|&c| c as usize).collect(),
                    csr.values.clone(),
                );
                let mut y_sprs = ndarray::Array2::<f32>::zeros((layer.out, n));
                let sprs_time = seconds_per_call(|| {
                    y_sprs.fill(0.0);
                    sprs::prod::csr_mulacc_dense_rowmaj(w_sprs.view(), x_sprs, y_sprs.view_mut());
                });
                let faer_time = faer_product(&csr, &x_faer)?;
                let best = ours.min(sprs_time).min(faer_time);
                rows.push(Row {
                    layer: *layer,
                    sparsity,
                    batch,
                    dense_us: dense * 1e6,
                    sparselab_us: ours * 1e6,
                    sprs_us: sprs_time * 1e6,
                    faer_us: faer_time * 1e6,
                    torch_dense_us: None,
                    torch_sparse_us: None,
                    measured_speedup: dense / best,
                    theoretical_speedup: 1.0 / (1.0 - sparsity),
                });
            }
        }
    }
    if let Some(r) = reference {
        let path = scratch.join("manifest.json");
        std::fs::write(&path, serde_json::to_string(&manifest)?)?;
        let timings = r.sparse(&path)?;
        let per_product = LAYERS.len() * BATCHES.len() * SPARSITIES.len();
        anyhow::ensure!(
            timings.len() == per_product,
            "the reference timed {} products",
            timings.len()
        );
        // The manifest lists products layer by layer, batch by batch, sparsity by sparsity: the
        // order of `rows`.
        for (row, t) in rows.iter_mut().zip(timings) {
            row.torch_dense_us = Some(t.dense_seconds * 1e6);
            row.torch_sparse_us = Some(t.sparse_seconds * 1e6);
        }
    }
    Ok(rows)
}

/// faer's product `W·X` into a column-major result, on every core of the pool.
fn faer_product(w: &Csr, x: &faer::Mat<f32>) -> anyhow::Result<f64> {
    let to_u32 = |v: usize| u32::try_from(v).map_err(|_| anyhow::anyhow!("more than 2^32 entries"));
    let row_ptr: Vec<u32> = w
        .indptr
        .iter()
        .map(|&p| to_u32(p))
        .collect::<anyhow::Result<_>>()?;
    let symbolic = faer::sparse::SymbolicSparseRowMatRef::new_checked(
        w.rows, w.cols, &row_ptr, None, &w.indices,
    );
    let lhs = faer::sparse::SparseRowMatRef::new(symbolic, &w.values);
    let mut y = faer::Mat::<f32>::zeros(w.rows, x.ncols());
    Ok(seconds_per_call(|| {
        faer::sparse::linalg::matmul::sparse_dense_matmul(
            y.as_mut(),
            faer::Accum::Replace,
            lhs,
            x.as_ref(),
            1.0,
            faer::Par::rayon(0),
        );
    }))
}

/// The lowest measured sparsity from which the fastest sparse product beats the dense one at
/// every higher measured sparsity, for `layer` at `batch`; `None` if it never does.
pub fn crossover(rows: &[Row], layer: &Layer, batch: usize) -> Option<f64> {
    let mine: Vec<&Row> = (rows.iter())
        .filter(|r| {
            r.layer.model == layer.model && r.layer.layer == layer.layer && r.batch == batch
        })
        .collect();
    let mut from = None;
    for r in mine.iter().rev() {
        if r.measured_speedup > 1.0 {
            from = Some(r.sparsity);
        } else {
            break;
        }
    }
    from
}

/// A whole network's measured speedup at `sparsity` and `batch`: the sum of its layers' dense
/// times ÷ the sum of their fastest sparse times (every layer at that sparsity).
pub fn network_speedup(rows: &[Row], model: &str, sparsity: f64, batch: usize) -> Option<f64> {
    let mine: Vec<&Row> = (rows.iter())
        .filter(|r| r.layer.model == model && r.sparsity == sparsity && r.batch == batch)
        .collect();
    if mine.is_empty() {
        return None;
    }
    let dense: f64 = mine.iter().map(|r| r.dense_us).sum();
    let sparse: f64 = mine.iter().map(|r| r.dense_us / r.measured_speedup).sum();
    Some(dense / sparse)
}

/// The section of bench.md.
pub fn markdown(rows: &[Row]) -> String {
    let mut md = String::from(
        "\n## Sparse inference\n\nThe product of one weight layer with a batch, `W·X`, dense \
         (flex's matmul, what the forward pass runs) against sparse: sparselab's CSR kernel \
         (every core), sprs' CSR product (one thread) and faer's sparse product (every core), \
         and PyTorch's `torch.mm` and `torch.sparse.mm` (CSR) on the same matrices. A convolution \
         is its im2col product. Times in µs (median of rounds); *measured* speedup = dense ÷ the \
         fastest Rust sparse product; *theoretical* = 1 / (1 − sparsity).\n\n",
    );
    md.push_str("| model | layer | batch | crossover sparsity |\n|---|---|---|---|\n");
    for layer in &LAYERS {
        for &batch in &BATCHES {
            let _ = writeln!(
                md,
                "| {} | {} | {batch} | {} |",
                layer.model,
                layer.layer,
                crossover(rows, layer, batch).map_or("none measured".into(), |s| format!("{s}"))
            );
        }
    }
    md.push_str(
        "\nWhole networks (every layer at the sparsity), measured speedup of the fastest sparse \
         product over flex's dense one:\n\n| model | batch |",
    );
    for s in SPARSITIES {
        let _ = write!(md, " {s} |");
    }
    md.push_str("\n|---|---|");
    md.push_str(&"---|".repeat(SPARSITIES.len()));
    md.push('\n');
    for model in ["mlp-300-100", "lenet5"] {
        for &batch in &BATCHES {
            let _ = write!(md, "| {model} | {batch} |");
            for s in SPARSITIES {
                let v = network_speedup(rows, model, s, batch)
                    .map_or("–".into(), |x| format!("{x:.2}×"));
                let _ = write!(md, " {v} |");
            }
            md.push('\n');
        }
    }
    md.push_str(
        "\n| model | layer | batch | sparsity | dense | sparselab | sprs | faer | torch dense | \
         torch sparse | measured speedup | theoretical |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let opt = |v: Option<f64>| v.map_or("–".into(), |x| format!("{x:.1}"));
    for r in rows {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {:.2}× | {:.0}× |",
            r.layer.model,
            r.layer.layer,
            r.batch,
            r.sparsity,
            r.dense_us,
            r.sparselab_us,
            r.sprs_us,
            r.faer_us,
            opt(r.torch_dense_us),
            opt(r.torch_sparse_us),
            r.measured_speedup,
            r.theoretical_speedup
        );
    }
    md
}
