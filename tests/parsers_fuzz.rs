//! Fuzzing the parsers of everything sparselab reads from disk: experiment files (every committed
//! one, mutated), IDX and CIFAR binaries, the stored run records, checkpoints and exported
//! models. For every generated input:
//! no panic, and every failure is an error that names the file.
//!
//! CI runs `SPARSELAB_FUZZ_CASES` cases per parser (default 2 000); the long run is the same
//! harness with a larger count (docs/reproducibility.md gives the last one's).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sparselab::data::{cifar, idx};
use sparselab::runner::record::{EpochRecord, FinalRecord};
use sparselab::runner::spec;
use std::path::{Path, PathBuf};

fn cases() -> u32 {
    std::env::var("SPARSELAB_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn committed_experiments() -> Vec<(PathBuf, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut files: Vec<(PathBuf, String)> = std::fs::read_dir(&dir)
        .expect("experiments/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("experiment file");
            (p, text)
        })
        .collect();
    files.sort();
    assert!(files.len() > 10, "the committed experiment files");
    files
}

/// One edit of a text, as a careless hand or a damaged disk makes it.
#[derive(Clone, Debug)]
enum Edit {
    /// Replace the `n`-th number with another.
    Number(usize, String),
    /// Replace the `n`-th quoted string with another.
    Quoted(usize, String),
    /// Remove the `n`-th line.
    DropLine(usize),
    /// Repeat the `n`-th line.
    RepeatLine(usize),
    /// Cut the text at a fraction of its length.
    Truncate(f64),
    /// Insert bytes at a fraction of its length.
    Insert(f64, String),
}

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "-1",
            "1",
            "1e30",
            "-1e30",
            "nan",
            "inf",
            "1e-45",
            "0.5",
            "2",
            "1000000",
            "-0.0",
            "18446744073709551616",
            "3.7",
            "[]",
            "{}",
            "\"x\"",
            "true",
        ])
        .prop_map(String::from),
        (-1e6f64..1e6).prop_map(|x| format!("{x}")),
        (0u64..2000).prop_map(|x| x.to_string()),
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0usize..400, number()).prop_map(|(n, v)| Edit::Number(n, v)),
        (0usize..200, "[a-z_.=\\-]{0,12}").prop_map(|(n, v)| Edit::Quoted(n, v)),
        (0usize..200).prop_map(Edit::DropLine),
        (0usize..200).prop_map(Edit::RepeatLine),
        (0.0f64..1.0).prop_map(Edit::Truncate),
        (0.0f64..1.0, "[\\[\\]{}=\",.#a-z0-9 \\n]{1,8}").prop_map(|(at, s)| Edit::Insert(at, s)),
    ]
}

/// Char-boundary position at `fraction` of `text`.
fn at(text: &str, fraction: f64) -> usize {
    let mut i = ((text.len() as f64) * fraction) as usize;
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &str, edit: &Edit) -> String {
    let lines: Vec<&str> = text.lines().collect();
    match edit {
        Edit::Number(n, v) | Edit::Quoted(n, v) => {
            let quoted = matches!(edit, Edit::Quoted(..));
            let spans: Vec<(usize, usize)> = if quoted {
                let quotes: Vec<usize> = text.match_indices('"').map(|(i, _)| i).collect();
                quotes.chunks_exact(2).map(|q| (q[0] + 1, q[1])).collect()
            } else {
                let bytes = text.as_bytes();
                let mut spans = Vec::new();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i].is_ascii_digit() {
                        let start = i;
                        while i < bytes.len()
                            && (bytes[i].is_ascii_digit() || b".e-".contains(&bytes[i]))
                        {
                            i += 1;
                        }
                        spans.push((start, i));
                    } else {
                        i += 1;
                    }
                }
                spans
            };
            match spans.get(n % spans.len().max(1)) {
                Some(&(a, b)) => format!("{}{v}{}", &text[..a], &text[b..]),
                None => text.to_string(),
            }
        }
        Edit::DropLine(n) if !lines.is_empty() => {
            let k = n % lines.len();
            (lines.iter().enumerate())
                .filter(|(i, _)| *i != k)
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Edit::RepeatLine(n) if !lines.is_empty() => {
            let k = n % lines.len();
            let mut out: Vec<&str> = lines.clone();
            out.insert(k, lines[k]);
            out.join("\n")
        }
        Edit::Truncate(f) => text[..at(text, *f)].to_string(),
        Edit::Insert(f, s) => {
            let i = at(text, *f);
            format!("{}{s}{}", &text[..i], &text[i..])
        }
        _ => text.to_string(),
    }
}

#[test]
fn experiment_files_mutated_load_or_fail_naming_the_file() {
    let files = committed_experiments();
    let mut runner = runner();
    let strategy = (
        0..files.len(),
        prop::collection::vec(edit(), 1..4),
        any::<bool>(),
    );
    runner
        .run(&strategy, |(f, edits, quick)| {
            let (path, text) = &files[f];
            let mutated = edits.iter().fold(text.clone(), |t, e| apply(&t, e));
            if let Err(e) = spec::parse(&mutated, path, quick, None) {
                let shown = e.to_string();
                let name = path.file_name().expect("name").to_string_lossy();
                prop_assert!(shown.contains(name.as_ref()), "{shown}");
            }
            Ok(())
        })
        .expect("no experiment file makes the loader panic");
}

