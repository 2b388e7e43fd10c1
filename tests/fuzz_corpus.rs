//! Replays the fuzzing corpora (fuzz/corpus/classify and fuzz/corpus/ossi: the seeds plus
//! every input libFuzzer kept for new coverage) exactly as the fuzz targets do: none may panic,
//! and each verdict or reply must be the same twice.

use omcmsync::classify::{Classifier, VerdictFields};
use omcmsync::line::ReceivedLine;
use omcmsync::ossi::{parse_reply, Dialogue};

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

/// The OSSI target's corpus (fuzz/corpus/ossi), replayed as the target does: through the reply
/// parser (the same reply twice) and through a whole session's dialogue.
#[test]
fn ossi_fuzz_corpus_replays_cleanly() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/ossi");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz corpus directory") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        let text = String::from_utf8_lossy(&data);
        assert_eq!(parse_reply(&text), parse_reply(&text));
        let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
        let mut dialogue = Dialogue::new("ossit", &["list history"]).unwrap();
        if dialogue.receive(&data[..cut]).is_ok() {
            let _ = dialogue.receive(&data[cut..]);
        }
        replayed += 1;
    }
    assert!(replayed >= 100, "corpus has only {replayed} inputs");
}
