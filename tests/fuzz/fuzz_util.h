/* SPDX-License-Identifier: MIT */
/* What the fuzz targets share: poisoning the bytes a parser must not read (under ASan; a
 * no-op elsewhere, where the checks still run) and check(), which aborts with a message
 * naming the target. Define FUZZ_TARGET ("fuzz_x") before including. */
#ifndef KEEL_TESTS_FUZZ_UTIL_H
#define KEEL_TESTS_FUZZ_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FUZZ_HAVE_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define FUZZ_HAVE_ASAN 1
#endif
#ifdef FUZZ_HAVE_ASAN
#include <sanitizer/asan_interface.h>
static void poison(const void *p, size_t n)
{
    ASAN_POISON_MEMORY_REGION(p, n);
}
static void unpoison(const void *p, size_t n)
{
    ASAN_UNPOISON_MEMORY_REGION(p, n);
}
#else
static void poison(const void *p, size_t n)
{
    (void)p;
    (void)n;
}
static void unpoison(const void *p, size_t n)
{
    (void)p;
    (void)n;
}
#endif

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, FUZZ_TARGET ": %s\n", what);
        abort();
    }
}

#endif
