/*
 * A C program written against lmserver.h, as a program that enumerates the
 * servers of the LAN before sending writes it; the browse e2e test compiles
 * it with gcc, links it to libnetapi32.so and runs it against a netsend
 * service whose browse list holds a Samba master browser and netsend hosts.
 *
 *   servers MASTER NETSEND_HOST WORKGROUP
 *
 * Prints one line per check and every entry; the exit status is the number of
 * failed checks.
 */
#include <stdio.h>
#include <string.h>

#include <lmserver.h>

static int failures;

static void check(const char *what, int ok) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (!ok)
        failures++;
}

/* UTF-16 to ASCII ('?' beyond ASCII). */
static const char *narrow(const WCHAR *in, char *out, size_t n) {
    size_t i = 0;
    for (; in && in[i] && i + 1 < n; i++)
        out[i] = in[i] < 0x80 ? (char)in[i] : '?';
    out[i] = 0;
    return out;
}

static void widen(const char *in, WCHAR *out, size_t n) {
    size_t i = 0;
    for (; in[i] && i + 1 < n; i++)
        out[i] = (unsigned char)in[i];
    out[i] = 0;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: servers MASTER NETSEND_HOST WORKGROUP\n");
        return 100;
    }
    char name[64], comment[64];
    LPBYTE buf = NULL;
    DWORD read = 0, total = 0;

    /* Level 101, every type: both hosts, with their types and comments. */
    NET_API_STATUS s = NetServerEnum(NULL, 101, &buf, MAX_PREFERRED_LENGTH, &read, &total,
                                     SV_TYPE_ALL, NULL, NULL);
    check("level 101 succeeds", s == NERR_Success);
    check("entries read = total", read == total && read >= 2);
    int master = 0, host = 0;
    SERVER_INFO_101 *e = (SERVER_INFO_101 *)buf;
    for (DWORD i = 0; i < read; i++) {
        narrow(e[i].sv101_name, name, sizeof name);
        narrow(e[i].sv101_comment, comment, sizeof comment);
        printf("  %s type=%08x version=%u.%u platform=%u comment=%s\n", name,
               (unsigned)e[i].sv101_type, (unsigned)e[i].sv101_version_major,
               (unsigned)e[i].sv101_version_minor, (unsigned)e[i].sv101_platform_id, comment);
        if (strcmp(name, argv[1]) == 0)
            master = (e[i].sv101_type & SV_TYPE_MASTER_BROWSER) && (e[i].sv101_type & SV_TYPE_SERVER);
        if (strcmp(name, argv[2]) == 0)
            host = e[i].sv101_type == (SV_TYPE_WORKSTATION | SV_TYPE_SERVER_UNIX) &&
                   strcmp(comment, "netsend messenger") == 0 && e[i].sv101_platform_id == PLATFORM_ID_NT;
    }
    check("the master browser is a server and master", master);
    check("the netsend host is a Unix workstation with its comment", host);
    check("NetApiBufferFree", NetApiBufferFree(buf) == NERR_Success);

    /* The type filter: file servers only leaves the netsend host out. */
    buf = NULL;
    s = NetServerEnum(NULL, 100, &buf, MAX_PREFERRED_LENGTH, &read, &total, SV_TYPE_SERVER, NULL, NULL);
    int only_servers = s == NERR_Success && read >= 1;
    SERVER_INFO_100 *h = (SERVER_INFO_100 *)buf;
    for (DWORD i = 0; i < read; i++)
        if (strcmp(narrow(h[i].sv100_name, name, sizeof name), argv[2]) == 0)
            only_servers = 0;
    check("SV_TYPE_SERVER leaves the workstation out", only_servers);
    NetApiBufferFree(buf);

    /* Paging: one entry's worth of bytes a call, ERROR_MORE_DATA until the
     * last, the same entries as in one call. */
    DWORD all = total, seen = 0, handle = 0, calls = 0;
    buf = NULL;
    s = NetServerEnum(NULL, 100, &buf, MAX_PREFERRED_LENGTH, &read, &all, SV_TYPE_ALL, NULL, NULL);
    NetApiBufferFree(buf);
    do {
        buf = NULL;
        s = NetServerEnum(NULL, 100, &buf, 1, &read, &total, SV_TYPE_ALL, NULL, &handle);
        check("a page holds one entry", read == 1);
        seen += read;
        NetApiBufferFree(buf);
        calls++;
    } while (s == ERROR_MORE_DATA && calls < 100);
    check("paging ends with NERR_Success", s == NERR_Success && handle == 0);
    check("paging sees every entry once", seen == all);

    /* The workgroups: ours, with the master browser as comment. */
    buf = NULL;
    s = NetServerEnum(NULL, 101, &buf, MAX_PREFERRED_LENGTH, &read, &total, SV_TYPE_DOMAIN_ENUM, NULL, NULL);
    int domain = 0;
    e = (SERVER_INFO_101 *)buf;
    for (DWORD i = 0; s == NERR_Success && i < read; i++)
        if (strcmp(narrow(e[i].sv101_name, name, sizeof name), argv[3]) == 0)
            domain = strcmp(narrow(e[i].sv101_comment, comment, sizeof comment), argv[1]) == 0 &&
                     e[i].sv101_type == SV_TYPE_DOMAIN_ENUM;
    check("SV_TYPE_DOMAIN_ENUM lists the workgroup and its master", domain);
    NetApiBufferFree(buf);

    /* Another domain: nothing there. */
    WCHAR other[16];
    widen("NOSUCHGROUP", other, 16);
    buf = NULL;
    s = NetServerEnum(NULL, 101, &buf, MAX_PREFERRED_LENGTH, &read, &total, SV_TYPE_ALL, other, NULL);
    check("an unknown domain has no entries", s == NERR_Success && read == 0 && total == 0);
    NetApiBufferFree(buf);

    /* Errors. */
    check("level 102 is ERROR_INVALID_LEVEL",
          NetServerEnum(NULL, 102, &buf, MAX_PREFERRED_LENGTH, &read, &total, SV_TYPE_ALL, NULL, NULL) ==
              ERROR_INVALID_LEVEL);
    check("NULL bufptr is ERROR_INVALID_PARAMETER",
          NetServerEnum(NULL, 100, NULL, MAX_PREFERRED_LENGTH, &read, &total, SV_TYPE_ALL, NULL, NULL) ==
              ERROR_INVALID_PARAMETER);
    return failures;
}
