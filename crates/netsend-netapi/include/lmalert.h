/*
 * lmalert.h: the Alerter functions of Windows' netapi32 for Linux, implemented
 * by libnetapi32.so from netsend (link with -lnetapi32, or
 * `pkg-config --cflags --libs netapi32`).
 *
 * An alert goes to the local netsend service (the control socket, as for the
 * functions in lmmsg.h, whose types and status codes this header uses), whose
 * Alerter sends it as a message to every name in its [alerter] names, batching
 * identical alerts. An ADMIN, USER or MESSAGE alert whose error code is one of
 * the NT alert texts 3000-3050 is sent as that text with its merge strings in
 * place of %1..%9 (3000: "Drive %1 is nearly full. %2 bytes are available.");
 * any other alert as its strings.
 *
 * Strings are UTF-16 (WCHAR is uint16_t, not wchar_t: use u"..." literals).
 * The structures are the in-memory layouts Windows defines: DWORDs in host
 * (little-endian) order, strings consecutive and NUL-terminated after the
 * fixed part (ALERT_VAR_DATA).
 */
#ifndef NETSEND_LMALERT_H
#define NETSEND_LMALERT_H

#include <lmmsg.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef EVLEN
#define EVLEN 16 /* longest event (alert class) name */
#endif
#ifndef SNLEN
#define SNLEN 80 /* longest service name */
#endif

#ifndef ERROR_FILE_NOT_FOUND
#define ERROR_FILE_NOT_FOUND 2 /* the Alerter (the netsend service) is not running */
#endif
#ifndef NERR_ServiceNotInstalled
#define NERR_ServiceNotInstalled (NERR_BASE + 84) /* 2184: the Alerter is off */
#endif

/* The header of a NetAlertRaise buffer (200 bytes). */
typedef struct _STD_ALERT {
    DWORD alrt_timestamp;               /* seconds since 1970 (not used: the service dates alerts) */
    WCHAR alrt_eventname[EVLEN + 1];    /* the alert class, as AlertType */
    WCHAR alrt_servicename[SNLEN + 1];  /* the raising service, not empty */
} STD_ALERT, *PSTD_ALERT, *LPSTD_ALERT;

/* ALERT_ADMIN_EVENT (and ALERT_MESSAGE_EVENT): followed by alrtad_numstrings
 * (0-9) merge strings. */
typedef struct _ADMIN_OTHER_INFO {
    DWORD alrtad_errcode;     /* an alert text (3000-3050), or (DWORD)-1 for free text */
    DWORD alrtad_numstrings;
} ADMIN_OTHER_INFO, *PADMIN_OTHER_INFO, *LPADMIN_OTHER_INFO;

/* ALERT_ERRORLOG_EVENT: no strings follow. */
typedef struct _ERRLOG_OTHER_INFO {
    DWORD alrter_errcode;
    DWORD alrter_offset;
} ERRLOG_OTHER_INFO, *PERRLOG_OTHER_INFO, *LPERRLOG_OTHER_INFO;

/* ALERT_PRINT_EVENT: followed by five strings: computer name, user name,
 * queue name, destination, status. */
typedef struct _PRINT_OTHER_INFO {
    DWORD alrtpr_jobid;
    DWORD alrtpr_status;      /* PRJOB_* bits */
    DWORD alrtpr_submitted;   /* seconds since 1970 */
    DWORD alrtpr_size;        /* bytes */
} PRINT_OTHER_INFO, *PPRINT_OTHER_INFO, *LPPRINT_OTHER_INFO;

/* ALERT_USER_EVENT: followed by alrtus_numstrings (0-9) strings (user name,
 * computer name). */
typedef struct _USER_OTHER_INFO {
    DWORD alrtus_errcode;
    DWORD alrtus_numstrings;
} USER_OTHER_INFO, *PUSER_OTHER_INFO, *LPUSER_OTHER_INFO;

/* The Alerter's mailslot on Windows (not used by netsend: calls go to the
 * control socket). */
#define ALERTER_MAILSLOT u"\\\\.\\MAILSLOT\\Alerter"

/* The variable part after a STD_ALERT, and the strings after a fixed part. */
#define ALERT_OTHER_INFO(x) ((LPBYTE)(x) + sizeof(STD_ALERT))
#define ALERT_VAR_DATA(p)   ((LPBYTE)(p) + sizeof(*(p)))

/* Alert classes (AlertType). Any other class is refused with
 * ERROR_INVALID_PARAMETER: netsend cannot read its variable part. */
