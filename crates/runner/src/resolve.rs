//! Plain data → live parts, in one place (ripgrep's `LowArgs` → `HiArgs`).
//!
//! An arm is written as plain tables (`{ name = "...", <hyperparameters> }`) for the model, the
//! optimiser, an optional regularizer, an optional topology and any number of loss terms.
//! [`resolve`] builds each through its registry (filling defaults, validating ranges), checks
//! the rules that involve two components (an optimiser without a prox takes no regularizer, an
//! optimiser may reject a regularizer), and returns the resolved plain data (what a run records
//! and hashes) together with the live methods. Experiment loading ([`crate::spec`]), training
//! ([`crate::train`]) and `cargo xtask bench` ([`crate::bench`]) all go through it, so a method
//! that loads is a method that trains and benchmarks.

use serde_json::{Value, json};
use sparselab_core::{ConfigError, Registry, Resolved};
use sparselab_losses::LossTerm;
use sparselab_models::ModelBuilder;
use sparselab_optimizers::OptimizerFactory;
use sparselab_regularizers::Regularizer;
use sparselab_topology::Topology;
use std::sync::Arc;

/// A method component as plain data: `{ name = "...", <hyperparameters> }`, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct Component {
    /// Registered name.
    pub name: String,
    /// Every hyperparameter, defaults filled in.
    pub params: Value,
    /// Only the non-default hyperparameters (identify the run).
    pub non_default: Value,
}

impl Component {
    pub(crate) fn from_resolved<T: ?Sized>(r: &Resolved<T>) -> Self {
        Self {
            name: r.name.to_string(),
            params: r.params.clone(),
            non_default: r.non_default.clone(),
        }
    }

    /// `{ "name": ..., <params> }`, the form the registries build from.
    pub fn table(&self) -> Value {
        with_name(&self.name, &self.params)
    }

    /// `{ "name": ..., <non-default params> }`: what identifies the component in a run id.
    pub fn identity(&self) -> Value {
        with_name(&self.name, &self.non_default)
    }
}

fn with_name(name: &str, params: &Value) -> Value {
    let mut map = params.as_object().cloned().unwrap_or_default();
    map.insert("name".into(), Value::String(name.to_string()));
    Value::Object(map)
}

/// An arm's method as written: one table per component (`null`: absent), loss terms as a list.
#[derive(Clone, Debug, Default)]
pub struct Plain {
    /// Model table.
    pub model: Value,
    /// Optimiser table.
    pub optimizer: Value,
    /// Regularizer table or `null`.
    pub regularizer: Value,
    /// Topology table or `null`.
    pub topology: Value,
    /// Loss-term tables.
    pub losses: Vec<Value>,
}

impl Plain {
    /// An optimiser by name with defaults, everything else absent except the model.
    pub fn named(model: &str, optimizer: &str) -> Self {
        Self {
            model: json!({ "name": model }),
            optimizer: json!({ "name": optimizer }),
            ..Self::default()
        }
    }
}

/// The resolved plain data of an arm.
#[derive(Clone, Debug, PartialEq)]
pub struct Components {
    /// Model.
    pub model: Component,
    /// Optimiser.
    pub optimizer: Component,
    /// Regularizer (`None`: unregularised).
    pub regularizer: Option<Component>,
    /// Topology (`None`: dense).
    pub topology: Option<Component>,
    /// Loss terms added to the task loss (empty: the task loss alone).
    pub losses: Vec<Component>,
}

impl Components {
    /// The same method as plain tables (resolving them again gives the same components).
    pub fn plain(&self) -> Plain {
        let opt = |c: &Option<Component>| c.as_ref().map_or(Value::Null, Component::table);
        Plain {
            model: self.model.table(),
            optimizer: self.optimizer.table(),
            regularizer: opt(&self.regularizer),
            topology: opt(&self.topology),
            losses: self.losses.iter().map(Component::table).collect(),
        }
    }
}

/// The live methods of an arm.
pub struct Parts {
    /// Builds the model for an input shape.
    pub model: Box<dyn ModelBuilder>,
    /// Builds the optimiser for a model.
    pub optimizer: Box<dyn OptimizerFactory>,
    /// The regularizer the optimiser applies through its prox.
    pub regularizer: Option<Arc<dyn Regularizer>>,
    /// The topology (masks).
    pub topology: Option<Box<dyn Topology>>,
    /// Loss terms.
    pub losses: Vec<Box<dyn LossTerm>>,
}

