/*
 * lmmsg.h: the messenger functions of Windows' netapi32 for Linux, implemented
 * by libnetapi32.so from netsend (link with -lnetapi32, or
 * `pkg-config --cflags --libs netapi32`).
 *
 * Strings are UTF-16. wchar_t is 32 bits wide on Linux, so WCHAR here is
 * uint16_t, not wchar_t: build names with u"..." literals (C11 char16_t) or
 * convert to UTF-16 yourself; L"..." literals do NOT work.
 *
 * Calls go to the local netsend service over its control socket
 * ($NETSEND_CONTROL_SOCKET, else control_socket from $NETSEND_CONFIG or
 * /etc/netsend/netsend.toml, else /run/netsend/control.sock). servername NULL,
 * empty or this host's computer name (optionally with a leading "\\") is the
 * local service; any other name or address runs the call on that host's
 * netsend service over its authenticated, encrypted remote-call channel with
 * the caller's key, allowed only to that host's administrators and server
 * operators (ERROR_ACCESS_DENIED otherwise).
 *
 * Every function checks its pointers for NULL and never crashes its caller
 * (an internal fault returns NERR_InternalError). Functions are thread-safe;
 * each call opens its own connection to the service.
 */
#ifndef NETSEND_LMMSG_H
#define NETSEND_LMMSG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef uint16_t WCHAR;          /* one UTF-16 code unit (not wchar_t) */
typedef WCHAR *LPWSTR;
typedef const WCHAR *LPCWSTR;
typedef uint8_t BYTE;
typedef BYTE *LPBYTE;
typedef const BYTE *LPCBYTE;
typedef uint32_t DWORD;
typedef DWORD *LPDWORD;
typedef void *LPVOID;
typedef DWORD NET_API_STATUS;

#define NET_API_FUNCTION

/* NetMessageNameEnum's prefmaxlen for "no bound". */
#define MAX_PREFERRED_LENGTH ((DWORD)-1)

/* Status codes. */
#define NERR_Success            0
#define ERROR_ACCESS_DENIED     5
#define ERROR_NOT_ENOUGH_MEMORY 8
#define ERROR_NOT_SUPPORTED     50
#define ERROR_INVALID_PARAMETER 87
#define ERROR_INVALID_LEVEL     124
#define ERROR_MORE_DATA         234
#define NERR_BASE               2100
#define NERR_NetworkError       (NERR_BASE + 36)  /* 2136 */
#define NERR_InternalError      (NERR_BASE + 40)  /* 2140 */
#define NERR_NameNotFound       (NERR_BASE + 173) /* 2273 */
#define NERR_AlreadyExists      (NERR_BASE + 176) /* 2276 */
#define NERR_TooManyNames       (NERR_BASE + 177) /* 2277 */
#define NERR_DelComputerName    (NERR_BASE + 178) /* 2278 */
#define NERR_PausedRemote       (NERR_BASE + 181) /* 2281 */
#define NERR_BadReceive         (NERR_BASE + 182) /* 2282 */
#define NERR_NameInUse          (NERR_BASE + 183) /* 2283 */
#define NERR_MsgNotStarted      (NERR_BASE + 184) /* 2284 */
#define NERR_NotLocalName       (NERR_BASE + 185) /* 2285 */
#define NERR_DuplicateName      (NERR_BASE + 197) /* 2297 */

/* A message alias (level 0). */
typedef struct _MSG_INFO_0 {
    LPWSTR msgi0_name;
} MSG_INFO_0, *PMSG_INFO_0, *LPMSG_INFO_0;

/* A message alias and its forwarding (level 1). Forwarding no longer exists:
 * msgi1_forward_flag is always 0 and msgi1_forward always NULL. */
typedef struct _MSG_INFO_1 {
    LPWSTR msgi1_name;
    DWORD msgi1_forward_flag;
    LPWSTR msgi1_forward;
} MSG_INFO_1, *PMSG_INFO_1, *LPMSG_INFO_1;

