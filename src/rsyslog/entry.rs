//! The entry points rsyslogd calls, and the instance/worker data it holds for us.
//!
//! Ownership: an action's instance data is an `Arc<Instance>` (raw pointer from `Arc::into_raw`)
//! and each worker instance owns a clone of it, because a cancelled worker's
//! `freeWrkrInstance` runs after `freeInstance`. Workers of one action run concurrently, so
//! `Instance` is `Sync`; each worker's own calls are serialised by rsyslog.

use parking_lot::Mutex;
use std::ffi::{c_int, c_void, CStr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};

use super::abi::*;
use super::guard::guarded;
use super::instance::Instance;
use super::{host, params, stats};
use crate::config::{Config, Start, StateDirClaim, Value, DEFAULT_TEMPLATE};
use crate::logging::{self, Level};

/// What one rsyslog worker thread of that action holds.
pub(super) struct Worker {
    instance: Arc<Instance>,
    id: u64,
}

const MODULE_NAME: &CStr = c"omcmsync";

/// Actions created while a configuration is read; `activateCnf` starts them. Nothing starts
/// earlier, so `rsyslogd -N1` (which never activates) opens and spawns nothing.
static TO_ACTIVATE: Mutex<Vec<Weak<Instance>>> = Mutex::new(Vec::new());

/// The module's one exported symbol: checks the interface version, resolves the host functions
/// and hands rsyslog our lookup function.
///
/// # Safety
/// Called by rsyslogd with valid out pointers.
#[no_mangle]
pub unsafe extern "C" fn modInit(
    _if_version_requested: c_int,
    if_version_provided: *mut c_int,
    query_entry_point: *mut omcm_query_t,
    host_query: omcm_query_t,
    _mod_info: *mut c_void,
) -> rsRetVal {
    guarded("modInit", RS_RET_ERR, || {
        if let Err(why) = host::resolve() {
            eprintln!("omcmsync: {why}");
            return RS_RET_ERR;
        }
        host::install_logging();
        stats::init(host_query);
        *if_version_provided = OMCM_MOD_IF_VERSION;
        *query_entry_point = Some(query_entry_point_fn);
        RS_RET_OK
    })
}

/// Casts one of our entry points to the generic pointer type rsyslog stores.
macro_rules! entry {
    ($f:expr) => {
        // SAFETY: rsyslog casts the pointer back to the signature it expects for that name,
        // which is the one each function below is declared with.
        Some(std::mem::transmute::<
            *const (),
            unsafe extern "C" fn() -> rsRetVal,
        >($f as *const ()))
    };
}

unsafe extern "C" fn query_entry_point_fn(name: *mut u8, out: *mut omcm_entry_t) -> rsRetVal {
    guarded("queryEtryPt", RS_RET_MODULE_ENTRY_POINT_NOT_FOUND, || {
        if name.is_null() || out.is_null() {
            return RS_RET_PARAM_ERROR;
        }
        let found: omcm_entry_t = match CStr::from_ptr(name as *const _).to_bytes() {
            b"getType" => entry!(get_type),
            b"getKeepType" => entry!(get_keep_type),
            b"modGetID" => entry!(mod_get_id),
            b"modExit" => entry!(mod_exit),
            b"getModCnfName" => entry!(get_mod_cnf_name),
            b"newActInst" => entry!(new_act_inst),
            b"parseSelectorAct" => entry!(parse_selector_act),
            b"freeInstance" => entry!(free_instance),
            b"dbgPrintInstInfo" => entry!(dbg_print_inst_info),
            b"createWrkrInstance" => entry!(create_wrkr_instance),
            b"freeWrkrInstance" => entry!(free_wrkr_instance),
            b"tryResume" => entry!(try_resume),
            b"beginTransaction" => entry!(begin_transaction),
            b"commitTransaction" => entry!(commit_transaction),
            b"doHUP" => entry!(do_hup),
            b"doHUPWrkr" => entry!(do_hup_wrkr),
            b"beginCnfLoad" => entry!(begin_cnf_load),
            b"endCnfLoad" => entry!(cnf_ok),
            b"checkCnf" => entry!(cnf_ok),
            b"activateCnf" => entry!(activate_cnf),
            b"freeCnf" => entry!(free_cnf),
            _ => None,
        };
        *out = found;
        if found.is_some() {
            RS_RET_OK
        } else {
            RS_RET_MODULE_ENTRY_POINT_NOT_FOUND
        }
    })
}

unsafe extern "C" fn get_type(t: *mut c_int) -> rsRetVal {
    guarded("getType", RS_RET_ERR, || {
        *t = OMCM_MOD_TYPE_OUTPUT;
        RS_RET_OK
    })
}

