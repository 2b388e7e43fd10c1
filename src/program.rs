//! A site's program, run bounded: `ha.command` (is this node active?) and `smgr.command` (a
//! resync mechanism of the site's choosing) both go through [`run`].
//!
//! The program runs in a process group of its own, which is killed whole at the time limit (its
//! children must not be left behind), and at the module's stop: the owner's [`ProcessGroups`]
//! knows every group still running. Its exit status comes back through a pipe, from a
//! wrapper shell that echoes it: rsyslogd's main loop reaps every child process of the daemon
//! (`waitpid(-1)` on SIGCHLD), so waiting for the program ourselves would race rsyslog for its
//! status, and mostly lose.

use parking_lot::Mutex;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// At most this much of a program's standard error is kept (dead-letter file, logs).
pub const STDERR_BYTES: usize = 2000;

/// What to run and how.
pub struct Program<'a> {
    /// The program and its arguments (executed directly, no shell).
    pub argv: &'a [&'a str],
    /// Written to its standard input (none: `/dev/null`).
    pub input: Option<&'a [u8]>,
    /// Added to its environment.
    pub env: &'a [(&'a str, &'a str)],
    /// Killed, with its process group, when it has not exited by then.
    pub limit: Duration,
    /// Where the running group is known, so that a stop can kill it.
    pub groups: &'a ProcessGroups,
}

/// The process groups one owner (the HA gate, the SMGR client, a service's OSSI sessions) has
/// running now.
#[derive(Debug, Default)]
pub struct ProcessGroups(Mutex<Groups>);

#[derive(Debug, Default)]
struct Groups {
    running: HashSet<i32>,
    /// [`ProcessGroups::close`]d: a group started after it is killed at once.
    closed: bool,
}

impl ProcessGroups {
    /// Kills every group still running, children and all (the module stops: no program it
    /// started may outlive it). Their runs end as timed out.
    pub fn kill_all(&self) {
        for &group in self.0.lock().running.iter() {
            kill_group(group);
        }
    }

    /// As [`ProcessGroups::kill_all`], for an owner that ends: a program whose start raced
    /// the stop is killed as soon as its group is known.
    pub fn close(&self) {
        self.0.lock().closed = true;
        self.kill_all();
    }

    fn enter(&self, group: i32) {
        let mut groups = self.0.lock();
        if groups.closed {
            kill_group(group);
        }
        groups.running.insert(group);
    }

    fn leave(&self, group: i32) {
        self.0.lock().running.remove(&group);
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.0.lock().running.len()
    }
}

fn kill_group(group: i32) {
    if let Some(group) = rustix::process::Pid::from_raw(group) {
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    /// Exited with `code` (as the shell reports it: 128 + n when killed by signal n).
    Exited { code: u32, stderr: String },
    /// No exit within the limit: the process group was killed.
    TimedOut,
    /// Could not be started at all.
    CannotStart(String),
}

impl Ran {
    /// Why the run gave no answer of the program's own, said of `what` (`ha.command`,
    /// `smgr.command`): the shell's 126 (not executable) and 127 (not found), a signal, no
    /// exit within `limit` (the parameter `limit_param`), or no start at all. `None` for an
    /// exit status the program chose.
    pub fn failure(
        &self,
        what: &str,
        limit_param: &str,
        limit: std::time::Duration,
    ) -> Option<String> {
        match self {
            Ran::Exited { code: 126, stderr } => Some(format!(
                "{what} exited 126: not executable{}",
                detail(stderr)
            )),
            Ran::Exited { code: 127, stderr } => {
                Some(format!("{what} exited 127: not found{}", detail(stderr)))
            }
            Ran::Exited { code, .. } if *code > 128 => {
                Some(format!("{what} was killed by signal {}", code - 128))
            }
            Ran::Exited { .. } => None,
            Ran::TimedOut => Some(format!(
                "{what} did not exit within {limit_param} ({} ms): killed",
                limit.as_millis()
            )),
            Ran::CannotStart(e) => Some(format!("{what}: {e}")),
        }
    }
}

/// A program's standard error as a tail for one log line (nothing when it said nothing).
fn detail(stderr: &str) -> String {
    match crate::text::one_line(stderr) {
        line if line.is_empty() => String::new(),
        line => format!(": {line}"),
    }
}

/// Runs `p` and waits for it, at most `p.limit`; never panics.
pub fn run(p: &Program) -> Ran {
    run_with(p, false).0
}

/// At most this much of a program's standard output is kept by [`run_for_output`].
pub const OUTPUT_BYTES: usize = 64 << 20;

/// As [`run`], keeping what the program writes on its standard output (up to
/// [`OUTPUT_BYTES`]): the OSSI client's report.
pub fn run_for_output(p: &Program) -> (Ran, String) {
    run_with(p, true)
}

fn run_with(p: &Program, keep_output: bool) -> (Ran, String) {
    // The exit status comes last on standard output, after the program's own output (if kept).
    let script = if keep_output {
        "\"$@\"; printf '\\n%s\\n' $?"
    } else {
        "\"$@\" >/dev/null; echo $?"
    };
    let mut child = match command(p, script).spawn() {
        Ok(child) => child,
        Err(e) => {
            return (
                Ran::CannotStart(format!("cannot run /bin/sh: {e}")),
                String::new(),
            )
        }
    };
    // Standard input written, and the outputs read, on threads of their own: a program that
    // reads nothing, or writes much, must not block us past the limit.
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), p.input) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let group = child.id() as i32;
    p.groups.enter(group);
    let output = read_on_thread(child.stdout.take(), OUTPUT_BYTES);
    let stderr = read_on_thread(child.stderr.take(), STDERR_BYTES);
    let answer = output.recv_timeout(p.limit).ok();
    if answer.is_none() {
        kill_group(group);
    }
    p.groups.leave(group);
    // Reaped here, or by rsyslogd already.
    let _ = child.wait();
    let Some(answer) = answer else {
        return (Ran::TimedOut, String::new());
    };
    // A grandchild that left the group may hold standard error open: not waited for long.
    let stderr = stderr
        .recv_timeout(Duration::from_millis(200))
        .unwrap_or_default();
    let trimmed = answer.trim_end_matches('\n');
    let (output, status) = trimmed.rsplit_once('\n').unwrap_or(("", trimmed));
    match status.trim().parse::<u32>() {
        Ok(code) => (Ran::Exited { code, stderr }, output.to_owned()),
        Err(_) => (Ran::CannotStart("no exit status".into()), String::new()),
    }
}

