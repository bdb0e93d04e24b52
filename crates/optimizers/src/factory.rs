//! From plain data to a `ModuleOptimizer`: the [`SparseOptimizer`] contract and the registry.

use crate::state_reset::{Resettable, StateResets};
use burn::module::ParamGroup;
use burn::optim::{ModuleOptimizer, Optimizer};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sparselab_core::{ConfigError, FromConfig, ParamInfo, ParamTable, Validate};
use sparselab_regularizers::Regularizer;
use std::sync::Arc;

/// An optimiser of sparselab: a burn [`Optimizer`] built from a typed config and an optional
/// regularizer.
pub trait SparseOptimizer: Optimizer {
    /// Hyperparameters (`#[serde(default, deny_unknown_fields)]`).
    type Config: Default + Serialize + DeserializeOwned + Validate + Send + Sync + 'static;
    /// Name used in experiment files.
    const NAME: &'static str;
    /// One line for `cargo xtask list` (cite the SPEC.md section).
    const SUMMARY: &'static str;
    /// Whether the optimiser applies a regularizer through its prox. Dense optimisers reject a
    /// regularizer when an experiment is loaded.
    const PROXIMAL: bool;
    /// Whether the optimiser treats every change of the learning rate as the start of a new
    /// stage (RMDA's restarts): such optimisers need a piecewise-constant schedule.
    const STAGED: bool = false;
    /// Whether the in-place form the update takes on the CPU backend gives its tensor-op form's
    /// bits (`sparselab_core::fused`'s invariant). `false` only for a documented choice that
    /// trades that for speed, where the two agree to float rounding (LpSGD's vectorised powers).
    const FUSED_BITS_EXACT: bool = true;

    /// The optimiser for parameters `regularizer` acts on (`None`: its plain update).
    fn new(config: &Self::Config, regularizer: Option<Arc<dyn Regularizer>>) -> Self;

    /// Why `regularizer` cannot be used with this optimiser, if it cannot (checked when an
    /// experiment is loaded). Default: any regularizer works.
    fn rejects(regularizer: &dyn Regularizer) -> Option<String> {
        let _ = regularizer;
        None
    }

    /// The optimiser for parameter `param` of the model described by `params`, or why the
    /// config does not fit the model (a key of the config and the allowed values). Default:
    /// [`new`](SparseOptimizer::new). Optimisers whose update depends on the parameter's place
    /// in the model (LpSGD: which weights lie on a sphere, and its p) override it.
    fn for_param(
        config: &Self::Config,
        regularizer: Option<Arc<dyn Regularizer>>,
        param: &ParamInfo,
        params: &ParamTable,
    ) -> Result<Self, ConfigError> {
        let _ = (param, params);
        Ok(Self::new(config, regularizer))
    }

    /// The exponent p of the unit Lp sphere the optimiser holds `param` on (`None`: the
    /// parameter is unconstrained). Recorded per layer so Hoyer predictions (SPEC §1.2) can be
    /// made for any run. Default: no constraint.
    fn sphere(
        config: &Self::Config,
        param: &ParamInfo,
        params: &ParamTable,
    ) -> Result<Option<f64>, ConfigError> {
        let _ = (config, param, params);
        Ok(None)
    }
}

/// A configured optimiser, ready to be built for a model.
pub trait OptimizerFactory: Send + Sync {
    /// Registered name.
    fn name(&self) -> &'static str;

    /// Whether a regularizer can be attached (see [`SparseOptimizer::PROXIMAL`]).
    fn proximal(&self) -> bool;

    /// Why `regularizer` cannot be attached, if it cannot.
    fn rejects(&self, regularizer: &dyn Regularizer) -> Option<String>;

    /// See [`SparseOptimizer::STAGED`].
    fn staged(&self) -> bool;

    /// See [`SparseOptimizer::FUSED_BITS_EXACT`].
    fn fused_bits_exact(&self) -> bool;

    /// A `ModuleOptimizer` for a model described by `params`: parameters the regularizer acts
    /// on take the update with the prox, all others the plain update. Every parameter gets its
    /// own instance, wrapped in [`Resettable`], so the returned [`StateResets`] can reset the
    /// state of chosen entries of any parameter. Fails when the config does not fit the model
    /// (the error's key is a key of the optimiser's table).
    fn build(
        &self,
        params: &ParamTable,
        regularizer: Option<Arc<dyn Regularizer>>,
    ) -> Result<Built, ConfigError>;

    /// The sphere exponent of every parameter of `params`, in table order (see
    /// [`SparseOptimizer::sphere`]).
    fn spheres(&self, params: &ParamTable) -> Result<Vec<Option<f64>>, ConfigError>;
}

/// A `ModuleOptimizer` and the handle that resets entries of its state.
#[derive(Clone)]
pub struct Built {
    /// The optimiser of the whole model.
    pub optim: ModuleOptimizer,
    /// Resets of chosen state entries (see [`crate::state_reset`]).
    pub resets: StateResets,
}

/// The factory of optimiser `O` (a registry entry: `Entry::of::<Factory<O>>()`).
pub struct Factory<O: SparseOptimizer>(O::Config);

impl<O: SparseOptimizer> FromConfig<dyn OptimizerFactory> for Factory<O> {
    type Config = O::Config;
    const NAME: &'static str = O::NAME;
    const SUMMARY: &'static str = O::SUMMARY;

    fn from_config(config: O::Config) -> Box<dyn OptimizerFactory> {
        Box::new(Factory::<O>(config))
    }
}

impl<O: SparseOptimizer> OptimizerFactory for Factory<O> {
    fn name(&self) -> &'static str {
        O::NAME
    }

    fn proximal(&self) -> bool {
        O::PROXIMAL
    }

    fn staged(&self) -> bool {
        O::STAGED
    }

    fn fused_bits_exact(&self) -> bool {
        O::FUSED_BITS_EXACT
    }

    fn rejects(&self, regularizer: &dyn Regularizer) -> Option<String> {
        if O::PROXIMAL {
            O::rejects(regularizer)
        } else {
            Some(format!(
                "`{}` has no prox and cannot apply a regularizer (use a proximal optimizer)",
                O::NAME
            ))
        }
    }

    fn build(
        &self,
        params: &ParamTable,
        regularizer: Option<Arc<dyn Regularizer>>,
    ) -> Result<Built, ConfigError> {
        assert!(
            O::PROXIMAL || regularizer.is_none(),
            "{} has no prox; experiments are validated before a run starts",
            O::NAME
        );
        let resets = StateResets::default();
        // The fallback for parameters outside the table: the plain update, never reset.
        let mut optim = ModuleOptimizer::from(O::new(&self.0, None));
        for p in params.iter() {
            let reg = regularizer.clone().filter(|r| r.applies_to(p));
            let one = Resettable::new(O::for_param(&self.0, reg, p, params)?, p.id, resets.clone());
            optim = optim.with_group(ParamGroup::from_ids(vec![p.id]), one, None);
        }
        Ok(Built { optim, resets })
    }

    fn spheres(&self, params: &ParamTable) -> Result<Vec<Option<f64>>, ConfigError> {
        params
            .iter()
            .map(|p| O::sphere(&self.0, p, params))
            .collect()
    }
}