unsafe extern "C" fn get_keep_type(k: *mut c_int) -> rsRetVal {
    guarded("getKeepType", RS_RET_ERR, || {
        *k = OMCM_KEEP_TYPE_KEEP;
        RS_RET_OK
    })
}

unsafe extern "C" fn mod_get_id(id: *mut *mut c_void) -> rsRetVal {
    guarded("modGetID", RS_RET_ERR, || {
        *id = mod_exit as *const () as *mut c_void;
        RS_RET_OK
    })
}

unsafe extern "C" fn mod_exit() -> rsRetVal {
    guarded("modExit", RS_RET_ERR, || RS_RET_OK)
}

unsafe extern "C" fn get_mod_cnf_name(name: *mut *const u8) -> rsRetVal {
    guarded("getModCnfName", RS_RET_ERR, || {
        *name = MODULE_NAME.as_ptr() as *const u8;
        RS_RET_OK
    })
}

/// Legacy selector lines are never ours.
unsafe extern "C" fn parse_selector_act(
    _line: *mut *mut u8,
    _inst: *mut *mut c_void,
    _omsr: *mut *mut omodStringRequest_t,
) -> rsRetVal {
    guarded("parseSelectorAct", RS_RET_CONFLINE_UNPROCESSED, || {
        RS_RET_CONFLINE_UNPROCESSED
    })
}

/// One `action(type="omcmsync" ...)`: parse and validate parameters, request our template.
/// Runs in `rsyslogd -N1` too: opens nothing.
unsafe extern "C" fn new_act_inst(
    _mod_name: *mut u8,
    lst: *mut nvlst,
    inst: *mut *mut c_void,
    omsr_out: *mut *mut omodStringRequest_t,
) -> rsRetVal {
    guarded("newActInst", RS_RET_ERR, || {
        let Some(host) = host::get() else {
            return RS_RET_ERR;
        };
        let Ok(values) = params::read(host, lst) else {
            return RS_RET_MISSING_CNFPARAMS;
        };
        let template = template_of(&values);
        let instance = match instance_for(host.config_check_only(), values) {
            Ok(instance) => instance,
            Err(e) => {
                host.log(
                    Level::Error,
                    RS_RET_CONF_PARAM_INVLD,
                    &format!("omcmsync: {e}"),
                );
                return RS_RET_CONF_PARAM_INVLD;
            }
        };
        let rc = request_template(host, &template, omsr_out);
        if rc != RS_RET_OK {
            return rc;
        }
        let instance = Arc::new(instance);
        TO_ACTIVATE.lock().push(Arc::downgrade(&instance));
        *inst = Arc::into_raw(instance) as *mut c_void;
        RS_RET_OK
    })
}

