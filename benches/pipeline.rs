//! The module's whole per-batch path outside rsyslogd: `Action::process_batch` on batches of
//! 1,024 rendered lines (split, classify, filter, queue with its fsync), beside a baseline that
//! does what omfile does with the same lines (append them to a file, flush per batch). Prints
//! wall time and CPU time (all threads, so the queue writer counts) per message, and the ratios.
//!
//!     cargo bench --bench pipeline
//!
//! Then the hand-off docs/design.md argues against: the same batches passed over a
//! crossbeam channel to a thread that writes them and answers, against the worker's own write.
//!
//! Then the coalescing map's memory per pending key (heap in use, from glibc's `mallinfo2`),
//! the module's share of rsyslogd's memory during an SMGR outage.
//!
//! Then reconciliation's memory at its cap (50,000 heard changes of one element): how long a
//! write of `reconcile.json` holds the lock the action's batches take, and the whole write.
//!
//! This isolates the module's own cost from rsyslog's and the VM's: the daemon benchmark shows
//! the effect inside rsyslogd. Figures go to docs/benchmarks.md; nothing here asserts a time.

use std::io::Write;
use std::time::Instant;

use omcmsync::action::Action;
use omcmsync::classify::Verb;
use omcmsync::config::{Config, Value};
use omcmsync::queue::Pending;
use omcmsync::resync::{Change, Key, Scope};
use omcmsync::sample::{command_line, noise_line, Rng};

const LINES: usize = 200_000;
const BATCH: usize = 1024;
const TRIALS: usize = 7;

/// Lines as the module's template renders them: sender, hostname, time, message.
fn rendered(n: usize, command_percent: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng::new(11);
    (0..n)
        .map(|_| {
            let msg = if rng.below(100) < command_percent {
                command_line(&mut rng)
            } else {
                noise_line(&mut rng)
            };
            format!("10.1.1.10\tcm-east\t2026-11-25T10:15:02.123+00:00\t{msg}").into_bytes()
        })
        .collect()
}

/// Process CPU seconds (user + system, all threads).
fn cpu_seconds() -> f64 {
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(u.ru_utime) + t(u.ru_stime)
}

/// One pass of `f` over all lines: (wall ns/msg, CPU ns/msg).
fn pass(lines: &[Vec<u8>], f: &mut impl FnMut(&[Vec<u8>])) -> (f64, f64) {
    let (t0, c0) = (Instant::now(), cpu_seconds());
    lines.chunks(BATCH).for_each(f);
    let n = lines.len() as f64;
    (
        t0.elapsed().as_secs_f64() * 1e9 / n,
        (cpu_seconds() - c0) * 1e9 / n,
    )
}

/// Medians of TRIALS passes of the baseline `a` and of `b`, taken in turns (a b a b ...) so
/// that a change of the VM's speed weighs on both: [(wall, CPU) of a, (wall, CPU) of b].
fn measure(
    lines: &[Vec<u8>],
    mut a: impl FnMut(&[Vec<u8>]),
    mut b: impl FnMut(&[Vec<u8>]),
) -> [(f64, f64); 2] {
    let mut runs = [Vec::new(), Vec::new(), Vec::new(), Vec::new()];
    for _ in 0..TRIALS {
        let ((aw, ac), (bw, bc)) = (pass(lines, &mut a), pass(lines, &mut b));
        for (v, x) in runs.iter_mut().zip([aw, ac, bw, bc]) {
            v.push(x);
        }
    }
    let [aw, ac, bw, bc] = runs.map(|mut v| {
        v.sort_by(f64::total_cmp);
        v[TRIALS / 2]
    });
    [(aw, ac), (bw, bc)]
}

