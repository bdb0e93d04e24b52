//! Exported models: a finished run of a small synthetic ablation exported (its run trained
//! again, or its kept model), read back into sparselab with exactly the stored test accuracy, in
//! both containers with the same tensors; a CSR form for every sparse weight that rebuilds the
//! dense one; one clear error each for an unknown run id, an unfinished run and a file that is
//! not an export; and, where PyTorch is installed, the documented PyTorch snippet reproduces the
//! accuracy from the file (`tests/export_torch.py`).

mod common;

use burn::tensor::Device;
use common::Scratch;
use sparselab::runner::export::file::{Container, decode};
use sparselab::runner::export::{KEPT_MODEL, export, load};
use sparselab::runner::{Options, ablate};
use std::path::Path;

fn spec() -> String {
    common::synthetic_spec("description = \"export\"\nseeds = 1\n", common::SMOKE_ARMS)
}

/// The id of the finished GMP run at sparsity 0.9 in `store`.
fn sparse_run(store: &Path) -> String {
    common::run_dirs(store)
        .into_iter()
        .find(|d| {
            std::fs::read_to_string(d.join("config.json"))
                .is_ok_and(|c| c.contains("\"gmp\"") && c.contains("0.9"))
        })
        .expect("a GMP run at 0.9")
        .file_name()
        .expect("a name")
        .to_string_lossy()
        .into_owned()
}

fn stored_test_accuracy(run_dir: &Path) -> f64 {
    let text = std::fs::read_to_string(run_dir.join("final.json")).expect("final.json");
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["last"]["test_accuracy"].as_f64().expect("an accuracy")
}

#[test]
fn an_exported_run_reads_back_with_its_stored_test_accuracy() {
    let s = Scratch::with("export", "exp", &spec());
    let opts = s.options();
    ablate("exp", &opts).expect("ablate");
    let store = s.0.join("results/exp");
    let id = sparse_run(&store);
    let stored = stored_test_accuracy(&store.join(&id));

    // Without a kept model: the run is trained again.
    let (path, accuracy) = export("exp", &id, Container::Safetensors, None, &opts).expect("export");
    assert_eq!(path, store.join(&id).join("model.safetensors"));
    assert_eq!(accuracy.to_bits(), stored.to_bits());
    let bytes = std::fs::read(&path).expect("the file");
    let file = decode(&bytes).expect("an export");
    assert_eq!(file.metadata["run_id"], id);

    // Read back independently of the export's own check.
    let planned = opts.load("exp").expect("plan");
    let run = planned.runs.iter().find(|r| r.id == id).expect("the run");
    let data = sparselab::data::load(&planned.data, None).expect("data");
    let (_, again) = load(&bytes, run, &data, &Device::flex()).expect("load");
    assert_eq!(again.to_bits(), stored.to_bits());

    // Every sparse weight's CSR form rebuilds its dense (PyTorch-layout) tensor.
    let mut checked = 0;
    for (name, dense) in &file.tensors {
        let Some(values) = file.tensors.get(&format!("{name}.values")) else {
            continue;
        };
        let nonzero: Vec<f32> = dense.iter().copied().filter(|v| *v != 0.0).collect();
        assert_eq!(&nonzero, values, "{name}");
        checked += 1;
    }
    assert!(checked >= 2, "the GMP run's weight tensors have CSR forms");

    // With kept models, burnpack and safetensors hold the same tensors.
    let kept = Options {
        out: s.0.join("kept"),
        keep_models: true,
        ..s.options()
    };
    ablate("exp", &kept).expect("ablate, keeping models");
    assert!(s.0.join("kept/exp").join(&id).join(KEPT_MODEL).is_file());
    let to = s.0.join("run.bpk");
    let (_, from_kept) =
        export("exp", &id, Container::Burnpack, Some(to.clone()), &kept).expect("export");
    assert_eq!(from_kept.to_bits(), stored.to_bits());
    let burnpack = decode(&std::fs::read(&to).expect("bpk")).expect("an export");
    assert_eq!(burnpack.tensors, file.tensors);

    torch_round_trip(&bytes, &data, stored);
}