/// The action's instance. `-N1` checks everything; at a real start a missing elements file or
/// the like is held, not refused (its lines would be lost), and a `config.file` that cannot be
/// used makes the action wait for it.
fn instance_for(
    check_only: bool,
    values: Vec<(&'static str, Value)>,
) -> Result<Instance, crate::config::ConfigError> {
    let claimed = |c: Config| StateDirClaim::take(&c.state_dir).map(|claim| (c, claim));
    if check_only {
        return Config::from_values(values.clone())
            .and_then(claimed)
            .map(|(c, claim)| Instance::ready(c, claim));
    }
    let site_file = values.iter().any(|(n, _)| *n == "config.file");
    match Config::at_start(values.clone())? {
        Start::Ready(c) => match claimed(*c) {
            Ok((c, claim)) => Ok(Instance::ready(c, claim)),
            // The site's file may name another state.dir.
            Err(e) if site_file => Ok(Instance::awaiting(values, &e)),
            Err(e) => Err(e),
        },
        Start::AwaitingSiteFile(e) => Ok(Instance::awaiting(values, &e)),
    }
}

/// The template the action names (`config.file` may not name one: rsyslog binds it now).
fn template_of(values: &[(&'static str, Value)]) -> String {
    values
        .iter()
        .find_map(|(n, v)| match (n, v) {
            (&"template", Value::Text(t)) => Some(t.clone()),
            _ => None,
        })
        .unwrap_or_else(|| DEFAULT_TEMPLATE.to_owned())
}

/// Asks rsyslog to render our one template as a string; leaves `*out` NULL on failure.
unsafe fn request_template(
    host: &host::Host,
    template: &str,
    out: *mut *mut omodStringRequest_t,
) -> rsRetVal {
    let Ok(name) = std::ffi::CString::new(template) else {
        return RS_RET_CONF_PARAM_INVLD;
    };
    let mut omsr = std::ptr::null_mut();
    let rc = (host.omsr_construct)(&mut omsr, 1);
    if rc != RS_RET_OK {
        return rc;
    }
    // rsyslog takes the name over and free()s it: it must come from malloc, not from Rust.
    let owned = libc::strdup(name.as_ptr()) as *mut u8;
    if owned.is_null() {
        (host.omsr_destruct)(omsr);
        return RS_RET_OUT_OF_MEMORY;
    }
    let rc = (host.omsr_set_entry)(omsr, 0, owned, 0);
    if rc != RS_RET_OK {
        libc::free(owned as *mut c_void);
        (host.omsr_destruct)(omsr);
        return rc;
    }
    *out = omsr;
    RS_RET_OK
}

/// The module's per-configuration data: we keep none, but rsyslog wants a pointer.
unsafe extern "C" fn begin_cnf_load(mod_conf: *mut *mut c_void, _conf: *mut c_void) -> rsRetVal {
    guarded("beginCnfLoad", RS_RET_ERR, || {
        *mod_conf = Box::into_raw(Box::new(0u8)) as *mut c_void;
        RS_RET_OK
    })
}

unsafe extern "C" fn cnf_ok(_mod_conf: *mut c_void) -> rsRetVal {
    guarded("endCnfLoad/checkCnf", RS_RET_ERR, || RS_RET_OK)
}

/// The configuration goes live: start each action's queue, delivery and supervision, so that
/// what was queued before a restart is delivered even if no new message arrives.
unsafe extern "C" fn activate_cnf(_mod_conf: *mut c_void) -> rsRetVal {
    guarded("activateCnf", RS_RET_OK, || {
        let instances = std::mem::take(&mut *TO_ACTIVATE.lock());
        for instance in instances.iter().filter_map(Weak::upgrade) {
            Instance::activate(&instance);
        }
        RS_RET_OK
    })
}

unsafe extern "C" fn free_cnf(mod_conf: *mut c_void) -> rsRetVal {
    guarded("freeCnf", RS_RET_ERR, || {
        if !mod_conf.is_null() {
            drop(Box::from_raw(mod_conf as *mut u8));
        }
        RS_RET_OK
    })
}

unsafe extern "C" fn free_instance(inst: *mut c_void) -> rsRetVal {
    guarded("freeInstance", RS_RET_ERR, || {
        if !inst.is_null() {
            drop(Arc::from_raw(inst as *const Instance));
        }
        RS_RET_OK
    })
}

unsafe extern "C" fn dbg_print_inst_info(_inst: *mut c_void) -> rsRetVal {
    guarded("dbgPrintInstInfo", RS_RET_ERR, || RS_RET_OK)
}

unsafe extern "C" fn create_wrkr_instance(wrkr: *mut *mut c_void, inst: *mut c_void) -> rsRetVal {
    guarded("createWrkrInstance", RS_RET_ERR, || {
        Arc::increment_strong_count(inst as *const Instance);
        let instance = Arc::from_raw(inst as *const Instance);
        let id = instance.next_worker.fetch_add(1, Ordering::Relaxed);
        *wrkr = Box::into_raw(Box::new(Worker { instance, id })) as *mut c_void;
        RS_RET_OK
    })
}

unsafe extern "C" fn free_wrkr_instance(wrkr: *mut c_void) -> rsRetVal {
    guarded("freeWrkrInstance", RS_RET_ERR, || {
        if !wrkr.is_null() {
            drop(Box::from_raw(wrkr as *mut Worker));
        }
        RS_RET_OK
    })
}

/// Suspended only while the action waits for its `config.file`.
unsafe extern "C" fn try_resume(wrkr: *mut c_void) -> rsRetVal {
    guarded("tryResume", RS_RET_SUSPENDED, || {
        let worker = &*(wrkr as *const Worker);
        match worker.instance.action() {
            Some(_) => RS_RET_OK,
            None => RS_RET_SUSPENDED,
        }
    })
}

unsafe extern "C" fn begin_transaction(_wrkr: *mut c_void) -> rsRetVal {
    guarded("beginTransaction", RS_RET_SUSPENDED, || RS_RET_OK)
}

/// One batch: `n` rendered lines (one template each), borrowed for this call only.
unsafe extern "C" fn commit_transaction(
    wrkr: *mut c_void,
    lines: *mut actWrkrIParams_t,
    n: u32,
) -> rsRetVal {
    guarded("commitTransaction", RS_RET_SUSPENDED, || {
        let worker = &*(wrkr as *const Worker);
        let lines: &[actWrkrIParams_t] = if lines.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(lines, n as usize)
        };
        let borrowed = lines.iter().map(|p| {
            if p.param.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(p.param as *const u8, p.lenStr as usize)
            }
        });
        let Some(action) = worker.instance.action() else {
            return RS_RET_SUSPENDED;
        };
        match action.process_batch(worker.id, borrowed) {
            Ok(()) => RS_RET_OK,
            Err(_) => RS_RET_SUSPENDED,
        }
    })
}

unsafe extern "C" fn do_hup(inst: *mut c_void) -> rsRetVal {
    guarded("doHUP", RS_RET_OK, || {
        let instance = &*(inst as *const Instance);
        if let Some(action) = instance.running() {
            action.reopen();
            logging::info("HUP: files reopened");
        }
        RS_RET_OK
    })
}

unsafe extern "C" fn do_hup_wrkr(_wrkr: *mut c_void) -> rsRetVal {
    guarded("doHUPWrkr", RS_RET_OK, || RS_RET_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Value;
    use crate::counters::Counters;

    fn instance() -> *mut c_void {
        let state = tempfile::tempdir().unwrap().keep();
        let elements = state.join("elements.json");
        std::fs::write(&elements, r#"{"elements":[{"name":"a","hosts":["::1"]}]}"#).unwrap();
        let config = Config::from_values([
            ("smgr.url", Value::Text("http://127.0.0.1:9".into())),
            ("elements.file", Value::Text(elements.display().to_string())),
            ("state.dir", Value::Text(state.display().to_string())),
        ])
        .unwrap();
        Arc::into_raw(Arc::new(Instance::ready(
            config,
            StateDirClaim::take(&state).unwrap(),
        ))) as *mut c_void
    }

    fn line(s: &[u8]) -> actWrkrIParams_t {
        actWrkrIParams_t {
            param: s.as_ptr() as *mut u8,
            lenBuf: s.len() as u32,
            lenStr: s.len() as u32,
        }
    }

    #[test]
    fn worker_outlives_freed_instance() {
        unsafe {
            let inst = instance();
            let mut wrkr = std::ptr::null_mut();
            assert_eq!(create_wrkr_instance(&mut wrkr, inst), RS_RET_OK);
            // A cancelled worker: freeInstance first, then the worker still commits and is freed.
            assert_eq!(free_instance(inst), RS_RET_OK);
            let mut batch = [line(b"10.0.0.1\th\tt\tchange station 1")];
            assert_eq!(commit_transaction(wrkr, batch.as_mut_ptr(), 1), RS_RET_OK);
            let w = &*(wrkr as *const Worker);
            assert_eq!(Arc::strong_count(&w.instance), 1);
            assert_eq!(
                Counters::get(&w.instance.action().unwrap().counters().lines_received),
                1
            );
            assert_eq!(free_wrkr_instance(wrkr), RS_RET_OK);
        }
    }

    #[test]
    fn workers_commit_concurrently_on_one_instance() {
        let inst = instance() as usize;
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(move || unsafe {
                    let mut wrkr = std::ptr::null_mut();
                    assert_eq!(
                        create_wrkr_instance(&mut wrkr, inst as *mut c_void),
                        RS_RET_OK
                    );
                    for _ in 0..1000 {
                        let mut batch = [line(b"::1\th\tt\tm"), line(b"bad")];
                        assert_eq!(commit_transaction(wrkr, batch.as_mut_ptr(), 2), RS_RET_OK);
                    }
                    free_wrkr_instance(wrkr);
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        unsafe {
            let i = &*(inst as *const Instance);
            assert_eq!(
                Counters::get(&i.action().unwrap().counters().lines_received),
                8000
            );
            assert_eq!(
                Counters::get(&i.action().unwrap().counters().lines_malformed),
                4000
            );
            assert_eq!(i.next_worker.load(Ordering::Relaxed), 4);
            assert_eq!(
                Arc::strong_count(&Arc::from_raw(inst as *const Instance)),
                1
            );
        }
    }

    #[test]
    fn unknown_entry_points_answer_1004() {
        unsafe {
            let mut out: omcm_entry_t = None;
            let rc = query_entry_point_fn(c"setActionInfo".as_ptr() as *mut u8, &mut out);
            assert_eq!(rc, RS_RET_MODULE_ENTRY_POINT_NOT_FOUND);
            assert!(out.is_none());
            assert_eq!(
                query_entry_point_fn(c"commitTransaction".as_ptr() as *mut u8, &mut out),
                0
            );
            assert!(out.is_some());
        }
    }

    #[test]
    fn legacy_selector_lines_are_not_ours() {
        unsafe {
            let rc = parse_selector_act(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            );
            assert_eq!(rc, RS_RET_CONFLINE_UNPROCESSED);
        }
    }
}
