//! Every registered topology: one line each.

use crate::topology::Topology;
use sparselab_core::{Entry, Registry};

/// Every registered topology. Adding one: a file with a `FromConfig` impl and one line here.
/// An arm without a topology trains dense.
pub fn registry() -> Registry<dyn Topology> {
    Registry::new(
        "topology",
        vec![
            Entry::of::<crate::gmp::Gmp>(),
            Entry::of::<crate::static_mask::StaticMask>(),
            Entry::of::<crate::set::Set>(),
            Entry::of::<crate::rigl::Rigl>(),
            Entry::of::<crate::semi_prune::SemiPrune>(),
        ],
    )
}