#define ALERT_PRINT_EVENT    u"PRINTING"
#define ALERT_MESSAGE_EVENT  u"MESSAGE"
#define ALERT_ERRORLOG_EVENT u"ERRORLOG"
#define ALERT_ADMIN_EVENT    u"ADMIN"
#define ALERT_USER_EVENT     u"USER"

/* alrtpr_status: the queue state in bits 0-1, device status in bits 2-8. */
#define PRJOB_QSTATUS     0x3
#define PRJOB_DEVSTATUS   0x1fc
#define PRJOB_COMPLETE    0x4
#define PRJOB_INTERV      0x8
#define PRJOB_ERROR       0x10
#define PRJOB_DESTOFFLINE 0x20
#define PRJOB_DESTPAUSED  0x40
#define PRJOB_NOTIFY      0x80
#define PRJOB_DESTNOPAPER 0x100
#define PRJOB_DELETED     0x8000
#define PRJOB_QS_QUEUED   0
#define PRJOB_QS_PAUSED   1
#define PRJOB_QS_SPOOLING 2
#define PRJOB_QS_PRINTING 3

/* The NT alert texts netsend renders (ALERT_BASE + n, from alertmsg.h). */
#define ALERT_BASE              3000
#define ALERT_Disk_Full         (ALERT_BASE + 0)  /* Drive %1 is nearly full. %2 bytes are available. */
#define ALERT_ErrorLog          (ALERT_BASE + 1)  /* %1 errors were logged in the last %2 minutes. */
#define ALERT_NetIO             (ALERT_BASE + 2)  /* %1 network errors occurred in the last %2 minutes. */
#define ALERT_Logon             (ALERT_BASE + 3)  /* There were %1 bad password attempts in the last %2 minutes. */
#define ALERT_Access            (ALERT_BASE + 4)  /* There were %1 access-denied errors in the last %2 minutes. */
#define ALERT_ErrorLogFull      (ALERT_BASE + 6)  /* The error log is full. */
#define ALERT_ErrorLogFull_W    (ALERT_BASE + 7)  /* The error log is 80% full. */
#define ALERT_AuditLogFull      (ALERT_BASE + 8)  /* The audit log is full. */
#define ALERT_AuditLogFull_W    (ALERT_BASE + 9)  /* The audit log is 80% full. */
#define ALERT_CloseBehindError  (ALERT_BASE + 10) /* An error occurred closing file %1. */
#define ALERT_AdminClose        (ALERT_BASE + 11) /* The administrator has closed %1. */
#define ALERT_PowerOut          (ALERT_BASE + 20) /* A power failure was detected at %1. */
#define ALERT_PowerBack         (ALERT_BASE + 21) /* Power has been restored at %1. */
#define ALERT_PowerShutdown     (ALERT_BASE + 22) /* The UPS service is starting shut down at %1 due to low battery. */
#define ALERT_AcctLimitExceeded (ALERT_BASE + 33) /* User %1 has exceeded account limitation %2 on server %3. */
#define ALERT_NetlogonFailedPrimary (ALERT_BASE + 34) /* The primary domain controller for domain %1 failed. */

/*
 * Raises an alert from Buffer: a STD_ALERT whose alrt_eventname is AlertType
 * and whose alrt_servicename is not empty, followed by the class's variable
 * part (ALERT_OTHER_INFO(Buffer)). BufferSize is the whole buffer's size,
 * sizeof(STD_ALERT) to 512 bytes; bytes after the strings are ignored.
 * Returns NERR_Success, ERROR_INVALID_PARAMETER (NULL/empty/unknown AlertType,
 * a bad BufferSize, NULL Buffer, a header or variable part that does not
 * parse, a class mismatch), ERROR_FILE_NOT_FOUND (no service running),
 * NERR_ServiceNotInstalled (the Alerter is off), ERROR_ACCESS_DENIED (the
 * caller may not raise alerts), or the failure's code when no alert name
 * could be reached.
 */
NET_API_STATUS NET_API_FUNCTION NetAlertRaise(
    LPCWSTR AlertType, LPVOID Buffer, DWORD BufferSize);

/*
 * Raises an alert of class AlertType from its variable part alone
 * (VariableInfo, VariableInfoSize bytes, at most 512 - sizeof(STD_ALERT)), on
 * behalf of ServiceName (1 to SNLEN characters). Returns the codes
 * NetAlertRaise returns; ERROR_INVALID_PARAMETER also for a NULL, empty or
 * over-long ServiceName.
 */
NET_API_STATUS NET_API_FUNCTION NetAlertRaiseEx(
    LPCWSTR AlertType, LPVOID VariableInfo, DWORD VariableInfoSize,
    LPCWSTR ServiceName);

#ifdef __cplusplus
}
#endif

#endif /* NETSEND_LMALERT_H */
