//! `rigl`: Rigging the Lottery (Evci et al. 2020; SPEC §2). ERK start; every `Δt` steps until
//! `T_end` drop the `⌊f(t)·n_active⌋` smallest-magnitude weights of each layer and regrow as many
//! with the largest |dense gradient| of the current batch among the weights inactive before the
//! drop. The engine, with the equations, is [`drop_grow`](crate::drop_grow).

use crate::drop_grow::{DropGrow, DropGrowConfig, Growth};
use crate::topology::Topology;
use sparselab_core::FromConfig;

/// RigL (registry entry).
pub struct Rigl;

impl FromConfig<dyn Topology> for Rigl {
    type Config = DropGrowConfig;
    const NAME: &'static str = "rigl";
    const SUMMARY: &'static str = "RigL: ERK start, drop smallest |w|, regrow by |dense gradient|, constant density (SPEC §2)";

    fn from_config(config: DropGrowConfig) -> Box<dyn Topology> {
        Box::new(DropGrow::new(Self::NAME, config, Growth::Gradient))
    }
}
