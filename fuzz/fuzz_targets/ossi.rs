//! Fuzz target: any bytes, as text, through the OSSI reply parser, and as CM's side of a whole
//! session through the dialogue, cut in two where the first byte says (what CM's port answers
//! is untrusted). Run: `cargo fuzz run ossi` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reply = omcmsync::ossi::parse_reply(&String::from_utf8_lossy(data));
    let _ = reply.failure();
    let cut = data.first().map_or(0, |&b| b as usize).min(data.len());
    let mut dialogue = omcmsync::ossi::Dialogue::new("ossit", &["list history"]).unwrap();
    if dialogue.receive(&data[..cut]).is_ok() {
        let _ = dialogue.receive(&data[cut..]);
    }
    let _ = dialogue.into_replies();
});
