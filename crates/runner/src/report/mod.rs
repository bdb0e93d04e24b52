//! `cargo xtask report`: every ablation's stored runs → `results/REPORT.md`, a Pareto figure per
//! leaderboard, and the README's summary between its markers. Nothing in them is typed: every
//! number and verdict is computed here from the runs.
//!
//! The report holds the claims of SPEC §5 across ablations with their verdicts
//! ([`crate::claims`]) and the evidence behind each, one leaderboard per model and budget
//! ([`leaderboard`]), and where each ablation's runs come from (commits, a dirty tree).

pub mod inference;
pub mod leaderboard;
pub mod readme;

use crate::aggregate::RunResult;
use crate::claims::{Claim, Evaluated, Verdict, evaluate, p_text};
use crate::env::Env;
use crate::experiment::Ablation;
use crate::figure::{self, FigureSpec};
use crate::spec;
use crate::store::{Store, write_atomic};
use anyhow::Context;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// Claims no ablation tests yet, each with why: `experiments/claims/untested.toml`.
pub const UNTESTED: &str = "claims/untested.toml";

/// The folder of the report's figures under the results root.
pub const FIGURES: &str = "report";

/// One ablation with its stored runs.
pub struct Stored {
    /// The ablation as its file plans it.
    pub ablation: Ablation,
    /// Its finished (or diverged) runs, in plan order.
    pub results: Vec<RunResult>,
    /// Distinct commits the runs were trained at, and whether any tree was dirty.
    pub commits: BTreeSet<String>,
    /// Whether any run was trained from a tree with uncommitted changes.
    pub dirty: bool,
}

