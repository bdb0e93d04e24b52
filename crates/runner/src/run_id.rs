//! Run ids: a stable hash of a run's canonical, non-default configuration and seed.
//!
//! `canonical_json` writes JSON with keys sorted at every level and numbers in serde_json's
//! shortest round-trip form; the id is the 64-bit FNV-1a hash of that text in hex. Because
//! [`RunConfig::identity`] drops hyperparameters at their default values, adding a new
//! hyperparameter (with a default) to a method never changes the ids of existing runs, and the
//! results store recognises them as already finished.

use crate::experiment::RunConfig;
use serde_json::Value;

/// JSON text with object keys sorted recursively.
pub fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let body: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical_json(&map[k])))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(canonical_json)
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => other.to_string(),
    }
}

/// 64-bit FNV-1a.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The id of a run: 16 hex digits.
pub fn run_id(config: &RunConfig) -> String {
    format!("{:016x}", fnv1a(&canonical_json(&config.identity())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resolve::{ComponentConfig, MethodConfig};
    use crate::schedule::TrainConfig;
    use serde_json::json;
    use sparselab_data::DataConfig;

    fn component(name: &str, params: Value, non_default: Value) -> ComponentConfig {
        ComponentConfig {
            name: name.into(),
            params,
            non_default,
        }
    }

    fn gmp_run() -> RunConfig {
        RunConfig {
            data: DataConfig::default(),
            train: TrainConfig {
                epochs: 20,
                ..TrainConfig::default()
            },
            method: MethodConfig {
                model: component("mlp-300-100", json!({"hidden": [300, 100]}), json!({})),
                optimizer: component("sgd", json!({"momentum": 0.9}), json!({})),
                regularizer: None,
                topology: Some(component(
                    "gmp",
                    json!({"sparsity": 0.95}),
                    json!({"sparsity": 0.95}),
                )),
                losses: Vec::new(),
            },
            seed: 1,
        }
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let a = json!({"b": 1, "a": {"d": [1, {"z": 0, "y": 1}], "c": 0.1}});
        assert_eq!(
            canonical_json(&a),
            r#"{"a":{"c":0.1,"d":[1,{"y":1,"z":0}]},"b":1}"#
        );
    }

    /// Golden ids: if this test fails, every stored result would be re-run. Change it only
    /// together with a migration of `results/`.
    #[test]
    fn ids_never_change() {
        let run = gmp_run();
        assert_eq!(
            canonical_json(&run.identity()),
            r#"{"data":{},"model":{"name":"mlp-300-100"},"optimizer":{"name":"sgd"},"seed":1,"topology":{"name":"gmp","sparsity":0.95},"train":{"epochs":20}}"#
        );
        assert_eq!(run_id(&run), "86b0e4bc59163331");
    }

    /// The real resolution path (registry → resolved params → non-default part) with two
    /// versions of a method's config, the second adding a hyperparameter with its default.
    #[test]
    fn a_new_hyperparameter_at_its_default_does_not_change_the_id() {
        use serde::{Deserialize, Serialize};
        use sparselab_core::config::Validate;
        use sparselab_core::{ConfigError, Entry, FromConfig, Registry};

        trait Method {}
        #[derive(Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct V1 {
            sparsity: f64,
        }
        #[derive(Serialize, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        struct V2 {
            sparsity: f64,
            jitter: f64,
        }
        impl Default for V1 {
            fn default() -> Self {
                Self { sparsity: 0.9 }
            }
        }
        impl Default for V2 {
            fn default() -> Self {
                Self {
                    sparsity: 0.9,
                    jitter: 0.0,
                }
            }
        }
        impl Validate for V1 {
            fn validate(&self) -> Result<(), ConfigError> {
                Ok(())
            }
        }
        impl Validate for V2 {
            fn validate(&self) -> Result<(), ConfigError> {
                Ok(())
            }
        }
        struct Gmp1;
        struct Gmp2;
        struct Unit;
        impl Method for Unit {}
        impl FromConfig<dyn Method> for Gmp1 {
            type Config = V1;
            const NAME: &'static str = "gmp";
            const SUMMARY: &'static str = "";
            fn from_config(_: V1) -> Box<dyn Method> {
                Box::new(Unit)
            }
        }
        impl FromConfig<dyn Method> for Gmp2 {
            type Config = V2;
            const NAME: &'static str = "gmp";
            const SUMMARY: &'static str = "";
            fn from_config(_: V2) -> Box<dyn Method> {
                Box::new(Unit)
            }
        }
        let table = json!({"name": "gmp", "sparsity": 0.95});
        let v1 = Registry::new("t", vec![Entry::of::<Gmp1>()])
            .build(&table)
            .unwrap();
        let v2 = Registry::new("t", vec![Entry::of::<Gmp2>()])
            .build(&table)
            .unwrap();
        assert_ne!(v1.params, v2.params, "the resolved config did grow");
        let mut before = gmp_run();
        let mut after = gmp_run();
        before.method.topology = Some(ComponentConfig::from_resolved(&v1));
        after.method.topology = Some(ComponentConfig::from_resolved(&v2));
        assert_eq!(run_id(&before), run_id(&after));
        // ...but setting the new hyperparameter away from its default does change it.
        let v3 = Registry::new("t", vec![Entry::of::<Gmp2>()])
            .build(&json!({"name": "gmp", "sparsity": 0.95, "jitter": 0.1}))
            .unwrap();
        after.method.topology = Some(ComponentConfig::from_resolved(&v3));
        assert_ne!(run_id(&before), run_id(&after));
    }

    #[test]
    fn seed_and_hyperparameters_change_the_id() {
        let base = gmp_run();
        let other_seed = RunConfig {
            seed: 2,
            ..gmp_run()
        };
        let mut other_sparsity = gmp_run();
        other_sparsity.method.topology =
            Some(component("gmp", json!({"sparsity": 0.9}), json!({})));
        assert_ne!(run_id(&base), run_id(&other_seed));
        assert_ne!(run_id(&base), run_id(&other_sparsity));
        let mut with_loss = gmp_run();
        with_loss.method.losses = vec![component(
            "feature-l2",
            json!({"beta": 0.1}),
            json!({"beta": 0.1}),
        )];
        assert_ne!(run_id(&base), run_id(&with_loss));
    }
}
