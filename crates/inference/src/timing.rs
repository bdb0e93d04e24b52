//! Timing a short computation: the median over rounds, each long enough for the clock.

use std::time::Instant;

/// Median seconds per call of `f` over `rounds` rounds of at least `round_seconds` each, after
/// a warm-up of at least three calls.
pub fn seconds_per_call(rounds: usize, round_seconds: f64, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    let mut calls = 0usize;
    while calls < 3 || t.elapsed().as_secs_f64() < round_seconds {
        f();
        calls += 1;
    }
    let per = t.elapsed().as_secs_f64() / calls as f64;
    let n = ((round_seconds / per).ceil() as usize).max(1);
    let mut times: Vec<f64> = (0..rounds.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed().as_secs_f64() / n as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