/*
 * Sends buflen BYTES of UTF-16LE text at buf to the alias msgname, from
 * fromname (NULL or empty: the calling user's name; only root may claim
 * another). buflen must be even and must not exceed the buffer (that cannot be
 * checked); trailing NULs are dropped. Names are 1 to 15 characters.
 * Returns NERR_Success, ERROR_INVALID_PARAMETER (NULL/empty/over-long name,
 * odd buflen, NULL buf with buflen > 0, text longer than the service's
 * limits.max_message_len or 128 KiB), NERR_NameNotFound, NERR_NetworkError,
 * NERR_BadReceive, NERR_PausedRemote, NERR_MsgNotStarted, ERROR_NOT_SUPPORTED.
 */
NET_API_STATUS NET_API_FUNCTION NetMessageBufferSend(
    LPCWSTR servername, LPCWSTR msgname, LPCWSTR fromname,
    LPBYTE buf, DWORD buflen);

/* Adds the alias msgname, owned by the calling user, and registers it on the
 * network. Returns NERR_Success, ERROR_INVALID_PARAMETER, NERR_AlreadyExists,
 * NERR_DuplicateName, NERR_TooManyNames, NERR_MsgNotStarted,
 * ERROR_NOT_SUPPORTED. */
NET_API_STATUS NET_API_FUNCTION NetMessageNameAdd(
    LPCWSTR servername, LPCWSTR msgname);

/* Deletes the alias msgname (only root deletes other users' aliases).
 * Returns NERR_Success, ERROR_INVALID_PARAMETER, NERR_NotLocalName,
 * NERR_DelComputerName, ERROR_ACCESS_DENIED, NERR_MsgNotStarted,
 * ERROR_NOT_SUPPORTED. */
NET_API_STATUS NET_API_FUNCTION NetMessageNameDel(
    LPCWSTR servername, LPCWSTR msgname);

/* Lists the aliases at level 0 (MSG_INFO_0) or 1 (MSG_INFO_1) in one buffer
 * at *bufptr, freed with NetApiBufferFree. prefmaxlen bounds the buffer
 * (MAX_PREFERRED_LENGTH: no bound; at least one entry is returned). With a
 * resume_handle (0 on the first call), ERROR_MORE_DATA means more entries
 * follow from *resume_handle. Returns NERR_Success, ERROR_MORE_DATA,
 * ERROR_INVALID_LEVEL, ERROR_INVALID_PARAMETER, ERROR_NOT_ENOUGH_MEMORY,
 * NERR_MsgNotStarted, ERROR_NOT_SUPPORTED. */
NET_API_STATUS NET_API_FUNCTION NetMessageNameEnum(
    LPCWSTR servername, DWORD level, LPBYTE *bufptr, DWORD prefmaxlen,
    LPDWORD entriesread, LPDWORD totalentries, LPDWORD resume_handle);

/* Describes the alias msgname (any case) at level 0 or 1 in a buffer at
 * *bufptr, freed with NetApiBufferFree. Returns NERR_Success,
 * ERROR_INVALID_LEVEL, ERROR_INVALID_PARAMETER, NERR_NotLocalName,
 * ERROR_NOT_ENOUGH_MEMORY, NERR_MsgNotStarted, ERROR_NOT_SUPPORTED. */
NET_API_STATUS NET_API_FUNCTION NetMessageNameGetInfo(
    LPCWSTR servername, LPCWSTR msgname, DWORD level, LPBYTE *bufptr);

/* Frees a buffer from NetMessageNameEnum or NetMessageNameGetInfo; NULL is
 * ignored. Returns NERR_Success. */
NET_API_STATUS NET_API_FUNCTION NetApiBufferFree(LPVOID Buffer);

#ifdef __cplusplus
}
#endif

#endif /* NETSEND_LMMSG_H */
