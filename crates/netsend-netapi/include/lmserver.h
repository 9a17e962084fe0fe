/*
 * lmserver.h: NetServerEnum of Windows' netapi32 for Linux, implemented by
 * libnetapi32.so from netsend (link with -lnetapi32). Types, status codes and
 * NetApiBufferFree come from lmmsg.h.
 *
 * The list is the local netsend service's browse list (what `netsend view`
 * shows): the hosts heard announcing themselves on \MAILSLOT\BROWSE in the
 * local subnets, expiring three announced periods after their last
 * announcement, and the workgroups heard in DomainAnnouncements.
 */
#ifndef NETSEND_LMSERVER_H
#define NETSEND_LMSERVER_H

#include <lmmsg.h>

#ifdef __cplusplus
extern "C" {
#endif

/* sv10x_platform_id: every entry reports PLATFORM_ID_NT, as Windows does for
 * browse-list entries. */
#define PLATFORM_ID_DOS 300
#define PLATFORM_ID_OS2 400
#define PLATFORM_ID_NT  500

/* Server type bits (sv101_type, and the servertype filter). */
#define SV_TYPE_WORKSTATION       0x00000001
#define SV_TYPE_SERVER            0x00000002
#define SV_TYPE_SQLSERVER         0x00000004
#define SV_TYPE_DOMAIN_CTRL       0x00000008
#define SV_TYPE_DOMAIN_BAKCTRL    0x00000010
#define SV_TYPE_TIME_SOURCE       0x00000020
#define SV_TYPE_AFP               0x00000040
#define SV_TYPE_NOVELL            0x00000080
#define SV_TYPE_DOMAIN_MEMBER     0x00000100
#define SV_TYPE_PRINTQ_SERVER     0x00000200
#define SV_TYPE_DIALIN_SERVER     0x00000400
#define SV_TYPE_XENIX_SERVER      0x00000800
#define SV_TYPE_SERVER_UNIX       SV_TYPE_XENIX_SERVER
#define SV_TYPE_NT                0x00001000
#define SV_TYPE_WFW               0x00002000
#define SV_TYPE_SERVER_MFPN       0x00004000
#define SV_TYPE_SERVER_NT         0x00008000
#define SV_TYPE_POTENTIAL_BROWSER 0x00010000
#define SV_TYPE_BACKUP_BROWSER    0x00020000
#define SV_TYPE_MASTER_BROWSER    0x00040000
#define SV_TYPE_DOMAIN_MASTER     0x00080000
#define SV_TYPE_SERVER_OSF        0x00100000
#define SV_TYPE_SERVER_VMS        0x00200000
#define SV_TYPE_WINDOWS           0x00400000
#define SV_TYPE_DFS               0x00800000
#define SV_TYPE_ALTERNATE_XPORT   0x20000000
#define SV_TYPE_LOCAL_LIST_ONLY   0x40000000
#define SV_TYPE_DOMAIN_ENUM       0x80000000
#define SV_TYPE_ALL               0xFFFFFFFF

/* A host (level 100). */
typedef struct _SERVER_INFO_100 {
    DWORD sv100_platform_id;
    LPWSTR sv100_name;
} SERVER_INFO_100, *PSERVER_INFO_100, *LPSERVER_INFO_100;

/* A host with its version, type bits and comment (level 101). For a
 * workgroup (SV_TYPE_DOMAIN_ENUM), sv101_comment is its master browser. */
typedef struct _SERVER_INFO_101 {
    DWORD sv101_platform_id;
    LPWSTR sv101_name;
    DWORD sv101_version_major;
    DWORD sv101_version_minor;
    DWORD sv101_type;
    LPWSTR sv101_comment;
} SERVER_INFO_101, *PSERVER_INFO_101, *LPSERVER_INFO_101;

/*
 * Lists the hosts of domain (NULL or empty: our workgroup) whose type shares a
 * bit with servertype (SV_TYPE_ALL: every host), or with SV_TYPE_DOMAIN_ENUM
 * in servertype the workgroups, at level 100 or 101 in one buffer at *bufptr,
 * freed with NetApiBufferFree. Entries beyond prefmaxlen bytes
 * (MAX_PREFERRED_LENGTH: no bound) are left out with ERROR_MORE_DATA and
 * counted in *totalentries; at least one is returned. Windows reserves
 * resume_handle (pass NULL or 0); here a non-zero *resume_handle from a
 * previous call continues where it stopped. servername must be NULL, empty or
 * this host. Returns NERR_Success, ERROR_MORE_DATA, ERROR_INVALID_LEVEL,
 * ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_MEMORY, NERR_MsgNotStarted,
 * ERROR_NOT_SUPPORTED.
 */
NET_API_STATUS NET_API_FUNCTION NetServerEnum(
    LPCWSTR servername, DWORD level, LPBYTE *bufptr, DWORD prefmaxlen,
    LPDWORD entriesread, LPDWORD totalentries, DWORD servertype,
    LPCWSTR domain, LPDWORD resume_handle);

#ifdef __cplusplus
}
#endif

#endif /* NETSEND_LMSERVER_H */
