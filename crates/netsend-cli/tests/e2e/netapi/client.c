/*
 * A C program written against lmmsg.h, as a netapi32 user writes it; the e2e
 * test compiles it with gcc, links it to libnetapi32.so and runs it against a
 * running netsend service.
 *
 *   client up COMPUTER   every function, success and error paths
 *   client down          the service is not running
 *   client garbled       something answers the socket with nonsense
 *
 * Prints one line per check; the exit status is the number of failed checks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uchar.h>

#include <lmmsg.h>

#include "check.h"

/* ASCII to UTF-16 (names from the command line). */
static void widen(const char *in, WCHAR *out, size_t n) {
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (unsigned char)in[i];
    out[i] = 0;
}

/* UTF-16 to ASCII for printing and comparing names ('?' beyond ASCII). */
static const char *narrow(const WCHAR *in) {
    static char out[64];
    size_t i = 0;
    for (; in[i] && i + 1 < sizeof out; i++)
        out[i] = in[i] < 0x80 ? (char)in[i] : '?';
    out[i] = 0;
    return out;
}

static void send_checks(const WCHAR *computer, const WCHAR *unc_computer) {
    static const char16_t text[] = u"Hello from C: Grüße, € and 😀";
    DWORD len = sizeof text - sizeof(char16_t); /* bytes, without the NUL */

    check("send to the computer name", NetMessageBufferSend(NULL, computer, NULL, (LPBYTE)text, len), NERR_Success);
    static const char16_t second[] = u"second, via \\\\computer, from CPROG";
    check("send with servername \\\\computer and fromname",
          NetMessageBufferSend(unc_computer, computer, u"CPROG", (LPBYTE)second, sizeof second), NERR_Success);
    /* Another host's service, reached over the remote-call channel: nothing
       listens on this one's remote port. */
    check("send with a foreign servername",
          NetMessageBufferSend(u"\\\\127.0.0.1", computer, NULL, (LPBYTE)text, len), NERR_NetworkError);
    check("send with NULL msgname", NetMessageBufferSend(NULL, NULL, NULL, (LPBYTE)text, len), ERROR_INVALID_PARAMETER);
    check("send with an empty msgname", NetMessageBufferSend(NULL, u"", NULL, (LPBYTE)text, len), ERROR_INVALID_PARAMETER);
    check("send with an odd buflen", NetMessageBufferSend(NULL, computer, NULL, (LPBYTE)text, len - 1), ERROR_INVALID_PARAMETER);
    check("send to a 16-character name",
          NetMessageBufferSend(NULL, u"ABCDEFGHIJKLMNOP", NULL, (LPBYTE)text, len), ERROR_INVALID_PARAMETER);
    check("send from a 16-character name",
          NetMessageBufferSend(NULL, computer, u"ABCDEFGHIJKLMNOP", (LPBYTE)text, len), ERROR_INVALID_PARAMETER);
    check("send with NULL buf and buflen 4", NetMessageBufferSend(NULL, computer, NULL, NULL, 4), ERROR_INVALID_PARAMETER);
    check("send a buflen beyond any limit",
          NetMessageBufferSend(NULL, computer, NULL, (LPBYTE)text, 0x7ffffffe), ERROR_INVALID_PARAMETER);
    /* Over the service's limits.max_message_len (4096 by default). */
    size_t big_units = 5000;
    char16_t *big = malloc(big_units * sizeof *big);
    for (size_t i = 0; i < big_units; i++)
        big[i] = u'x';
    check("send a text over max_message_len",
          NetMessageBufferSend(NULL, computer, NULL, (LPBYTE)big, big_units * sizeof *big), ERROR_INVALID_PARAMETER);
    free(big);
    check("send to an unknown name", NetMessageBufferSend(NULL, u"NOSUCHNAME", NULL, (LPBYTE)text, len), NERR_NameNotFound);
}

