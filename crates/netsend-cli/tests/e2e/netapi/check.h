/*
 * The check helper of the C test programs (client.c, alert.c): one line per
 * check, and a count of the failed ones for the exit status.
 */
#ifndef NETSEND_TEST_CHECK_H
#define NETSEND_TEST_CHECK_H

#include <stdio.h>

#include <lmmsg.h>

static int failures;

static void check(const char *what, NET_API_STATUS got, NET_API_STATUS want) {
    if (got == want) {
        printf("ok %s: %u\n", what, (unsigned)got);
    } else {
        printf("FAIL %s: got %u, want %u\n", what, (unsigned)got, (unsigned)want);
        failures++;
    }
}

#endif