fn pipeline(dir: &std::path::Path, name: &str, fsync_ms: &str) -> Action {
    let elements = dir.join("elements.json");
    std::fs::write(
        &elements,
        r#"{"elements":[{"name":"cm-east","hosts":["10.1.1.10"]}]}"#,
    )
    .unwrap();
    let values = [
        ("smgr.url", "http://127.0.0.1:9".to_string()),
        ("elements.file", elements.display().to_string()),
        ("state.dir", dir.join(name).display().to_string()),
        ("coalesce.window.ms", "3600000".into()),
        ("burst.threshold", "1000000".into()),
        ("queue.fsync.ms", fsync_ms.into()),
    ];
    let config = Config::from_values(values.into_iter().map(|(k, v)| (k, Value::Text(v))));
    let p = Action::new(config.unwrap());
    assert!(p.start());
    p
}

/// Bytes the allocator has handed out and not had back.
fn heap_in_use() -> usize {
    let m = unsafe { libc::mallinfo2() };
    m.uordblks + m.hblkhd
}

/// Heap bytes per key of a map holding `keys` stations, each changed twice by one login.
fn map_bytes_per_key(keys: usize) -> f64 {
    let station: std::sync::Arc<str> = "station".into();
    let element: std::sync::Arc<str> = "cm-east".into();
    let before = heap_in_use();
    let mut pending = Pending::new(3_600_000, usize::MAX);
    for seq in 0..2 * keys as u64 {
        let change = Change {
            key: Key {
                element: element.clone(),
                scope: Scope::Object {
                    ty: station.clone(),
                    id: (1_000_000 + seq % keys as u64).to_string().into(),
                },
            },
            verb: Verb::Change,
            login: Some("dadmin".into()),
            reason: None,
            at_ms: 1_764_065_702_123 + seq,
            origin: omcmsync::resync::Origin::Heard,
        };
        pending.merge(change, seq, u64::MAX);
    }
    let per_key = (heap_in_use() - before) as f64 / keys as f64;
    assert_eq!(pending.len(), keys);
    per_key
}

/// The worker writing its batch itself (as the module does) against handing it to a queue
/// thread over a crossbeam channel and waiting for the answer (as it once did over std's).
fn handoff(dir: &std::path::Path) {
    let lines = rendered(LINES, 5);
    let direct = pipeline(dir, "state-direct", "200");
    let threaded = pipeline(dir, "state-handoff", "200");
    let (to_writer, batches) = crossbeam_channel::bounded::<usize>(1);
    let (to_worker, answers) = crossbeam_channel::bounded::<()>(1);
    let [(dw, dc), (hw, hc)] = std::thread::scope(|scope| {
        let (lines, threaded) = (&lines, &threaded);
        scope.spawn(move || {
            for at in batches.iter() {
                let batch = &lines[at..(at + BATCH).min(lines.len())];
                threaded
                    .process_batch(0, batch.iter().map(Vec::as_slice))
                    .unwrap();
                to_worker.send(()).unwrap();
            }
        });
        let offset = |batch: &[Vec<u8>]| {
            (batch.as_ptr() as usize - lines.as_ptr() as usize) / std::mem::size_of::<Vec<u8>>()
        };
        let result = measure(
            lines,
            |batch| {
                direct
                    .process_batch(0, batch.iter().map(Vec::as_slice))
                    .unwrap()
            },
            |batch| {
                to_writer.send(offset(batch)).unwrap();
                answers.recv().unwrap();
            },
        );
        drop(to_writer);
        result
    });
    println!(
        "  5 % commands, worker -> queue: own write {dw:>6.0} ns/msg wall {dc:>6.0} CPU | hand-off over a channel {hw:>6.0} ns/msg wall {hc:>6.0} CPU | ratio wall {:.2} CPU {:.2}",
        hw / dw,
        hc / dc
    );
}

