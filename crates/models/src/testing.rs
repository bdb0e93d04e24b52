//! Test inputs shared by the kernels' property tests.

use proptest::prelude::*;

/// Finite values with many exact ties, both zeros and both signs: where a kernel's order of
/// operations, tie rule or sign of zero could differ from burn's, these inputs show it.
pub(crate) fn tied_value() -> impl Strategy<Value = f32> {
    prop_oneof![
        Just(0.0f32),
        Just(-0.0f32),
        Just(1.0f32),
        Just(-1.0f32),
        -2.0f32..2.0,
    ]
}
