//! Every registered loss term: one line each.

use crate::loss_term::LossTerm;
use sparselab_core::{Entry, Registry};

/// Every registered loss term.
pub fn registry() -> Registry<dyn LossTerm> {
    Registry::new(
        "loss term",
        vec![
            Entry::of::<crate::cka_sr::CkaSr>(),
            Entry::of::<crate::aug_cka_sr::AugCkaSr>(),
            Entry::of::<crate::feature_l2::FeatureL2>(),
        ],
    )
}
