//! `action(type="omcmsync" ...)` parameters: rsyslog's nvlst turned into owned `(name, Value)`
//! pairs for [`crate::config::Config::from_values`]. The parameter table is `config::PARAMS`.

use std::ffi::CString;

use super::abi::*;
use super::host::Host;
use crate::config::{Kind, Value, PARAMS};

/// Reads the action's parameters. `Err` means rsyslog rejected them and has said why.
///
/// # Safety
/// `lst` must be the nvlst rsyslog passed to newActInst.
pub(super) unsafe fn read(host: &Host, lst: *mut nvlst) -> Result<Vec<(&'static str, Value)>, ()> {
    let names: Vec<CString> = PARAMS
        .iter()
        .map(|(name, _)| CString::new(*name).unwrap())
        .collect();
    let mut descr: Vec<cnfparamdescr> = PARAMS
        .iter()
        .zip(&names)
        .map(|(p, name)| cnfparamdescr {
            name: name.as_ptr(),
            type_: match p.1 {
                Kind::Word => OMCM_PARAM_WORD,
                Kind::Text => OMCM_PARAM_STRING,
            },
            flags: 0,
        })
        .collect();
    let mut blk = cnfparamblk {
        version: OMCM_CNFPARAMBLK_VERSION as u16,
        nParams: descr.len() as u16,
        descr: descr.as_mut_ptr(),
    };
    let vals = (host.nvlst_get_params)(lst, &mut blk, std::ptr::null_mut());
    if vals.is_null() {
        return Err(());
    }
    let vals_slice = std::slice::from_raw_parts(vals, PARAMS.len());
    let values = PARAMS
        .iter()
        .zip(vals_slice)
        .filter(|(_, v)| v.bUsed != 0)
        .filter_map(|((name, _), v)| Some((*name, value(&v.val)?)))
        .collect();
    (host.cnfparamvals_destruct)(vals, &blk);
    Ok(values)
}

/// # Safety
/// `v` must be a value filled in by nvlstGetParams.
unsafe fn value(v: &svar) -> Option<Value> {
    match v.datatype as u8 {
        b'N' => Some(Value::Int(v.d.n)),
        b'S' if !v.d.estr.is_null() => {
            let es = v.d.estr;
            // libestr keeps the bytes right after the header, not NUL-terminated.
            let bytes = (es as *const u8).add(std::mem::size_of::<es_str_t>());
            let s = std::slice::from_raw_parts(bytes, (*es).lenStr as usize);
            Some(Value::Text(String::from_utf8_lossy(s).into_owned()))
        }
        _ => None,
    }
}
