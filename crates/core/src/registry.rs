//! Name → constructor tables.
//!
//! Each research crate keeps one [`Registry`] per kind of method (optimizers, regularizers,
//! topologies, models). An [`Entry`] knows its name, a one-line summary, its default
//! hyperparameters, and how to build the method from plain data. Adding a method is one file
//! plus one `Entry` line in its crate's registry.

use crate::config::{ConfigError, Validate, non_default, parse_config};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A method constructible from a typed, validated config: the common way to fill an [`Entry`]
/// (`Entry::of::<MyMethod>()`).
pub trait FromConfig<T: ?Sized> {
    /// The method's hyperparameters (`#[serde(default, deny_unknown_fields)]`).
    type Config: Default + Serialize + DeserializeOwned + Validate;
    /// Name used in experiment files.
    const NAME: &'static str;
    /// One-line description (cite the SPEC.md section).
    const SUMMARY: &'static str;
    /// Builds the method.
    fn from_config(config: Self::Config) -> Box<T>;
}

fn defaults_of<C: Default + Serialize>() -> Value {
    serde_json::to_value(C::default()).expect("a config serialises to JSON")
}

fn build_of<T: ?Sized, M: FromConfig<T>>(params: &Value) -> Result<(Value, Box<T>), ConfigError> {
    let config: M::Config = parse_config(params)?;
    let resolved = serde_json::to_value(&config).expect("a config serialises to JSON");
    Ok((resolved, M::from_config(config)))
}

/// A method built from plain data, with the hyperparameters that produced it.
pub struct Resolved<T: ?Sized> {
    /// Registered name of the method.
    pub name: &'static str,
    /// Every hyperparameter, defaults filled in (what the run really used).
    pub params: Value,
    /// Only the hyperparameters that differ from the defaults (what identifies the run).
    pub non_default: Value,
    /// The method itself.
    pub value: Box<T>,
}

/// Builds a method from its (already key-prefixed) hyperparameters.
pub type BuildFn<T> = fn(&Value) -> Result<(Value, Box<T>), ConfigError>;

/// One registered method.
pub struct Entry<T: ?Sized> {
    /// Name used in experiment files.
    pub name: &'static str,
    /// One line for `cargo xtask list` and error messages.
    pub summary: &'static str,
    defaults: fn() -> Value,
    build: BuildFn<T>,
}

impl<T: ?Sized> Entry<T> {
    /// An entry from its parts: `defaults` serialises the default config; `build` parses,
    /// validates and constructs, returning the resolved config alongside the method.
    pub const fn new(
        name: &'static str,
        summary: &'static str,
        defaults: fn() -> Value,
        build: BuildFn<T>,
    ) -> Self {
        Self {
            name,
            summary,
            defaults,
            build,
        }
    }

    /// The entry of a [`FromConfig`] method.
    pub fn of<M: FromConfig<T>>() -> Self {
        Self::new(
            M::NAME,
            M::SUMMARY,
            defaults_of::<M::Config>,
            build_of::<T, M>,
        )
    }

    /// The default hyperparameters.
    pub fn defaults(&self) -> Value {
        (self.defaults)()
    }

    /// Builds the method from `params` (`null` = defaults).
    pub fn build(&self, params: &Value) -> Result<Resolved<T>, ConfigError> {
        let (resolved, value) = (self.build)(params)?;
        Ok(Resolved {
            name: self.name,
            non_default: non_default(&resolved, &self.defaults()),
            params: resolved,
            value,
        })
    }
}

/// All methods of one kind.
pub struct Registry<T: ?Sized> {
    kind: &'static str,
    entries: Vec<Entry<T>>,
}

impl<T: ?Sized> Registry<T> {
    /// A registry of `kind` ("optimizer", "topology", ...). Names must be unique.
    pub fn new(kind: &'static str, entries: Vec<Entry<T>>) -> Self {
        for (i, e) in entries.iter().enumerate() {
            assert!(
                entries[..i].iter().all(|o| o.name != e.name),
                "duplicate {kind} `{}`",
                e.name
            );
        }
        Self { kind, entries }
    }

    /// What kind of method this registry holds.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// All entries, in registration order.
    pub fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// Registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.entries.iter().map(|e| e.name).collect()
    }

    /// The entry called `name`, or an error listing the allowed names.
    pub fn get(&self, name: &str) -> Result<&Entry<T>, ConfigError> {
        self.entries.iter().find(|e| e.name == name).ok_or_else(|| {
            ConfigError::new(
                "name",
                format!(
                    "unknown {} `{name}` (allowed: {})",
                    self.kind,
                    self.names().join(", ")
                ),
            )
        })
    }

    /// Builds a method from a table `{ name = "...", <hyperparameters>... }`.
    pub fn build(&self, table: &Value) -> Result<Resolved<T>, ConfigError> {
        let Value::Object(map) = table else {
            return Err(ConfigError::new(
                "",
                format!("expected a table with a `name` key naming a {}", self.kind),
            ));
        };
        let name = match map.get("name") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(ConfigError::new(
                    "name",
                    format!("expected a string, found {other}"),
                ));
            }
            None => {
                return Err(ConfigError::new(
                    "name",
                    format!(
                        "missing; a {} needs a name (allowed: {})",
                        self.kind,
                        self.names().join(", ")
                    ),
                ));
            }
        };
        let mut params = map.clone();
        params.remove("name");
        self.get(name)?.build(&Value::Object(params))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    trait Shape {
        fn sides(&self) -> u32;
    }
    struct Poly(u32);
    impl Shape for Poly {
        fn sides(&self) -> u32 {
            self.0
        }
    }

    fn registry() -> Registry<dyn Shape> {
        Registry::new(
            "shape",
            vec![Entry::new(
                "poly",
                "a polygon",
                || json!({"sides": 3}),
                |v| {
                    let sides = v.get("sides").and_then(Value::as_u64).unwrap_or(3);
                    let sides = u32::try_from(sides)
                        .map_err(|_| ConfigError::new("sides", "too many sides"))?;
                    Ok((json!({ "sides": sides }), Box::new(Poly(sides))))
                },
            )],
        )
    }

    #[test]
    fn builds_by_name_and_separates_non_defaults() {
        let r = registry()
            .build(&json!({"name": "poly", "sides": 5}))
            .unwrap();
        assert_eq!(r.value.sides(), 5);
        assert_eq!(r.params, json!({"sides": 5}));
        assert_eq!(r.non_default, json!({"sides": 5}));
        let d = registry().build(&json!({"name": "poly"})).unwrap();
        assert_eq!(d.non_default, json!({}));
    }

    #[test]
    fn unknown_name_lists_allowed_names() {
        let err = registry().build(&json!({"name": "circle"})).err().unwrap();
        assert_eq!(err.key, "name");
        assert!(err.message.contains("unknown shape `circle`"));
        assert!(err.message.contains("allowed: poly"));
    }

    #[test]
    fn missing_name_is_an_error() {
        assert!(registry().build(&json!({"sides": 4})).is_err());
    }
}