/// Everything the report shows, computed from the stored runs.
pub struct Report {
    /// The ablations that have runs, in name order.
    pub stored: Vec<Stored>,
    /// Planned ablations without any stored run.
    pub empty: Vec<String>,
    /// Every claim: those ablations declare, then those no ablation tests.
    pub claims: Vec<Evaluated>,
    /// The leaderboards.
    pub boards: Vec<leaderboard::Board>,
    /// LeNet-300-100's measured sparse-inference speedups from the committed bench.
    pub inference: Option<inference::Summary>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UntestedFile {
    #[serde(default)]
    claims: Vec<Claim>,
}

/// Loads every experiment file of `experiments` and its runs under `results` (full mode), and
/// evaluates claims and leaderboards.
pub fn build(experiments: &Path, results: &Path) -> anyhow::Result<Report> {
    let mut stored = Vec::new();
    let mut empty = Vec::new();
    // The claims of an ablation not trained yet (a new one, or one whose budget changed and
    // whose old runs were removed) are listed as untested, saying what trains them.
    let mut untrained = Vec::new();
    for (name, loaded) in spec::list(experiments)? {
        let mut ablation = loaded
            .and_then(|_| spec::load(&experiments.join(format!("{name}.toml")), false, None))?;
        let store = Store::new(results, &ablation);
        // Arm points placed by a search join the plan at the choice their stored probes give.
        crate::ablate::choose_all(&mut ablation, &mut |run| store.finished(run))?;
        let mut runs = Vec::new();
        let (mut commits, mut dirty) = (BTreeSet::new(), false);
        for run in &ablation.runs {
            if let Some(r) = store.finished(run)? {
                if let Ok(text) = std::fs::read_to_string(store.run_dir(&run.id).join("env.json"))
                    && let Ok(env) = serde_json::from_str::<Env>(&text)
                {
                    commits.insert(
                        env.git_commit
                            .map_or("unknown".into(), |c| c[..c.len().min(7)].to_string()),
                    );
                    dirty |= env.git_dirty == Some(true);
                }
                runs.push(r);
            }
        }
        if runs.is_empty() {
            untrained.extend(ablation.claims.into_iter().map(|claim| Evaluated {
                claim,
                ablation: Some(name.clone()),
                comparisons: Vec::new(),
                verdict: Verdict::Untested(format!(
                    "no stored run yet: `cargo xtask ablate {name}` trains them"
                )),
            }));
            empty.push(name);
        } else {
            stored.push(Stored {
                ablation,
                results: runs,
                commits,
                dirty,
            });
        }
    }
    let mut claims: Vec<Evaluated> = stored
        .iter()
        .flat_map(|s| (s.ablation.claims.iter()).map(|c| evaluate(c, &s.ablation.name, &s.results)))
        .collect();
    claims.extend(untrained);
    let untested_file = experiments.join(UNTESTED);
    // An experiments directory of one's own may declare no untested claim at all.
    let text = match std::fs::read_to_string(&untested_file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        read => read.with_context(|| format!("reading {}", untested_file.display()))?,
    };
    let untested: UntestedFile =
        toml::from_str(&text).with_context(|| format!("parsing {}", untested_file.display()))?;
    for claim in untested.claims {
        let why = claim.untested.clone().with_context(|| {
            format!(
                "{}: claim {} says no `untested` reason",
                untested_file.display(),
                claim.id
            )
        })?;
        claims.push(Evaluated {
            claim,
            ablation: None,
            comparisons: Vec::new(),
            verdict: Verdict::Untested(why),
        });
    }
    claims.sort_by_key(|e| claim_order(&e.claim.id));
    let boards = leaderboard::boards(&stored);
    Ok(Report {
        stored,
        empty,
        claims,
        boards,
        inference: inference::summary(results)?,
    })
}

/// Claims in SPEC §5's order: by paper letter as SPEC lists them, then number.
fn claim_order(id: &str) -> (usize, u32, String) {
    let papers = ["S", "G", "L", "K", "R", "B"];
    let letter = id.chars().next().map(String::from).unwrap_or_default();
    let position = papers
        .iter()
        .position(|p| *p == letter)
        .unwrap_or(papers.len());
    let number = id[letter.len()..].parse().unwrap_or(u32::MAX);
    (position, number, id.to_string())
}

/// A link to an ablation's table from a page `results` is at `base` of (`""` from REPORT.md,
/// `"results/"` from the README).
fn table_link(ablation: &str, base: &str) -> String {
    format!("[{ablation}]({base}{ablation}/table.md)")
}

/// A claim's heading in REPORT.md: its id, and the ablation testing it (one claim may be tested
/// on several test beds, and each needs its own heading to link to).
fn heading(e: &Evaluated) -> String {
    match &e.ablation {
        Some(a) => format!("{} ({a})", e.claim.id),
        None => e.claim.id.clone(),
    }
}

/// The anchor a Markdown renderer gives [`heading`]: lower case, punctuation other than `-`
/// dropped, spaces as `-`.
fn anchor(e: &Evaluated) -> String {
    heading(e)
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The claims table: every claim with its paper, ablation, verdict and evidence, the id linking
/// to its evidence in REPORT.md (`base` as for [`table_link`]).
pub fn claims_table(report: &Report, base: &str) -> String {
    let mut out = String::from(
        "| id | claim | paper | ablation | verdict | evidence |\n|---|---|---|---|---|---|\n",
    );
    for e in &report.claims {
        let _ = writeln!(
            out,
            "| [{id}]({base}REPORT.md#{anchor}) | {} | {} | {} | **{}** | {} |",
            e.claim.claim,
            e.claim.paper,
            match e.ablation.as_deref() {
                Some(a) if report.empty.iter().any(|name| name == a) => a.to_string(),
                Some(a) => table_link(a, base),
                None => "–".into(),
            },
            e.verdict.label(),
            evidence(e),
            id = e.claim.id,
            anchor = anchor(e),
        );
    }
    out
}

/// The summary of a claim's matched comparisons: how many, the range of differences, the
/// largest Holm-adjusted p-value.
pub fn evidence(e: &Evaluated) -> String {
    let matched: Vec<_> = e.comparisons.iter().filter(|c| c.matched).collect();
    let unmatched = e.comparisons.len() - matched.len();
    if matched.is_empty() {
        return match unmatched {
            0 => "–".into(),
            n => format!("{n} comparisons, none at matched sparsity"),
        };
    }
    let (lo, hi) = matched
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), c| {
            (lo.min(c.delta), hi.max(c.delta))
        });
    let worst = matched.iter().filter_map(|c| c.p_holm).fold(0.0, f64::max);
    let range = if (hi - lo).abs() < 5e-3 {
        format!("{lo:+.2}")
    } else {
        format!("{lo:+.2} … {hi:+.2}")
    };
    let what = if e.claim.agreement.is_some() {
        "points"
    } else {
        "matched"
    };
    let mut s = format!(
        "{} {what}: Δ {range} {}; Holm p ≤ {}",
        matched.len(),
        e.claim.metric,
        p_text(Some(worst))
    );
    if unmatched > 0 {
        let _ = write!(s, "; {unmatched} unmatched");
    }
    s
}

