//! Records the burn version (from the workspace Cargo.lock), the rustc version and the
//! optimisation level sparselab was built with, for `env.json`.

use std::process::Command;

fn main() {
    // Read at run time: `env!` would bake in the directory the build script was compiled in,
    // and a build script shared by two checkouts of the workspace (one target directory) then
    // reads the other checkout's lock file, or none once that checkout is gone.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let lock = std::path::Path::new(&manifest).join("../../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    let burn = text
        .split("[[package]]")
        .find(|p| p.contains("\nname = \"burn\"\n"))
        .and_then(|p| p.lines().find(|l| l.starts_with("version = ")))
        .map_or("unknown".to_string(), |l| {
            l.trim_start_matches("version = ")
                .trim_matches('"')
                .to_string()
        });
    println!("cargo:rustc-env=SPARSELAB_BURN_VERSION={burn}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown rustc".into());
    println!("cargo:rustc-env=SPARSELAB_RUSTC_VERSION={version}");
    // Cargo gives build scripts the crate's `opt-level` (0-3, s, z) as OPT_LEVEL.
    let opt = std::env::var("OPT_LEVEL").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=SPARSELAB_OPT_LEVEL={opt}");
}
