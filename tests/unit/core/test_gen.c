/* SPDX-License-Identifier: MIT */
/* Unit tests of core/gen.c: numbering, parts freed with the generation (before its conf, in
 * reverse order), and retiring: a generation is freed only once nobody holds it. */
#include <criterion/criterion.h>

#include "core/gen.c"

#include <string.h>

static struct conf *load(void)
{
    const char *text = "global { workers 1; }\n";
    struct conf *conf = NULL;
    struct conf_errors errs = {0};
    cr_assert_eq(conf_load_string("t.conf", text, strlen(text), &conf, &errs), 0);
    conf_errors_fini(&errs);
    return conf;
}

static char freed[16];

static void part_free(void *part)
{
    size_t k = strlen(freed);
    freed[k] = *(const char *)part;
    freed[k + 1] = '\0';
}

Test(gen, ids_increase)
{
    struct gen *a = gen_new(load()), *b = gen_new(load());
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_gt(b->id, a->id);
    cr_assert_eq(atomic_load(&a->refs), 0);
    gen_free(a);
    gen_free(b);
    gen_free(NULL);
}

Test(gen, parts_are_freed_in_reverse_order_and_bounded)
{
    static const char names[] = "abcdef";
    struct gen *g = gen_new(load());
    freed[0] = '\0';
    for (int i = 0; i < GEN_MAX_PARTS; i++) {
        cr_assert_eq(gen_attach(g, (void *)&names[i], part_free), 0);
    }
    cr_assert_eq(gen_attach(g, (void *)&names[5], part_free), -ENOSPC);
    gen_free(g);
    cr_assert_str_eq(freed, "dcba");
}

Test(gen, retired_generations_wait_for_their_last_holder)
{
    static const char name = 'x';
    struct gen_retired list = {NULL};
    struct gen *g = gen_new(load());
    freed[0] = '\0';
    cr_assert_eq(gen_attach(g, (void *)&name, part_free), 0);
    gen_ref(g); /* the node */
    gen_ref(g); /* a worker */
    gen_retire(&list, g);
    cr_assert_eq(gen_collect(&list), 1);
    cr_assert_str_eq(freed, "", "freed while a worker holds it");
    gen_unref(g);
    cr_assert_eq(gen_collect(&list), 0);
    cr_assert_str_eq(freed, "x");
    cr_assert_null(list.head);
}
