//! An ablation's wall time: each `ablate` process that trained some of its runs stores the span
//! it trained in (`sessions/<start ms>-<host>-<pid>.json` beside the runs), and the ablation's wall
//! time is the length of the union of those spans. Processes that share the store at the same
//! time (jobs of a SLURM array, two terminals) count once; the gaps between an interrupted
//! ablation and its resumption do not count at all.

use crate::store::write_json;
use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The span one process trained an ablation's runs in (seconds since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// When the process started planning (its search probes included).
    pub started_unix: f64,
    /// When it stopped training: finished, or interrupted with its runs checkpointed.
    pub ended_unix: f64,
    /// Runs and search probes it trained to the end.
    pub trained: usize,
}

/// Seconds since the Unix epoch, now.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Stores the span from `started_unix` to now, in which this process trained `trained` runs and
/// probes, in the ablation directory `dir`, under a name no other process picks.
pub fn record_until_now(dir: &Path, started_unix: f64, trained: usize) -> anyhow::Result<()> {
    record(
        dir,
        &Session {
            started_unix,
            ended_unix: now_unix(),
            trained,
        },
    )
}

/// Stores `session` in the ablation directory `dir`, under a name no other process picks.
pub fn record(dir: &Path, session: &Session) -> anyhow::Result<()> {
    let sessions = dir.join("sessions");
    std::fs::create_dir_all(&sessions)
        .with_context(|| format!("creating {}", sessions.display()))?;
    // Milliseconds: one process may run the same ablation twice within a second.
    let path = sessions.join(format!(
        "{:.0}-{}-{}.json",
        session.started_unix * 1000.0,
        crate::lease::host_name(),
        std::process::id()
    ));
    write_json(&path, session)
}

/// The sessions stored in the ablation directory `dir` (none for ablations trained before
/// sessions were recorded; unreadable files are skipped).
pub fn sessions(dir: &Path) -> Vec<Session> {
    let Ok(entries) = std::fs::read_dir(dir.join("sessions")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_str(&std::fs::read_to_string(e.path()).ok()?).ok())
        .collect()
}

/// The length of the union of the sessions' spans: `|⋃ [started, ended]|` in seconds.
pub fn busy_seconds(sessions: &[Session]) -> f64 {
    let mut spans: Vec<(f64, f64)> = sessions
        .iter()
        .map(|s| (s.started_unix, s.ended_unix.max(s.started_unix)))
        .collect();
    spans.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut total = 0.0;
    let mut open: Option<(f64, f64)> = None;
    for (start, end) in spans {
        open = match open {
            Some((s, e)) if start <= e => Some((s, e.max(end))),
            Some((s, e)) => {
                total += e - s;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    total + open.map_or(0.0, |(s, e)| e - s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span(started_unix: f64, ended_unix: f64) -> Session {
        Session {
            started_unix,
            ended_unix,
            trained: 1,
        }
    }

    /// Disjoint spans add, overlapping ones count once, a nested one adds nothing.
    #[test]
    fn busy_time_is_the_union_of_the_spans() {
        assert_eq!(busy_seconds(&[]), 0.0);
        assert_eq!(busy_seconds(&[span(0.0, 10.0), span(20.0, 25.0)]), 15.0);
        assert_eq!(busy_seconds(&[span(5.0, 15.0), span(0.0, 10.0)]), 15.0);
        assert_eq!(busy_seconds(&[span(0.0, 10.0), span(2.0, 3.0)]), 10.0);
        assert_eq!(busy_seconds(&[span(0.0, 10.0), span(10.0, 12.0)]), 12.0);
        // A clock that stepped back during a session gives an empty span, not a negative one.
        assert_eq!(busy_seconds(&[span(10.0, 5.0)]), 0.0);
    }

    proptest! {
        /// The union is at least the longest span and at most their sum, and does not depend
        /// on the order the sessions are read in.
        #[test]
        fn union_lies_between_the_longest_span_and_the_sum(
            raw in proptest::collection::vec((0u32..1000, 0u32..200), 1..12)
        ) {
            let spans: Vec<Session> =
                raw.iter().map(|&(s, d)| span(f64::from(s), f64::from(s + d))).collect();
            let busy = busy_seconds(&spans);
            let longest = raw.iter().map(|&(_, d)| f64::from(d)).fold(0.0, f64::max);
            let sum: f64 = raw.iter().map(|&(_, d)| f64::from(d)).sum();
            prop_assert!(busy >= longest && busy <= sum);
            let mut reversed = spans.clone();
            reversed.reverse();
            prop_assert_eq!(busy_seconds(&reversed), busy);
        }
    }

    /// What one process records, the next reads back, beside the runs' directories.
    #[test]
    fn sessions_round_trip_through_the_store() {
        let dir = std::env::temp_dir().join(format!("wall-time-{}.tmp", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        assert!(sessions(&dir).is_empty());
        record(&dir, &span(100.0, 160.0)).expect("recorded");
        record(&dir, &span(130.0, 200.0)).expect("recorded");
        let mut read = sessions(&dir);
        read.sort_by(|a, b| a.started_unix.total_cmp(&b.started_unix));
        assert_eq!(read, vec![span(100.0, 160.0), span(130.0, 200.0)]);
        assert_eq!(busy_seconds(&read), 100.0);
        std::fs::remove_dir_all(&dir).expect("removed");
    }
}
