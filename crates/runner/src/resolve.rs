//! Plain data → live methods, in one place (ripgrep's `LowArgs` → `HiArgs`).
//!
//! A run is written as plain tables (`{ name = "...", <hyperparameters> }`) for the model, the
//! optimiser, an optional regularizer, an optional topology and any number of loss terms, plus
//! the training table ([`RunTables`]). [`resolve`] builds each component through its registry
//! (filling defaults, validating ranges), parses the training table, checks every rule that
//! involves two parts (an optimiser without a prox takes no regularizer, an optimiser may reject a
//! regularizer, an optimiser that restarts at every change of the learning rate needs a
//! piecewise-constant schedule), and returns the resolved plain data (what a run records and
//! hashes) together with the live methods ([`Resolved`]). Experiment loading
//! ([`crate::spec::load`]) resolves every arm at every sweep point to validate it and keeps the
//! plain data; training ([`crate::trainee::Trainee::new`]) resolves a run's stored configuration
//! and keeps the live methods; `cargo xtask bench` does the same. So a method that loads is a
//! method that trains and benchmarks, and no rule can be skipped by one of them.

use crate::schedule::{Schedule, TrainConfig};
use serde_json::{Value, json};
use sparselab_core::config::parse_config;
use sparselab_core::{ConfigError, Registry};
use sparselab_losses::LossTerm;
use sparselab_models::ModelBuilder;
use sparselab_optimizers::OptimizerFactory;
use sparselab_regularizers::Regularizer;
use sparselab_topology::Topology;
use std::sync::Arc;

/// A method component as plain data: `{ name = "...", <hyperparameters> }`, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentConfig {
    /// Registered name.
    pub name: String,
    /// Every hyperparameter, defaults filled in.
    pub params: Value,
    /// Only the non-default hyperparameters (identify the run).
    pub non_default: Value,
}