/// `results/REPORT.md`.
pub fn markdown(report: &Report) -> String {
    let mut out = String::from(
        "# sparselab report\n\n\
         Generated by `cargo xtask report` from the runs stored under `results/`; nothing here is \
         typed by hand. Verdicts follow SPEC §5's rules (`crates/runner/src/claims.rs`): \
         differences are mean over seeds (table units: points for accuracy and sparsity) with \
         95% Welch intervals, p-values are Welch's, Holm-adjusted within each claim, and only \
         comparisons at matched sparsity (within the claim's tolerance, 0.5 points unless it \
         says) enter a verdict. The budgets are a few percent of the papers': a verdict is \
         about this scale.\n\n## Claims\n\n",
    );
    out.push_str(&claims_table(report, ""));
    out.push_str("\n## The evidence, claim by claim\n");
    for e in &report.claims {
        let _ = writeln!(
            out,
            "\n### {}\n\n{} ({})",
            heading(e),
            e.claim.claim,
            e.claim.paper
        );
        if e.comparisons.is_empty() {
            let _ = writeln!(out, "\n{}", e.verdict.label());
            continue;
        }
        if let Some(a) = &e.claim.agreement {
            let _ = writeln!(
                out,
                "\nMetric `{}`: the {} prediction claimed within ±{} of the measured value at \
                 every point; Δ is prediction − measured (mean over seeds, paired), p is the \
                 equivalence test's (two one-sided t-tests). Verdict: **{}**.\n\n\
                 | point | setting | matched on | Δ ± 95% CI | p | Holm p |\n|---|---|---|---|---|---|",
                e.claim.metric,
                a.predictor.name(),
                a.bound,
                e.verdict.label()
            );
        } else {
            let _ = writeln!(
                out,
                "\nMetric `{}`, claimed {}{}; matched on `{}`{}. Verdict: **{}**.\n\n\
             | comparison | setting | matched on | Δ ± 95% CI | p | Holm p |\n|---|---|---|---|---|---|",
                e.claim.metric,
                e.claim.direction.word(),
                e.claim
                    .effect
                    .map_or(String::new(), |x| format!(" by {x:+.2} in the paper")),
                e.claim.match_on,
                if e.claim.match_on == "sweep" {
                    String::new()
                } else {
                    format!(" within {} points", e.claim.tolerance * 100.0)
                },
                e.verdict.label()
            );
        }
        for c in &e.comparisons {
            let matched = match (c.matched_on, c.matched) {
                (Some((a, b)), m) => {
                    format!("{a:.2} vs {b:.2}{}", if m { "" } else { " (unmatched)" })
                }
                (None, true) if e.claim.agreement.is_some() => "paired by seed".into(),
                (None, true) => "sweep point".into(),
                (None, false) => "unmatched".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {matched} | {:+.2} ± {} | {} | {} |",
                c.label,
                if c.setting.is_empty() {
                    "–"
                } else {
                    &c.setting
                },
                c.delta,
                c.ci.map_or("–".into(), |x| format!("{x:.2}")),
                p_text(c.p),
                p_text(c.p_holm),
            );
        }
    }
    if let Some(summary) = &report.inference {
        let _ = write!(
            out,
            "\n## Sparse inference\n\n{}",
            inference::markdown(summary, "bench/bench.md")
        );
    }
    out.push_str("\n## Leaderboards\n\n");
    out.push_str(&leaderboard::markdown(&report.boards));
    out.push_str(
        "\n## Where the runs come from\n\n\
         | ablation | runs | commits | dirty tree |\n|---|---|---|---|\n",
    );
    for s in &report.stored {
        let commits: Vec<&str> = s.commits.iter().map(String::as_str).collect();
        let mut flags = Vec::new();
        if commits.len() > 1 {
            flags.push("several commits");
        }
        if s.dirty {
            flags.push("trained from a dirty tree");
        }
        let _ = writeln!(
            out,
            "| {} | {} of {} | {} | {} |",
            table_link(&s.ablation.name, ""),
            s.results.len(),
            s.ablation.runs.len(),
            commits.join(", "),
            if flags.is_empty() {
                "no".to_string()
            } else {
                format!("**{}**", flags.join("; "))
            }
        );
    }
    if !report.empty.is_empty() {
        let _ = writeln!(
            out,
            "\nPlanned, with no stored run yet: {}.",
            report.empty.join(", ")
        );
    }
    out
}

/// Writes `REPORT.md` and the leaderboards' figures under `results`, and the summary into
/// `readme` between its markers; returns the files written.
pub fn write(
    report: &Report,
    results: &Path,
    readme: Option<&Path>,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let dir = results.join(FIGURES);
    std::fs::create_dir_all(&dir)?;
    for board in &report.boards {
        let spec = FigureSpec::Final {
            file: board.file.clone(),
            title: Some(format!("{}: accuracy vs compression", board.title)),
            x: "compression".into(),
            y: "test_accuracy".into(),
            log_x: true,
            log_y: false,
            reference: board.reference_arms(),
            arms: Vec::new(),
        };
        files.extend(figure::render(&spec, &board.results, &dir)?);
    }
    // The figure folder holds the report's figures only: those of boards that no longer exist
    // (their runs were removed or retrained at another budget) go.
    for entry in std::fs::read_dir(&dir)?.flatten() {
        let path = entry.path();
        if path.is_file() && !files.contains(&path) {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the stale figure {}", path.display()))?;
        }
    }
    let path = results.join("REPORT.md");
    write_atomic(&path, markdown(report).as_bytes())?;
    files.push(path);
    if let Some(readme) = readme {
        let text = std::fs::read_to_string(readme)
            .with_context(|| format!("reading {}", readme.display()))?;
        let updated = readme::splice(&text, &readme::summary(report))
            .with_context(|| format!("{}", readme.display()))?;
        write_atomic(readme, updated.as_bytes())?;
        files.push(readme.to_path_buf());
    }
    Ok(files)
}
