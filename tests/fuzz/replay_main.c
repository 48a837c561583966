/* SPDX-License-Identifier: MIT */
/* Corpus replay for fuzz targets built without libFuzzer (gcc, `make fuzz-replay`): runs
 * LLVMFuzzerTestOneInput once on every file named on the command line or found (not
 * recursively) in a directory named there, then prints "replay: N inputs". Target-agnostic:
 * link it with any tests/fuzz/fuzz_*.c. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional, as in libFuzzer: a target may define it to set itself up. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Read a whole file into a buffer of exactly its size, so sanitizers see overreads. */
static int replay_file(const char *path, size_t *count)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: fopen() %s failed: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == -1) {
        fprintf(stderr, "replay: fstat() %s failed: %s\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size > 0 ? size : 1);
    if (data == NULL) {
        fprintf(stderr, "replay: out of memory for %s\n", path);
        fclose(f);
        return -1;
    }
    size_t got = fread(data, 1, size, f);
    int failed = ferror(f);
    fclose(f);
    if (got != size || failed != 0) {
        fprintf(stderr, "replay: short read on %s\n", path);
        free(data);
        return -1;
    }
    (void)LLVMFuzzerTestOneInput(data, size); /* libFuzzer ignores the result too */
    free(data);
    (*count)++;
    return 0;
}

static int replay_dir(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: opendir() %s failed: %s\n", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.') {
            continue;
        }
        int n = snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (n < 0 || (size_t)n >= sizeof(path)) {
            fprintf(stderr, "replay: path too long in %s\n", dir);
            rc = -1;
            continue;
        }
        if (stat(path, &st) == -1 || !S_ISREG(st.st_mode)) {
            continue;
        }
        if (replay_file(path, count) != 0) {
            rc = -1;
        }
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    size_t count = 0;
    int rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize != NULL) {
        (void)LLVMFuzzerInitialize(&argc, &argv);
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) == -1) {
            fprintf(stderr, "replay: stat() %s failed: %s\n", argv[i], strerror(errno));
            rc = -1;
        } else if (S_ISDIR(st.st_mode)) {
            rc |= replay_dir(argv[i], &count);
        } else {
            rc |= replay_file(argv[i], &count);
        }
    }
    printf("replay: %zu inputs\n", count);
    return rc == 0 ? 0 : 1;
}