impl ComponentConfig {
    pub(crate) fn from_resolved<T: ?Sized>(r: &sparselab_core::Resolved<T>) -> Self {
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

/// A run's method and training as written: one table per component (`null`: absent), loss
/// terms as a list, and the training table.
#[derive(Clone, Debug, Default)]
pub struct RunTables {
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
    /// Training table (`null`: every default).
    pub train: Value,
}

impl RunTables {
    /// Sets hyperparameter `key` (`<component>.<name>`: a key of the model, optimizer,
    /// regularizer, topology, loss (an arm with one loss term) or train table) to `value`; the
    /// error says what is wrong, for the caller to place under its key.
    pub fn set(&mut self, key: &str, value: Value) -> Result<(), String> {
        let (component, param) = key
            .split_once('.')
            .filter(|(_, p)| !p.is_empty())
            .ok_or("a key is `<component>.<hyperparameter>`, e.g. `regularizer.lambda`")?;
        let table = match component {
            "model" => &mut self.model,
            "optimizer" => &mut self.optimizer,
            "regularizer" => &mut self.regularizer,
            "topology" => &mut self.topology,
            "train" => &mut self.train,
            "loss" => match self.losses.as_mut_slice() {
                [one] => one,
                [] => return Err("the arm has no loss to sweep or search".into()),
                _ => return Err("the arm has several loss terms: use one arm per value".into()),
            },
            other => {
                return Err(format!(
                    "unknown component `{other}` (allowed: model, optimizer, regularizer, topology, loss, train)"
                ));
            }
        };
        if table.is_null() && component == "train" {
            *table = json!({});
        }
        if table.is_null() {
            return Err(format!("the arm has no {component} to sweep or search"));
        }
        table
            .as_object_mut()
            .ok_or_else(|| format!("`{component}` is not a table"))?
            .insert(param.to_string(), value);
        Ok(())
    }

    /// An optimiser by name with defaults, everything else absent (or default) except the model.
    pub fn named(model: &str, optimizer: &str) -> Self {
        Self {
            model: json!({ "name": model }),
            optimizer: json!({ "name": optimizer }),
            ..Self::default()
        }
    }
}

/// The resolved plain data of a run's method.
#[derive(Clone, Debug, PartialEq)]
pub struct MethodConfig {
    /// Model.
    pub model: ComponentConfig,
    /// Optimiser.
    pub optimizer: ComponentConfig,
    /// Regularizer (`None`: unregularised).
    pub regularizer: Option<ComponentConfig>,
    /// Topology (`None`: dense).
    pub topology: Option<ComponentConfig>,
    /// Loss terms added to the task loss (empty: the task loss alone).
    pub losses: Vec<ComponentConfig>,
}

impl MethodConfig {
    /// The same method, trained with `train`, as plain tables (resolving them again gives the
    /// same configuration).
    pub fn tables(&self, train: &TrainConfig) -> RunTables {
        let opt =
            |c: &Option<ComponentConfig>| c.as_ref().map_or(Value::Null, ComponentConfig::table);
        RunTables {
            model: self.model.table(),
            optimizer: self.optimizer.table(),
            regularizer: opt(&self.regularizer),
            topology: opt(&self.topology),
            losses: self.losses.iter().map(ComponentConfig::table).collect(),
            train: serde_json::to_value(train).expect("a training config serialises"),
        }
    }
}

/// The live methods of a run.
pub struct Methods {
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

/// A resolved run: its plain configuration and its live methods.
pub struct Resolved {
    /// The method as plain data.
    pub method: MethodConfig,
    /// The training settings.
    pub train: TrainConfig,
    /// The live methods.
    pub methods: Methods,
}

fn build<T: ?Sized>(
    registry: &Registry<T>,
    table: &Value,
    at: &str,
) -> Result<Option<(ComponentConfig, Box<T>)>, ConfigError> {
    if table.is_null() {
        return Ok(None);
    }
    let r = registry.build(table).map_err(|e| e.under(at))?;
    Ok(Some((ComponentConfig::from_resolved(&r), r.value)))
}

/// Resolves `tables`; errors name the key under `prefix` (e.g. `arms.gmp`).
pub fn resolve(tables: &RunTables, prefix: &str) -> Result<Resolved, ConfigError> {
    let at = |c: &str| {
        if prefix.is_empty() {
            c.to_string()
        } else {
            format!("{prefix}.{c}")
        }
    };
    let missing = |c: &str| ConfigError::new(at(c), "missing");
    let (model, model_builder) = build(&sparselab_models::registry(), &tables.model, &at("model"))?
        .ok_or_else(|| missing("model"))?;
    let (optimizer, factory) = build(
        &sparselab_optimizers::registry(),
        &tables.optimizer,
        &at("optimizer"),
    )?
    .ok_or_else(|| missing("optimizer"))?;
    let regularizer = build(
        &sparselab_regularizers::registry(),
        &tables.regularizer,
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
        &tables.topology,
        &at("topology"),
    )?;
    let losses_registry = sparselab_losses::registry();
    let mut losses = Vec::new();
    for (i, table) in tables.losses.iter().enumerate() {
        let key = if tables.losses.len() == 1 {
            at("loss")
        } else {
            format!("{}[{i}]", at("loss"))
        };
        losses.extend(build(&losses_registry, table, &key)?);
    }
    let train: TrainConfig = match &tables.train {
        Value::Null => TrainConfig::default(),
        table => parse_config(table).map_err(|e| e.under(&at("train")))?,
    };
    if factory.staged() && train.schedule == Schedule::Cosine {
        return Err(ConfigError::new(
            at("train.schedule"),
            format!(
                "`{}` starts a new stage whenever the learning rate changes; use a piecewise-constant schedule (allowed: constant, step)",
                optimizer.name
            ),
        ));
    }
    let (regularizer_component, regularizer) = regularizer.unzip();
    let (topology_component, topology) = topology.unzip();
    let (loss_components, loss_terms) = losses.into_iter().unzip();
    Ok(Resolved {
        method: MethodConfig {
            model,
            optimizer,
            regularizer: regularizer_component,
            topology: topology_component,
            losses: loss_components,
        },
        train,
        methods: Methods {
            model: model_builder,
            optimizer: factory,
            regularizer,
            topology,
            losses: loss_terms,
        },
    })
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
        let tables = RunTables {
            regularizer: json!({ "name": "l1", "lambda": 1e-4 }),
            topology: json!({ "name": "rigl", "sparsity": 0.8 }),
            losses: vec![json!({ "name": "feature-l2", "beta": 0.1 })],
            train: json!({ "epochs": 3 }),
            ..RunTables::named("mlp-300-100", "xrda")
        };
        let r = resolve(&tables, "arms.x").unwrap();
        assert_eq!(
            r.method.topology.as_ref().unwrap().non_default,
            json!({"sparsity": 0.8})
        );
        assert_eq!(r.methods.losses.len(), 1);
        assert_eq!(r.train.epochs, 3);
        assert!(r.methods.topology.unwrap().needs_dense_grad());
        let again = resolve(&r.method.tables(&r.train), "").unwrap();
        assert_eq!((again.method, again.train), (r.method, r.train));
    }

    #[test]
    fn errors_name_the_key() {
        let tables = RunTables {
            regularizer: json!({ "name": "l1" }),
            ..RunTables::named("mlp-300-100", "sgd")
        };
        let err = resolve(&tables, "arms.x").err().unwrap();
        assert_eq!(err.key, "arms.x.regularizer");
        let tables = RunTables {
            losses: vec![json!({ "name": "feature-l2" }), json!({ "name": "nope" })],
            ..RunTables::named("mlp-300-100", "sgd")
        };
        let err = resolve(&tables, "arms.x").err().unwrap();
        assert_eq!(err.key, "arms.x.loss[1].name");
        assert!(err.message.contains("feature-l2"), "{err}");
        let tables = RunTables {
            train: json!({ "epochs": 0 }),
            ..RunTables::named("mlp-300-100", "sgd")
        };
        assert_eq!(
            resolve(&tables, "arms.x").err().unwrap().key,
            "arms.x.train.epochs"
        );
    }

    /// A staged optimiser (RMDA restarts at every change of the learning rate) rejects a cosine
    /// schedule wherever it is resolved: experiment loading, training and the bench alike.
    #[test]
    fn a_staged_optimizer_rejects_a_cosine_schedule() {
        let tables = |schedule: &str| RunTables {
            regularizer: json!({ "name": "l1" }),
            train: json!({ "schedule": schedule }),
            ..RunTables::named("mlp-300-100", "rmda")
        };
        let err = resolve(&tables("cosine"), "arms.x").err().unwrap();
        assert_eq!(err.key, "arms.x.train.schedule");
        assert!(err.message.contains("constant, step"), "{err}");
        assert!(resolve(&tables("constant"), "arms.x").is_ok());
    }
}
