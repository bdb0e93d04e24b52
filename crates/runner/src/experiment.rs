//! An ablation as the engine runs it: its arms, and every run's resolved configuration with its
//! stable id. Plain data, made by [`crate::spec::load`] from an experiment file.

use crate::claims::Claim;
use crate::figure::schema::FigureSpec;
use crate::resolve::{ComponentConfig, MethodConfig, RunTables};
use crate::schedule::TrainConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sparselab_core::config::non_default;
use sparselab_data::DataConfig;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything one run trains with: the canonical, resolved configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct RunConfig {
    /// Data (identical for every run of an ablation).
    pub data: DataConfig,
    /// Training settings.
    pub train: TrainConfig,
    /// The method: model, optimiser, regularizer, topology, loss terms.
    pub method: MethodConfig,
    /// Seed.
    pub seed: u64,
}

impl RunConfig {
    /// The non-default part of the configuration: what the run id hashes. A hyperparameter
    /// added later with its default value does not appear, so ids are stable.
    pub fn identity(&self) -> Value {
        let data_defaults = serde_json::to_value(DataConfig::default()).expect("serialisable");
        let train_defaults = serde_json::to_value(TrainConfig::default()).expect("serialisable");
        let m = &self.method;
        let mut id = json!({
            "data": non_default(&serde_json::to_value(&self.data).expect("serialisable"), &data_defaults),
            "model": m.model.identity(),
            "train": non_default(&serde_json::to_value(&self.train).expect("serialisable"), &train_defaults),
            "optimizer": m.optimizer.identity(),
            "seed": self.seed,
        });
        for (key, c) in [("regularizer", &m.regularizer), ("topology", &m.topology)] {
            if let Some(c) = c {
                id[key] = c.identity();
            }
        }
        // Absent when empty, so runs without loss terms keep the ids they had before the kind
        // existed.
        if !m.losses.is_empty() {
            id["losses"] = m.losses.iter().map(ComponentConfig::identity).collect();
        }
        id
    }

    /// The method and training as plain tables, which [`crate::resolve::resolve`] turns into
    /// this run's live methods.
    pub fn tables(&self) -> RunTables {
        self.method.tables(&self.train)
    }

    /// The full resolved configuration (what `config.json` records).
    pub fn to_json(&self) -> Value {
        let m = &self.method;
        let mut out = json!({
            "data": self.data,
            "model": m.model.table(),
            "train": self.train,
            "optimizer": m.optimizer.table(),
            "regularizer": m.regularizer.as_ref().map(ComponentConfig::table),
            "topology": m.topology.as_ref().map(ComponentConfig::table),
            "seed": self.seed,
        });
        if !m.losses.is_empty() {
            out["losses"] = m.losses.iter().map(ComponentConfig::table).collect();
        }
        out
    }
}

/// One planned run of an ablation.
#[derive(Clone, Debug)]
pub struct PlannedRun {
    /// Hash of the canonical configuration and seed.
    pub id: String,
    /// Arm name.
    pub arm: String,
    /// Arm label for legends.
    pub label: String,
    /// Swept hyperparameters of this run (`"regularizer.lambda" → 1e-4`).
    pub sweep: BTreeMap<String, Value>,
    /// Resolved configuration.
    pub config: RunConfig,
}

