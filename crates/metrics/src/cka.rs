//! Centred kernel alignment (SPEC.md §1.3): how similar two layers' representations are.
//!
//! Everything here works on burn tensors of any device, with or without autodiff, so the same
//! code is the metric (inter-layer CKA per stage, a user comparing two networks) and the
//! differentiable CKA-SR loss term. `X` (n×p₁) and `Y` (n×p₂) hold the same n examples as rows.
//!
//! - **Linear CKA** (Kornblith et al. 2019), columns centred:
//!   `CKA(X,Y) = ‖YᵀX‖_F² / (‖XᵀX‖_F·‖YᵀY‖_F)` (feature form), or equivalently with
//!   `K = XXᵀ`, `L = YYᵀ`, `H = I − 11ᵀ/n`:
//!   `CKA = tr(KHLH) / √(tr(KHKH)·tr(LHLH))` (Gram form; the `(n−1)²` of HSIC cancels).
//!   [`linear_cka`] picks the cheaper form by flop count (Gram when `n(p₁+p₂) < p₁p₂+p₁²+p₂²`,
//!   i.e. when n ≪ p).
//! - **RBF CKA**: the Gram form with `k(x,y) = exp(−‖x−y‖²/(2σ²))`, σ a fraction (default 0.5)
//!   of the median pairwise distance ([`rbf_cka`]). σ is computed from the values and treated as
//!   a constant (no gradient flows through the median) **(ours)**.
//! - **Unbiased HSIC** (Song et al. 2012) on Gram matrices with zeroed diagonals K̃, L̃, n > 3:
//!   `HSIC₁ = [tr(K̃L̃) + (1ᵀK̃1)(1ᵀL̃1)/((n−1)(n−2)) − (2/(n−2))·1ᵀK̃L̃1] / (n(n−3))`
//!   ([`hsic_unbiased`]); it needs no centring (it is unchanged when a constant is added to the
//!   features, tested below). `CKA₁ = HSIC₁(K,L)/√(HSIC₁(K,K)·HSIC₁(L,L))` ([`cka_unbiased`])
//!   and minibatch CKA (Nguyen et al. 2021) `mean HSIC₁(K_i,L_i) / √(mean HSIC₁(K_i,K_i)·mean
//!   HSIC₁(L_i,L_i))` over k batches ([`MinibatchCka`]).
//!
//! Comparing two representations outside training (any `[n, p]` features of the same n inputs,
//! e.g. two networks' block outputs from `Architecture::forward(x, true)`):
//!
//! ```
//! use burn::tensor::{Device, Tensor, TensorData};
//! use sparselab_metrics::cka::{MinibatchCka, center_columns, gram_linear, linear_cka};
//!
//! let device = Device::flex();
//! let x = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 2.0, 3.0, 5.0, 8.0, 13.0], [6, 1]), &device);
//! let y = x.clone().mul_scalar(-3.0).add_scalar(1.0); // an affine copy: CKA 1
//! assert!((linear_cka(x.clone(), y.clone()).into_scalar::<f64>() - 1.0).abs() < 1e-5);
//!
//! // Over many batches, the unbiased minibatch estimator.
//! let mut cka = MinibatchCka::default();
//! for _ in 0..3 {
//!     cka.add(gram_linear(center_columns(x.clone())), gram_linear(center_columns(y.clone())));
//! }
//! assert!((cka.value().unwrap() - 1.0).abs() < 1e-4);
//! ```
//!
//! Centre the features before taking Gram matrices for HSIC₁: it does not change the value, but
//! in f32 it avoids the cancellation a large common mean causes (see `cka-sr`).
//!
//! Guards (SPEC §1.3: never NaN): every denominator's factors are clamped at [`EPS`] before the
//! square root, so all-zero or constant features give CKA 0 instead of 0/0, and a negative
//! HSIC₁ self-term (possible for small n) cannot reach a square root.

use burn::tensor::{Bool, Tensor};

