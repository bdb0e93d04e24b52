//! Experiments as TOML files: parsing, validation, quick mode, sweeps, and expansion into runs.
//!
//! An experiment file (`experiments/<name>.toml`) names a dataset, a model, training settings,
//! seeds and *arms* (a method = optimiser + optional regularizer + optional topology, with their
//! hyperparameters). `sweep = { "regularizer.lambda" = [...] }` in an arm makes one run per value
//! (several keys: their Cartesian product, or with `zip = true` their i-th values together).
//! `[quick]` is a partial copy of the document merged over it by `--quick`. Every error names the
//! file, the key path and what is allowed.

use crate::claims::Claim;
use crate::experiment::{Ablation, Arm, PlannedRun, RunConfig, Search, Target};
use crate::figure::schema::FigureSpec;
use crate::record::metric_info;
use crate::resolve::{Resolved, RunTables, loss_tables, resolve};
use crate::run_id::{canonical_json, run_id};
use serde::Deserialize;
use serde_json::{Map, Value};
use sparselab_core::ConfigError;
use sparselab_core::config::parse_config;
use sparselab_data::DataConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// An experiment file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {error}", file.display())]
pub struct SpecError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong and where.
    pub error: ConfigError,
}

/// Components an arm is made of (what a sweep key may start with, with `train`).
const COMPONENTS: [&str; 5] = ["model", "optimizer", "regularizer", "topology", "loss"];

/// The most seeds a file may ask for, and the most runs it may plan: beyond them a number was
/// surely mistyped, and planning would only exhaust the memory.
const MAX_SEEDS: usize = 1_000;
const MAX_RUNS: usize = 100_000;

/// Table columns when the file does not choose.
pub const DEFAULT_COLUMNS: [&str; 8] = [
    "test_accuracy",
    "val_accuracy",
    "weight_sparsity",
    "compression",
    "speedup",
    "measured_speedup_b1",
    "measured_speedup_b128",
    "train_seconds",
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    description: String,
    #[serde(default = "default_seeds")]
    seeds: usize,
    #[serde(default)]
    data: Value,
    model: Value,
    #[serde(default)]
    train: Value,
    #[serde(default, rename = "quick")]
    _quick: Value,
    arms: Map<String, Value>,
    #[serde(default)]
    figures: Vec<Value>,
    #[serde(default)]
    table: TableSpec,
    #[serde(default)]
    claims: Vec<Claim>,
}

/// Seeds of an ablation that does not say: five, so a Welch test can see differences of the
/// size of a seed's standard deviation (with three it needs about three times that).
fn default_seeds() -> usize {
    5
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TableSpec {
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default)]
    compare_on: Vec<String>,
}

/// `"x"` or `["x", "y"]`.
#[derive(Clone, Default, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ArmSpec {
    label: Option<String>,
    #[serde(default)]
    compare: OneOrMany,
    #[serde(default)]
    model: Value,
    optimizer: Value,
    #[serde(default)]
    regularizer: Value,
    #[serde(default)]
    topology: Value,
    #[serde(default)]
    loss: Value,
    #[serde(default)]
    train: Value,
    #[serde(default)]
    sweep: Map<String, Value>,
    /// Pair the sweep lists element by element instead of taking every combination.
    #[serde(default)]
    zip: bool,
    /// A sparsity to reach instead of a fixed strength.
    #[serde(default)]
    target: Option<Target>,
    /// Hyperparameters tuned on validation (`"<component>.<key>" = [values]`).
    #[serde(default)]
    tune: Map<String, Value>,
}

/// Recursively merges `overlay` into `base` (tables merge, anything else replaces).
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (k, v) in overlay {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn to_json(v: &toml::Value) -> Value {
    serde_json::to_value(v).expect("TOML values are JSON values")
}

/// Deserialises a JSON value into `T`, naming the key path of any error under `prefix`.
fn typed<T: serde::de::DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let key = if path == "." { String::new() } else { path };
        ConfigError::new(key, e.into_inner().to_string()).under(prefix)
    })
}