#[test]
fn bad_exports_give_one_clear_error_each() {
    let s = Scratch::with("export-bad", "exp", &spec());
    let opts = s.options();
    ablate("exp", &opts).expect("ablate");
    let store = s.0.join("results/exp");
    let e = export("exp", "no-such-run", Container::Safetensors, None, &opts).unwrap_err();
    assert!(
        format!("{e:#}").contains("has no run `no-such-run`; its runs:"),
        "{e:#}"
    );
    let id = sparse_run(&store);
    std::fs::remove_file(store.join(&id).join("final.json")).expect("unfinish the run");
    let e = export("exp", &id, Container::Safetensors, None, &opts).unwrap_err();
    assert!(format!("{e:#}").contains("has not finished"), "{e:#}");
    let e = decode(b"\x10\0\0\0\0\0\0\0{\"a\": 1}        ").unwrap_err();
    assert!(format!("{e:#}").contains("not a sparselab export"), "{e:#}");
}

/// Runs `tests/export_torch.py` on the export and the test split when PyTorch and safetensors
/// are importable (by `SPARSELAB_PYTHON`, default `python3`); says so and returns when not.
fn torch_round_trip(export: &[u8], data: &sparselab::data::Dataset, stored: f64) {
    let python = std::env::var("SPARSELAB_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_torch = std::process::Command::new(&python)
        .args(["-c", "import torch, safetensors"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_torch {
        eprintln!(
            "note: the PyTorch round trip is skipped: {python} cannot import torch and safetensors"
        );
        return;
    }
    let dir = std::env::temp_dir().join(format!("sparselab-export-torch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch");
    std::fs::write(dir.join("model.safetensors"), export).expect("write");
    let images: Vec<u8> = data
        .test
        .images
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let labels: Vec<u8> = data.test.labels.iter().map(|&l| l as u8).collect();
    std::fs::write(dir.join("images.f32"), images).expect("write");
    std::fs::write(dir.join("labels.u8"), labels).expect("write");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/export_torch.py");
    let out = std::process::Command::new(&python)
        .arg(script)
        .arg(&dir)
        .output()
        .expect("python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "PyTorch ({python}): {}; stored {stored}",
        stdout.trim().replace('\n', ", ")
    );
    for line in stdout.lines() {
        let Some((what, acc)) = line.split_once(" accuracy ") else {
            continue;
        };
        let acc: f64 = acc.trim().parse().expect("an accuracy");
        assert_eq!(
            acc, stored,
            "{what}: PyTorch's accuracy {acc}, stored {stored}"
        );
    }
    assert!(stdout.contains("sparse accuracy"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's promise on the real data: a run of `pruning-baselines` (quick mode, GMP at
/// sparsity 0.9 on Fashion-MNIST) exported and loaded in PyTorch with the documented snippet
/// gives the stored test accuracy, dense and sparse. Needs the dataset and torch: run it with
/// `SPARSELAB_PYTHON=<python with torch> cargo test --test export -- --ignored`.
#[test]
#[ignore = "needs the Fashion-MNIST package and a Python with torch and safetensors"]
fn pytorch_reads_a_pruning_baselines_export() {
    let s = Scratch::new("export-fashion");
    let opts = Options {
        experiments: Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments"),
        out: s.0.join("results"),
        quick: true,
        ..s.options()
    };
    ablate("pruning-baselines", &opts).expect("ablate");
    let store = s.0.join("results/pruning-baselines-quick");
    let id = sparse_run(&store);
    let stored = stored_test_accuracy(&store.join(&id));
    let (path, _) = export(
        "pruning-baselines",
        &id,
        Container::Safetensors,
        None,
        &opts,
    )
    .expect("export");
    let planned = opts.load("pruning-baselines").expect("plan");
    let data = sparselab::data::load(&planned.data, None).expect("data");
    torch_round_trip(&std::fs::read(path).expect("the file"), &data, stored);
}
