//! Every registered regularizer: one line each.

use crate::regularizer::Regularizer;
use sparselab_core::{Entry, Registry};

/// Every registered regularizer. Adding one: a file with a `FromConfig` impl and one line here.
pub fn registry() -> Registry<dyn Regularizer> {
    Registry::new(
        "regularizer",
        vec![
            Entry::of::<crate::l1::L1>(),
            Entry::of::<crate::reweighted_l1::ReweightedL1>(),
            Entry::of::<crate::group_lasso::GroupLasso>(),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Tensor, TensorData};
    use sparselab_core::Weight;

    /// `has_diagonal_prox` tells the truth about `prox_diagonal` for every registered
    /// regularizer (optimisers that need the weighted prox check it when an experiment loads).
    #[test]
    fn has_diagonal_prox_matches_prox_diagonal() {
        let registry = registry();
        for name in registry.names() {
            let reg = registry
                .build(&serde_json::json!({ "name": name }))
                .expect("defaults are valid")
                .value;
            let z = Weight::from_tensor(Tensor::<2>::from_data(
                TensorData::new(vec![0.5f32, -1.0, 2.0, 0.1], [2, 2]),
                &Device::flex(),
            ));
            let d = z.value.ones_like();
            assert_eq!(
                reg.has_diagonal_prox(),
                reg.prox_diagonal(z, d, 0.1).is_some(),
                "{name}"
            );
        }
    }
}