/// Overlays `overrides` (an object) on `base` (an object), key by key.
fn overlay(base: &Value, overrides: &Value) -> Value {
    let mut out = base.as_object().cloned().unwrap_or_default();
    if let Some(o) = overrides.as_object() {
        for (k, v) in o {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// The sweep points of an arm: every combination of the listed values, keys in sorted order, or
/// with `zip` the i-th value of every list together (paired hyperparameters, such as a target
/// sparsity and the p that goes with it).
fn sweep_points(
    sweep: &Map<String, Value>,
    arm: &str,
    zip: bool,
) -> Result<Vec<BTreeMap<String, Value>>, ConfigError> {
    let mut lists: Vec<(&String, &Vec<Value>)> = Vec::new();
    let keys: BTreeMap<&String, &Value> = sweep.iter().collect();
    for (key, values) in keys {
        let at = format!("arms.{arm}.sweep.{key}");
        let (component, param) = key.split_once('.').ok_or_else(|| {
            ConfigError::new(
                &at,
                "a sweep key is `<component>.<hyperparameter>`, e.g. `regularizer.lambda`",
            )
        })?;
        if !COMPONENTS.contains(&component) && component != "train" && component != "target" {
            return Err(ConfigError::new(
                &at,
                format!(
                    "unknown component `{component}` (allowed: model, optimizer, regularizer, topology, loss, train, target)"
                ),
            ));
        }
        if param.is_empty() {
            return Err(ConfigError::new(
                &at,
                "missing the hyperparameter after the dot",
            ));
        }
        let Some(values) = values.as_array().filter(|a| !a.is_empty()) else {
            return Err(ConfigError::new(
                &at,
                "a sweep is a non-empty list of values",
            ));
        };
        lists.push((key, values));
    }
    if zip {
        let len = lists.first().map_or(1, |(_, v)| v.len());
        if let Some((key, values)) = lists.iter().find(|(_, v)| v.len() != len) {
            return Err(ConfigError::new(
                format!("arms.{arm}.sweep.{key}"),
                format!(
                    "with `zip = true` every sweep list has the same length ({} values here, {len} in `{}`)",
                    values.len(),
                    lists[0].0
                ),
            ));
        }
        return Ok((0..len)
            .map(|i| {
                lists
                    .iter()
                    .map(|(k, v)| ((*k).clone(), v[i].clone()))
                    .collect()
            })
            .collect());
    }
    combinations(
        &lists,
        &format!("arms.{arm}.sweep"),
        "`zip = true` pairs the lists instead",
    )
}

/// Every combination of one value from each of `lists` (in their order), refused past
/// [`MAX_RUNS`] points with an error at `at` that ends with `remedy`.
fn combinations(
    lists: &[(&String, &Vec<Value>)],
    at: &str,
    remedy: &str,
) -> Result<Vec<BTreeMap<String, Value>>, ConfigError> {
    let product = (lists.iter()).try_fold(1usize, |n, (_, v)| n.checked_mul(v.len()));
    if product.is_none_or(|n| n > MAX_RUNS) {
        return Err(ConfigError::new(
            at,
            format!(
                "the lists make {} points (every combination); more than {MAX_RUNS} runs is \
                 surely a mistake ({remedy})",
                product.map_or_else(|| "too many".to_string(), |n| n.to_string())
            ),
        ));
    }
    let mut points = vec![BTreeMap::new()];
    for (key, values) in lists {
        points = points
            .into_iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.insert((*key).clone(), v.clone());
                    p
                })
            })
            .collect();
    }
    Ok(points)
}

/// The tables of one arm at one sweep point (`target.*` keys excepted: they set the target).
fn point_tables(
    arm: &str,
    spec: &ArmSpec,
    base: &BaseSpec,
    point: &BTreeMap<String, Value>,
) -> Result<RunTables, ConfigError> {
    let prefix = format!("arms.{arm}");
    let mut tables = RunTables {
        model: overlay(&base.model, &spec.model),
        optimizer: spec.optimizer.clone(),
        regularizer: spec.regularizer.clone(),
        topology: spec.topology.clone(),
        losses: loss_tables(&spec.loss, &format!("{prefix}.loss"))?,
        train: overlay(&base.train, &spec.train),
    };
    for (key, value) in point.iter().filter(|(k, _)| !k.starts_with("target.")) {
        tables
            .set(key, value.clone())
            .map_err(|why| ConfigError::new(format!("{prefix}.sweep.{key}"), why))?;
    }
    Ok(tables)
}