static void name_checks(const WCHAR *computer) {
    LPBYTE buf = NULL;
    DWORD read = 0, total = 0, resume = 0;

    check("add CDESK", NetMessageNameAdd(NULL, u"cdesk"), NERR_Success);
    check("add CDESK again", NetMessageNameAdd(NULL, u"CDESK"), NERR_AlreadyExists);
    check("add NULL", NetMessageNameAdd(NULL, NULL), ERROR_INVALID_PARAMETER);
    check("add a 16-character name", NetMessageNameAdd(NULL, u"ABCDEFGHIJKLMNOP"), ERROR_INVALID_PARAMETER);
    static const char16_t text[] = u"to the new alias";
    check("send to CDESK", NetMessageBufferSend(NULL, u"CDESK", NULL, (LPBYTE)text, sizeof text - 2), NERR_Success);

    check("enum level 0", NetMessageNameEnum(NULL, 0, &buf, MAX_PREFERRED_LENGTH, &read, &total, &resume), NERR_Success);
    MSG_INFO_0 *info0 = (MSG_INFO_0 *)buf;
    int found = 0;
    for (DWORD i = 0; i < read; i++) {
        printf("alias %s\n", narrow(info0[i].msgi0_name));
        found += strcmp(narrow(info0[i].msgi0_name), "CDESK") == 0;
    }
    check("enum lists CDESK once", found, 1);
    check("enum entries read = total", read, total);
    check("enum resume handle reset", resume, 0);
    DWORD all = read;
    check("free the enum buffer", NetApiBufferFree(buf), NERR_Success);

    /* One entry per call: ERROR_MORE_DATA until the last. */
    DWORD seen = 0, calls = 0;
    NET_API_STATUS status;
    resume = 0;
    do {
        status = NetMessageNameEnum(NULL, 1, &buf, 1, &read, &total, &resume);
        if (status != NERR_Success && status != ERROR_MORE_DATA)
            break;
        MSG_INFO_1 *info1 = (MSG_INFO_1 *)buf;
        for (DWORD i = 0; i < read; i++) {
            if (info1[i].msgi1_forward != NULL || info1[i].msgi1_forward_flag != 0)
                failures++;
        }
        seen += read;
        calls++;
        NetApiBufferFree(buf);
    } while (status == ERROR_MORE_DATA && calls < 1000);
    check("paged enum ends with success", status, NERR_Success);
    check("paged enum sees every alias", seen, all);
    check("paged enum takes one call per alias", calls, all);

    check("enum level 7", NetMessageNameEnum(NULL, 7, &buf, MAX_PREFERRED_LENGTH, &read, &total, NULL), ERROR_INVALID_LEVEL);
    check("enum level 7 leaves bufptr NULL", buf == NULL, 1);
    check("enum with NULL entriesread", NetMessageNameEnum(NULL, 0, &buf, MAX_PREFERRED_LENGTH, NULL, &total, NULL), ERROR_INVALID_PARAMETER);
    check("enum with NULL bufptr", NetMessageNameEnum(NULL, 0, NULL, MAX_PREFERRED_LENGTH, &read, &total, NULL), ERROR_INVALID_PARAMETER);
    check("enum on a foreign server",
          NetMessageNameEnum(u"127.0.0.1", 0, &buf, MAX_PREFERRED_LENGTH, &read, &total, NULL), NERR_NetworkError);

    check("getinfo level 1", NetMessageNameGetInfo(NULL, u"cDeSk", 1, &buf), NERR_Success);
    MSG_INFO_1 *one = (MSG_INFO_1 *)buf;
    check("getinfo name", strcmp(narrow(one->msgi1_name), "CDESK"), 0);
    check("getinfo forward NULL", one->msgi1_forward == NULL && one->msgi1_forward_flag == 0, 1);
    NetApiBufferFree(buf);
    check("getinfo level 0 of the computer name", NetMessageNameGetInfo(NULL, computer, 0, &buf), NERR_Success);
    NetApiBufferFree(buf);
    check("getinfo unknown", NetMessageNameGetInfo(NULL, u"NOSUCHNAME", 0, &buf), NERR_NotLocalName);
    check("getinfo level 7", NetMessageNameGetInfo(NULL, u"CDESK", 7, &buf), ERROR_INVALID_LEVEL);
    check("getinfo NULL bufptr", NetMessageNameGetInfo(NULL, u"CDESK", 0, NULL), ERROR_INVALID_PARAMETER);

    check("delete CDESK", NetMessageNameDel(NULL, u"CDESK"), NERR_Success);
    check("delete CDESK again", NetMessageNameDel(NULL, u"CDESK"), NERR_NotLocalName);
    check("delete the computer name", NetMessageNameDel(NULL, computer), NERR_DelComputerName);
    check("free NULL", NetApiBufferFree(NULL), NERR_Success);
}

static void down_checks(void) {
    static const char16_t text[] = u"nobody home";
    LPBYTE buf = NULL;
    DWORD read, total;
    check("send", NetMessageBufferSend(NULL, u"HOST", NULL, (LPBYTE)text, sizeof text - 2), NERR_MsgNotStarted);
    check("add", NetMessageNameAdd(NULL, u"ALIAS"), NERR_MsgNotStarted);
    check("del", NetMessageNameDel(NULL, u"ALIAS"), NERR_MsgNotStarted);
    check("enum", NetMessageNameEnum(NULL, 0, &buf, MAX_PREFERRED_LENGTH, &read, &total, NULL), NERR_MsgNotStarted);
    check("getinfo", NetMessageNameGetInfo(NULL, u"ALIAS", 0, &buf), NERR_MsgNotStarted);
    /* Argument errors come first, service or not. */
    check("send with NULL msgname", NetMessageBufferSend(NULL, NULL, NULL, (LPBYTE)text, 2), ERROR_INVALID_PARAMETER);
}

static void garbled_checks(void) {
    static const char16_t text[] = u"to a confused service";
    LPBYTE buf = NULL;
    DWORD read, total;
    check("send", NetMessageBufferSend(NULL, u"HOST", NULL, (LPBYTE)text, sizeof text - 2), NERR_NetworkError);
    check("enum", NetMessageNameEnum(NULL, 0, &buf, MAX_PREFERRED_LENGTH, &read, &total, NULL), NERR_NetworkError);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "up") == 0) {
        WCHAR computer[16], unc[32] = {'\\', '\\'};
        widen(argv[2], computer, 16);
        widen(argv[2], unc + 2, 30);
        send_checks(computer, unc);
        name_checks(computer);
    } else if (argc == 2 && strcmp(argv[1], "down") == 0) {
        down_checks();
    } else if (argc == 2 && strcmp(argv[1], "garbled") == 0) {
        garbled_checks();
    } else {
        fprintf(stderr, "usage: client up COMPUTER | client down | client garbled\n");
        return 100;
    }
    return failures;
}
