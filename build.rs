//! Generates Rust declarations of our rsyslog ABI subset (include/rsyslog.h) with bindgen.

fn main() {
    let header = "include/rsyslog.h";
    println!("cargo:rerun-if-changed={header}");
    let bindings = bindgen::Builder::default()
        .header(header)
        .allowlist_type("es_str_t|cnfparam.*|svar|omodStringRequest_t|actWrkrIParams_t|omcm_.*|obj_if_t|statsobj_if_t|interface_t")
        .allowlist_var("RS_RET_.*|OMCM_.*|PTHREAD_CANCEL_(EN|DIS)ABLE")
        .allowlist_function("pthread_setcancelstate")
        .default_macro_constant_type(bindgen::MacroTypeVariation::Signed)
        .derive_default(true)
        .layout_tests(true)
        .generate()
        .expect("bindgen failed on include/rsyslog.h (is libclang-dev installed?)");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("rsyslog_abi.rs");
    bindings.write_to_file(out).expect("writing bindings");
}
