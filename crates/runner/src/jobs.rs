//! Training an ablation's runs concurrently (`cargo xtask ablate --jobs N`).
//!
//! N job threads take runs from the plan in order; each trains inside a compute thread pool of
//! its own with `cores / N` threads (burn's CPU kernels parallelise with rayon on the current
//! pool), so N jobs fill the machine without oversubscribing it. On small models one run cannot
//! keep two cores busy (its kernels are too short to split well), so two one-thread jobs finish an
//! ablation sooner than one two-thread job (`docs/performance.md`).
//!
//! Results equal a one-job run's bit for bit: each run is trained by the same code from its
//! configuration and seed into its own directory, model initialisation (the one use of the
//! backend's global random generator) is serialised by [`crate::train`], and the flex kernels
//! split work across threads by output element, so the thread count does not change the
//! arithmetic (its only thread-dependent reduction, a sum over more than 4 M elements, does not
//! occur in these models). `tests/end_to_end.rs` compares a two-job ablation with a one-job one.

use anyhow::Context;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The machine's cores (1 when unknown): the compute threads every job count shares.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// Compute threads per job when `jobs` jobs share `cores` cores (at least one).
pub fn threads_per_job(cores: usize, jobs: usize) -> usize {
    (cores / jobs.max(1)).max(1)
}

/// The compute pool of job `slot`, with `threads` threads, each flushing subnormals
/// ([`crate::float_mode`]).
fn job_pool(threads: usize, slot: usize) -> anyhow::Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(move |i| format!("sparselab-job{slot}-{i}"))
        .start_handler(|_| crate::float_mode::flush_subnormals())
        .build()
        .context("building a job's thread pool")
}

/// Runs `work` as one job on a compute pool of every core. burn's CPU kernels split their work
/// with rayon: called from a pool thread, a split runs in place while the other threads steal
/// its halves; called from outside, every kernel is handed to the pool and waited for, a
/// cross-thread wake-up per kernel (a fifth of a LeNet-300-100 step on 2 cores,
/// `docs/performance.md`).
pub fn on_all_cores<R: Send>(work: impl FnOnce() -> R + Send) -> anyhow::Result<R> {
    Ok(job_pool(cores(), 0)?.install(work))
}

/// Runs `work(slot, i)` for every `i < n`, in order of `i`, on up to `jobs` threads (`slot`: which
/// job thread, for progress display), each inside a compute pool of [`threads_per_job`] threads;
/// with `jobs ≤ 1` everything runs in order on one pool of every core. Stops handing out
/// work after the first error, which is returned once the started items have ended. One job runs
/// [`on_all_cores`].
pub fn for_each_parallel<F>(n: usize, jobs: usize, work: F) -> anyhow::Result<()>
where
    F: Fn(usize, usize) -> anyhow::Result<()> + Sync,
{
    if jobs <= 1 || n <= 1 {
        return on_all_cores(|| (0..n).try_for_each(|i| work(0, i)))?;
    }
    let threads = threads_per_job(cores(), jobs);
    let next = AtomicUsize::new(0);
    let failure: Mutex<Option<anyhow::Error>> = Mutex::new(None);
    let failed = || failure.lock().map_or(true, |f| f.is_some());
    std::thread::scope(|scope| -> anyhow::Result<()> {
        for slot in 0..jobs.min(n) {
            let pool = job_pool(threads, slot)?;
            let (next, failure, work) = (&next, &failure, &work);
            scope.spawn(move || {
                pool.install(|| {
                    while !failed() {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= n {
                            break;
                        }
                        if let Err(e) = work(slot, i)
                            && let Ok(mut f) = failure.lock()
                        {
                            f.get_or_insert(e);
                        }
                    }
                })
            });
        }
        Ok(())
    })?;
    match failure.into_inner() {
        Ok(Some(e)) => Err(e),
        Ok(None) => Ok(()),
        Err(_) => anyhow::bail!("a job thread panicked"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_share_the_cores() {
        assert_eq!(threads_per_job(2, 1), 2);
        assert_eq!(threads_per_job(2, 2), 1);
        assert_eq!(threads_per_job(16, 3), 5);
        assert_eq!(threads_per_job(2, 8), 1);
        assert_eq!(threads_per_job(4, 0), 4);
    }

    #[test]
    fn every_item_runs_once_and_the_first_error_is_returned() {
        for jobs in [1, 2, 3] {
            let seen = Mutex::new(Vec::new());
            for_each_parallel(7, jobs, |_, i| {
                seen.lock().expect("lock").push(i);
                Ok(())
            })
            .expect("no error");
            let mut seen = seen.into_inner().expect("lock");
            seen.sort();
            assert_eq!(seen, (0..7).collect::<Vec<_>>(), "jobs = {jobs}");
            let err = for_each_parallel(7, jobs, |_, i| {
                anyhow::ensure!(i != 3, "item {i} failed");
                Ok(())
            })
            .expect_err("item 3 fails");
            assert_eq!(err.to_string(), "item 3 failed", "jobs = {jobs}");
        }
    }

    /// Every compute thread of every job flushes subnormals, one job included.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    #[test]
    fn every_compute_thread_flushes_subnormals() {
        for jobs in [1, 2] {
            for_each_parallel(2, jobs, |_, _| {
                let flushing = rayon::broadcast(|_| crate::float_mode::flushes_subnormals());
                anyhow::ensure!(
                    flushing.iter().all(|f| *f),
                    "with {jobs} jobs: {flushing:?}"
                );
                Ok(())
            })
            .expect("every pool thread flushes");
        }
    }

    /// Every job computes in a pool of its share of the cores, one job included (it must not
    /// run outside a pool: see [`on_all_cores`]).
    #[test]
    fn each_job_computes_on_a_pool_of_its_share() {
        for jobs in [1, 2] {
            let sizes = Mutex::new(Vec::new());
            for_each_parallel(4, jobs, |_, _| {
                let in_pool = rayon::current_thread_index().is_some();
                sizes
                    .lock()
                    .expect("lock")
                    .push(in_pool.then(rayon::current_num_threads));
                Ok(())
            })
            .expect("no error");
            let expected = threads_per_job(cores(), jobs);
            assert!(
                sizes
                    .into_inner()
                    .expect("lock")
                    .iter()
                    .all(|&s| s == Some(expected)),
                "with {jobs} jobs every run computes inside a pool of {expected} threads"
            );
        }
    }
}
