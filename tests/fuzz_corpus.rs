//! Replays the fuzzing corpus (fuzz/corpus/classify: the seeds plus every input libFuzzer kept
//! for new coverage) through the line splitter and the classifier, exactly as the fuzz target
//! does: none may panic, and each verdict must be the same twice.

use omcmsync::classify::{Classifier, VerdictFields};
use omcmsync::line::ReceivedLine;

#[test]
fn fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/classify");
    let classifier = Classifier::default();
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let verdict = classifier.classify(&data);
        assert_eq!(verdict, classifier.classify(&data));
        let _ = serde_json::to_string(&VerdictFields::of(&verdict));
        if let Ok(line) = ReceivedLine::parse(&data) {
            let _ = serde_json::to_string(&VerdictFields::of(&classifier.classify(line.message)));
        }
        replayed += 1;
    }
    assert!(replayed >= 100, "corpus has only {replayed} inputs");
}
