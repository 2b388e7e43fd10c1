//! Fuzz target: any bytes, as text, through the OSSI reply parser (what CM's port answers is
//! untrusted). Run: `cargo fuzz run ossi` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let reply = omcmsync::ossi::parse_reply(&String::from_utf8_lossy(data));
    let _ = reply.failure();
});