/// Floor of each factor under a square root in a CKA denominator.
pub const EPS: f64 = 1e-12;

/// Default RBF bandwidth: σ = 0.5 × the median pairwise distance (SPEC §1.3).
pub const RBF_FRACTION: f64 = 0.5;

/// `X − 1·meanᵀ`: every column centred over the rows.
pub fn center_columns(x: Tensor<2>) -> Tensor<2> {
    let mean = x.clone().mean_dim(0);
    x - mean
}

/// The linear Gram matrix `K = XXᵀ` (n×n).
pub fn gram_linear(x: Tensor<2>) -> Tensor<2> {
    x.clone().matmul(x.transpose())
}

/// Squared Euclidean distances between rows, `D_ij = ‖x_i − x_j‖²` (clamped at 0 against
/// rounding).
fn squared_distances(x: Tensor<2>) -> Tensor<2> {
    let sq = x.clone().powf_scalar(2.0).sum_dim(1);
    let cross = gram_linear(x);
    (sq.clone() + sq.transpose() - cross.mul_scalar(2.0)).clamp_min(0.0)
}

/// Median of the off-diagonal pairwise distances (host computation, no gradient; 0 when there is
/// no pair or the values cannot be read back).
fn median_distance(d2: &Tensor<2>) -> f64 {
    let n = d2.dims()[0];
    let values: Vec<f32> = d2
        .clone()
        .into_data()
        .try_into_vec_as::<f32>()
        .unwrap_or_default();
    if values.len() != n * n {
        return 0.0;
    }
    let mut off: Vec<f64> = (0..n)
        .flat_map(|i| ((i + 1)..n).map(move |j| (i, j)))
        .map(|(i, j)| f64::from(values[i * n + j]).sqrt())
        .collect();
    if off.is_empty() {
        return 0.0;
    }
    off.sort_by(f64::total_cmp);
    let m = off.len();
    if m % 2 == 1 {
        off[m / 2]
    } else {
        0.5 * (off[m / 2 - 1] + off[m / 2])
    }
}

/// The RBF Gram matrix `K_ij = exp(−‖x_i − x_j‖²/(2σ²))` with σ = `fraction` × the median
/// pairwise distance. When every row is the same (median 0) the kernel is all ones, which
/// centres to zero.
pub fn gram_rbf(x: Tensor<2>, fraction: f64) -> Tensor<2> {
    let d2 = squared_distances(x);
    let sigma = fraction * median_distance(&d2);
    if sigma <= 0.0 {
        return d2.zeros_like().add_scalar(1.0);
    }
    d2.mul_scalar(-1.0 / (2.0 * sigma * sigma)).exp()
}

/// `HKH`: a Gram matrix with rows and columns centred.
pub fn center_gram(k: Tensor<2>) -> Tensor<2> {
    let rows = k.clone().mean_dim(1);
    let cols = k.clone().mean_dim(0);
    let all = k.clone().mean();
    k - rows - cols + all.unsqueeze::<2>()
}

/// `√max(a, EPS) · √max(b, EPS)`, the guarded denominator.
fn guarded_norm(a: Tensor<1>, b: Tensor<1>) -> Tensor<1> {
    a.clamp_min(EPS).sqrt() * b.clamp_min(EPS).sqrt()
}

/// Biased CKA of two Gram matrices: `⟨HKH, HLH⟩_F / (‖HKH‖_F·‖HLH‖_F)` (shape `[1]`).
pub fn gram_cka(k: Tensor<2>, l: Tensor<2>) -> Tensor<1> {
    let (kc, lc) = (center_gram(k), center_gram(l));
    let num = (kc.clone() * lc.clone()).sum();
    let den = guarded_norm(kc.powf_scalar(2.0).sum(), lc.powf_scalar(2.0).sum());
    num / den
}

/// Whether the Gram form is cheaper than the feature form for `n` rows of widths `p1`, `p2`:
/// Gram needs `n²(p₁+p₂)` multiply-adds, the feature form `n(p₁p₂ + p₁² + p₂²)`.
pub fn prefers_gram(n: usize, p1: usize, p2: usize) -> bool {
    n * (p1 + p2) < p1 * p2 + p1 * p1 + p2 * p2
}

