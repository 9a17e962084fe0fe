/*
 * A C program raising alerts as NT services did, written against lmalert.h;
 * the e2e test compiles it with gcc, links it to libnetapi32.so and runs it
 * on a namespace host whose netsend service has an alert list.
 *
 *   alert raise          a disk-full alert (NetAlertRaiseEx, NT text 3000)
 *                        and a free-text alert (NetAlertRaise, STD_ALERT)
 *   alert errors STATUS  malformed calls (ERROR_INVALID_PARAMETER each), then
 *                        a well-formed one that must return STATUS
 *
 * Prints one line per check; the exit status is the number of failed checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>

#include <lmalert.h>

#include "check.h"

_Static_assert(sizeof(STD_ALERT) == 200, "STD_ALERT is 200 bytes, as on Windows");

/* Appends the NUL-terminated UTF-16 string s at p; returns the end. */
static LPBYTE put(LPBYTE p, const char16_t *s) {
    size_t bytes = (size_t)0;
    while (s[bytes / 2])
        bytes += 2;
    memcpy(p, s, bytes + 2);
    return p + bytes + 2;
}

/* ADMIN_OTHER_INFO for "Drive %1 is nearly full. %2 bytes are available."
 * in buf (as the SDK sample does it, in a fixed array); returns its size. */
static DWORD disk_full(BYTE *buf) {
    ADMIN_OTHER_INFO *info = (ADMIN_OTHER_INFO *)buf;
    info->alrtad_errcode = ALERT_Disk_Full;
    info->alrtad_numstrings = 2;
    LPBYTE end = put(put(ALERT_VAR_DATA(info), u"/var"), u"1048576");
    return (DWORD)(end - buf);
}

static void raise_checks(void) {
    _Alignas(DWORD) BYTE var[300];
    DWORD size = disk_full(var);
    check("NetAlertRaiseEx ADMIN 3000", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size, u"DiskWatch"), NERR_Success);

    /* NetAlertRaise: STD_ALERT, then free text with errcode (DWORD)-1. */
    _Alignas(DWORD) BYTE buf[512];
    memset(buf, 0, sizeof buf);
    STD_ALERT *alert = (STD_ALERT *)buf;
    alert->alrt_timestamp = 0;
    memcpy(alert->alrt_eventname, ALERT_ADMIN_EVENT, sizeof ALERT_ADMIN_EVENT);
    memcpy(alert->alrt_servicename, u"Backup", sizeof u"Backup");
    ADMIN_OTHER_INFO *info = (ADMIN_OTHER_INFO *)ALERT_OTHER_INFO(buf);
    info->alrtad_errcode = (DWORD)-1;
    info->alrtad_numstrings = 1;
    LPBYTE end = put(ALERT_VAR_DATA(info), u"Nightly backup failed: tape full (Grüße, 😀)");
    check("NetAlertRaise free text", NetAlertRaise(ALERT_ADMIN_EVENT, buf, (DWORD)(end - buf)), NERR_Success);
}