impl PlannedRun {
    /// The sweep point as `key=value, ...` (empty without a sweep).
    pub fn sweep_label(&self) -> String {
        self.sweep
            .iter()
            .map(|(k, v)| format!("{}={}", k.rsplit('.').next().unwrap_or(k), plain(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A swept value as a legend shows it: strings without quotes, tables as `{key value, ...}`
/// (a JSON object in a legend reads as noise).
fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k} {}", plain(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

/// A sparsity an arm asks for instead of a strength (`target = { ... }`): the engine searches
/// the knob that reaches it ([`crate::search`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The metric to reach (weight sparsity, or group sparsity for group penalties).
    #[serde(default = "default_target_metric")]
    pub metric: String,
    /// Its value (stored units: 0.95 = 95 %).
    pub value: f64,
    /// How close counts as reached (stored units: 0.005 = half a point).
    #[serde(default = "default_target_tolerance")]
    pub tolerance: f64,
    /// The hyperparameter searched (`<component>.<key>`): default the regularizer's `lambda`,
    /// or a topology's `sparsity`, which is then set to the value directly.
    #[serde(default)]
    pub knob: Option<String>,
    /// The range searched, on a log scale.
    #[serde(default = "default_target_range")]
    pub range: [f64; 2],
    /// Runs the search may train before it gives up.
    #[serde(default = "default_target_probes")]
    pub probes: usize,
}

fn default_target_metric() -> String {
    "weight_sparsity".into()
}

fn default_target_tolerance() -> f64 {
    crate::claims::DEFAULT_TOLERANCE
}

fn default_target_range() -> [f64; 2] {
    [1e-7, 1e-1]
}

fn default_target_probes() -> usize {
    10
}

/// An arm point whose strength and tuned hyperparameters are chosen by training seed 0 before
/// its seeds run ([`crate::search`]).
#[derive(Clone, Debug)]
pub struct Search {
    /// Arm name.
    pub arm: String,
    /// Arm label.
    pub label: String,
    /// The sweep point (a swept `target.value` included).
    pub sweep: BTreeMap<String, Value>,
    /// The arm's tables at this point, before the search sets anything.
    pub tables: RunTables,
    /// The data of every run.
    pub data: DataConfig,
    /// The sparsity to reach, with its knob resolved.
    pub target: Option<(Target, String)>,
    /// The tuning grid: every combination of the `tune` lists (empty: nothing tuned).
    pub grid: Vec<BTreeMap<String, Value>>,
    /// Seeds to run at the choice.
    pub seeds: usize,
    /// Where its errors point (`arms.<name>`).
    pub prefix: String,
}

/// An arm as written.
#[derive(Clone, Debug)]
pub struct Arm {
    /// Name (the key under `[arms]`).
    pub name: String,
    /// Legend label.
    pub label: String,
    /// The arms this one is compared with (Welch's t-test at the same sweep point, in the table).
    pub compare: Vec<String>,
    /// Values its tuning grid tries (1: nothing tuned): comparisons say when two arms differ.
    pub tuning_budget: usize,
}

/// A parsed, validated ablation.
#[derive(Clone, Debug)]
pub struct Ablation {
    /// Name (file stem).
    pub name: String,
    /// The file it came from.
    pub file: PathBuf,
    /// One-line description.
    pub description: String,
    /// Whether `[quick]` was applied.
    pub quick: bool,
    /// Data of every run.
    pub data: DataConfig,
    /// Arms in file order.
    pub arms: Vec<Arm>,
    /// Every run: arms × sweep points × seeds.
    pub runs: Vec<PlannedRun>,
    /// Figures to render.
    pub figures: Vec<FigureSpec>,
    /// Table columns (metric keys).
    pub columns: Vec<String>,
    /// Metrics on which arms with `compare` are compared (Welch's test; default test accuracy).
    pub compare_on: Vec<String>,
    /// The papers' claims this ablation tests (`[[claims]]`).
    pub claims: Vec<Claim>,
    /// Arm points whose strength or tuned hyperparameters are searched first; their runs join
    /// [`Self::runs`] once the search has chosen ([`crate::search`]).
    pub searches: Vec<Search>,
}

#[cfg(test)]
mod tests {
    use super::plain;
    use serde_json::json;

    #[test]
    fn legends_show_swept_values_without_json_noise() {
        assert_eq!(plain(&json!(1e-4)), "0.0001");
        assert_eq!(plain(&json!("erk")), "erk");
        assert_eq!(
            plain(&json!({"p_first": 1.4, "p_rest": 1.3})),
            "{p_first 1.4, p_rest 1.3}"
        );
        assert_eq!(plain(&json!([0.5, "x"])), "[0.5, x]");
    }
}
