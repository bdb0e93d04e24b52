//! Leases: which process trains a run when several share one store (processes on one machine,
//! or SLURM array tasks on many machines over a shared file system).
//!
//! Before it trains a run, a process takes the run's lease, `<store>/<run-id>.lease`: it writes
//! a private file naming itself (host, pid, the pid's start time, SLURM job id) and hard-links
//! it to the lease's name. `link` either creates the name or fails because it exists, atomically,
//! on local file systems and on NFS and Lustre alike (where `flock` cannot be trusted across
//! nodes), so of several processes racing for a run exactly one gets it, and nobody reads a
//! half-written lease. While it trains, the holder touches the lease every [`HEARTBEAT`]; it
//! removes the lease once the run's final record is written.
//!
//! A lease is *abandoned* when its holder is gone: on the holder's own host at once, when the pid
//! is no longer running (the pid's start time tells a reused pid apart); from another host, when
//! the heartbeat is older than [`stale_after`]. An abandoned lease is taken over by renaming it
//! to a private name, which of several processes trying exactly one achieves, checking that the
//! lease renamed is the one judged (else it was taken over meanwhile and is linked back), and
//! then taking the lease anew. A lease that cannot be read (written by hand, truncated by a crash of the
//! file system) is treated like one from another host: judged by its age alone.

use anyhow::Context;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, SystemTime};

/// How often a holder touches its lease.
pub const HEARTBEAT: Duration = Duration::from_secs(30);

/// How old a heartbeat from another host may be before its lease counts as abandoned: ten
/// heartbeats, or `SPARSELAB_LEASE_STALE_SECS`. Generous, because hosts' clocks differ by a
/// little and a shared file system delays what others see.
pub fn stale_after() -> Duration {
    std::env::var("SPARSELAB_LEASE_STALE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(HEARTBEAT * 10, Duration::from_secs)
}

/// Who holds a lease (the file's contents).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Host name.
    pub host: String,
    /// Process id on that host.
    pub pid: u32,
    /// The process's start time (Linux clock ticks since boot), so a reused pid is not mistaken
    /// for the holder; `None` where the system does not say.
    pub started: Option<u64>,
    /// `SLURM_JOB_ID` (and array task) of the holder, for people reading the lease.
    pub job: Option<String>,
}

impl Holder {
    /// This process.
    pub fn me() -> Self {
        let pid = std::process::id();
        let job = std::env::var("SLURM_JOB_ID").ok().map(|id| {
            match std::env::var("SLURM_ARRAY_TASK_ID") {
                Ok(task) => format!("{id}_{task}"),
                Err(_) => id,
            }
        });
        Self {
            host: host_name(),
            pid,
            started: process_start(pid),
            job,
        }
    }

    /// Whether the holder is certainly gone: it ran on this host and its process no longer runs.
    /// A holder on another host is never known gone from here ([`stale_after`] decides).
    fn gone_from_this_host(&self) -> bool {
        if self.host != host_name() || !Path::new("/proc/self/stat").exists() {
            return false;
        }
        match process_start(self.pid) {
            None => true,
            Some(started) => self.started.is_some_and(|s| s != started),
        }
    }
}

/// This machine's name (`/proc/sys/kernel/hostname`, else `HOSTNAME`, else `localhost`).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Field 22 of `/proc/<pid>/stat`: the process's start time in clock ticks since boot (`None`:
/// no such process, or no `/proc`).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(19)?.parse().ok()
}

/// What [`Lease::take`] found.
#[derive(Debug)]
pub enum Taken {
    /// The lease is ours until dropped.
    Ours(Lease),
    /// A live process holds it.
    Held(Option<Holder>),
}

/// A held lease: touched every [`HEARTBEAT`] by a thread, removed when dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    /// Dropped to stop the heartbeat.
    stop: Option<std::sync::mpsc::Sender<()>>,
    beat: Option<std::thread::JoinHandle<()>>,
}

/// A name next to `path` that no other call, process or host sharing the directory uses:
/// `<path>.<host>.<pid>.<n>.<what>`.
pub(crate) fn private_name(path: &Path, what: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(
        ".{}.{}.{n}.{what}",
        host_name(),
        std::process::id()
    ));
    PathBuf::from(name)
}

