//! rsyslogd's own functions, looked up by name in the running daemon when the module loads.
//!
//! They are plain dynamic symbols of /usr/sbin/rsyslogd. Resolving them with `dlsym` instead of
//! leaving undefined references in the .so keeps the crate linkable into ordinary executables
//! (tools, tests) and turns "loaded into the wrong program" into a clear load error.

use std::ffi::{CStr, CString};

use once_cell::sync::OnceCell;

use super::abi::*;
use crate::logging::{self, Level};

/// The function type behind one of include/rsyslog.h's nullable function-pointer typedefs.
pub(super) type Fn<T> = <T as NonNull>::F;
pub(super) trait NonNull {
    type F;
}
impl<F> NonNull for Option<F> {
    type F = F;
}

pub(super) struct Host {
    pub nvlst_get_params: Fn<omcm_nvlstGetParams_t>,
    pub cnfparamvals_destruct: Fn<omcm_cnfparamvalsDestruct_t>,
    pub omsr_construct: Fn<omcm_OMSRconstruct_t>,
    pub omsr_set_entry: Fn<omcm_OMSRsetEntry_t>,
    pub omsr_destruct: Fn<omcm_OMSRdestruct_t>,
    log_error: Fn<omcm_LogError_t>,
    log_msg: Fn<omcm_LogMsg_t>,
    /// rsyslogd's `iConfigVerify` (an `int`, nonzero under `-N`), as an address: absent, we
    /// take every run for a check (the strict reading of the configuration).
    config_verify: usize,
}

static HOST: OnceCell<Host> = OnceCell::new();

/// Resolves the host functions once per process; names the first one missing.
pub(super) fn resolve() -> Result<&'static Host, String> {
    // SAFETY: each symbol gets the signature include/rsyslog.h declares for it (8.2302 ABI).
    HOST.get_or_try_init(|| unsafe {
        Ok(Host {
            nvlst_get_params: sym(c"nvlstGetParams")?,
            cnfparamvals_destruct: sym(c"cnfparamvalsDestruct")?,
            omsr_construct: sym(c"OMSRconstruct")?,
            omsr_set_entry: sym(c"OMSRsetEntry")?,
            omsr_destruct: sym(c"OMSRdestruct")?,
            log_error: sym(c"LogError")?,
            log_msg: sym(c"LogMsg")?,
            config_verify: libc::dlsym(libc::RTLD_DEFAULT, c"iConfigVerify".as_ptr()) as usize,
        })
    })
}

/// The host, once resolved (always, after a successful modInit).
pub(super) fn get() -> Option<&'static Host> {
    HOST.get()
}

/// # Safety
/// `F` must be the function-pointer type of the symbol `name`.
unsafe fn sym<F: Copy>(name: &CStr) -> Result<F, String> {
    assert_eq!(
        std::mem::size_of::<F>(),
        std::mem::size_of::<*mut libc::c_void>()
    );
    // dlsym with a NUL-terminated name; RTLD_DEFAULT searches the process's global symbols.
    let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr());
    if p.is_null() {
        return Err(format!(
            "rsyslogd function {} not found: omcmsync must be loaded by rsyslogd 8.x",
            name.to_string_lossy()
        ));
    }
    Ok(std::mem::transmute_copy::<*mut libc::c_void, F>(&p))
}

impl Host {
    /// Whether this run only checks the configuration (`rsyslogd -N1`).
    pub fn config_check_only(&self) -> bool {
        // SAFETY: the address of rsyslogd's global `int iConfigVerify` (exported by 8.2102 to
        // 8.2504), set before the configuration is read and not changed after.
        self.config_verify == 0 || unsafe { *(self.config_verify as *const libc::c_int) != 0 }
    }

    /// Logs through rsyslog; `code` becomes the `rsyslogd-NNNN` tag (RS_RET_NO_ERRCODE: none).
    pub fn log(&self, level: Level, code: rsRetVal, msg: &str) {
        let msg = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
        // SAFETY: printf-style host functions called with a constant "%s" format and one C string.
        unsafe {
            match level {
                Level::Error => (self.log_error)(0, code, c"%s".as_ptr(), msg.as_ptr()),
                Level::Warning => {
                    (self.log_msg)(0, code, OMCM_LOG_WARNING, c"%s".as_ptr(), msg.as_ptr())
                }
                Level::Info => (self.log_msg)(0, code, OMCM_LOG_INFO, c"%s".as_ptr(), msg.as_ptr()),
            }
        }
    }
}

/// The logging sink installed at modInit.
pub(super) fn log_sink(level: Level, msg: &str) {
    match get() {
        Some(host) => host.log(level, RS_RET_NO_ERRCODE, msg),
        None => eprintln!("{msg}"),
    }
}

/// Installs [`log_sink`] for the pure-Rust modules and the libraries' `log` messages.
pub(super) fn install_logging() {
    logging::set_sink(Some(log_sink));
    logging::bridge_libraries();
}
