//! Classifier throughput on one core, beside the floor: a memchr scan counting the lines of the
//! same bytes. Prints lines/s for noise, commands and a 95/5 mix, and the ratio to the floor.
//!
//!     cargo bench --bench classify
//!
//! Each figure is the median of 15 trials of about 0.1 s (the best trial beside it), so that a
//! busy neighbour on a shared machine shows as spread rather than as a wrong number.
//! Figures go to docs/benchmarks.md; nothing here asserts a time.

use std::hint::black_box;
use std::time::{Duration, Instant};

use omcmsync::classify::{Classifier, Limits, Reason, Verdict};
use omcmsync::sample::{command_line, mixed_lines, noise_line, Rng};

const LINES: usize = 200_000;
const TRIALS: usize = 15;
const TRIAL_TIME: Duration = Duration::from_millis(100);

/// Lines per second of `f` (which handles `lines` lines per call): (median, best) of TRIALS.
fn rate(lines: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut rates: Vec<f64> = (0..TRIALS)
        .map(|_| {
            let (started, mut done) = (Instant::now(), 0);
            while started.elapsed() < TRIAL_TIME {
                f();
                done += lines;
            }
            done as f64 / started.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    (rates[TRIALS / 2], rates[TRIALS - 1])
}

fn measure(name: &str, classifier: &Classifier, lines: &[String]) {
    let mut bytes = Vec::new();
    for l in lines {
        bytes.extend_from_slice(l.as_bytes());
        bytes.push(b'\n');
    }
    let split: Vec<&[u8]> = lines.iter().map(|l| l.as_bytes()).collect();
    let floor = rate(lines.len(), || {
        black_box(memchr::memchr_iter(b'\n', black_box(&bytes)).count());
    });
    let classify = rate(lines.len(), || {
        let events = split
            .iter()
            .filter(|&&line| matches!(classifier.classify(black_box(line)), Verdict::Event(_)))
            .count();
        black_box(events);
    });
    let avg = bytes.len() as f64 / lines.len() as f64;
    println!(
        "{name:<16} classify {:>6.2} M lines/s (best {:>6.2}, {:>5.0} MB/s)  memchr floor {:>7.1} M lines/s  ratio {:.4}  {avg:.0} B/line",
        classify.0 / 1e6,
        classify.1 / 1e6,
        classify.0 * avg / 1e6,
        floor.0 / 1e6,
        classify.0 / floor.0
    );
}

fn main() {
    // `cargo test --all-targets` runs benches too, without --bench: do nothing then.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let c = Classifier::default();
    let mut rng = Rng::new(42);
    let noise: Vec<String> = (0..LINES).map(|_| noise_line(&mut rng)).collect();
    let commands: Vec<String> = (0..LINES).map(|_| command_line(&mut rng)).collect();
    let mixed = mixed_lines(&mut rng, LINES, 5);
    println!(
        "classifier on one core, {LINES} generated lines per corpus, median of {TRIALS} trials"
    );
    measure("noise", &c, &noise);
    measure("commands", &c, &commands);
    measure("mixed 95/5", &c, &mixed);
    // Hostile input at the line limit: many verbs and objects that never complete, no
    // separators at all, and escapes. Linear time shows as bytes/s close to the other corpora.
    let limit = Limits::default().max_line;
    let fill = |pattern: &str| pattern.repeat(limit / pattern.len() + 1)[..limit].to_string();
    let hostile: Vec<String> = (0..2_000)
        .map(|i| match i % 4 {
            0 => fill("change station "),
            1 => fill("ch "),
            2 => fill("x"),
            _ => fill("#011change#011st"),
        })
        .collect();
    assert!(hostile
        .iter()
        .all(|l| c.classify(l.as_bytes()) != Verdict::Ignored(Reason::TooLong)));
    measure("hostile at limit", &c, &hostile);
}
