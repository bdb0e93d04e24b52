//! Stopping a process's training gracefully: a request that every run in progress answers at its
//! next step boundary by writing a checkpoint and returning [`Interrupted`]; runs not yet started
//! are not started.
//!
//! [`on_signals`] makes SIGTERM, SIGUSR1 and SIGINT request it, instead of killing the process
//! mid-step: SLURM sends SIGTERM on `scancel` and at preemption, and the signal named by
//! `--signal` (USR1 in the scripts of `cargo xtask slurm`) before a time limit; Ctrl-C sends
//! SIGINT. A second signal of the same kind gets the default action (each handler is reset once
//! it ran), so a user who presses Ctrl-C twice is not kept waiting for a step to end. The request
//! is one atomic flag, so setting it is async-signal-safe.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every run of this process to checkpoint and stop (safe to call from a signal handler).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// The exit status of an `ablate` stopped on request after its runs wrote their checkpoints
/// (`EX_TEMPFAIL` of sysexits.h: try again, and the runs resume).
pub const EXIT_STOPPED: u8 = 75;

extern "C" fn request_on_signal(_: libc::c_int) {
    request();
}

/// Makes SIGTERM, SIGUSR1 and SIGINT [`request`] a stop. Call once, early in a process that
/// trains (the `ablate` command).
pub fn on_signals() {
    for signal in [libc::SIGTERM, libc::SIGUSR1, libc::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe; the
        // `sigaction` struct is zeroed, then the fields that matter are set.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = request_on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESETHAND | libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

/// A run (or an ablation) stopped on request after writing its checkpoint; running the same
/// command again resumes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// The epoch in progress (1-based).
    pub epoch: usize,
    /// The steps taken.
    pub step: usize,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stopped on request in epoch {} after step {}, with a checkpoint written",
            self.epoch, self.step
        )
    }
}

impl std::error::Error for Interrupted {}
