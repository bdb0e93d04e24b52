//! Shards: a deterministic part of an ablation's planned runs, so that `n` processes (SLURM array
//! tasks) split an ablation between them without a list of run ids.

use std::fmt;
use std::str::FromStr;

/// Part `index` (from 0) of `count`: the runs whose id hashes to `index` modulo `count`. A run's
/// id follows from its configuration alone, so a run belongs to the same shard whatever else the
/// ablation plans, and the parts come out nearly equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 0.
    pub index: u64,
    /// How many parts.
    pub count: u64,
}

impl Shard {
    /// The shard of a SLURM array task: `SLURM_ARRAY_TASK_ID` less `SLURM_ARRAY_TASK_MIN` of
    /// `SLURM_ARRAY_TASK_COUNT` (`None` outside an array job).
    pub fn from_slurm() -> Result<Option<Self>, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// [`Shard::from_slurm`] with the environment read through `var`.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let (Some(id), Some(count)) = (var("SLURM_ARRAY_TASK_ID"), var("SLURM_ARRAY_TASK_COUNT"))
        else {
            return Ok(None);
        };
        let number = |name: &str, text: &str| {
            text.parse::<u64>()
                .map_err(|_| format!("{name}={text} is not a whole number"))
        };
        let id = number("SLURM_ARRAY_TASK_ID", &id)?;
        let count = number("SLURM_ARRAY_TASK_COUNT", &count)?;
        let min = match var("SLURM_ARRAY_TASK_MIN") {
            Some(m) => number("SLURM_ARRAY_TASK_MIN", &m)?,
            None => 0,
        };
        let index = id.checked_sub(min).ok_or_else(|| {
            format!("SLURM_ARRAY_TASK_ID={id} is below SLURM_ARRAY_TASK_MIN={min}")
        })?;
        if index >= count {
            // A sparse array (`--array=0,4,9`) has ids beyond its count: shards need 0..count.
            return Err(format!(
                "SLURM array task {id} is task {index} from the first, but the array has {count} \
                 tasks: submit the array as a range (`--array=0-{}`), as `cargo xtask slurm` does",
                count.saturating_sub(1)
            ));
        }
        Ok(Some(Self { index, count }))
    }

    /// Whether the run with id `run_id` is in this shard: its FNV-1a hash modulo the count.
    pub fn contains(&self, run_id: &str) -> bool {
        let hash = (run_id.bytes()).fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        hash % self.count == self.index
    }
}

impl FromStr for Shard {
    type Err = String;

    /// `i/n`, counting from 1: `1/4` is the first of four parts.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("shard `{s}`: expected i/n with 1 ≤ i ≤ n, e.g. 1/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (i, n): (u64, u64) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if i == 0 || i > n {
            return Err(bad());
        }
        Ok(Self {
            index: i - 1,
            count: n,
        })
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_run_exactly_once() {
        let ids: Vec<String> = (0..1000u64)
            .map(|i| format!("{:016x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)))
            .collect();
        let shards: Vec<Shard> = (1..=7)
            .map(|i| format!("{i}/7").parse().expect("shard"))
            .collect();
        for id in &ids {
            assert_eq!(shards.iter().filter(|s| s.contains(id)).count(), 1, "{id}");
        }
        for s in &shards {
            let n = ids.iter().filter(|id| s.contains(id)).count();
            assert!((100..186).contains(&n), "shard {s} holds {n} of 1000 runs");
        }
    }

    #[test]
    fn slurm_array_tasks_map_to_shards_from_the_first_task() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                (pairs.iter())
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_vars(vars(&[])), Ok(None));
        let first = Shard::from_vars(vars(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]));
        assert_eq!(first, Ok(Some(Shard { index: 0, count: 4 })));
        let sparse = Shard::from_vars(vars(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]));
        assert!(sparse.expect_err("sparse array").contains("--array=0-2"));
        let garbled = Shard::from_vars(vars(&[
            ("SLURM_ARRAY_TASK_ID", "x"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]));
        assert!(
            garbled
                .expect_err("garbled")
                .contains("SLURM_ARRAY_TASK_ID=x")
        );
    }

    #[test]
    fn shard_text_round_trips_and_bad_text_is_explained() {
        let s: Shard = "2/5".parse().expect("shard");
        assert_eq!((s.index, s.count), (1, 5));
        assert_eq!(s.to_string(), "2/5");
        for bad in ["0/3", "4/3", "1", "a/b", "1/0", ""] {
            let e = bad.parse::<Shard>().expect_err(bad);
            assert!(e.contains("i/n"), "{e}");
        }
    }
}
