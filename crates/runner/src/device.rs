//! Choosing the device a run trains on.
//!
//! `auto` picks the WGPU backend when a real GPU adapter exists and the pure-Rust CPU backend
//! (`flex`) otherwise, and says which it chose and why; `wgpu` and `flex` force one. Probing never
//! panics: a missing adapter or driver falls back (auto) or is a clear error (wgpu).

use burn::tensor::{Device, DeviceKind, DeviceType};
use serde::{Deserialize, Serialize};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// What the user asked for (`--device`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// WGPU if a GPU adapter is present, else flex.
    #[default]
    Auto,
    /// The WGPU backend (any adapter, including software Vulkan drivers).
    Wgpu,
    /// The pure-Rust CPU backend.
    Flex,
}

impl DeviceChoice {
    /// Every choice, as the command line and experiment files spell them.
    pub const ALL: [(&str, DeviceChoice); 3] = [
        ("auto", DeviceChoice::Auto),
        ("wgpu", DeviceChoice::Wgpu),
        ("flex", DeviceChoice::Flex),
    ];
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == s)
            .map(|(_, choice)| *choice)
            .ok_or_else(|| format!("unknown device `{s}` (allowed: auto, wgpu, flex)"))
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = Self::ALL
            .iter()
            .find(|(_, choice)| choice == self)
            .map_or("auto", |(name, _)| name);
        f.write_str(name)
    }
}

/// A chosen device.
#[derive(Clone, Debug)]
pub struct Selected {
    /// The device (without autodiff; training adds it).
    pub device: Device,
    /// `"wgpu"` or `"flex"`.
    pub backend: &'static str,
    /// Human-readable description (recorded with every result).
    pub description: String,
    /// Why auto chose what it chose, when that is worth saying.
    pub note: Option<String>,
}

fn flex(note: Option<String>) -> Selected {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    Selected {
        device: Device::flex(),
        backend: "flex",
        description: format!("flex (CPU, {threads} threads)"),
        note,
    }
}

/// WGPU devices with their names and whether they are real cards (not a CPU adapter or a
/// software rasterizer). Any panic inside the driver stack is caught and reported.
fn wgpu_adapters() -> Result<Vec<(Device, String, bool)>, String> {
    let probe = catch_unwind(AssertUnwindSafe(|| {
        Device::enumerate(DeviceType::Wgpu)
            .into_iter()
            .map(|d| {
                let identity = d.identity();
                let name = identity
                    .as_ref()
                    .map_or_else(|| "unknown adapter".to_string(), |i| i.name.clone());
                let card = identity.is_some_and(|i| i.physical.is_some());
                (d, name, card)
            })
            .collect::<Vec<_>>()
    }));
    probe.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the WGPU probe failed".into())
    })
}

/// Resolves `choice` to a device.
pub fn select(choice: DeviceChoice) -> Result<Selected, String> {
    match choice {
        DeviceChoice::Flex => Ok(flex(None)),
        DeviceChoice::Wgpu => {
            let adapters = wgpu_adapters()?;
            let Some((_, name, _)) = adapters.first() else {
                return Err(
                    "no WGPU adapter available: install a GPU or Vulkan driver (Debian: \
                    mesa-vulkan-drivers for a software one) or use --device flex"
                        .into(),
                );
            };
            Ok(Selected {
                device: Device::wgpu(DeviceKind::DefaultDevice),
                backend: "wgpu",
                description: format!("wgpu ({name})"),
                note: None,
            })
        }
        DeviceChoice::Auto => match wgpu_adapters() {
            Ok(adapters) => match adapters.into_iter().find(|(_, _, card)| *card) {
                Some((device, name, _)) => Ok(Selected {
                    device,
                    backend: "wgpu",
                    description: format!("wgpu ({name})"),
                    note: Some(format!("GPU adapter found: {name}")),
                }),
                None => Ok(flex(Some("no GPU adapter found; using flex (CPU)".into()))),
            },
            Err(why) => Ok(flex(Some(format!(
                "WGPU unavailable ({why}); using flex (CPU)"
            )))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flex_is_always_available() {
        let s = select(DeviceChoice::Flex).unwrap();
        assert_eq!(s.backend, "flex");
        assert!(s.description.starts_with("flex (CPU"));
    }

    #[test]
    fn auto_never_panics_and_picks_a_backend() {
        let s = select(DeviceChoice::Auto).unwrap();
        assert!(s.backend == "flex" || s.backend == "wgpu");
        if s.backend == "flex" {
            assert!(s.note.is_some(), "auto says why it fell back");
        }
    }

    /// The command line's spellings parse back to their choice, and a bad one names the allowed.
    #[test]
    fn choices_parse_from_their_names() {
        for (name, choice) in DeviceChoice::ALL {
            assert_eq!(name.parse::<DeviceChoice>(), Ok(choice));
            assert_eq!(choice.to_string(), name);
        }
        let err = "cuda".parse::<DeviceChoice>().unwrap_err();
        assert!(err.contains("allowed: auto, wgpu, flex"), "{err}");
    }
}
