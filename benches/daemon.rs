//! The module inside the real rsyslogd, measured beside baselines in the same run:
//!
//! 1. throughput: a TCP flood (95 % CM noise, 5 % commands) into rsyslogd with rsyslog's own
//!    `stop` (ingest only; also inside the shipped ruleset's queue), an action that renders
//!    nothing, omfile, and the shipped configuration (the ruleset and action of
//!    rsyslog-conf/omcmsync-action.conf, posting to smgr-sim), and the omprog mode as shipped
//!    (rsyslog-conf/omcmsync-omprog.conf), interleaved; messages/s and CPU-seconds per million
//!    messages (rsyslogd's and its programs'), and the shipped configuration's ratios to the
//!    baselines. The load generator's rate into a discard sink shows it is not the bottleneck.
//! 2. coalescing: 100,000 changes over 1,000 stations in one window -> requests at the simulator.
//! 3. memory under outage: SMGR down, 1,000,000 changes over 100,000 stations -> rsyslogd RSS
//!    growth, state.dir size, then the time to drain once SMGR is back.
//! 4. latency at 1,000 changes/s with a zero window: receipt by rsyslogd to the request at the
//!    simulator, p50/p99/max.
//! 6. recovery: 300,000 pending keys written by the queue, rsyslogd started on them: the time to
//!    the first new line committed and the peak RSS against the settled RSS (the map's own
//!    size), both over a start on an empty state directory.
//! 7. standby: the outage's flood heard by a standby that holds it, then promoted: RSS growth,
//!    state.dir size, and the time from the promotion to the last request at the simulator.
//! 8. idle: rsyslogd with nothing to do, without the module and with the shipped configuration
//!    (ha.mode `always`): CPU ticks and context switches in a minute, all threads and the
//!    module's own.
//!
//! 9. reconcile: one reconciliation of a 1,000-record history (half of it heard by syslog), CM
//!    behind a real sshd: the session's and the judging's time, rsyslogd's CPU and the OSSI
//!    client's, rsyslogd's RSS growth; beside a 10-record history in the same run. Needs root
//!    (sshd).
//!
//!     cargo bench --bench daemon            (OMCM_BENCH_SCALE=0.1 for a quick look)
//!
//! Build the simulator and the OSSI client first, `cargo build --release -p smgr-sim -p
//! omcmsync-ossi`: workspace members of their own.
//! Figures go to docs/benchmarks.md; nothing here asserts a time.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::*;
use omcmsync::clock::parse_rfc3339_ms;
use omcmsync::sample::{command_line, noise_line, Rng};

fn scale(n: usize) -> usize {
    let f: f64 = std::env::var("OMCM_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * f) as usize).max(1)
}

/// Syslog lines as CM's rsyslog forwards them, newline-framed, in one buffer.
fn flood(n: usize, command_percent: u64, seed: u64) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n * 110);
    for _ in 0..n {
        let msg = if rng.below(100) < command_percent {
            command_line(&mut rng)
        } else {
            noise_line(&mut rng)
        };
        out.extend_from_slice(format!("<13>Nov 25 10:15:02 cm-east {msg}\n").as_bytes());
    }
    out
}

fn send(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    for chunk in bytes.chunks(1 << 20) {
        s.write_all(chunk).unwrap();
    }
}

/// The generator's own rate: the same bytes into a sink that reads and drops them.
fn generator_rate(bytes: &[u8], lines: usize) -> f64 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = vec![0u8; 1 << 20];
        while s.read(&mut buf).unwrap() > 0 {}
    });
    let started = Instant::now();
    send(port, bytes);
    sink.join().unwrap();
    lines as f64 / started.elapsed().as_secs_f64()
}

/// utime + stime of a process, seconds.
fn cpu_seconds(pid: i32) -> f64 {
    stat_cpu_seconds(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap())
}

/// CPU seconds of the running children of `pid` (omprog's programs).
fn children_cpu_seconds(pid: i32) -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
                .split_whitespace()
                .collect();
            fields.get(1) == Some(&pid.to_string().as_str())
        })
        .map(|stat| stat_cpu_seconds(&stat))
        .sum()
}