/// `p` under the wrapper `script`, in a process group of its own.
fn command(p: &Program, script: &str) -> Command {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", script, "sh"])
        .args(p.argv)
        .process_group(0)
        .stdin(if p.input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in p.env {
        cmd.env(name, value);
    }
    cmd
}

/// Reads `from` to its end on a thread, keeping at most `max` bytes (as text, cut at a
/// character boundary); the text arrives on the returned channel.
fn read_on_thread(from: Option<impl Read + Send + 'static>, max: usize) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut from) = from {
        std::thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 4096];
            while let Ok(n @ 1..) = from.read(&mut buf) {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
            let text = String::from_utf8_lossy(&kept);
            let _ = tx.send(crate::text::truncate_at_char(&text, max).to_owned());
        });
    }
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, input: Option<&[u8]>, limit_ms: u64) -> Ran {
        run(&Program {
            argv: &["/bin/sh", "-c", script],
            input,
            env: &[("OMCM_TEST", "v a l")],
            limit: Duration::from_millis(limit_ms),
            groups: &ProcessGroups::default(),
        })
    }

    #[test]
    fn the_output_is_kept_apart_from_the_status() {
        let groups = ProcessGroups::default();
        let ran = |script: &str| {
            run_for_output(&Program {
                argv: &["/bin/sh", "-c", script],
                input: None,
                env: &[],
                limit: Duration::from_secs(10),
                groups: &groups,
            })
        };
        let (exited, output) = ran("printf 'a\\n7'; exit 3");
        assert!(matches!(exited, Ran::Exited { code: 3, .. }), "{exited:?}");
        assert_eq!(output, "a\n7");
        let (exited, output) = ran("echo '{\"x\":1}'");
        assert!(matches!(exited, Ran::Exited { code: 0, .. }), "{exited:?}");
        assert_eq!(output.trim_end(), "{\"x\":1}");
        assert_eq!(ran("true").1, "");
    }

    /// A stop kills what is running, children and all, without waiting for the limit.
    #[test]
    fn kill_all_ends_a_running_program_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let groups = ProcessGroups::default();
        let started = std::time::Instant::now();
        std::thread::scope(|scope| {
            let running = scope.spawn(|| {
                run(&Program {
                    argv: &["/bin/sh", "-c", &script],
                    input: None,
                    env: &[],
                    limit: Duration::from_secs(30),
                    groups: &groups,
                })
            });
            while groups.running() == 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
            groups.kill_all();
            assert!(!matches!(
                running.join().unwrap(),
                Ran::Exited { code: 0, .. }
            ));
        });
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(groups.running(), 0);
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a child of the killed program ran on");
    }

    /// A program started after its owner closed (a start that raced the stop) is killed at
    /// once, not left to run to its limit.
    #[test]
    fn a_program_started_after_close_is_killed_at_once() {
        let groups = ProcessGroups::default();
        groups.close();
        let started = std::time::Instant::now();
        let ran = run(&Program {
            argv: &["/bin/sh", "-c", "sleep 30"],
            input: None,
            env: &[],
            limit: Duration::from_secs(30),
            groups: &groups,
        });
        assert!(!matches!(ran, Ran::Exited { code: 0, .. }), "{ran:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn exit_status_stderr_input_and_environment() {
        let ran = sh(
            "read x; echo \"got $x $OMCM_TEST\" >&2; echo out; exit 3",
            Some(b"body\n"),
            5000,
        );
        assert_eq!(
            ran,
            Ran::Exited {
                code: 3,
                stderr: "got body v a l\n".into()
            }
        );
    }

    #[test]
    fn a_program_that_reads_nothing_of_a_large_input_still_ends() {
        let big = vec![b'x'; 1 << 20];
        assert!(matches!(
            sh("exit 0", Some(&big), 5000),
            Ran::Exited { code: 0, .. }
        ));
    }

    #[test]
    fn long_stderr_is_cut() {
        let Ran::Exited { stderr, .. } =
            sh("head -c 100000 /dev/zero | tr '\\0' e >&2", None, 5000)
        else {
            panic!()
        };
        assert_eq!(stderr.len(), STDERR_BYTES);
    }

    #[test]
    fn a_hung_program_and_its_children_are_killed_at_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        assert_eq!(sh(&script, None, 300), Ran::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!marker.exists(), "a child of the killed program ran on");
    }

    #[test]
    fn a_missing_program_is_127() {
        let ran = run(&Program {
            argv: &["/nonexistent/program"],
            input: None,
            env: &[],
            limit: Duration::from_secs(5),
            groups: &ProcessGroups::default(),
        });
        assert!(matches!(ran, Ran::Exited { code: 127, .. }), "{ran:?}");
    }
}