/// Linear CKA of `x` (n×p₁) and `y` (n×p₂), biased estimator (shape `[1]`), in whichever form is
/// cheaper.
pub fn linear_cka(x: Tensor<2>, y: Tensor<2>) -> Tensor<1> {
    let [n, p1] = x.dims();
    let p2 = y.dims()[1];
    let (x, y) = (center_columns(x), center_columns(y));
    if prefers_gram(n, p1, p2) {
        return gram_cka(gram_linear(x), gram_linear(y));
    }
    let cross = y.clone().transpose().matmul(x.clone());
    let num = cross.powf_scalar(2.0).sum();
    let xx = x.clone().transpose().matmul(x).powf_scalar(2.0).sum();
    let yy = y.clone().transpose().matmul(y).powf_scalar(2.0).sum();
    num / guarded_norm(xx, yy)
}

/// RBF CKA of `x` and `y` (biased estimator, shape `[1]`), σ = `fraction` × each one's median
/// pairwise distance.
pub fn rbf_cka(x: Tensor<2>, y: Tensor<2>, fraction: f64) -> Tensor<1> {
    gram_cka(gram_rbf(x, fraction), gram_rbf(y, fraction))
}

/// `K` with its diagonal set to zero.
fn zero_diagonal(k: Tensor<2>) -> Tensor<2> {
    let n = k.dims()[0];
    let diag = Tensor::<2, Bool>::diag_mask([n, n], 0, &k.device()).bool_not();
    k.mask_fill(diag, 0.0)
}

/// The unbiased HSIC estimator HSIC₁ of two n×n Gram matrices (shape `[1]`); `None` for n ≤ 3,
/// where it is undefined.
pub fn hsic_unbiased(k: Tensor<2>, l: Tensor<2>) -> Option<Tensor<1>> {
    let n = k.dims()[0];
    if n <= 3 {
        return None;
    }
    let nf = n as f64;
    let (kt, lt) = (zero_diagonal(k), zero_diagonal(l));
    let trace = (kt.clone() * lt.clone()).sum();
    let (rk, rl) = (kt.sum_dim(1), lt.sum_dim(1));
    let product = rk.clone().sum() * rl.clone().sum();
    let cross = (rk * rl).sum();
    let value =
        trace + product.div_scalar((nf - 1.0) * (nf - 2.0)) - cross.mul_scalar(2.0 / (nf - 2.0));
    Some(value.div_scalar(nf * (nf - 3.0)))
}

/// `CKA₁(K, L) = HSIC₁(K,L) / √(HSIC₁(K,K)·HSIC₁(L,L))` of one batch (shape `[1]`; may be
/// negative for small n); `None` for n ≤ 3.
pub fn cka_unbiased(k: Tensor<2>, l: Tensor<2>) -> Option<Tensor<1>> {
    let kl = hsic_unbiased(k.clone(), l.clone())?;
    let kk = hsic_unbiased(k.clone(), k)?;
    let ll = hsic_unbiased(l.clone(), l)?;
    Some(kl / guarded_norm(kk, ll))
}

/// Minibatch CKA over batches (Nguyen et al. 2021): HSIC₁ terms summed on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MinibatchCka {
    xy: f64,
    xx: f64,
    yy: f64,
    batches: usize,
}

impl MinibatchCka {
    /// Adds one batch's Gram matrices `K_i`, `L_i` (ignored for n ≤ 3).
    pub fn add(&mut self, k: Tensor<2>, l: Tensor<2>) {
        let (Some(xy), Some(xx), Some(yy)) = (
            hsic_unbiased(k.clone(), l.clone()),
            hsic_unbiased(k.clone(), k),
            hsic_unbiased(l.clone(), l),
        ) else {
            return;
        };
        self.add_terms(
            xy.into_scalar::<f64>(),
            xx.into_scalar::<f64>(),
            yy.into_scalar::<f64>(),
        );
    }