fn idx_file() -> impl Strategy<Value = Vec<u8>> {
    // Mostly well-formed headers with wrong counts, dimensions and lengths, some pure noise.
    let header = (
        prop::sample::select(vec![0x08u8, 0x09, 0x0B, 0x0C, 0x0D, 0x0E, 0x00, 0xFF]),
        0u8..5,
        prop::collection::vec(prop_oneof![0u32..40, any::<u32>()], 0..5),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(kind, rank, dims, body)| {
            let mut bytes = vec![0, 0, kind, rank];
            for d in dims {
                bytes.extend_from_slice(&d.to_be_bytes());
            }
            bytes.extend(body);
            bytes
        });
    prop_oneof![4 => header, 1 => prop::collection::vec(any::<u8>(), 0..64)]
}

#[test]
fn idx_files_parse_or_fail_naming_the_file() {
    let path = Path::new("/data/train-images-idx3-ubyte");
    runner()
        .run(&idx_file(), |bytes| {
            if let Err(e) = idx::parse(&bytes, path) {
                prop_assert!(e.to_string().contains("train-images-idx3-ubyte"), "{e}");
            }
            Ok(())
        })
        .expect("no IDX input makes the reader panic");
}

#[test]
fn cifar_files_parse_or_fail_naming_the_file() {
    let path = Path::new("/data/data_batch_1.bin");
    let strategy = (
        prop::collection::vec(any::<u8>(), 0..8000),
        prop::sample::select(vec![cifar::Variant::Cifar10, cifar::Variant::Cifar100]),
    );
    runner()
        .run(&strategy, |(bytes, variant)| {
            if let Err(e) = cifar::parse(&bytes, variant, path) {
                prop_assert!(e.to_string().contains("data_batch_1.bin"), "{e}");
            }
            Ok(())
        })
        .expect("no CIFAR input makes the reader panic");
}

#[test]
fn stored_records_damaged_fail_without_panicking() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("results/pruning-baselines");
    let run = std::fs::read_dir(&dir)
        .expect("committed runs")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.join("final.json").is_file())
        .expect("a committed run");
    let texts = [
        std::fs::read_to_string(run.join("final.json")).expect("final.json"),
        std::fs::read_to_string(run.join("epochs.json")).expect("epochs.json"),
    ];
    serde_json::from_str::<FinalRecord>(&texts[0]).expect("an intact record reads");
    runner()
        .run(
            &(0..2usize, prop::collection::vec(edit(), 1..4)),
            |(k, edits)| {
                let mutated = edits.iter().fold(texts[k].clone(), |t, e| apply(&t, e));
                // A damaged record is an error (the store adds its path and what to do), never a
                // panic.
                let _ = match k {
                    0 => serde_json::from_str::<FinalRecord>(&mutated).map(|_| ()),
                    _ => serde_json::from_str::<Vec<EpochRecord>>(&mutated).map(|_| ()),
                };
                Ok(())
            },
        )
        .expect("no damaged record makes the reader panic");
}

/// One damage to a binary file: a byte changed, the file cut, or bytes inserted.
fn damage(bytes: &[u8], (kind, at, value): (u8, f64, u8)) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let i = ((out.len() as f64) * at) as usize;
    match kind % 3 {
        0 if !out.is_empty() => {
            let last = out.len() - 1;
            out[i.min(last)] = value;
        }
        1 => out.truncate(i),
        _ => out
            .splice(i..i, std::iter::repeat_n(value, 1 + usize::from(value % 9)))
            .for_each(drop),
    }
    out
}

#[test]
fn checkpoints_and_exports_damaged_fail_without_panicking() {
    use sparselab::core::{ParamInfo, ParamTable, WeightKind};
    use sparselab::runner::checkpoint::{Checkpoint, Owner, Position, TraineeState};
    use sparselab::runner::export::file::{Container, decode, encode, tensors};
    let owner = Owner {
        run_id: "run".into(),
        identity: "{}".into(),
    };
    let checkpoint = Checkpoint {
        position: Position {
            epoch: 1,
            epochs: vec![EpochRecord::default()],
            pattern: vec![true, false],
            ..Position::default()
        },
        trainee: TraineeState {
            values: vec![vec![1.0, 0.0, -2.0, 0.5], vec![0.25]],
            masks: vec![(0, vec![true, false, true, true])],
            resets: vec![(0, vec![false, true, false, false])],
            optimizer: vec![7; 40],
            topology: serde_json::json!({ "rng_word_pos": "12" }),
            ..TraineeState::default()
        },
    }
    .to_bytes(&owner)
    .expect("a checkpoint");
    let table = ParamTable::new(vec![ParamInfo::weight(WeightKind::Linear, vec![2, 2])]);
    let values = vec![vec![0.0, 1.5, -2.0, 0.0]];
    let meta = || {
        std::collections::HashMap::from([(
            "format".to_string(),
            sparselab::runner::export::file::FORMAT.to_string(),
        )])
    };
    let exports = [
        encode(Container::Safetensors, &tensors(&table, &values), meta()).expect("safetensors"),
        encode(Container::Burnpack, &tensors(&table, &values), meta()).expect("burnpack"),
    ];
    Checkpoint::from_bytes(checkpoint.clone(), &owner).expect("an intact checkpoint reads");
    let strategy = (
        0..3usize,
        prop::collection::vec((any::<u8>(), 0.0f64..1.0, any::<u8>()), 1..4),
    );
    runner()
        .run(&strategy, |(which, damages)| {
            let file = [&checkpoint, &exports[0], &exports[1]][which];
            let damaged = damages.iter().fold(file.clone(), |b, d| damage(&b, *d));
            // An error (the store adds the path and what to do), never a panic.
            match which {
                0 => drop(Checkpoint::from_bytes(damaged, &owner)),
                _ => drop(decode(&damaged).and_then(|e| e.values(&table))),
            }
            Ok(())
        })
        .expect("no damaged checkpoint or export makes its reader panic");
}