/// Resolves `tables` into a run's configuration (seed 0), validating everything.
fn resolve_tables(
    tables: &RunTables,
    data: &DataConfig,
    prefix: &str,
) -> Result<RunConfig, ConfigError> {
    let Resolved { method, train, .. } = resolve(tables, prefix)?;
    Ok(RunConfig {
        data: data.clone(),
        train,
        method,
        seed: 0,
    })
}

/// Every combination of the `tune` lists (keys in sorted order), each checked by resolving it.
fn tuning_grid(
    spec: &ArmSpec,
    tables: &RunTables,
    data: &DataConfig,
    prefix: &str,
) -> Result<Vec<BTreeMap<String, Value>>, ConfigError> {
    let mut lists = Vec::new();
    for (key, values) in &spec.tune {
        let at = format!("{prefix}.tune.{key}");
        let Some(values) = values.as_array().filter(|v| !v.is_empty()) else {
            return Err(ConfigError::new(
                &at,
                "a tuning grid is a non-empty list of values",
            ));
        };
        for v in values {
            let mut t = tables.clone();
            t.set(key, v.clone())
                .map_err(|why| ConfigError::new(&at, why))?;
            resolve_tables(&t, data, prefix).map_err(|e| ConfigError::new(&at, e.to_string()))?;
        }
        lists.push((key, values));
    }
    combinations(&lists, &format!("{prefix}.tune"), "tune fewer keys at once")
}

/// The arm's target at `point` (a swept `target.<key>` applied), with its knob resolved and
/// checked: a key the arm has, which resolves at both ends of the range.
fn point_target(
    target: &Target,
    point: &BTreeMap<String, Value>,
    tables: &RunTables,
    data: &DataConfig,
    prefix: &str,
) -> Result<(Target, String), ConfigError> {
    let at = format!("{prefix}.target");
    let mut json = serde_json::to_value(target).expect("a target serialises");
    for (key, value) in point {
        if let Some(field) = key.strip_prefix("target.") {
            json[field] = value.clone();
        }
    }
    let target: Target = typed(json, &at)?;
    if !(target.value > 0.0 && target.value < 1.0) {
        return Err(ConfigError::out_of_range(
            &format!("{at}.value"),
            target.value,
            "0 < value < 1",
        ));
    }
    if target.tolerance.is_nan() || target.tolerance < 0.0 {
        return Err(ConfigError::out_of_range(
            &format!("{at}.tolerance"),
            target.tolerance,
            "tolerance >= 0",
        ));
    }
    if metric_info(&target.metric).is_none() {
        return Err(ConfigError::new(
            format!("{at}.metric"),
            format!(
                "unknown metric `{}` (e.g. weight_sparsity, group_sparsity)",
                target.metric
            ),
        ));
    }
    let [lo, hi] = target.range;
    if !(lo > 0.0 && lo < hi && hi.is_finite()) || target.probes == 0 {
        return Err(ConfigError::new(
            format!("{at}.range"),
            format!(
                "[{lo}, {hi}] with {} probes: a range 0 < low < high and probes >= 1",
                target.probes
            ),
        ));
    }
    let knob = match (
        &target.knob,
        tables.regularizer.is_null(),
        tables.topology.is_null(),
    ) {
        (Some(k), _, _) => k.clone(),
        (None, false, _) => "regularizer.lambda".into(),
        (None, true, false) => "topology.sparsity".into(),
        (None, true, true) => {
            return Err(ConfigError::new(
                &at,
                "the arm has no strength to search: no regularizer and no topology (name a `knob`, e.g. `optimizer.c`)",
            ));
        }
    };
    let ends: Vec<f64> = if knob == "topology.sparsity" {
        vec![target.value]
    } else {
        vec![lo, hi]
    };
    for v in ends {
        let mut t = tables.clone();
        t.set(&knob, serde_json::json!(v))
            .map_err(|why| ConfigError::new(format!("{at}.knob"), why))?;
        resolve_tables(&t, data, prefix)
            .map_err(|e| ConfigError::new(format!("{at}.knob"), format!("`{knob}` = {v}: {e}")))?;
    }
    Ok((target, knob))
}

