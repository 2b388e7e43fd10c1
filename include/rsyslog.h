/*
 * omcmsync's own declarations of the subset of the rsyslog 8.2302 output-module ABI it uses
 * (x86_64 Linux, LP64). Written from ../shared/spec/rsyslog-module-abi.md; build.rs runs
 * bindgen on this file. Host functions are declared as pointer types only: the module resolves
 * them by name at load time (dlsym), so nothing here is linked and the same crate also builds
 * ordinary executables.
 *
 * Versions: everything below is the same in rsyslog 8.2102, 8.2302 and 8.2504, which the test
 * suite runs (docs/design.md, "rsyslog versions and hosts"). The one interface known to move is
 * statsobj (13 here, 16 from 8.2608), which the module treats as optional.
 */
#include <stdint.h>
#include <pthread.h> /* pthread_setcancelstate: every entry point disables cancellation */

typedef unsigned char uchar;
typedef int rsRetVal; /* a C enum in rsyslog: 32-bit int */

/* Return codes (runtime/rsyslog.h), stable across 8.x. */
#define RS_RET_OK 0
#define RS_RET_NO_ERRCODE (-1) /* LogError: no error code in the message */
#define RS_RET_OUT_OF_MEMORY (-6)
#define RS_RET_PARAM_ERROR (-1000)
#define RS_RET_MODULE_ENTRY_POINT_NOT_FOUND (-1004)
#define RS_RET_CONFLINE_UNPROCESSED (-2001)
#define RS_RET_INCOMPATIBLE (-2003)
#define RS_RET_SUSPENDED (-2007)
#define RS_RET_MISSING_CNFPARAMS (-2211)
#define RS_RET_CONF_PARAM_INVLD (-2425)
#define RS_RET_ERR (-3000)

/* Interface versions this module speaks. */
#define OMCM_MOD_IF_VERSION 6
#define OMCM_CNFPARAMBLK_VERSION 1
#define OMCM_MOD_TYPE_OUTPUT 1 /* eMOD_OUT */
#define OMCM_KEEP_TYPE_KEEP 1 /* never dlclose: our threads and TLS outlive a config */

/* enum cslCmdHdlrType ordinals used in cnfparamdescr.type */
#define OMCM_PARAM_BINARY 4
#define OMCM_PARAM_INT 6
#define OMCM_PARAM_NONNEG_INT 7
#define OMCM_PARAM_POSITIVE_INT 8
#define OMCM_PARAM_WORD 13
#define OMCM_PARAM_STRING 14

/* syslog severities for LogMsg */
#define OMCM_LOG_WARNING 4
#define OMCM_LOG_INFO 6

/* Opaque to the module. */
struct nvlst;
struct cnfarray;

/* libestr string: this 8-byte header, then lenStr bytes, not NUL-terminated.
 * (lenStr comes first: libestr's inline functions depend on it.) */
typedef struct es_str_s {
    unsigned int lenStr;
    unsigned int lenBuf;
} es_str_t;

/* grammar/rainerscript.h */
struct svar {
    union {
        es_str_t *estr;
        struct cnfarray *ar;
        long long n;
        void *json;
    } d;
    char datatype; /* 'S', 'N', 'A', 'J' */
};

struct cnfparamdescr {
    const char *name;
    int type;
    unsigned int flags;
};

struct cnfparamblk {
    unsigned short version;
    unsigned short nParams;
    struct cnfparamdescr *descr;
};

struct cnfparamvals {
    struct svar val;
    unsigned char bUsed;
};

/* runtime/objomsr.h */
typedef struct omodStringRequest_s {
    int iNumEntries;
    uchar **ppTplName;
    int *piTplOpts;
} omodStringRequest_t;

/* runtime/rsyslog.h: one rendered template string */
typedef struct actWrkrIParams {
    uchar *param;
    uint32_t lenBuf;
    uint32_t lenStr;
} actWrkrIParams_t;

/* Entry points: the generic pointer type rsyslog stores, and the two lookup functions. */
typedef rsRetVal (*omcm_entry_t)(void);
typedef rsRetVal (*omcm_query_t)(uchar *name, omcm_entry_t *entry);

/* Host functions exported by /usr/sbin/rsyslogd (libestr for es_str2cstr). */
typedef struct cnfparamvals *(*omcm_nvlstGetParams_t)(struct nvlst *lst, struct cnfparamblk *blk,
                                                       struct cnfparamvals *vals);
typedef void (*omcm_cnfparamvalsDestruct_t)(const struct cnfparamvals *vals,
                                            const struct cnfparamblk *blk);
typedef rsRetVal (*omcm_OMSRconstruct_t)(omodStringRequest_t **req, int entries);
typedef rsRetVal (*omcm_OMSRsetEntry_t)(omodStringRequest_t *req, int idx, uchar *tpl, int opts);
typedef rsRetVal (*omcm_OMSRdestruct_t)(omodStringRequest_t *req);
typedef void (*omcm_LogError_t)(int errno_, rsRetVal code, const char *fmt, ...);
typedef void (*omcm_LogMsg_t)(int errno_, rsRetVal code, int severity, const char *fmt, ...);

/* The obj interface (runtime/obj.h, interface version 2), reached through the host query
 * function's "objGetObjInterface"; only UseObj is called, the rest is room rsyslog fills. */
typedef struct interface_s {
    int ifVersion;
    int ifIsLoaded;
} interface_t;

typedef struct obj_if_s {
    int ifVersion;
    int ifIsLoaded;
    rsRetVal (*UseObj)(const char *srcFile, uchar *pObjName, uchar *pObjFile, interface_t *pIf);
    rsRetVal (*ReleaseObj)(const char *srcFile, uchar *pObjName, uchar *pObjFile, interface_t *pIf);
    void *others[13];
} obj_if_t;

typedef rsRetVal (*omcm_objGetObjInterface_t)(obj_if_t *pIf);

#define OMCM_OBJ_IF_VERSION 2

/* The statsobj interface (runtime/statsobj.h) in version 13, rsyslog 8.2302 to 8.2512. */
#define OMCM_STATSOBJ_IF_VERSION 13
#define OMCM_CTR_TYPE_INTCTR 0 /* uint64 counter */
#define OMCM_CTR_FLAG_NONE 0

typedef struct statsobj_if_s {
    int ifVersion;
    int ifIsLoaded;
    void *DebugPrint;
    rsRetVal (*Construct)(void **ppThis);
    rsRetVal (*ConstructFinalize)(void *pThis);
    rsRetVal (*Destruct)(void **ppThis);
    rsRetVal (*SetName)(void *pThis, uchar *name);
    rsRetVal (*SetOrigin)(void *pThis, uchar *name);
    void *SetReadNotifier;
    void *SetReportingNamespace;
    void *SetStatsObjFlags;
    void *GetAllStatsLines;
    rsRetVal (*AddCounter)(void *pThis, const uchar *ctrName, int ctrType, signed char flags, void *pCtr);
    void *rest[6];
} statsobj_if_t;
