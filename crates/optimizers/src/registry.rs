//! Every registered optimiser: one line each.

use crate::factory::{Factory, OptimizerFactory};
use sparselab_core::{Entry, Registry};

/// Every registered optimiser. Adding one: a file implementing [`crate::SparseOptimizer`] and one line
/// here.
pub fn registry() -> Registry<dyn OptimizerFactory> {
    Registry::new(
        "optimizer",
        vec![
            Entry::of::<Factory<crate::sgd::Sgd>>(),
            Entry::of::<Factory<crate::proxsgd::ProxSgd>>(),
            Entry::of::<Factory<crate::rda::Rda>>(),
            Entry::of::<Factory<crate::grda::Grda>>(),
            Entry::of::<Factory<crate::xrda::Xrda>>(),
            Entry::of::<Factory<crate::rmda::Rmda>>(),
            Entry::of::<Factory<crate::proxssi::ProxSsi>>(),
            Entry::of::<Factory<crate::lpsgd::LpSgd>>(),
        ],
    )
}