/// utime + stime, seconds, from the text of a `/proc/.../stat` file.
fn stat_cpu_seconds(stat: &str) -> f64 {
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CPU seconds of each thread of a process, by thread name (threads of one name summed).
fn thread_cpu_seconds(pid: i32) -> std::collections::BTreeMap<String, f64> {
    let tick = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    thread_activity(pid)
        .into_iter()
        .map(|(name, (ticks, _))| (name, ticks as f64 / tick))
        .collect()
}

/// The last 256 KiB of a file (polling must not cost rsyslogd much CPU by rereading everything;
/// the end marker can be written a little before the last lines: rsyslog's main queue may have
/// several workers, so the order is not exact).
fn tail(path: &std::path::Path) -> Vec<u8> {
    use std::io::{Seek, SeekFrom};
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map_or(0, |m| m.len());
    let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 << 10)));
    let mut buf = Vec::new();
    let _ = f.read_to_end(&mut buf);
    buf
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS:` now, `VmHWM:` the peak).
fn rss_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .unwrap()
}

fn dir_bytes(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path).map_or(0, |d| {
        d.flatten()
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    })
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "benchmark step did not finish within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The last line of a flood: it classifies as `unknown_object`, so omcmsync writes it to its
/// capture file as soon as its batch is committed (the flood has no other such line).
const MARKER: &str = "change widget 424242";

struct Run {
    rate: f64,
    cpu_per_million: f64,
}

/// Whether the end marker is in the last part of a file.
fn shows_marker(path: &std::path::Path) -> bool {
    tail(path)
        .windows(MARKER.len())
        .any(|w| w == MARKER.as_bytes())
}

/// Sends a flood and the end marker (tagged `omcm-end:`), and waits until `done` says the
/// setup has handled it.
fn send_and_wait_for(d: &Daemon, flood: &[u8], done: impl Fn() -> bool, timeout: Duration) {
    let mut bytes = flood.to_vec();
    bytes.extend_from_slice(format!("<13>Nov 25 10:15:02 cm-east omcm-end: {MARKER}\n").as_bytes());
    send(d.ports.tcp, &bytes);
    // Polled every 5 ms: a throughput run takes one to three seconds.
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "the flood's end never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// What the empty action writes for each message (and a newline).
const EMPTY_LINE: &str = "x";

/// What takes the flood in step 1.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    /// rsyslog's own `stop`: ingest only, the floor.
    Stop,
    /// `stop` inside the shipped configuration's ruleset and queue: the floor with CM's traffic
    /// kept apart from the main queue, as the shipped configuration must.
    StopIsolated,
    /// omfile writing two constant bytes per message, in the shipped ruleset and queue: what any
    /// action costs rsyslog before it renders a property or does any work.
    EmptyAction,
    /// omfile writing every line, in the shipped configuration's ruleset and queue.
    Omfile,
    /// The shipped action with no queue of its own: on the main queue's worker.
    Direct,
    /// The shipped action with an action queue of its own (LinkedList, disk-assisted, batches
    /// of 1024, two workers): the configuration shipped before the ruleset queue.
    ActionQueue,
    /// rsyslog-conf/omcmsync-action.conf as it ships (its ruleset queue, the action direct).
    Shipped,
    /// rsyslog-conf/omcmsync-omprog.conf as it ships: the same pipeline as a program under
    /// rsyslog's omprog (its CPU counted with rsyslogd's). Not in step 5: callgrind would count
    /// rsyslogd alone.
    Omprog,
}

impl Setup {
    const ALL: [Setup; 8] = [
        Setup::Stop,
        Setup::StopIsolated,
        Setup::EmptyAction,
        Setup::Omfile,
        Setup::Direct,
        Setup::ActionQueue,
        Setup::Shipped,
        Setup::Omprog,
    ];

    fn name(self) -> &'static str {
        match self {
            Setup::Stop => "stop",
            Setup::StopIsolated => "stop-isolated",
            Setup::EmptyAction => "empty-action",
            Setup::Omfile => "omfile",
            Setup::Direct => "direct",
            Setup::ActionQueue => "action-queue",
            Setup::Shipped => "shipped",
            Setup::Omprog => "omprog",
        }
    }

    /// Whether the setup has handled the whole flood of `lines` and its end marker.
    fn done(self, dir: &TestDir, lines: usize) -> bool {
        match self {
            Setup::Stop | Setup::StopIsolated => shows_marker(&dir.path("end.log")),
            Setup::Omfile => shows_marker(&dir.path("out.log")),
            // Its template renders nothing of the marker: done once every message's line is out.
            Setup::EmptyAction => std::fs::metadata(dir.path("out.log"))
                .is_ok_and(|m| m.len() >= (EMPTY_LINE.len() as u64 + 1) * (lines as u64 + 1)),
            Setup::Direct | Setup::ActionQueue | Setup::Shipped | Setup::Omprog => {
                shows_marker(&dir.path("capture.json"))
            }
        }
    }

    /// Position in [`Setup::ALL`].
    fn index(self) -> usize {
        Setup::ALL.iter().position(|s| *s == self).unwrap()
    }
}

/// The ruleset header (with its queue) and the action of rsyslog-conf/omcmsync-action.conf,
/// pointed at this run's elements, state directory and simulator.
fn shipped_parts(dir: &TestDir, smgr_url: &str, extra: &str) -> (String, String) {
    let text = std::fs::read_to_string(repo().join("rsyslog-conf/omcmsync-action.conf"))
        .unwrap()
        .replace(
            r#"config.file="/etc/omcmsync/omcmsync.conf""#,
            &format!(
                r#"smgr.url="{smgr_url}" elements.file="{}""#,
                dir.p("elements.json")
            ),
        )
        .replace("/var/lib/omcmsync", &dir.p("state"))
        .replace(
            "/var/log/omcmsync/unclassified.json",
            &dir.p("capture.json"),
        )
        .replace(
            r#"action(type="omcmsync" name="omcmsync""#,
            &format!(r#"action(type="omcmsync" name="omcmsync" burst.threshold="100000" {extra}"#),
        );
    let start = text
        .find("ruleset(")
        .expect("ruleset in the action snippet");
    let open = start + text[start..].find(") {").expect("ruleset body") + 3;
    let close = text.rfind('}').unwrap();
    (text[start..open].to_owned(), text[open..close].to_owned())
}

/// A whole rsyslog config for `setup`. Each ruleset first copies the end marker to `end.log`,
/// so that every setup pays for the same one-comparison filter and `stop` has an end to see.
fn setup_config(dir: &TestDir, ports: Ports, smgr_url: &str, setup: Setup, extra: &str) -> String {
    // `OMCM_BENCH_TEMPLATE='...'`: a template `omcmsync_bench` beside the shipped one, for
    // `OMCM_BENCH_MODULE='template="omcmsync_bench"'` (what another line format costs).
    let bench_template = std::env::var("OMCM_BENCH_TEMPLATE").map_or(String::new(), |t| {
        format!("template(name=\"omcmsync_bench\" type=\"string\" string=\"{t}\")\n")
    });
    bench_template + &setup_text(dir, ports, smgr_url, setup, extra)
}

fn setup_text(dir: &TestDir, ports: Ports, smgr_url: &str, setup: Setup, extra: &str) -> String {
    let marker = format!(
        r#"if $syslogtag == "omcm-end:" then action(type="omfile" file="{}")"#,
        dir.p("end.log")
    );
    if setup == Setup::Stop {
        return config(dir, ports, &format!("{marker}\nstop"));
    }
    if setup == Setup::Omprog {
        return omprog_config(dir, ports, smgr_url, &marker);
    }
    let (header, shipped_action) = shipped_parts(dir, smgr_url, extra);
    if setup == Setup::Direct {
        return config(dir, ports, &format!("{marker}\n{shipped_action}"));
    }
    if setup == Setup::ActionQueue {
        let queued = shipped_action.replace(
            "action.resumeRetryCount",
            r#"queue.type="LinkedList" queue.filename="omcmsync-aq" queue.size="100000" queue.dequeueBatchSize="1024" queue.workerThreads="2" action.resumeRetryCount"#,
        );
        return config(dir, ports, &format!("{marker}\n{queued}"));
    }
    let omfile = |template: &str| {
        format!(
            r#"action(type="omfile" file="{}" template="{template}")"#,
            dir.p("out.log")
        )
    };
    let action = match setup {
        Setup::Shipped => shipped_action,
        Setup::StopIsolated => "stop".to_owned(),
        Setup::EmptyAction => omfile("bench_empty"),
        _ => omfile("omcmsync_line"),
    };
    config(dir, ports, "stop").replace(r#"ruleset="cm""#, r#"ruleset="omcmsync""#)
        + &format!("template(name=\"bench_empty\" type=\"string\" string=\"{EMPTY_LINE}\\n\")\n")
        + &format!("{header}\n{marker}\n{action}\n}}\n")
}

/// rsyslog-conf/omcmsync-omprog.conf as it ships, its program the built `omcmsync` with this
/// run's elements, state directory, capture file and simulator.
fn omprog_config(dir: &TestDir, ports: Ports, smgr_url: &str, marker: &str) -> String {
    let conf = dir.path("omprog.conf");
    std::fs::write(
        &conf,
        format!(
            "smgr.url=\"{smgr_url}\"\nelements.file=\"{}\"\nstate.dir=\"{}\"\n\
             capture.file=\"{}\"\nburst.threshold=\"100000\"\n",
            dir.p("elements.json"),
            dir.p("state"),
            dir.p("capture.json")
        ),
    )
    .unwrap();
    let snippet = std::fs::read_to_string(repo().join("rsyslog-conf/omcmsync-omprog.conf"))
        .unwrap()
        .replace("/usr/bin/omcmsync", env!("CARGO_BIN_EXE_omcmsync"))
        .replace("/etc/omcmsync/omcmsync.conf", conf.to_str().unwrap())
        .replace("/var/log/omcmsync", &dir.p(""))
        .replace(") {\n  action(", &format!(") {{\n{marker}\n  action("));
    config(dir, ports, "stop").replace(r#"ruleset="cm""#, r#"ruleset="omcmsync""#) + &snippet
}

/// One flood through rsyslogd in `setup`; ends at the marker.
fn throughput_run(flood: &[u8], lines: usize, setup: Setup) -> Run {
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    // `OMCM_BENCH_MODULE='coalesce.window.ms="600000"'`: more module parameters for step 1.
    let extra = std::env::var("OMCM_BENCH_MODULE").unwrap_or_default();
    let ports = Ports::free();
    let d = Daemon::start_config(
        &dir,
        ports,
        &setup_config(&dir, ports, sim.url(), setup, &extra),
    );
    let perf = profile(d.pid(), setup.name());
    // rsyslogd and its programs (omprog's): the whole cost of the setup.
    let cpu_before = cpu_seconds(d.pid()) + children_cpu_seconds(d.pid());
    let threads_before = thread_cpu_seconds(d.pid());
    let started = Instant::now();
    send_and_wait_for(
        &d,
        flood,
        || setup.done(&dir, lines),
        Duration::from_secs(300),
    );
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(d.pid()) + children_cpu_seconds(d.pid()) - cpu_before;
    // `OMCM_BENCH_THREADS=1`: how busy each of rsyslogd's threads was during the run.
    if std::env::var_os("OMCM_BENCH_THREADS").is_some() {
        let busy: Vec<String> = thread_cpu_seconds(d.pid())
            .into_iter()
            .map(|(name, s)| {
                let s = s - threads_before.get(&name).copied().unwrap_or(0.0);
                format!("{name} {:.0} %", 100.0 * s / elapsed)
            })
            .collect();
        println!(
            "     {} threads busy over {elapsed:.2} s: {}",
            setup.name(),
            busy.join(", ")
        );
    }
    if let Some(mut p) = perf {
        unsafe { libc::kill(p.id() as i32, libc::SIGINT) };
        let _ = p.wait();
    }
    assert!(d.stop(Duration::from_secs(60)).success());
    Run {
        rate: (lines + 1) as f64 / elapsed,
        cpu_per_million: cpu / ((lines + 1) as f64 / 1e6),
    }
}

/// `OMCM_BENCH_PERF=<dir>`: records a call-graph profile of rsyslogd during each run into
/// `<dir>/{stop,omfile,shipped}-<pid>.data` (for `perf report -i ... --sort comm,dso,sym`).
fn profile(pid: i32, name: &str) -> Option<std::process::Child> {
    let dir = std::env::var("OMCM_BENCH_PERF").ok()?;
    let child = std::process::Command::new("perf")
        .args([
            "record",
            "-q",
            "-e",
            "cpu-clock",
            "-F",
            "999",
            "--call-graph",
            "dwarf,16384",
            "-p",
        ])
        .arg(pid.to_string())
        .arg("-o")
        .arg(format!("{dir}/{name}-{pid}.data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some(child)
}

fn throughput() {
    let lines = scale(1_000_000);
    let percent: u64 = std::env::var("OMCM_BENCH_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let bytes = flood(lines, percent, 7);
    println!(
        "1. throughput: {lines} messages, {percent} % commands, the rest noise, {:.0} B/message; \
         stop (ingest only) on the main queue and in the shipped ruleset's queue, an empty \
         action (omfile, a constant template), omfile, the shipped action direct on the main \
         queue and with an action queue of its own (as shipped before), and the shipped \
         configuration (rsyslog-conf/omcmsync-action.conf: ruleset queue, action direct), \
         and the omprog mode as shipped (rsyslog-conf/omcmsync-omprog.conf), interleaved",
        bytes.len() as f64 / lines as f64,
    );
    println!(
        "   load generator into a discard sink: {:.2} M msg/s",
        generator_rate(&bytes, lines) / 1e6
    );
    let setups = Setup::ALL;
    let mut runs: Vec<Vec<Run>> = setups.iter().map(|_| Vec::new()).collect();
    let rounds: usize = std::env::var("OMCM_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(24);
    for round in 0..rounds {
        // Each round starts with the next setup: a drift of the VM's speed weighs on all alike.
        for k in 0..setups.len() {
            let i = (round + k) % setups.len();
            runs[i].push(throughput_run(&bytes, lines, setups[i]));
        }
        let row: Vec<String> = setups
            .iter()
            .zip(&runs)
            .map(|(s, r)| {
                let r = r.last().unwrap();
                format!(
                    "{} {:.3} M msg/s {:.2} CPU-s/M",
                    s.name(),
                    r.rate / 1e6,
                    r.cpu_per_million
                )
            })
            .collect();
        println!("   round {}: {}", round + 1, row.join(" | "));
    }
    let median = |v: &[Run], f: fn(&Run) -> f64| {
        let mut x: Vec<f64> = v.iter().map(f).collect();
        x.sort_by(f64::total_cmp);
        x[x.len() / 2]
    };
    let rate = |r: &Run| r.rate;
    let cpu = |r: &Run| r.cpu_per_million;
    let row: Vec<String> = setups
        .iter()
        .zip(&runs)
        .map(|(s, r)| {
            format!(
                "{} {:.3} M msg/s, {:.2} CPU-s/M",
                s.name(),
                median(r, rate) / 1e6,
                median(r, cpu)
            )
        })
        .collect();
    println!("   median: {}", row.join("; "));
    // Each round's ratio: the runs of a round are seconds apart, so the VM's drift between
    // rounds cancels out. The middle half of the rounds' ratios shows how far to trust it.
    let per_round = |b: &[Run], a: &[Run], f: fn(&Run) -> f64| {
        let mut r: Vec<f64> = a.iter().zip(b).map(|(a, b)| f(b) / f(a)).collect();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        format!(
            "{:.3} (middle half {:.3}-{:.3})",
            r[n / 2],
            r[n / 4],
            r[(3 * n / 4).min(n - 1)]
        )
    };
    // The least disturbed run of each side: the host's interference only ever slows a run.
    let best = |v: &[Run], f: fn(&Run) -> f64| v.iter().map(f).fold(f64::NAN, f64::max);
    for (a, b, note) in COMPARISONS {
        let (x, base) = (&runs[a.index()], &runs[b.index()]);
        println!(
            "   {}/{}{note}: ratio of medians: throughput {:.3}, CPU per message {:.3}",
            a.name(),
            b.name(),
            median(x, rate) / median(base, rate),
            median(x, cpu) / median(base, cpu)
        );
        println!(
            "     median of the rounds' ratios: throughput {}, CPU per message {}",
            per_round(x, base, rate),
            per_round(x, base, cpu)
        );
        println!(
            "     best round of each side: throughput {:.3}, CPU per message {:.3}",
            best(x, rate) / best(base, rate),
            best(x, |r| -r.cpu_per_million) / best(base, |r| -r.cpu_per_million)
        );
    }
}

/// The ratios steps 1 and 5 print: (setup, baseline, what the figure says).
const COMPARISONS: [(Setup, Setup, &str); 9] = [
    (
        Setup::Shipped,
        Setup::Stop,
        " (target >= 0.95 throughput, <= 1.1 CPU per message)",
    ),
    (
        Setup::EmptyAction,
        Setup::Stop,
        " (any action, before it renders a property)",
    ),
    (
        Setup::Shipped,
        Setup::StopIsolated,
        " (against the floor with the same isolation)",
    ),
    (
        Setup::Shipped,
        Setup::EmptyAction,
        " (what rendering the line and the module add)",
    ),
    (Setup::Shipped, Setup::Omfile, ""),
    (
        Setup::Shipped,
        Setup::Direct,
        " (the same action without a queue of its own)",
    ),
    (
        Setup::Shipped,
        Setup::ActionQueue,
        " (the configuration shipped before)",
    ),
    (
        Setup::ActionQueue,
        Setup::Direct,
        " (what an action queue of its own costs)",
    ),
    (
        Setup::Omprog,
        Setup::Shipped,
        " (the omprog mode against the native module, CPU of rsyslogd and the program)",
    ),
];

/// Instructions rsyslogd executes per message of the flood (callgrind counts them, so the VM's
/// speed does not enter), in each setup of step 1 with the same messages. With
/// `OMCM_BENCH_PERF=<dir>` the callgrind files are kept there for `callgrind_annotate`.
fn instructions() {
    let lines = scale(100_000);
    let bytes = flood(lines, 5, 7);
    let count = |setup: Setup| -> f64 {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        let ports = Ports::free();
        let out_file = dir.p("callgrind.out");
        let out_opt = format!("--callgrind-out-file={out_file}");
        let wrapper = [
            "valgrind",
            "--tool=callgrind",
            "--instr-atstart=no",
            &out_opt,
        ];
        // A window longer than the run: what the throughput runs measure, where no key
        // becomes due before the flood is in (delivery is counted apart, by the coalescing
        // and outage steps).
        let extra = std::env::var("OMCM_BENCH_MODULE").unwrap_or_default();
        let text = setup_config(
            &dir,
            ports,
            sim.url(),
            setup,
            &format!(r#"coalesce.window.ms="3600000" {extra}"#),
        );
        let d = Daemon::start_wrapped(&dir, ports, &text, &wrapper);
        let toggle = |on: &str| {
            let ok = std::process::Command::new("callgrind_control")
                .args(["-i", on, &d.pid().to_string()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "callgrind_control -i {on} failed");
        };
        toggle("on");
        send_and_wait_for(
            &d,
            &bytes,
            || setup.done(&dir, lines),
            Duration::from_secs(600),
        );
        toggle("off");
        assert!(d.stop(Duration::from_secs(120)).success());
        let text = std::fs::read_to_string(&out_file).unwrap();
        // Kept for `callgrind_annotate` when profiles are asked for.
        if let Ok(keep) = std::env::var("OMCM_BENCH_PERF") {
            let _ = std::fs::copy(&out_file, format!("{keep}/callgrind-{}.out", setup.name()));
        }
        let total: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("totals: "))
            .and_then(|n| n.split_whitespace().next()?.parse().ok())
            .expect("callgrind summary");
        total / (lines + 1) as f64
    };
    // Omprog, last in ALL, is left out: callgrind would count rsyslogd without its program.
    // `OMCM_BENCH_SETUPS=empty-action,shipped`: only those.
    let only = std::env::var("OMCM_BENCH_SETUPS").unwrap_or_default();
    let setups: Vec<Setup> = Setup::ALL[..Setup::ALL.len() - 1]
        .iter()
        .copied()
        .filter(|s| only.is_empty() || only.split(',').any(|o| o == s.name()))
        .collect();
    let counts: Vec<f64> = setups.iter().map(|s| count(*s)).collect();
    let of = |s: &Setup| setups.iter().position(|x| x == s).map(|i| counts[i]);
    let row: Vec<String> = setups
        .iter()
        .zip(&counts)
        .map(|(s, n)| format!("{} {n:.0}", s.name()))
        .collect();
    let ratios: Vec<String> = COMPARISONS
        .iter()
        .filter_map(|(a, b, _)| {
            let ratio = of(a)? / of(b)?;
            Some(format!("{}/{} {ratio:.3}", a.name(), b.name()))
        })
        .collect();
    println!(
        "5. instructions per message (callgrind, {lines} messages, 5 % commands): {}; {}",
        row.join(" | "),
        ratios.join(", ")
    );
}

fn coalescing() {
    let changes = scale(100_000);
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(
        &dir,
        &action_to(
            &dir,
            sim.url(),
            r#"coalesce.window.ms="20000" burst.threshold="100000""#,
        )
        .replace(&format!(" trace.file=\"{}\"", dir.p("trace.json")), ""),
    );
    let mut bytes = Vec::new();
    for i in 0..changes {
        bytes.extend_from_slice(
            format!(
                "<13>Nov 25 10:15:02 cm-east cmdhist: change station {}\n",
                10_000 + i % 1000
            )
            .as_bytes(),
        );
    }
    let started = Instant::now();
    send(d.ports.tcp, &bytes);
    wait_until(Duration::from_secs(120), || {
        object_ids(&sim.resync_items(), "cm-east").len() >= 1000
    });
    std::thread::sleep(Duration::from_secs(1));
    let items = sim.resync_items();
    let ids = object_ids(&items, "cm-east");
    let want: BTreeSet<String> = (10_000..11_000).map(|i| i.to_string()).collect();
    let counted: u64 = items.iter().map(|i| i["count"].as_u64().unwrap()).sum();
    println!(
        "2. coalescing: {changes} changes over 1000 stations -> {} requests in {} POSTs ({} missing, counts add up to {counted}), {:.1} s",
        items.len(),
        sim.requests().len(),
        want.difference(&ids).count(),
        started.elapsed().as_secs_f64()
    );
    assert!(d.stop(Duration::from_secs(60)).success());
}

/// rsyslogd's memory over one outage flood: (RSS before, RSS after, peak RSS) in KiB, and the
/// seconds until the output stopped growing.
struct Flooded {
    rss_before: u64,
    rss_after: u64,
    peak: u64,
    ingest: f64,
}

impl Flooded {
    fn growth_mib(&self) -> f64 {
        (self.rss_after as f64 - self.rss_before as f64) / 1024.0
    }

    fn peak_growth_mib(&self) -> f64 {
        (self.peak as f64 - self.rss_before as f64) / 1024.0
    }

    /// rsyslogd's memory over the flood, against the outage target.
    fn memory(&self) -> String {
        format!(
            "rsyslogd RSS {} -> {} MiB (growth {:.1} MiB, target <= 64; peak growth {:.1} MiB)",
            self.rss_before / 1024,
            self.rss_after / 1024,
            self.growth_mib(),
            self.peak_growth_mib()
        )
    }
}

/// Sends `bytes` to rsyslogd `d` and waits until `output` (a file or directory) has not grown
/// for three seconds: everything is then written.
fn flood_into(d: &Daemon, bytes: &[u8], output: &std::path::Path) -> Flooded {
    let rss_before = rss_kib(d.pid(), "VmRSS:");
    let started = Instant::now();
    send(d.ports.tcp, bytes);
    let mut last = (0, Instant::now());
    wait_until(Duration::from_secs(600), || {
        let size = if output.is_dir() {
            dir_bytes(output)
        } else {
            std::fs::metadata(output).map_or(0, |m| m.len())
        };
        if size != last.0 {
            last = (size, Instant::now());
        }
        last.1.elapsed() > Duration::from_secs(3)
    });
    Flooded {
        rss_before,
        rss_after: rss_kib(d.pid(), "VmRSS:"),
        peak: rss_kib(d.pid(), "VmHWM:"),
        ingest: started.elapsed().as_secs_f64() - 3.0,
    }
}

/// rsyslogd started on a state directory (System Manager down): seconds from the start to the
/// first new line committed (the recovery of what is pending comes first), the peak RSS and the
/// RSS once settled, in KiB.
struct Restart {
    first_line: f64,
    peak: u64,
    settled: u64,
}

fn restart_on(dir: &TestDir, body: &str) -> Restart {
    let started = Instant::now();
    let d = Daemon::start(dir, body);
    d.send_tcp(&[syslog_line("cm-east", "cmdhist", "change station 99999999")]);
    wait_until(Duration::from_secs(180), || {
        std::fs::read_to_string(dir.path("trace.json")).is_ok_and(|t| t.contains("99999999"))
    });
    let first_line = started.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(2));
    let r = Restart {
        first_line,
        peak: rss_kib(d.pid(), "VmHWM:"),
        settled: rss_kib(d.pid(), "VmRSS:"),
    };
    assert!(d.stop(Duration::from_secs(120)).success());
    r
}

/// The restart line: `keys` pending in `dir`'s state, measured against a start on an empty
/// state directory in the same run.
fn print_restart(what: &str, keys: usize, dir: &TestDir, body: &str) {
    let empty = {
        let fresh = TestDir::new();
        restart_on(&fresh, &body.replace(&dir.p(""), &fresh.p("")))
    };
    let r = restart_on(dir, body);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let peak = mib(r.peak.saturating_sub(empty.peak));
    let settled = mib(r.settled.saturating_sub(empty.settled));
    println!(
        "   {what}: restart with {keys} keys pending: first new line committed after {:.1} s (empty state: {:.1} s); RSS over an empty start's: peak {peak:.1} MiB, settled {settled:.1} MiB (the map), peak / settled {:.2} (target <= 1.5)",
        r.first_line,
        empty.first_line,
        peak / settled.max(0.1)
    );
}

/// Recovery of a large backlog: 300,000 pending keys written by the queue itself, then
/// rsyslogd started on them.
fn recovery() {
    use omcmsync::classify::Verb;
    use omcmsync::queue::{Queue, QueueConfig};
    use omcmsync::resync::{Change, Key, Scope};
    let keys = scale(300_000);
    let dir = TestDir::new();
    let (q, _) = Queue::open(&QueueConfig {
        dir: dir.path("state"),
        window_ms: 1000,
        burst_threshold: 1_000_000,
        fsync_every: Duration::from_millis(200),
        context: Default::default(),
        fallback_elements: Vec::new(),
        start_held: false,
    })
    .unwrap();
    let station: std::sync::Arc<str> = "station".into();
    let now = omcmsync::clock::now_ms();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(10_000) {
        q.submit(
            chunk
                .iter()
                .map(|i| Change {
                    key: Key {
                        element: "cm-east".into(),
                        scope: Scope::Object {
                            ty: station.clone(),
                            id: (1_000_000 + i).to_string().into(),
                        },
                    },
                    verb: Verb::Change,
                    login: Some("dadmin".into()),
                    reason: None,
                    at_ms: now,
                    origin: omcmsync::resync::Origin::Heard,
                })
                .collect(),
        )
        .unwrap();
    }
    drop(q);
    println!(
        "6. recovery: {keys} keys pending in a log of {:.1} MiB",
        dir_bytes(&dir.path("state")) as f64 / (1 << 20) as f64
    );
    let body = action(&dir, r#"burst.threshold="1000000" retry.max.ms="1000""#);
    print_restart("recovery", keys, &dir, &body);
}

/// The outage and standby steps' flood: 1,000,000 changes over 100,000 stations (scaled), as
/// (changes, stations, the syslog lines).
fn station_flood() -> (usize, usize, Vec<u8>) {
    let changes = scale(1_000_000);
    let objects = scale(100_000);
    let mut bytes = Vec::new();
    for i in 0..changes {
        bytes.extend_from_slice(
            format!(
                "<13>Nov 25 10:15:02 cm-east cmdhist: change station {}\n",
                1_000_000 + i % objects
            )
            .as_bytes(),
        );
    }
    (changes, objects, bytes)
}

fn outage() {
    let (changes, objects, bytes) = station_flood();
    // Baseline: the same flood into rsyslogd writing it to a file with omfile (rsyslog's own
    // memory for taking it in).
    let base = {
        let dir = TestDir::new();
        let d = Daemon::start(
            &dir,
            &format!(
                r#"action(type="omfile" file="{}" template="omcmsync_line")"#,
                dir.p("out.log")
            ),
        );
        let f = flood_into(&d, &bytes, &dir.path("out.log"));
        assert!(d.stop(Duration::from_secs(60)).success());
        f
    };
    let dir = TestDir::new();
    let port = free_port();
    let d = Daemon::start(
        &dir,
        &action_to(
            &dir,
            &format!("http://127.0.0.1:{port}"),
            r#"coalesce.window.ms="1000" burst.threshold="1000000" retry.max.ms="1000""#,
        )
        .replace(&format!(" trace.file=\"{}\"", dir.p("trace.json")), ""),
    );
    let state = dir.path("state");
    let f = flood_into(&d, &bytes, &state);
    let state_bytes = dir_bytes(&state);
    assert!(d.stop(Duration::from_secs(60)).success());
    let restart_body = action_to(
        &dir,
        &format!("http://127.0.0.1:{port}"),
        r#"coalesce.window.ms="1000" burst.threshold="1000000" retry.max.ms="1000""#,
    );
    let _ = std::fs::remove_file(dir.path("trace.json"));
    let restarted = restart_on(&dir, &restart_body);
    let d = Daemon::start(
        &dir,
        &restart_body.replace(&format!(" trace.file=\"{}\"", dir.p("trace.json")), ""),
    );
    let sim = Sim::start_on(&dir, &format!("127.0.0.1:{port}"), &[]);
    let back = Instant::now();
    wait_until(Duration::from_secs(600), || {
        sim.items_received() >= objects as u64
    });
    let drain = back.elapsed().as_secs_f64();
    // Without the restart's own line.
    let delivered = object_ids(&sim.resync_items(), "cm-east")
        .iter()
        .filter(|id| *id != "99999999")
        .count();
    println!(
        "3. outage: {changes} changes over {objects} stations with SMGR down: queued in {:.1} s; {}; state.dir {:.1} MiB",
        f.ingest,
        f.memory(),
        state_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "   baseline, the same flood into omfile: taken in {:.1} s; RSS growth {:.1} MiB (peak growth {:.1} MiB)",
        base.ingest,
        base.growth_mib(),
        base.peak_growth_mib()
    );
    println!(
        "   restarted with the backlog: first new line committed after {:.1} s; peak RSS {} MiB, settled {} MiB (recovery in numbers: step 6)",
        restarted.first_line,
        restarted.peak / 1024,
        restarted.settled / 1024
    );
    println!(
        "   SMGR back: {delivered} of {objects} stations delivered in {drain:.1} s ({} POSTs)",
        sim.requests().len()
    );
    assert!(d.stop(Duration::from_secs(60)).success());
}

/// A standby holding a flood: 1,000,000 changes over 100,000 stations heard while standby
/// (`ha.standby="hold"`), then the promotion: RSS growth and state.dir size (the outage
/// step's targets), then the time from promotion to the last request at the simulator.
fn standby() {
    let (changes, objects, bytes) = station_flood();
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    std::fs::write(dir.path("role"), "standby").unwrap();
    let d = Daemon::start(
        &dir,
        &action_to(
            &dir,
            sim.url(),
            &format!(
                r#"coalesce.window.ms="1000" burst.threshold="1000000" ha.mode="file" ha.file="{}" ha.interval.ms="200""#,
                dir.p("role")
            ),
        )
        .replace(&format!(" trace.file=\"{}\"", dir.p("trace.json")), ""),
    );
    let state = dir.path("state");
    let f = flood_into(&d, &bytes, &state);
    let state_bytes = dir_bytes(&state);
    let posted = sim.requests().len();
    std::fs::write(dir.path("role"), "active").unwrap();
    let promoted = Instant::now();
    wait_until(Duration::from_secs(600), || {
        sim.items_received() >= objects as u64
    });
    let drain = promoted.elapsed().as_secs_f64();
    println!(
        "7. standby: {changes} changes over {objects} stations held: taken in {:.1} s; {}; state.dir {:.1} MiB; {posted} POSTs while standby",
        f.ingest,
        f.memory(),
        state_bytes as f64 / (1 << 20) as f64
    );
    println!(
        "   promoted: {} of {objects} stations at the simulator {drain:.1} s after the role file said active (reads every 200 ms, two in a row)",
        object_ids(&sim.resync_items(), "cm-east").len()
    );
    assert!(d.stop(Duration::from_secs(60)).success());
}

fn latency() {
    let seconds = scale(10).max(3);
    let dir = TestDir::new();
    let sim = Sim::start(&dir, &[]);
    let d = Daemon::start(
        &dir,
        &action_to(&dir, sim.url(), r#"coalesce.window.ms="0""#)
            .replace(&format!(" trace.file=\"{}\"", dir.p("trace.json")), ""),
    );
    let mut s = TcpStream::connect(("127.0.0.1", d.ports.tcp)).unwrap();
    let total = seconds * 1000;
    let started = Instant::now();
    for i in 0..total {
        let due = started + Duration::from_micros(i as u64 * 1000);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        s.write_all(
            format!(
                "<13>Nov 25 10:15:02 cm-east cmdhist: change station {}\n",
                2_000_000 + i
            )
            .as_bytes(),
        )
        .unwrap();
    }
    wait_until(Duration::from_secs(120), || {
        sim.items_received() >= total as u64
    });
    let mut latencies: Vec<u64> = sim
        .requests()
        .iter()
        .flat_map(|r| {
            let at = parse_rfc3339_ms(r["time"].as_str().unwrap()).unwrap();
            r["body"]["requests"]
                .as_array()
                .unwrap()
                .iter()
                .map(move |q| at - parse_rfc3339_ms(q["first_seen"].as_str().unwrap()).unwrap())
        })
        .collect();
    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    println!(
        "4. latency: {total} changes at 1000/s, window 0: receipt by rsyslogd -> request at SMGR p50 {} ms, p99 {} ms, max {} ms ({} POSTs)",
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap(),
        sim.requests().len()
    );
    assert!(d.stop(Duration::from_secs(60)).success());
}

/// Per thread of `pid`, by name: (CPU ticks, context switches), each summed over the threads
/// of one name.
fn thread_activity(pid: i32) -> std::collections::BTreeMap<String, (u64, u64)> {
    let mut out = std::collections::BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let p = task.path();
        let (Ok(comm), Ok(stat), Ok(status)) = (
            std::fs::read_to_string(p.join("comm")),
            std::fs::read_to_string(p.join("stat")),
            std::fs::read_to_string(p.join("status")),
        ) else {
            continue;
        };
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
            .split_whitespace()
            .collect();
        let ticks = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        let switches: u64 = status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum();
        let e = out.entry(comm.trim().to_owned()).or_insert((0, 0));
        e.0 += ticks;
        e.1 += switches;
    }
    out
}

/// Step 8, idle: rsyslogd with nothing to do, without the module (`stop`) and with the
/// shipped configuration (ha.mode `always`, nothing pending), each watched for a minute after
/// it has settled: CPU ticks and context switches (a wakeup each, nearly) of all its threads,
/// and of each of the module's.
fn idle() {
    let window = Duration::from_secs(scale(60) as u64);
    println!(
        "== 8. idle: rsyslogd with nothing to do, {} s after 5 s to settle",
        window.as_secs()
    );
    for setup in [Setup::Stop, Setup::Shipped] {
        let dir = TestDir::new();
        let sim = Sim::start(&dir, &[]);
        let ports = Ports::free();
        let d = Daemon::start_config(
            &dir,
            ports,
            &setup_config(&dir, ports, sim.url(), setup, ""),
        );
        std::thread::sleep(Duration::from_secs(5));
        let before = thread_activity(d.pid());
        std::thread::sleep(window);
        let after = thread_activity(d.pid());
        assert!(d.stop(Duration::from_secs(60)).success());
        let delta = |name: &String, (t, s): &(u64, u64)| {
            let (t0, s0) = before.get(name).copied().unwrap_or((0, 0));
            (t - t0, s - s0)
        };
        let (ticks, switches) = after
            .iter()
            .map(|(n, v)| delta(n, v))
            .fold((0, 0), |(a, b), (t, s)| (a + t, b + s));
        let secs = window.as_secs_f64();
        println!(
            "   {:<10} {} threads: {ticks} CPU ticks, {:.0} context switches per minute ({:.2} a second)",
            setup.name(),
            after.len(),
            switches as f64 * 60.0 / secs,
            switches as f64 / secs
        );
        let module: Vec<String> = after
            .iter()
            .filter(|(n, _)| n.starts_with("omcmsync"))
            .map(|(n, v)| {
                let (t, s) = delta(n, v);
                format!("{n} {:.2}/s {t} ticks", s as f64 / secs)
            })
            .collect();
        if !module.is_empty() {
            println!("     the module's threads: {}", module.join(", "));
        }
    }
}

/// CPU seconds of `pid`'s children it has waited for (rsyslogd reaps the OSSI client).
fn reaped_cpu_seconds(pid: i32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[13].parse::<f64>().unwrap() + fields[14].parse::<f64>().unwrap();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

/// CM behind sshd and rsyslogd with the module reconciling it; `records` station changes in
/// CM's history, half of them heard by syslog (and delivered) before this returns.
fn reconciling(records: u64) -> (TestDir, common::cm::CmSsh, Sim, Daemon) {
    use common::cm::{CmSsh, PasswordBy};
    let dir = TestDir::new();
    let cm = CmSsh::start(serde_json::json!({}), PasswordBy::Password);
    let sim = Sim::start(&dir, &[]);
    let extra = cm.reconcile_params(&dir.path(""), 86_400_000);
    let d = Daemon::start(&dir, &action_to(&dir, sim.url(), &extra));
    let now = time::OffsetDateTime::now_utc();
    let date = format!("{:02}/{:02}", u8::from(now.month()), now.day());
    let minute = format!("{:02}:{:02}", now.hour(), now.minute());
    d.send_tcp(
        &(0..records / 2)
            .map(|i| station_change(10_000 + i))
            .collect::<Vec<_>>(),
    );
    let mut history: Vec<serde_json::Value> = (0..records)
        .map(|i| {
            serde_json::json!([
                date,
                minute,
                "S00107",
                "dadmin",
                "chan",
                "station",
                (10_000 + i).to_string()
            ])
        })
        .collect();
    history.push(serde_json::json!([
        "01/01", "09:00", "S00001", "dadmin", "logn", "", ""
    ]));
    cm.set_scenario(serde_json::json!({ "history": history }));
    sim.wait_items(Duration::from_secs(60), |i| i.len() as u64 >= records / 2);
    (dir, cm, sim, d)
}

/// One reconciliation of a history of `records` (half heard by syslog), measured.
fn reconcile_run(records: u64) {
    let (dir, cm, _sim, d) = reconciling(records);
    let pid = d.pid();
    let (cpu, reaped, rss) = (
        cpu_seconds(pid),
        reaped_cpu_seconds(pid),
        rss_kib(pid, "VmRSS:"),
    );
    let out = omcmsync_cli(&dir.path("state"), &["reconcile", "--wait", "120"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let status = module_status(&dir.path("state"), Duration::from_secs(10));
    let run = &status["reconcile"][0]["last_run"];
    println!(
        "   {records:>5} records: session {} ms, judging {} ms; rsyslogd {:.3} CPU-s (5 s settle included), the OSSI client {:.3} CPU-s; rsyslogd RSS {:+} KiB; {} heard, {} missed",
        run["session_ms"],
        run["judge_ms"],
        cpu_seconds(pid) - cpu,
        reaped_cpu_seconds(pid) - reaped,
        rss_kib(pid, "VmRSS:") as i64 - rss as i64,
        run["heard"],
        run["missed"],
    );
    assert!(d.stop(Duration::from_secs(30)).success());
    // The client alone, its own rusage (wait4): finer than rsyslogd's clock ticks.
    let mut args = cm.password_args();
    args.extend(["--command", "display time", "--command", "list history"].map(String::from));
    let started = Instant::now();
    let mut child = std::process::Command::new(workspace_bin("omcmsync-ossi"))
        .args(&args)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (cpu, max_rss) = wait_usage(child.id() as i32);
    let _ = child.wait(); // reaped by wait4 already
    println!(
        "          the OSSI client alone: {} ms, {:.1} ms CPU, max RSS {max_rss} KiB",
        started.elapsed().as_millis(),
        cpu * 1000.0
    );
}

/// Waits for child `pid`: its CPU seconds and max RSS (KiB).
fn wait_usage(pid: i32) -> (f64, i64) {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    let mut status = 0;
    unsafe { libc::wait4(pid, &mut status, 0, &mut u) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(u.ru_utime) + secs(u.ru_stime), u.ru_maxrss)
}

fn reconcile() {
    println!("== 9. reconcile: one session and its judgement, CM behind a real sshd");
    for records in [10, 1000] {
        reconcile_run(records);
    }
}

fn main() {
    // `cargo test --all-targets` runs benches too: do nothing then.
    if std::env::args().any(|a| a == "--bench") || std::env::var_os("OMCM_BENCH").is_some() {
        println!(
            "omcmsync inside rsyslogd {} on {} cores",
            rsyslogd(),
            std::thread::available_parallelism().map_or(0, |n| n.get())
        );
        let which = std::env::var("OMCM_BENCH_ONLY").unwrap_or_default();
        for (name, f) in [
            ("throughput", throughput as fn()),
            ("coalescing", coalescing),
            ("outage", outage),
            ("latency", latency),
            ("recovery", recovery),
            ("standby", standby),
            ("instructions", instructions),
            ("idle", idle),
            ("reconcile", reconcile),
        ] {
            if which.is_empty() || which.split(',').any(|w| w == name) {
                f();
            }
        }
    }
}
