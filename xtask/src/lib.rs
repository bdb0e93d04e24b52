//! The parts of `cargo xtask` that are more than argument parsing, in a library so tests can
//! reach them: what it sets up for its process before any command runs ([`heap`], process-wide,
//! so its test binary checks it alone), and the sbatch scripts of `cargo xtask slurm`
//! ([`slurm`]).

pub mod heap;
pub mod slurm;