struct BaseSpec {
    data: DataConfig,
    model: Value,
    train: Value,
}

/// Loads and validates `file`; `quick` merges its `[quick]` table; `seeds` overrides the number
/// of seeds.
pub fn load(file: &Path, quick: bool, seeds: Option<usize>) -> Result<Ablation, SpecError> {
    let text = std::fs::read_to_string(file).map_err(|e| SpecError {
        file: file.to_path_buf(),
        error: ConfigError::new("", format!("cannot read: {e}")),
    })?;
    parse(&text, file, quick, seeds)
}

/// [`load`] of the text of `file`, already read.
pub fn parse(
    text: &str,
    file: &Path,
    quick: bool,
    seeds: Option<usize>,
) -> Result<Ablation, SpecError> {
    let fail = |error: ConfigError| SpecError {
        file: file.to_path_buf(),
        error,
    };
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(ConfigError::new("", e.to_string())))?;
    if quick {
        match doc.get("quick").cloned() {
            Some(toml::Value::Table(q)) => merge(&mut doc, &q),
            Some(_) => return Err(fail(ConfigError::new("quick", "expected a table"))),
            None => {}
        }
    }
    // Arms keep their file order (toml tables preserve insertion order).
    let arm_order: Vec<String> = match doc.get("arms") {
        Some(toml::Value::Table(t)) => t.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let spec: FileSpec = typed(to_json(&toml::Value::Table(doc)), "").map_err(fail)?;
    if spec.arms.is_empty() {
        return Err(fail(ConfigError::new(
            "arms",
            "an ablation needs at least one arm",
        )));
    }
    let seeds = seeds.unwrap_or(spec.seeds);
    if !(1..=MAX_SEEDS).contains(&seeds) {
        return Err(fail(ConfigError::out_of_range(
            "seeds",
            seeds,
            &format!("1 <= seeds <= {MAX_SEEDS}"),
        )));
    }
    let base = BaseSpec {
        data: parse_config(&spec.data).map_err(|e| fail(e.under("data")))?,
        model: spec.model.clone(),
        train: spec.train.clone(),
    };
    let mut arms = Vec::new();
    let mut runs = Vec::new();
    let mut searches = Vec::new();
    for name in &arm_order {
        let arm_spec: ArmSpec =
            typed(spec.arms[name].clone(), &format!("arms.{name}")).map_err(fail)?;
        let label = arm_spec.label.clone().unwrap_or_else(|| name.clone());
        let prefix = format!("arms.{name}");
        let mut tuning_budget = 1;
        for point in sweep_points(&arm_spec.sweep, name, arm_spec.zip).map_err(fail)? {
            if arm_spec.target.is_none() && point.keys().any(|k| k.starts_with("target.")) {
                return Err(fail(ConfigError::new(
                    format!("{prefix}.sweep"),
                    "`target.*` is swept, but the arm has no `target`",
                )));
            }
            let tables = point_tables(name, &arm_spec, &base, &point).map_err(fail)?;
            let config = resolve_tables(&tables, &base.data, &prefix).map_err(fail)?;
            if arm_spec.target.is_some() || !arm_spec.tune.is_empty() {
                let grid = tuning_grid(&arm_spec, &tables, &base.data, &prefix).map_err(fail)?;
                tuning_budget = grid.len();
                let target = match &arm_spec.target {
                    Some(t) => {
                        Some(point_target(t, &point, &tables, &base.data, &prefix).map_err(fail)?)
                    }
                    None => None,
                };
                searches.push(Search {
                    arm: name.clone(),
                    label: label.clone(),
                    sweep: point.clone(),
                    tables,
                    data: base.data.clone(),
                    target,
                    grid: if arm_spec.tune.is_empty() {
                        Vec::new()
                    } else {
                        grid
                    },
                    seeds,
                    prefix: prefix.clone(),
                });
                continue;
            }
            if runs.len() + seeds > MAX_RUNS {
                return Err(fail(ConfigError::new(
                    format!("{prefix}.sweep"),
                    format!(
                        "the file plans more than {MAX_RUNS} runs (arms × sweep points × seeds): \
                         surely a mistake"
                    ),
                )));
            }
            for seed in 0..seeds as u64 {
                let config = RunConfig {
                    seed,
                    ..config.clone()
                };
                runs.push(PlannedRun {
                    id: run_id(&config),
                    arm: name.clone(),
                    label: label.clone(),
                    sweep: point.clone(),
                    config,
                });
            }
        }
        let compare = arm_spec.compare.clone().into_vec();
        if let Some(other) = compare.iter().find(|c| !arm_order.contains(c)) {
            return Err(fail(ConfigError::new(
                format!("arms.{name}.compare"),
                format!("unknown arm `{other}` (allowed: {})", arm_order.join(", ")),
            )));
        }
        arms.push(Arm {
            name: name.clone(),
            label,
            compare,
            tuning_budget,
        });
    }
    let sweep_keys: Vec<String> = (runs.iter().map(|r| &r.sweep))
        .chain(searches.iter().map(|s| &s.sweep))
        .flat_map(|s| s.keys().cloned())
        .collect();
    let figures = spec
        .figures
        .iter()
        .enumerate()
        .map(|(i, f)| {
            FigureSpec::parse(f, &arm_order, &sweep_keys)
                .map_err(|e| fail(e.under(&format!("figures[{i}]"))))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let columns = if spec.table.columns.is_empty() {
        DEFAULT_COLUMNS.iter().map(|c| c.to_string()).collect()
    } else {
        spec.table.columns.clone()
    };
    let columns = with_measured_speedups(with_matched_sparsity(columns, &spec.claims));
    let compare_on = if spec.table.compare_on.is_empty() {
        vec![crate::table::COMPARED.to_string()]
    } else {
        spec.table.compare_on.clone()
    };
    for (key, list) in [
        ("table.columns", &columns),
        ("table.compare_on", &compare_on),
    ] {
        if let Some(bad) = list.iter().find(|c| metric_info(c).is_none()) {
            return Err(fail(ConfigError::new(
                key,
                format!(
                    "unknown metric `{bad}` (allowed: {})",
                    crate::record::METRICS
                        .iter()
                        .map(|m| m.key)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )));
        }
    }
    for (i, claim) in spec.claims.iter().enumerate() {
        check_claim(claim, &arm_order, &runs)
            .map_err(|e| fail(e.under(&format!("claims[{i}]"))))?;
    }
    let mut seen = BTreeMap::new();
    for r in &runs {
        if let Some(other) = seen.insert(r.id.clone(), r.arm.clone()) {
            return Err(fail(ConfigError::new(
                format!("arms.{}", r.arm),
                format!(
                    "this arm's run {} (seed {}) is identical to one of arm `{other}`; remove the duplicate",
                    canonical_json(&r.config.identity()),
                    r.config.seed
                ),
            )));
        }
    }
    Ok(Ablation {
        name: file
            .file_stem()
            .map_or_else(String::new, |s| s.to_string_lossy().into_owned()),
        file: file.to_path_buf(),
        description: spec.description,
        quick,
        data: base.data,
        arms,
        runs,
        figures,
        columns,
        compare_on,
        claims: spec.claims,
        searches,
    })
}

/// `columns` with the sparsity every comparison is matched on: weight sparsity (which a table
/// comparison checks before calling a pair matched) and each claim's `match_on` metric, placed
/// after the leading accuracy columns when the file left them out, so that a reader sees the
/// achieved sparsity of every arm next to its accuracy.
fn with_matched_sparsity(mut columns: Vec<String>, claims: &[Claim]) -> Vec<String> {
    let matched = std::iter::once("weight_sparsity")
        .chain(claims.iter().map(|c| c.match_on.as_str()))
        .filter(|m| metric_info(m).is_some());
    for metric in matched {
        if !columns.iter().any(|c| c == metric) {
            let at = (columns.iter())
                .position(|c| !c.contains("accuracy"))
                .unwrap_or(columns.len());
            columns.insert(at, metric.to_string());
        }
    }
    columns
}

/// `columns` with the measured inference speedups beside the theoretical one, wherever a table
/// shows it: a theoretical speedup is never shown alone.
fn with_measured_speedups(mut columns: Vec<String>) -> Vec<String> {
    if let Some(at) = columns.iter().position(|c| c == "speedup") {
        for (i, key) in ["measured_speedup_b1", "measured_speedup_b128"]
            .iter()
            .enumerate()
        {
            if !columns.iter().any(|c| c == key) {
                columns.insert(at + 1 + i, (*key).to_string());
            }
        }
    }
    columns
}

/// A claim names arms, metrics and swept keys the ablation has.
fn check_claim(claim: &Claim, arms: &[String], runs: &[PlannedRun]) -> Result<(), ConfigError> {
    let metrics = || {
        crate::record::METRICS
            .iter()
            .map(|m| m.key)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if metric_info(&claim.metric).is_none() {
        return Err(ConfigError::new(
            "metric",
            format!("unknown metric `{}` (allowed: {})", claim.metric, metrics()),
        ));
    }
    if claim.match_on != "sweep" && metric_info(&claim.match_on).is_none() {
        return Err(ConfigError::new(
            "match_on",
            format!(
                "unknown metric `{}` (allowed: sweep, {})",
                claim.match_on,
                metrics()
            ),
        ));
    }
    if claim.tolerance.is_nan() || claim.tolerance < 0.0 {
        return Err(ConfigError::out_of_range(
            "tolerance",
            claim.tolerance,
            "tolerance >= 0",
        ));
    }
    if let Some(bad) = claim
        .arms()
        .into_iter()
        .find(|a| !arms.iter().any(|n| n == a))
    {
        return Err(ConfigError::new(
            "arms",
            format!("unknown arm `{bad}` (allowed: {})", arms.join(", ")),
        ));
    }
    for (i, t) in claim.trends.iter().enumerate() {
        if !runs
            .iter()
            .any(|r| r.arm == t.arm && r.sweep.contains_key(&t.over))
        {
            return Err(ConfigError::new(
                format!("trends[{i}].over"),
                format!("arm `{}` does not sweep `{}`", t.arm, t.over),
            ));
        }
        if let Some([low, high]) = t.within {
            let mut points: Vec<f64> = (runs.iter())
                .filter(|r| r.arm == t.arm)
                .filter_map(|r| r.sweep.get(&t.over)?.as_f64())
                .filter(|&x| t.admits(x))
                .collect();
            points.sort_by(f64::total_cmp);
            points.dedup();
            if points.len() < 2 {
                return Err(ConfigError::new(
                    format!("trends[{i}].within"),
                    format!(
                        "[{low}, {high}] holds {} sweep point(s) of `{}`; a trend needs at least 2",
                        points.len(),
                        t.over
                    ),
                ));
            }
        }
    }
    if let Some(a) = &claim.agreement
        && !(a.bound.is_finite() && a.bound > 0.0)
    {
        return Err(ConfigError::out_of_range(
            "agreement.bound",
            a.bound,
            "a finite bound > 0",
        ));
    }
    if claim.pairs.is_empty()
        && claim.trends.is_empty()
        && claim.agreement.is_none()
        && claim.untested.is_none()
    {
        return Err(ConfigError::new(
            "pairs",
            "a claim compares `pairs` of arms, follows `trends`, checks an `agreement`, or says \
             why it is `untested`",
        ));
    }
    Ok(())
}

/// Every experiment file in `dir` (sorted by name) with its description, or the error that
/// prevents loading it.
pub fn list(dir: &Path) -> std::io::Result<Vec<(String, Result<String, SpecError>)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let name = path
                .file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
            out.push((name, load(&path, false, None).map(|a| a.description)));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_table_shows_the_sparsity_its_comparisons_are_matched_on() {
        let claim: Claim = toml::from_str(
            "id = \"X\"\nclaim = \"c\"\npaper = \"p\"\nmatch_on = \"group_sparsity\"",
        )
        .expect("claim");
        let columns = strings(&["test_accuracy", "val_accuracy", "cka"]);
        assert_eq!(
            with_matched_sparsity(columns, std::slice::from_ref(&claim)),
            strings(&[
                "test_accuracy",
                "val_accuracy",
                "group_sparsity",
                "weight_sparsity",
                "cka"
            ])
        );
        // Columns the file already shows stay where the file put them.
        let shown = strings(&["weight_sparsity", "test_accuracy", "group_sparsity"]);
        assert_eq!(with_matched_sparsity(shown.clone(), &[claim]), shown);
    }
}
