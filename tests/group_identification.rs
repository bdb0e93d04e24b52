//! Structure identification on a synthetic group-sparse regression (SPEC.md §1.4): RMDA's zero
//! pattern settles on the true group support after finitely many epochs, proximal SGD keeps
//! switching groups on and off.
//!
//! `Y = X·W* + ε`, `W*` `[d = 40, m = 5]` with 5 non-zero input rows (the group lasso's groups of
//! a linear layer), `n = 400`, noise σ = 1, minibatches of 20, 80 epochs from zero. Both methods
//! use the group lasso at the same λ and the same constant learning rate; RMDA runs with c = 1
//! (no averaging, the limit its schedule reaches after the milestones).

mod common;

use common::{Regression, row_support};
use sparselab::optimizers::SparseOptimizer;
use sparselab::optimizers::proxsgd::{ProxSgd, ProxSgdConfig};
use sparselab::optimizers::rmda::{Rmda, RmdaConfig};
use sparselab::regularizers::Regularizer;
use sparselab::regularizers::group_lasso::GroupLasso;
use std::sync::Arc;

const EPOCHS: usize = 80;

/// Per-epoch churn (groups flipped since the previous epoch; epoch 1 against the all-zero
/// start) and the final support.
fn trace<O: burn::optim::Optimizer>(p: &Regression, opt: &O, lr: f64) -> (Vec<usize>, Vec<bool>) {
    let mut previous = vec![false; p.d];
    let mut churn = Vec::new();
    let w = p.fit(
        opt,
        EPOCHS,
        20,
        |_, _| lr,
        |w| {
            let support = row_support(w, p.m);
            churn.push(
                support
                    .iter()
                    .zip(&previous)
                    .filter(|(a, b)| a != b)
                    .count(),
            );
            previous = support;
        },
    );
    (churn, row_support(&w, p.m))
}

/// First epoch after which the churn stays 0 (`None`: still changing at the end).
fn identified(churn: &[usize]) -> Option<usize> {
    match churn.iter().rposition(|c| *c > 0) {
        Some(last) if last + 1 == churn.len() => None,
        Some(last) => Some(last + 1),
        None => Some(0),
    }
}

/// Measured (identification epoch, churn summed over the second half, support errors at the
/// end) for λ ∈ {0.1, 0.2, 0.4} × η ∈ {0.01, 0.05}: RMDA identifies the exact support every
/// time, at epoch 32/7 (λ 0.1), 12/3 (λ 0.2), 2/1 (λ 0.4); ProxSGD never does, with second-half
/// churn 50/59, 618/622, 357/359 and 34, 21, 5 wrong groups at the end. The test pins λ = 0.2,
/// η = 0.05.
#[test]
fn rmda_identifies_the_group_support_and_proxsgd_keeps_churning() {
    let p = Regression::new(40, 5, 5, 400, 1.0, 11);
    let reg = || -> Arc<dyn Regularizer> { Arc::new(GroupLasso::new(0.2)) };
    let (rmda_churn, rmda_support) =
        trace(&p, &Rmda::new(&RmdaConfig { c: 1.0 }, Some(reg())), 0.05);
    let (sgd_churn, sgd_support) = trace(
        &p,
        &ProxSgd::new(
            &ProxSgdConfig {
                rho: 1.0,
                weight_decay: 0.0,
            },
            Some(reg()),
        ),
        0.05,
    );
    let tail = |c: &[usize]| c[EPOCHS / 2..].iter().sum::<usize>();
    assert_eq!(
        rmda_support,
        p.support(),
        "RMDA's final zero pattern is the true support"
    );
    let epoch = identified(&rmda_churn).expect("RMDA's structure stops changing");
    assert!(
        epoch <= 10,
        "RMDA identified the structure late: epoch {epoch}"
    );
    assert_eq!(
        identified(&sgd_churn),
        None,
        "ProxSGD still changes the structure in the last epoch"
    );
    assert!(
        tail(&sgd_churn) > 100,
        "ProxSGD churn in the second half: {sgd_churn:?}"
    );
    assert_ne!(sgd_support, p.support());
}