    /// Adds one batch's three HSIC₁ values `(K,L)`, `(K,K)`, `(L,L)`.
    pub fn add_terms(&mut self, xy: f64, xx: f64, yy: f64) {
        self.xy += xy;
        self.xx += xx;
        self.yy += yy;
        self.batches += 1;
    }

    /// `mean HSIC₁(K,L) / √(mean HSIC₁(K,K)·mean HSIC₁(L,L))`; `None` before any batch.
    pub fn value(&self) -> Option<f64> {
        (self.batches > 0).then(|| {
            let b = self.batches as f64;
            (self.xy / b) / ((self.xx / b).max(EPS).sqrt() * (self.yy / b).max(EPS).sqrt())
        })
    }
}

/// Minibatch CKA between every pair of blocks: `batches[b][i]` is block i's features on batch b
/// (every batch lists the same blocks). Returns the symmetric matrix of pairwise values (1 on
/// the diagonal; 0 where no batch had n > 3).
pub fn minibatch_cka_matrix(batches: &[Vec<Tensor<2>>]) -> Vec<Vec<f64>> {
    let blocks = batches.first().map_or(0, Vec::len);
    let mut hsic = vec![vec![0.0f64; blocks]; blocks];
    let mut counted = 0usize;
    for batch in batches {
        let grams: Vec<Tensor<2>> = batch
            .iter()
            .map(|x| gram_linear(center_columns(x.clone())))
            .collect();
        if grams.first().is_none_or(|k| k.dims()[0] <= 3) {
            continue;
        }
        counted += 1;
        for i in 0..blocks {
            for j in i..blocks {
                let v = hsic_unbiased(grams[i].clone(), grams[j].clone())
                    .map_or(0.0, |t| t.into_scalar::<f64>());
                hsic[i][j] += v;
            }
        }
    }
    let mut out = vec![vec![0.0; blocks]; blocks];
    for i in 0..blocks {
        for j in i..blocks {
            let v = if i == j {
                1.0
            } else if counted == 0 {
                0.0
            } else {
                let mut m = MinibatchCka::default();
                m.add_terms(hsic[i][j], hsic[i][i], hsic[j][j]);
                m.value().unwrap_or(0.0)
            };
            out[i][j] = v;
            out[j][i] = v;
        }
    }
    out
}