static void error_checks(NET_API_STATUS well_formed) {
    _Alignas(DWORD) BYTE var[300];
    DWORD size = disk_full(var);
    const WCHAR *svc = u"DiskWatch";
    check("Ex with NULL AlertType", NetAlertRaiseEx(NULL, var, size, svc), ERROR_INVALID_PARAMETER);
    check("Ex with an empty AlertType", NetAlertRaiseEx(u"", var, size, svc), ERROR_INVALID_PARAMETER);
    check("Ex with a user-defined class", NetAlertRaiseEx(u"BACKUP", var, size, svc), ERROR_INVALID_PARAMETER);
    check("Ex with a 17-character class", NetAlertRaiseEx(u"ADMINADMINADMINAD", var, size, svc), ERROR_INVALID_PARAMETER);
    check("Ex with NULL ServiceName", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size, NULL), ERROR_INVALID_PARAMETER);
    check("Ex with an empty ServiceName", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size, u""), ERROR_INVALID_PARAMETER);
    WCHAR long_service[SNLEN + 2];
    for (int i = 0; i < SNLEN + 1; i++)
        long_service[i] = u's';
    long_service[SNLEN + 1] = 0;
    check("Ex with an 81-character ServiceName", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size, long_service), ERROR_INVALID_PARAMETER);
    check("Ex with NULL VariableInfo", NetAlertRaiseEx(ALERT_ADMIN_EVENT, NULL, size, svc), ERROR_INVALID_PARAMETER);
    check("Ex with VariableInfoSize 0", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, 0, svc), ERROR_INVALID_PARAMETER);
    check("Ex shorter than ADMIN_OTHER_INFO", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, 7, svc), ERROR_INVALID_PARAMETER);
    check("Ex with the last string cut", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size - 2, svc), ERROR_INVALID_PARAMETER);
    _Alignas(DWORD) BYTE big[512] = {0};
    check("Ex over 512 - sizeof(STD_ALERT)",
          NetAlertRaiseEx(ALERT_ADMIN_EVENT, big, 512 - sizeof(STD_ALERT) + 1, svc), ERROR_INVALID_PARAMETER);
    ((ADMIN_OTHER_INFO *)var)->alrtad_numstrings = 10;
    check("Ex with 10 merge strings", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size, svc), ERROR_INVALID_PARAMETER);
    ((ADMIN_OTHER_INFO *)var)->alrtad_numstrings = 2;
    PRINT_OTHER_INFO *print = (PRINT_OTHER_INFO *)big;
    print->alrtpr_jobid = 7;
    print->alrtpr_status = PRJOB_QS_PRINTING | PRJOB_COMPLETE;
    LPBYTE end = put(put(put(put(ALERT_VAR_DATA(print), u"HOST2"), u"alice"), u"LASER"), u"lp0");
    check("Ex PRINTING with four strings of five",
          NetAlertRaiseEx(ALERT_PRINT_EVENT, big, (DWORD)(end - big), svc), ERROR_INVALID_PARAMETER);

    _Alignas(DWORD) BYTE buf[512];
    memset(buf, 0, sizeof buf);
    STD_ALERT *alert = (STD_ALERT *)buf;
    memcpy(alert->alrt_eventname, ALERT_ADMIN_EVENT, sizeof ALERT_ADMIN_EVENT);
    memcpy(alert->alrt_servicename, u"Backup", sizeof u"Backup");
    DWORD whole = sizeof(STD_ALERT) + disk_full(ALERT_OTHER_INFO(buf));
    check("NetAlertRaise with NULL AlertType", NetAlertRaise(NULL, buf, whole), ERROR_INVALID_PARAMETER);
    check("NetAlertRaise with NULL Buffer", NetAlertRaise(ALERT_ADMIN_EVENT, NULL, whole), ERROR_INVALID_PARAMETER);
    check("NetAlertRaise below sizeof(STD_ALERT)",
          NetAlertRaise(ALERT_ADMIN_EVENT, buf, sizeof(STD_ALERT) - 1), ERROR_INVALID_PARAMETER);
    check("NetAlertRaise over 512 bytes", NetAlertRaise(ALERT_ADMIN_EVENT, buf, 513), ERROR_INVALID_PARAMETER);
    check("NetAlertRaise with another class than its header",
          NetAlertRaise(ALERT_USER_EVENT, buf, whole), ERROR_INVALID_PARAMETER);
    memset(alert->alrt_servicename, 0, sizeof alert->alrt_servicename);
    check("NetAlertRaise without a service name", NetAlertRaise(ALERT_ADMIN_EVENT, buf, whole), ERROR_INVALID_PARAMETER);
    memcpy(alert->alrt_servicename, u"Backup", sizeof u"Backup");
    for (int i = 0; i < EVLEN + 1; i++)
        alert->alrt_eventname[i] = u'A';
    check("NetAlertRaise with an unterminated event name",
          NetAlertRaise(ALERT_ADMIN_EVENT, buf, whole), ERROR_INVALID_PARAMETER);
    memset(alert->alrt_eventname, 0, sizeof alert->alrt_eventname);
    memcpy(alert->alrt_eventname, ALERT_ADMIN_EVENT, sizeof ALERT_ADMIN_EVENT);

    /* Well formed: what the service (or its absence) answers. */
    check("well-formed NetAlertRaiseEx", NetAlertRaiseEx(ALERT_ADMIN_EVENT, var, size, svc), well_formed);
    check("well-formed NetAlertRaise", NetAlertRaise(ALERT_ADMIN_EVENT, buf, whole), well_formed);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "raise") == 0) {
        raise_checks();
    } else if (argc == 3 && strcmp(argv[1], "errors") == 0) {
        error_checks((NET_API_STATUS)strtoul(argv[2], NULL, 10));
    } else {
        fprintf(stderr, "usage: alert raise | alert errors STATUS\n");
        return 100;
    }
    return failures;
}