fn build<T: ?Sized>(
    registry: &Registry<T>,
    table: &Value,
    at: &str,
) -> Result<Option<(Component, Box<T>)>, ConfigError> {
    if table.is_null() {
        return Ok(None);
    }
    let r = registry.build(table).map_err(|e| e.under(at))?;
    Ok(Some((Component::from_resolved(&r), r.value)))
}

/// Resolves `plain`; errors name the key under `prefix` (e.g. `arms.gmp`).
pub fn resolve(plain: &Plain, prefix: &str) -> Result<(Components, Parts), ConfigError> {
    let at = |c: &str| {
        if prefix.is_empty() {
            c.to_string()
        } else {
            format!("{prefix}.{c}")
        }
    };
    let missing = |c: &str| ConfigError::new(at(c), "missing");
    let (model, model_builder) = build(&sparselab_models::registry(), &plain.model, &at("model"))?
        .ok_or_else(|| missing("model"))?;
    let (optimizer, factory) = build(
        &sparselab_optimizers::registry(),
        &plain.optimizer,
        &at("optimizer"),
    )?
    .ok_or_else(|| missing("optimizer"))?;
    let regularizer = build(
        &sparselab_regularizers::registry(),
        &plain.regularizer,
        &at("regularizer"),
    )?
    .map(|(c, r)| (c, Arc::<dyn Regularizer>::from(r)));
    if let Some(why) = regularizer
        .as_ref()
        .and_then(|(_, reg)| factory.rejects(reg.as_ref()))
    {
        return Err(ConfigError::new(at("regularizer"), why));
    }
    let topology = build(
        &sparselab_topology::registry(),
        &plain.topology,
        &at("topology"),
    )?;
    let losses_registry = sparselab_losses::registry();
    let mut losses = Vec::new();
    for (i, table) in plain.losses.iter().enumerate() {
        let key = if plain.losses.len() == 1 {
            at("loss")
        } else {
            format!("{}[{i}]", at("loss"))
        };
        losses.extend(build(&losses_registry, table, &key)?);
    }
    let (regularizer_component, regularizer) = regularizer.unzip();
    let (topology_component, topology) = topology.unzip();
    let (loss_components, loss_terms) = losses.into_iter().unzip();
    Ok((
        Components {
            model,
            optimizer,
            regularizer: regularizer_component,
            topology: topology_component,
            losses: loss_components,
        },
        Parts {
            model: model_builder,
            optimizer: factory,
            regularizer,
            topology,
            losses: loss_terms,
        },
    ))
}

/// `loss = { ... }` or `loss = [{ ... }, ...]` (or absent) as a list of tables.
pub fn loss_tables(value: &Value, at: &str) -> Result<Vec<Value>, ConfigError> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Object(_) => Ok(vec![value.clone()]),
        Value::Array(items) => Ok(items.clone()),
        other => Err(ConfigError::new(
            at,
            format!("expected a loss-term table or a list of them, found {other}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_every_component_and_round_trips() {
        let plain = Plain {
            regularizer: json!({ "name": "l1", "lambda": 1e-4 }),
            topology: json!({ "name": "rigl", "sparsity": 0.8 }),
            losses: vec![json!({ "name": "feature-l2", "beta": 0.1 })],
            ..Plain::named("mlp-300-100", "xrda")
        };
        let (c, parts) = resolve(&plain, "arms.x").unwrap();
        assert_eq!(
            c.topology.as_ref().unwrap().non_default,
            json!({"sparsity": 0.8})
        );
        assert_eq!(parts.losses.len(), 1);
        assert!(parts.topology.unwrap().needs_dense_grad());
        let (again, _) = resolve(&c.plain(), "").unwrap();
        assert_eq!(again, c);
    }

    #[test]
    fn errors_name_the_key() {
        let plain = Plain {
            regularizer: json!({ "name": "l1" }),
            ..Plain::named("mlp-300-100", "sgd")
        };
        let err = resolve(&plain, "arms.x").err().unwrap();
        assert_eq!(err.key, "arms.x.regularizer");
        let plain = Plain {
            losses: vec![json!({ "name": "feature-l2" }), json!({ "name": "nope" })],
            ..Plain::named("mlp-300-100", "sgd")
        };
        let err = resolve(&plain, "arms.x").err().unwrap();
        assert_eq!(err.key, "arms.x.loss[1].name");
        assert!(err.message.contains("feature-l2"), "{err}");
    }
}
