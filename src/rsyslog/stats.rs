//! The module's counters in rsyslog's own statistics (impstats), through rsyslog's statsobj
//! interface (../shared/spec/rsyslog-module-abi.md §8). Optional by design: when the daemon does
//! not offer the interface version we speak (statsobj 13, rsyslog 8.2302 to 8.2512), the module
//! runs without and says so once.

use std::ffi::{c_void, CString};
use std::sync::atomic::AtomicU64;

use once_cell::sync::OnceCell;

use super::abi::*;
use crate::logging;

/// The statsobj interface rsyslog filled in for us.
struct StatsIf(statsobj_if_t);

// SAFETY: a table of function pointers into rsyslogd, written once at load and only read after.
unsafe impl Send for StatsIf {}
unsafe impl Sync for StatsIf {}

static STATS: OnceCell<Option<StatsIf>> = OnceCell::new();

/// Asks rsyslog for the statsobj interface (once per process, at modInit).
///
/// # Safety
/// `host_query` is the host query function rsyslog passed to modInit.
pub(super) unsafe fn init(host_query: omcm_query_t) {
    STATS.get_or_init(|| {
        let found = interface(host_query);
        if let Err(why) = &found {
            logging::info(&format!(
                "impstats counters not available ({why}); running without them"
            ));
        }
        found.ok().map(StatsIf)
    });
}

unsafe fn interface(host_query: omcm_query_t) -> Result<statsobj_if_t, String> {
    let query = host_query.ok_or("no host query function")?;
    let mut entry: omcm_entry_t = None;
    if query(c"objGetObjInterface".as_ptr() as *mut u8, &mut entry) != RS_RET_OK {
        return Err("objGetObjInterface not offered".into());
    }
    let get_obj = std::mem::transmute::<omcm_entry_t, omcm_objGetObjInterface_t>(entry)
        .ok_or("null entry")?;
    let mut obj: obj_if_t = std::mem::zeroed();
    // objGetObjInterface fills the table only for the version we ask for (and says OK either way).
    obj.ifVersion = OMCM_OBJ_IF_VERSION;
    let rc = get_obj(&mut obj);
    let use_obj = obj
        .UseObj
        .filter(|_| rc == RS_RET_OK)
        .ok_or(format!("obj interface: error {rc}"))?;
    let mut stats: statsobj_if_t = std::mem::zeroed();
    stats.ifVersion = wanted_version();
    let rc = use_obj(
        c"omcmsync".as_ptr(),
        c"statsobj".as_ptr() as *mut u8,
        std::ptr::null_mut(),
        &mut stats as *mut statsobj_if_t as *mut interface_t,
    );
    let complete = stats.Construct.is_some()
        && stats.ConstructFinalize.is_some()
        && stats.Destruct.is_some()
        && stats.SetName.is_some()
        && stats.SetOrigin.is_some()
        && stats.AddCounter.is_some();
    if rc != RS_RET_OK || !complete {
        return Err(format!(
            "statsobj interface version {}: error {rc}",
            wanted_version()
        ));
    }
    Ok(stats)
}

/// The statsobj interface version we ask for (a test build may ask for another: `faults`).
fn wanted_version() -> i32 {
    #[cfg(feature = "fault-hooks")]
    if let Some(v) = crate::faults::statsobj_if_version() {
        return v;
    }
    OMCM_STATSOBJ_IF_VERSION
}

/// One registered stats object; unregistered when dropped (before its counters go away).
pub(super) struct StatsObject {
    obj: *mut c_void,
}

// SAFETY: the statsobj is only touched again by its Destruct, which rsyslog guards itself.
unsafe impl Send for StatsObject {}
unsafe impl Sync for StatsObject {}

impl StatsObject {
    /// Registers `counters` under `name`. The counters must outlive the returned object.
    pub(super) fn register(name: &str, counters: &[(String, &AtomicU64)]) -> Option<StatsObject> {
        let stats = &STATS.get()?.as_ref()?.0;
        // SAFETY: function pointers checked non-null in `interface`; every string passed is a
        // NUL-terminated C string that rsyslog copies; counters are u64 cells (AtomicU64 has
        // u64's layout) that impstats reads without locks, which is what atomics are for.
        unsafe {
            let mut obj = std::ptr::null_mut();
            if (stats.Construct?)(&mut obj) != RS_RET_OK {
                return None;
            }
            let this = StatsObject { obj };
            let name = CString::new(name).ok()?;
            (stats.SetName?)(obj, name.as_ptr() as *mut u8);
            (stats.SetOrigin?)(obj, c"omcmsync".as_ptr() as *mut u8);
            for (counter, cell) in counters {
                let counter = CString::new(counter.as_str()).ok()?;
                let rc = (stats.AddCounter?)(
                    obj,
                    counter.as_ptr() as *const u8,
                    OMCM_CTR_TYPE_INTCTR,
                    OMCM_CTR_FLAG_NONE as i8,
                    cell.as_ptr() as *mut c_void,
                );
                if rc != RS_RET_OK {
                    return None;
                }
            }
            if (stats.ConstructFinalize?)(obj) != RS_RET_OK {
                return None;
            }
            Some(this)
        }
    }
}

impl Drop for StatsObject {
    fn drop(&mut self) {
        if let Some(Some(stats)) = STATS.get() {
            if let Some(destruct) = stats.0.Destruct {
                // SAFETY: `obj` came from Construct and is destructed once.
                unsafe { destruct(&mut self.obj) };
            }
        }
    }
}

/// Name of the n-th stats object: `omcmsync`, then `omcmsync-2`, ...
pub(super) fn object_name(n: u64) -> String {
    if n == 0 {
        "omcmsync".into()
    } else {
        format!("omcmsync-{}", n + 1)
    }
}
