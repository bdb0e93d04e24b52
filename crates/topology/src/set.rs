//! `set`: Sparse Evolutionary Training (Mocanu et al. 2018; SPEC §2). ERK start; every `Δt`
//! steps until `T_end` drop the `⌊f(t)·n_active⌋` smallest-magnitude weights of each layer and
//! regrow as many uniformly at random among the weights inactive before the drop. The engine,
//! with the equations, is [`drop_grow`](crate::drop_grow).

use crate::drop_grow::{DropGrow, DropGrowConfig, Growth};
use crate::topology::Topology;
use sparselab_core::FromConfig;

/// SET (registry entry).
pub struct Set;

impl FromConfig<dyn Topology> for Set {
    type Config = DropGrowConfig;
    const NAME: &'static str = "set";
    const SUMMARY: &'static str =
        "SET: ERK start, drop smallest |w|, regrow at random, constant density (SPEC §2)";

    fn from_config(config: DropGrowConfig) -> Box<dyn Topology> {
        Box::new(DropGrow::new(Self::NAME, config, Growth::Random))
    }
}
