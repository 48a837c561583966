/* SPDX-License-Identifier: MIT */
/* Fuzz target for the form parser of the demo application (src/demo/demo_form.c). Checked:
 * demo_form_get writes a NUL-terminated value that fits and says its length, and never
 * touches bytes past its input or its buffer (poisoned past its size); text that
 * demo_form_text accepts is valid UTF-8 without control characters (newline and tab aside
 * in multi-line text), not empty, trimmed, and within its character limit. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_TARGET "fuzz_form"
#include "fuzz_util.h"

#include "demo/demo_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(char *t, size_t len, size_t max_chars, bool is_multiline)
{
    const char *why = NULL;
    if (demo_form_text(t, &len, max_chars, is_multiline, &why) != 0) {
        check(why != NULL, "a refusal says why");
        return;
    }
    check(len > 0 && t[len] == '\0', "accepted text is not empty and NUL-terminated");
    check(t[0] != ' ' && t[len - 1] != ' ' && t[len - 1] != '\n', "accepted text is trimmed");
    size_t chars = 0;
    for (size_t i = 0; i < len; chars++) {
        size_t n = demo_utf8_seq((const unsigned char *)t + i, len - i);
        check(n > 0, "accepted text is UTF-8");
        unsigned char c = (unsigned char)t[i];
        check(n > 1 || c >= 0x20 || (is_multiline && (c == '\n' || c == '\t')),
              "accepted text has no control character");
        check(c != '\r' && c != 0x7f, "no CR or DEL in accepted text");
        i += n;
    }
    check(chars <= max_chars, "accepted text is within its limit");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *in = malloc(size + 1); /* exactly the input: reading past it is caught */
    if (in == NULL) {
        return 0;
    }
    memcpy(in, data, size);
    static const char *const names[] = {"name", "message", "x"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        for (size_t cap = 1; cap <= 65; cap += 16) {
            char *out = malloc(cap + 16);
            if (out == NULL) {
                break;
            }
            poison(out + cap, 16); /* writing past cap is caught under ASan */
            int n = demo_form_get(in, size, names[k], out, cap);
            check(n >= 0 || n == -ENOSPC || n == -ENOENT || n == -EINVAL, "a known result");
            if (n >= 0) {
                check((size_t)n < cap && out[n] == '\0', "the value fits with its NUL");
                char *copy = malloc((size_t)n + 1);
                if (copy != NULL) {
                    memcpy(copy, out, (size_t)n + 1);
                    check_text(copy, (size_t)n, 8, k == 1);
                    free(copy);
                }
            } else {
                check(out[0] == '\0', "nothing is left in the buffer on failure");
            }
            unpoison(out + cap, 16);
            free(out);
        }
    }
    in[size] = '\0';
    check_text(in, size, 64, true);
    free(in);
    return 0;
}
