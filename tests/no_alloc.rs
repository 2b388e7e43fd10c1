//! The classifier allocates nothing, for ignored lines (the hot path) nor for events: a counting
//! global allocator in this test binary proves it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use omcmsync::classify::{Classifier, Verdict};
use omcmsync::sample::{command_line, noise_line, Rng};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn classifying_allocates_nothing() {
    let classifier = Classifier::default();
    let mut rng = Rng::new(3);
    let mut lines: Vec<String> = (0..2000).map(|_| noise_line(&mut rng)).collect();
    lines.extend((0..2000).map(|_| command_line(&mut rng)));
    lines.extend(
        [
            "change widget 1",
            "change station",
            "tti-m 2002",
            "display station 1",
        ]
        .map(String::from),
    );
    let before = allocations();
    let mut events = 0;
    for line in &lines {
        if let Verdict::Event(e) = classifier.classify(line.as_bytes()) {
            events += usize::from(e.login.is_some() || e.client_ip.is_some() || e.login.is_none());
        }
    }
    assert_eq!(allocations() - before, 0);
    assert!(events >= 2000);
    // The counter does count: a line kept as an owned String is one allocation.
    let before = allocations();
    let kept = String::from_utf8_lossy(lines[0].as_bytes()).into_owned();
    assert_eq!(allocations() - before, 1, "{kept}");
}