/// Whether `name` is a temporary name [`private_name`] gave to a process of this host that no
/// longer runs (killed mid-write): no one will finish or rename that file.
pub(crate) fn abandoned_private_name(name: &str) -> bool {
    let mut parts = name.rsplitn(4, '.');
    let (Some(_what), Some(n), Some(pid), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let (Ok(_), Ok(pid)) = (n.parse::<u64>(), pid.parse::<u32>()) else {
        return false;
    };
    rest.ends_with(&format!(".{}", host_name()))
        && Path::new("/proc/self").exists()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

impl Lease {
    /// Takes the lease at `path` for this process, taking over an abandoned one.
    pub fn take(path: &Path) -> anyhow::Result<Taken> {
        let me = Holder::me();
        let mine = private_name(path, "new");
        let text = serde_json::to_string(&me)?;
        std::fs::write(&mine, &text).with_context(|| format!("writing {}", mine.display()))?;
        let result = Self::link(path, &mine);
        let _ = std::fs::remove_file(&mine);
        result
    }

    fn link(path: &Path, mine: &Path) -> anyhow::Result<Taken> {
        // Twice at most: once as it is, once more after taking over an abandoned lease.
        for _ in 0..2 {
            match std::fs::hard_link(mine, path) {
                Ok(()) => return Ok(Taken::Ours(Self::hold(path.to_path_buf()))),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("taking the lease {}", path.display()));
                }
            }
            let judged = Seen::at(path);
            if !judged.abandoned() {
                return Ok(Taken::Held(judged.holder));
            }
            take_away(path, &judged);
        }
        Ok(Taken::Held(read_holder(path)))
    }

    fn hold(path: PathBuf) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let beat = {
            let path = path.clone();
            // Beats until the lease is dropped, which drops the sender and ends the wait.
            std::thread::spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(HEARTBEAT) {
                    touch(&path);
                }
            })
        };
        Self {
            path,
            stop: Some(stop),
            beat: Some(beat),
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(beat) = self.beat.take() {
            let _ = beat.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A lease as a process saw it when it judged it: its holder and its heartbeat.
#[derive(Debug, PartialEq)]
struct Seen {
    holder: Option<Holder>,
    beat: Option<SystemTime>,
}

impl Seen {
    fn at(path: &Path) -> Self {
        Self {
            holder: read_holder(path),
            beat: std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        }
    }

    /// Whether the lease seen is abandoned: its holder is gone from this host, or its heartbeat
    /// is stale.
    fn abandoned(&self) -> bool {
        if self
            .holder
            .as_ref()
            .is_some_and(Holder::gone_from_this_host)
        {
            return true;
        }
        match self.beat {
            // A lease that vanished meanwhile is free: the next link will tell.
            None => true,
            // A heartbeat ahead of this host's clock (another host's clock runs ahead) is fresh.
            Some(beat) => SystemTime::now()
                .duration_since(beat)
                .is_ok_and(|age| age > stale_after()),
        }
    }
}

/// Removes the abandoned lease at `path` that was `judged`. Of several processes renaming it
/// away, one succeeds; the others find the name gone, or taken anew. A process may rename a
/// lease taken anew between its judgement and its rename (another process took over first):
/// it then finds a lease other than the one it judged, and links it back.
fn take_away(path: &Path, judged: &Seen) {
    let away = private_name(path, "abandoned");
    if std::fs::rename(path, &away).is_err() {
        return;
    }
    if Seen::at(&away) != *judged {
        let _ = std::fs::hard_link(&away, path);
    }
    let _ = std::fs::remove_file(&away);
}

/// Sets the lease's modification time to now: the heartbeat.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::OpenOptions::new().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

#[cfg(test)]
mod tests {

    /// Only a temporary name of this host whose process is gone is abandoned.
    #[test]
    fn a_temporary_name_is_abandoned_when_its_process_is_gone() {
        let mine = private_name(Path::new("/x/table.md"), "tmp");
        let mine = mine.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!abandoned_private_name(&mine));
        let host = host_name();
        // Beyond Linux's largest pid (2^22).
        let dead = format!("table.md.{host}.4999999.0.tmp");
        assert!(abandoned_private_name(&dead));
        assert!(!abandoned_private_name(
            "table.md.another-host.4999999.0.tmp"
        ));
        assert!(!abandoned_private_name("table.md"));
        assert!(!abandoned_private_name(&format!("table.md.{host}.x.0.tmp")));
    }

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("sparselab-lease-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    /// Sets the heartbeat of the lease at `path` to `by` ago.
    fn age(path: &Path, by: Duration) {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .expect("open");
        file.set_modified(SystemTime::now() - by).expect("mtime");
    }

    fn plant(path: &Path, holder: &Holder, by: Duration) {
        std::fs::write(path, serde_json::to_string(holder).expect("json")).expect("write");
        age(path, by);
    }

    /// A holder on another host.
    fn remote() -> Holder {
        Holder {
            host: "elsewhere".into(),
            pid: 1,
            started: None,
            job: Some("7_3".into()),
        }
    }

    #[test]
    fn one_holder_at_a_time_and_released_on_drop() {
        let dir = scratch("one");
        let path = dir.join("r.lease");
        let Taken::Ours(lease) = Lease::take(&path).expect("take") else {
            panic!("a free lease is taken")
        };
        assert!(matches!(
            Lease::take(&path).expect("take"),
            Taken::Held(Some(h)) if h == Holder::me()
        ));
        drop(lease);
        assert!(!path.exists(), "released on drop");
        assert!(matches!(Lease::take(&path).expect("take"), Taken::Ours(_)));
        // Nothing private is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn a_dead_holder_on_this_host_is_taken_over_at_once() {
        let dir = scratch("dead");
        let path = dir.join("r.lease");
        // A child that has exited: its pid names no running process (or a newer one).
        let mut child = std::process::Command::new("true").spawn().expect("spawn");
        let pid = child.id();
        child.wait().expect("wait");
        let dead = Holder {
            pid,
            started: Some(1),
            ..Holder::me()
        };
        plant(&path, &dead, Duration::ZERO);
        if Path::new("/proc/self/stat").exists() {
            assert!(matches!(Lease::take(&path).expect("take"), Taken::Ours(_)));
        }
    }

    #[test]
    fn another_hosts_holder_is_trusted_until_its_heartbeat_is_stale() {
        let dir = scratch("remote");
        let path = dir.join("r.lease");
        let remote = remote();
        plant(&path, &remote, Duration::from_secs(5));
        assert!(matches!(
            Lease::take(&path).expect("take"),
            Taken::Held(Some(h)) if h == remote
        ));
        // A heartbeat ahead of this host's clock is fresh, not stale.
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        file.set_modified(SystemTime::now() + Duration::from_secs(60))
            .expect("mtime");
        assert!(matches!(Lease::take(&path).expect("take"), Taken::Held(_)));
        plant(&path, &remote, stale_after() + Duration::from_secs(5));
        assert!(matches!(Lease::take(&path).expect("take"), Taken::Ours(_)));
    }

    #[test]
    fn an_unreadable_lease_is_judged_by_its_age() {
        let dir = scratch("garbled");
        let path = dir.join("r.lease");
        std::fs::write(&path, "{ not json").expect("write");
        assert!(matches!(
            Lease::take(&path).expect("take"),
            Taken::Held(None)
        ));
        age(&path, stale_after() * 2);
        assert!(matches!(Lease::take(&path).expect("take"), Taken::Ours(_)));
    }

    #[test]
    fn racing_processes_get_one_lease() {
        let dir = scratch("race");
        let path = dir.join("r.lease");
        let won: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| Lease::take(&path).expect("take")))
                .collect();
            let taken: Vec<Taken> = handles
                .into_iter()
                .map(|h| h.join().expect("thread"))
                .collect();
            taken.iter().map(|t| matches!(t, Taken::Ours(_))).collect()
        });
        assert_eq!(won.iter().filter(|w| **w).count(), 1, "{won:?}");
    }

    #[test]
    fn a_lease_taken_anew_after_the_judgement_is_put_back() {
        let dir = scratch("anew");
        let path = dir.join("r.lease");
        let dead = remote();
        plant(&path, &dead, stale_after() * 2);
        let judged = Seen::at(&path);
        // Another process takes the lease over between this one's judgement and its rename.
        std::fs::remove_file(&path).expect("remove");
        let Taken::Ours(theirs) = Lease::take(&path).expect("take") else {
            panic!("a free lease is taken")
        };
        take_away(&path, &judged);
        assert_eq!(
            read_holder(&path),
            Some(Holder::me()),
            "the new lease is back"
        );
        drop(theirs);
        // The lease judged is taken away when it is still the one there.
        plant(&path, &dead, stale_after() * 2);
        take_away(&path, &Seen::at(&path));
        assert!(!path.exists());
        let names: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn the_start_time_of_a_process_is_read_past_its_name() {
        if Path::new("/proc/self/stat").exists() {
            let me = process_start(std::process::id()).expect("own start time");
            assert_eq!(process_start(std::process::id()), Some(me));
        }
    }
}
