//! Loss terms: the fourth kind of method, next to regularizers, optimisers and topologies.
//!
//! A [`LossTerm`] receives the block features of the training forward pass, grouped by stage
//! (what CKA-SR of SPEC §1.3 penalises), and returns a scalar added to the task loss before
//! backward, so its gradient flows through autodiff into every layer. A term says how often it is
//! due ([`LossTerm::every`]); on steps where no term is due the model is run without feature taps.
//!
//! Members (one file each): [`cka_sr`] (`cka-sr`, CKA-SR of SPEC §1.3: unbiased CKA between the
//! blocks of each stage), [`aug_cka_sr`] (`aug-cka-sr`, its cross-stage variant) and
//! [`feature_l2`] (`feature-l2`, a mean-square penalty on features: the simplest term, proving the
//! seam). Adding one: a file with a `FromConfig` impl and one line in
//! [`registry`].

pub mod aug_cka_sr;
pub mod cka_sr;
pub mod feature_l2;
mod loss_term;
mod registry;

pub use loss_term::{LossTerm, StageFeatures};
pub use registry::registry;