/// Mean of the strictly upper triangle of a pairwise matrix (`None` for fewer than 2 blocks):
/// the "mean inter-layer CKA" of a stage (SPEC §3).
pub fn mean_off_diagonal(matrix: &[Vec<f64>]) -> Option<f64> {
    let n = matrix.len();
    let values: Vec<f64> = (0..n)
        .flat_map(|i| ((i + 1)..n).map(move |j| (i, j)))
        .map(|(i, j)| matrix[i][j])
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use proptest::prelude::*;
    use sparselab_core::rng::{Rng, normal, stream};

    fn dev() -> Device {
        Device::flex()
    }

    fn mat(rows: usize, cols: usize, v: Vec<f32>) -> Tensor<2> {
        Tensor::from_data(TensorData::new(v, [rows, cols]), &dev())
    }

    /// Seeded standard-normal matrix.
    fn random(rows: usize, cols: usize, seed: u64) -> Tensor<2> {
        let mut rng = stream(seed, "cka-test");
        mat(
            rows,
            cols,
            (0..rows * cols).map(|_| normal(&mut rng)).collect(),
        )
    }

    fn scalar(t: Tensor<1>) -> f64 {
        t.into_scalar::<f64>()
    }

    /// Deterministic pseudo-random matrix from a seed (proptest drives the seed).
    fn seeded(rows: usize, cols: usize, seed: u64) -> Tensor<2> {
        let mut rng = stream(seed, "cka-uniform");
        let v: Vec<f32> = (0..rows * cols)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        mat(rows, cols, v)
    }

    /// A random orthogonal p×p matrix: Gram–Schmidt on seeded columns (host, f64).
    fn orthogonal(p: usize, seed: u64) -> Tensor<2> {
        let mut rng = stream(seed, "cka-orthogonal");
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < p {
            let mut v: Vec<f64> = (0..p).map(|_| rng.random_range(-1.0..1.0)).collect();
            for u in &q {
                let d: f64 = v.iter().zip(u).map(|(a, b)| a * b).sum();
                v.iter_mut().zip(u).for_each(|(a, b)| *a -= d * b);
            }
            let n = v.iter().map(|a| a * a).sum::<f64>().sqrt();
            if n > 1e-6 {
                q.push(v.into_iter().map(|a| a / n).collect());
            }
        }
        let flat: Vec<f32> = (0..p)
            .flat_map(|i| q.iter().map(move |col| col[i] as f32))
            .collect();
        mat(p, p, flat)
    }

    #[test]
    fn cka_of_a_representation_with_itself_is_one() {
        let x = random(20, 7, 1);
        assert!((scalar(linear_cka(x.clone(), x.clone())) - 1.0).abs() < 1e-5);
        assert!((scalar(rbf_cka(x.clone(), x.clone(), RBF_FRACTION)) - 1.0).abs() < 1e-5);
        let k = gram_linear(x);
        assert!((scalar(cka_unbiased(k.clone(), k).unwrap()) - 1.0).abs() < 1e-5);
    }

    #[test]
    fn feature_and_gram_forms_agree() {
        let (x, y) = (random(12, 30, 2), random(12, 5, 3));
        let (xc, yc) = (center_columns(x.clone()), center_columns(y.clone()));
        let gram = scalar(gram_cka(gram_linear(xc.clone()), gram_linear(yc.clone())));
        // Feature form by hand.
        let num = scalar(
            yc.clone()
                .transpose()
                .matmul(xc.clone())
                .powf_scalar(2.0)
                .sum(),
        );
        let xx = scalar(xc.clone().transpose().matmul(xc).powf_scalar(2.0).sum()).sqrt();
        let yy = scalar(yc.clone().transpose().matmul(yc).powf_scalar(2.0).sum()).sqrt();
        let feature = num / (xx * yy);
        assert!((gram - feature).abs() < 1e-5, "{gram} vs {feature}");
        // linear_cka picks each form at one of these shapes.
        assert!(prefers_gram(12, 30, 5) && !prefers_gram(100, 3, 2));
        let wide = scalar(linear_cka(x.clone(), y.clone()));
        assert!((wide - feature).abs() < 1e-5);
        let (tall_x, tall_y) = (random(100, 3, 4), random(100, 2, 5));
        let a = scalar(linear_cka(tall_x.clone(), tall_y.clone()));
        let b = scalar(gram_cka(
            gram_linear(center_columns(tall_x)),
            gram_linear(center_columns(tall_y)),
        ));
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }

    /// X = [[1],[2],[3]], Y = [[1],[3],[2]]: centred x = (−1,0,1), y = (−1,1,0); ‖yᵀx‖² = 1,
    /// ‖xᵀx‖ = 2, ‖yᵀy‖ = 2 → CKA = 1/4.
    #[test]
    fn hand_computed_linear_cka() {
        let x = mat(3, 1, vec![1.0, 2.0, 3.0]);
        let y = mat(3, 1, vec![1.0, 3.0, 2.0]);
        assert!((scalar(linear_cka(x, y)) - 0.25).abs() < 1e-6);
        // Two orthogonal centred columns vs one of them: ‖yᵀX‖² = 4, ‖XᵀX‖ = 2√2 (diag 2, 2),
        // ‖yᵀy‖ = 2 → 4/(2√2·2) = 1/√2.
        let x = mat(4, 2, vec![1.0, 1.0, -1.0, 1.0, 1.0, -1.0, -1.0, -1.0]);
        let y = mat(4, 1, vec![1.0, -1.0, 1.0, -1.0]);
        assert!((scalar(linear_cka(x, y)) - 0.5f64.sqrt()).abs() < 1e-6);
    }

    /// HSIC₁ by its definition, term by term on the host, for a 4×4 pair.
    #[test]
    fn hand_computed_unbiased_hsic() {
        let kv = [
            [2.0, 1.0, 0.0, 1.0],
            [1.0, 3.0, 1.0, 0.0],
            [0.0, 1.0, 1.0, 2.0],
            [1.0, 0.0, 2.0, 4.0],
        ];
        let lv = [
            [1.0, 0.0, 2.0, 1.0],
            [0.0, 2.0, 1.0, 1.0],
            [2.0, 1.0, 5.0, 0.0],
            [1.0, 1.0, 0.0, 1.0],
        ];
        let n = 4.0;
        let off = |m: &[[f64; 4]; 4], i: usize, j: usize| if i == j { 0.0 } else { m[i][j] };
        let mut trace = 0.0;
        let (mut sk, mut sl, mut cross) = (0.0, 0.0, 0.0);
        for i in 0..4 {
            let (mut rk, mut rl) = (0.0, 0.0);
            for j in 0..4 {
                trace += off(&kv, i, j) * off(&lv, j, i);
                rk += off(&kv, i, j);
                rl += off(&lv, i, j);
            }
            sk += rk;
            sl += rl;
            cross += rk * rl;
        }
        let expected =
            (trace + sk * sl / ((n - 1.0) * (n - 2.0)) - 2.0 / (n - 2.0) * cross) / (n * (n - 3.0));
        let t = |m: [[f64; 4]; 4]| mat(4, 4, m.iter().flatten().map(|&v| v as f32).collect());
        let got = scalar(hsic_unbiased(t(kv), t(lv)).unwrap());
        assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        assert!(
            hsic_unbiased(
                t(kv).narrow(0, 0, 3).narrow(1, 0, 3),
                t(lv).narrow(0, 0, 3).narrow(1, 0, 3)
            )
            .is_none()
        );
    }

    #[test]
    fn unbiased_hsic_needs_no_centring() {
        let (x, y) = (random(10, 6, 6), random(10, 4, 7));
        let shifted = x.clone().add_scalar(3.0);
        let a = scalar(hsic_unbiased(gram_linear(x), gram_linear(y.clone())).unwrap());
        let b = scalar(hsic_unbiased(gram_linear(shifted), gram_linear(y)).unwrap());
        assert!((a - b).abs() < 1e-3 * a.abs().max(1.0), "{a} vs {b}");
    }

    /// Population: Y shares one of X's 32 directions, so the population CKA is small but not 0.
    /// Over 300 batches of 16 rows, minibatch CKA with HSIC₁ lands near the value on 20 000 rows;
    /// the same average with the biased estimator is far above it (its bias is O(p/n)).
    #[test]
    fn unbiased_minibatch_cka_is_close_to_the_population_value_and_biased_is_not() {
        let (rows, batch, p) = (20_000, 16, 32);
        let x = random(rows, p, 8);
        let noise = random(rows, p, 9);
        let y = x.clone().narrow(1, 0, 1).repeat_dim(1, p).mul_scalar(0.5) + noise;
        let population = scalar(linear_cka(x.clone(), y.clone()));
        let mut unbiased = MinibatchCka::default();
        let mut biased = Vec::new();
        for b in 0..300 {
            let xb = x.clone().narrow(0, b * batch, batch);
            let yb = y.clone().narrow(0, b * batch, batch);
            unbiased.add(gram_linear(xb.clone()), gram_linear(yb.clone()));
            biased.push(scalar(linear_cka(xb, yb)));
        }
        let unbiased = unbiased.value().unwrap();
        let biased = biased.iter().sum::<f64>() / biased.len() as f64;
        assert!(
            (unbiased - population).abs() < 0.03,
            "unbiased {unbiased} vs population {population}"
        );
        assert!(
            biased - population > 0.2,
            "biased {biased} vs population {population}"
        );
    }

    #[test]
    fn degenerate_inputs_give_finite_values() {
        let zeros = mat(4, 3, vec![0.0; 12]);
        let constant = mat(4, 3, vec![2.5; 12]);
        let x = random(4, 3, 10);
        let cases = [
            (zeros.clone(), x.clone()),
            (constant.clone(), x.clone()),
            (zeros.clone(), zeros.clone()),
            (constant.clone(), constant.clone()),
        ];
        for (a, b) in cases {
            let values = [
                scalar(linear_cka(a.clone(), b.clone())),
                scalar(rbf_cka(a.clone(), b.clone(), RBF_FRACTION)),
                scalar(cka_unbiased(gram_linear(a.clone()), gram_linear(b.clone())).unwrap()),
            ];
            assert!(values.iter().all(|v| v.is_finite()), "{values:?}");
        }
        // n = 4: the smallest batch HSIC₁ accepts, on random features.
        let v =
            scalar(cka_unbiased(gram_linear(x.clone()), gram_linear(random(4, 2, 11))).unwrap());
        assert!(v.is_finite());
        let m = minibatch_cka_matrix(&[vec![zeros, x.clone(), constant]]);
        assert!(m.iter().flatten().all(|v| v.is_finite()), "{m:?}");
    }

    #[test]
    fn minibatch_matrix_is_symmetric_with_unit_diagonal() {
        let batches: Vec<Vec<Tensor<2>>> = (0..3)
            .map(|b| {
                vec![
                    random(12, 5, 12 + b),
                    random(12, 8, 22 + b),
                    random(12, 5, 32 + b),
                ]
            })
            .collect();
        let m = minibatch_cka_matrix(&batches);
        for (i, row) in m.iter().enumerate() {
            assert_eq!(row[i], 1.0);
            for (j, v) in row.iter().enumerate() {
                assert_eq!(*v, m[j][i]);
            }
        }
        assert_eq!(
            mean_off_diagonal(&m),
            Some((m[0][1] + m[0][2] + m[1][2]) / 3.0)
        );
        assert_eq!(mean_off_diagonal(&[vec![1.0]]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// CKA(XQ, cY) = CKA(X, Y) for orthogonal Q and c > 0, for every estimator.
        #[test]
        fn invariant_to_orthogonal_transforms_and_isotropic_scaling(
            seed in 0u64..1000,
            scale in 0.05f32..20.0,
            n in 6usize..16,
        ) {
            let (x, y) = (seeded(n, 5, seed), seeded(n, 3, seed + 1));
            let q = orthogonal(5, seed + 2);
            let xq = x.clone().matmul(q);
            let ys = y.clone().mul_scalar(scale);
            let pairs = [
                (scalar(linear_cka(x.clone(), y.clone())), scalar(linear_cka(xq.clone(), ys.clone()))),
                (
                    scalar(rbf_cka(x.clone(), y.clone(), RBF_FRACTION)),
                    scalar(rbf_cka(xq.clone(), ys.clone(), RBF_FRACTION)),
                ),
                (
                    scalar(cka_unbiased(gram_linear(x), gram_linear(y)).unwrap()),
                    scalar(cka_unbiased(gram_linear(xq), gram_linear(ys)).unwrap()),
                ),
            ];
            for (a, b) in pairs {
                prop_assert!((a - b).abs() < 1e-3, "{} vs {}", a, b);
            }
        }

        /// Biased linear and RBF CKA lie in [0, 1].
        #[test]
        fn biased_cka_is_in_the_unit_interval(seed in 0u64..1000, n in 4usize..12) {
            let (x, y) = (seeded(n, 4, seed), seeded(n, 6, seed + 7));
            for v in [scalar(linear_cka(x.clone(), y.clone())), scalar(rbf_cka(x.clone(), y.clone(), RBF_FRACTION))] {
                prop_assert!((-1e-6..=1.0 + 1e-5).contains(&v), "{}", v);
            }
        }
    }
}
