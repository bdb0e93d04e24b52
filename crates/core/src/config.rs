//! Hyperparameters as plain data.
//!
//! A method's hyperparameters are a `serde` struct with defaults (`#[serde(default,
//! deny_unknown_fields)]`), parsed from a JSON value (TOML tables are converted to JSON first).
//! [`parse_config`] turns serde's errors into a [`ConfigError`] that names the offending key, and
//! then runs [`Validate::validate`] for range checks. The error message always says what is
//! allowed, so a typo in an experiment file is a one-line fix.

use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt::Display;

/// A configuration error: the dotted key path that is wrong and why.
///
/// The experiment loader prefixes the file name; components prefix their own key path with
/// [`ConfigError::under`], so the final message reads
/// `experiments/x.toml: arms.gmp.topology.sparsity: 1.5 is out of range (allowed: 0 <= sparsity < 1)`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{message}", if key.is_empty() { String::new() } else { format!("{key}: ") })]
pub struct ConfigError {
    /// Dotted path of the offending key (empty for whole-document errors).
    pub key: String,
    /// What is wrong, including the allowed values.
    pub message: String,
}

impl ConfigError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            message: message.into(),
        }
    }

    /// An out-of-range value: names the value and the allowed range.
    pub fn out_of_range(key: &str, value: impl Display, allowed: &str) -> Self {
        Self::new(key, format!("{value} is out of range (allowed: {allowed})"))
    }

    /// Prefix the key path with `prefix` (the table this error was found in).
    #[must_use]
    pub fn under(mut self, prefix: &str) -> Self {
        if prefix.is_empty() {
            return self;
        }
        self.key = if self.key.is_empty() {
            prefix.to_string()
        } else {
            format!("{prefix}.{}", self.key)
        };
        self
    }
}

/// Range and consistency checks that serde's type checks cannot express.
pub trait Validate {
    /// `Ok` if every field is in its allowed range.
    fn validate(&self) -> Result<(), ConfigError>;
}

/// Checks `lo <= value <= hi` (inclusive), naming `key` and the range in the error.
pub fn check_closed(key: &str, value: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if value.is_finite() && (lo..=hi).contains(&value) {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key,
            value,
            &format!("{lo} <= {key} <= {hi}"),
        ))
    }
}

/// Checks `lo <= value < hi`.
pub fn check_half_open(key: &str, value: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= lo && value < hi {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key,
            value,
            &format!("{lo} <= {key} < {hi}"),
        ))
    }
}

/// Checks `value > 0` and finite.
pub fn check_positive(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(key, value, &format!("{key} > 0")))
    }
}

/// Checks `value >= 0` and finite.
pub fn check_non_negative(key: &str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::out_of_range(
            key,
            value,
            &format!("{key} >= 0"),
        ))
    }
}

/// Parses `value` (a JSON object, or `null` for "all defaults") into `C` and validates it.
///
/// Unknown keys are errors that list the allowed keys; wrong types name the key and the
/// expected type.
pub fn parse_config<C: DeserializeOwned + Validate>(value: &Value) -> Result<C, ConfigError> {
    let value = match value {
        Value::Null => Value::Object(Default::default()),
        other => other.clone(),
    };
    let config: C = serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let key = if path == "." { String::new() } else { path };
        ConfigError::new(key, err.into_inner().to_string())
    })?;
    config.validate()?;
    Ok(config)
}

/// The entries of `resolved` that differ from `defaults`, recursively for nested objects.
///
/// This is what identifies a run (OpenLTH's rule): a hyperparameter added later with its default
/// value is absent from the difference, so existing run ids do not change.
pub fn non_default(resolved: &Value, defaults: &Value) -> Value {
    match (resolved, defaults) {
        (Value::Object(r), Value::Object(d)) => Value::Object(
            r.iter()
                .filter_map(|(k, v)| match d.get(k) {
                    Some(dv) if dv == v => None,
                    Some(dv @ Value::Object(_)) if v.is_object() => {
                        Some((k.clone(), non_default(v, dv)))
                    }
                    _ => Some((k.clone(), v.clone())),
                })
                .collect(),
        ),
        _ => resolved.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    #[serde(default, deny_unknown_fields)]
    struct Demo {
        sparsity: f64,
        every: usize,
    }

    impl Default for Demo {
        fn default() -> Self {
            Self {
                sparsity: 0.9,
                every: 100,
            }
        }
    }

    impl Validate for Demo {
        fn validate(&self) -> Result<(), ConfigError> {
            check_half_open("sparsity", self.sparsity, 0.0, 1.0)
        }
    }

    #[test]
    fn null_means_all_defaults() {
        assert_eq!(parse_config::<Demo>(&Value::Null).unwrap(), Demo::default());
    }

    #[test]
    fn unknown_key_lists_allowed_keys() {
        let err = parse_config::<Demo>(&json!({"spasity": 0.5})).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("spasity"), "{text}");
        assert!(
            text.contains("sparsity") && text.contains("every"),
            "{text}"
        );
    }

    #[test]
    fn wrong_type_names_the_key() {
        let err = parse_config::<Demo>(&json!({"every": "often"})).unwrap_err();
        assert_eq!(err.key, "every");
    }

    #[test]
    fn out_of_range_names_key_value_and_range() {
        let err = parse_config::<Demo>(&json!({"sparsity": 1.5}))
            .unwrap_err()
            .under("arms.gmp.topology");
        assert_eq!(err.key, "arms.gmp.topology.sparsity");
        assert!(err.message.contains("1.5") && err.message.contains("< 1"));
    }

    #[test]
    fn non_default_keeps_only_changed_entries() {
        let d = json!({"a": 1, "b": {"c": 2, "d": 3}, "e": 4});
        let r = json!({"a": 1, "b": {"c": 2, "d": 5}, "e": 6, "f": 7});
        assert_eq!(non_default(&r, &d), json!({"b": {"d": 5}, "e": 6, "f": 7}));
        assert_eq!(non_default(&d, &d), json!({}));
    }
}