/// Reconciliation's memory with one element's heard changes at their cap: the median time of
/// one element's copy (what a write of `reconcile.json` does under the lock batches take), of a
/// whole write, and of one batch's note of 50 changes (the action's share), over 7 trials.
fn memory_at_cap(dir: &std::path::Path) {
    use omcmsync::reconcile::{Heard, Memory, RECENT_MAX};
    let memory = Memory::new(std::time::Duration::from_secs(600), Default::default());
    memory.open(dir.join("reconcile.json"));
    memory.watch("cm-east", 1_764_065_702_123);
    let station: std::sync::Arc<str> = "station".into();
    let heard = |seq: u64| Heard {
        at: 1_764_065_702_123 + seq,
        scope: Scope::Object {
            ty: station.clone(),
            id: (1_000_000 + seq).to_string().into(),
        },
        login: Some("dadmin".into()),
    };
    memory.note(
        (0..RECENT_MAX as u64)
            .map(|i| ("cm-east".to_string(), heard(i)))
            .collect(),
    );
    let median = |f: &mut dyn FnMut()| {
        let mut times: Vec<f64> = (0..TRIALS)
            .map(|_| {
                let started = Instant::now();
                f();
                started.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        times.sort_by(f64::total_cmp);
        times[TRIALS / 2]
    };
    let copy = median(&mut || drop(memory.get("cm-east")));
    let mut seq = RECENT_MAX as u64;
    let note = median(&mut || {
        let batch = (seq..seq + 50)
            .map(|i| ("cm-east".to_string(), heard(i)))
            .collect();
        memory.note(batch);
        seq += 50;
    });
    // Each write after a change (a write of an unchanged memory does nothing).
    let write = median(&mut || {
        memory.note(vec![("cm-east".to_string(), heard(seq))]);
        seq += 1;
        memory.save_if_changed().unwrap();
    });
    let bytes = std::fs::metadata(dir.join("reconcile.json")).unwrap().len();
    println!(
        "reconcile memory, {RECENT_MAX} heard changes: copy under the lock {copy:.1} ms | whole write {write:.1} ms ({:.1} MB) | one batch's note of 50 {:.3} ms | copy / a batch's note {:.0}",
        bytes as f64 / 1e6,
        note,
        copy / note
    );
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    println!(
        "pipeline on {LINES} rendered lines in batches of {BATCH}, median of {TRIALS} trials, state in {}",
        dir.path().display()
    );
    // `OMCM_BENCH_COMMANDS=N`: only that command share (for profiling one case).
    let shares = match std::env::var("OMCM_BENCH_COMMANDS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(n) => vec![n],
        None => vec![0, 5, 100],
    };
    // (share, queue.fsync.ms): the default, and an fsync before every commit.
    let runs = shares.into_iter().map(|p| (p, "200")).chain([(5, "0")]);
    for (percent, fsync_ms) in runs {
        let lines = rendered(LINES, percent);
        let mut file = std::io::BufWriter::with_capacity(
            64 << 10,
            std::fs::File::create(dir.path().join(format!("out-{percent}.log"))).unwrap(),
        );
        let p = pipeline(dir.path(), &format!("state-{percent}-{fsync_ms}"), fsync_ms);
        let [(fw, fc), (pw, pc)] = measure(
            &lines,
            |batch| {
                for l in batch {
                    file.write_all(l).unwrap();
                    file.write_all(b"\n").unwrap();
                }
                file.flush().unwrap();
            },
            |batch| p.process_batch(0, batch.iter().map(Vec::as_slice)).unwrap(),
        );
        println!(
            "{percent:>3} % commands, queue.fsync.ms={fsync_ms:<3}: file append {fw:>6.0} ns/msg wall {fc:>6.0} CPU | pipeline {pw:>6.0} ns/msg wall {pc:>6.0} CPU | ratio wall {:.2} CPU {:.2}",
            pw / fw,
            pc / fc
        );
    }
    handoff(dir.path());
    let keys = 100_000;
    println!(
        "coalescing map: {keys} pending keys, {:.0} heap bytes per key",
        map_bytes_per_key(keys)
    );
    memory_at_cap(dir.path());
}
