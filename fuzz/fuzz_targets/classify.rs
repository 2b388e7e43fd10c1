//! Fuzz target: any bytes, as a template line and as a bare message, through the line splitter
//! and the classifier (and its JSON report). Run: `cargo fuzz run classify` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;
use omcmsync::classify::{Classifier, VerdictFields};
use omcmsync::line::ReceivedLine;
use once_cell::sync::Lazy;

static CLASSIFIER: Lazy<Classifier> = Lazy::new(Classifier::default);

fuzz_target!(|data: &[u8]| {
    let verdict = CLASSIFIER.classify(data);
    let _ = serde_json::to_string(&VerdictFields::of(&verdict));
    if let Ok(line) = ReceivedLine::parse(data) {
        let _ = serde_json::to_string(&VerdictFields::of(&CLASSIFIER.classify(line.message)));
    }
});
