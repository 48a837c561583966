/* SPDX-License-Identifier: MIT */
/* The directive tables and docs/directives/ must describe the same directives (STYLE §9,
 * after curl's test1139): one docs/directives/<name>.md per directive name, no page without a
 * directive, and each page shows the table's syntax and default. Runs from the repository
 * root, like every unit test. */
#include <criterion/criterion.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conf.h"
#include "core/conf_registry.h"

#define DOCS_DIR "docs/directives"
#define MAX_NAMES 256

struct names {
    char *v[MAX_NAMES];
    size_t n;
};

static bool names_has(const struct names *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void names_add(struct names *s, const char *name, size_t len)
{
    char *copy = strndup(name, len);
    cr_assert_not_null(copy);
    if (names_has(s, copy)) {
        free(copy);
        return;
    }
    cr_assert_lt(s->n, MAX_NAMES);
    s->v[s->n++] = copy;
}

static void names_free(struct names *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i]);
    }
    s->n = 0;
}

static void table_names(struct names *out)
{
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const char *name = sections[s]->directives[i].name;
            names_add(out, name, strlen(name));
        }
    }
}

static void doc_names(struct names *out)
{
    DIR *dir = opendir(DOCS_DIR);
    cr_assert_not_null(dir, "cannot open %s (run the tests from the repository root)", DOCS_DIR);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t len = strlen(e->d_name);
        if (e->d_name[0] == '.') {
            continue;
        }
        cr_assert(len > 3 && strcmp(e->d_name + len - 3, ".md") == 0,
                  "%s/%s: only <directive>.md files belong there", DOCS_DIR, e->d_name);
        names_add(out, e->d_name, len - 3);
    }
    closedir(dir);
}

static char *read_doc(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s.md", DOCS_DIR, name);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    static char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

Test(conf_docs, every_directive_has_a_page_and_every_page_a_directive)
{
    struct names tables = {0}, docs = {0};
    table_names(&tables);
    doc_names(&docs);
    cr_assert_gt(tables.n, 0);
    for (size_t i = 0; i < tables.n; i++) {
        cr_expect(names_has(&docs, tables.v[i]), "directive \"%s\" has no %s/%s.md", tables.v[i],
                  DOCS_DIR, tables.v[i]);
    }
    for (size_t i = 0; i < docs.n; i++) {
        cr_expect(names_has(&tables, docs.v[i]), "%s/%s.md documents no directive of the tables",
                  DOCS_DIR, docs.v[i]);
    }
    names_free(&tables);
    names_free(&docs);
}

Test(conf_docs, pages_show_the_tables_syntax_and_default)
{
    size_t n_sections;
    const struct conf_section *const *sections = conf_registry_sections(&n_sections);
    for (size_t s = 0; s < n_sections; s++) {
        for (size_t i = 0; i < sections[s]->n_directives; i++) {
            const struct conf_directive *d = &sections[s]->directives[i];
            const char *doc = read_doc(d->name);
            char want[512];
            snprintf(want, sizeof(want), "# `%s`\n", d->name);
            cr_expect(strncmp(doc, want, strlen(want)) == 0, "%s.md must start with %s", d->name,
                      want);
            snprintf(want, sizeof(want), "`%s`", d->syntax);
            cr_expect(strstr(doc, want) != NULL, "%s.md does not show the syntax %s", d->name,
                      want);
            if (d->def != NULL) {
                const char *line = strstr(doc, "- **Default:** ");
                cr_assert_not_null(line, "%s.md has no Default line", d->name);
                snprintf(want, sizeof(want), "- **Default:** `%s`", d->def);
                cr_expect(strncmp(line, want, strlen(want)) == 0,
                          "%s.md: the default is %s in the table", d->name, d->def);
            }
        }
    }
}

/* The first ``` block after the line `heading` in text, loaded as a configuration: every
 * example in the documentation must be a valid file on its own. */
static void expect_example_loads(const char *what, const char *text, const char *heading)
{
    const char *h = strstr(text, heading);
    cr_assert_not_null(h, "%s has no \"%s\"", what, heading);
    const char *open = strstr(h, "\n```\n");
    cr_assert_not_null(open, "%s: no code block after \"%s\"", what, heading);
    open += 5;
    const char *close = strstr(open, "\n```\n");
    cr_assert_not_null(close, "%s: unterminated code block", what);
    struct conf *conf = NULL;
    struct conf_errors errs;
    int rc =
        conf_load_mem(what, open, (size_t)(close - open) + 1, CONF_LOAD_NO_RESOLVE, &conf, &errs);
    cr_expect_eq(rc, 0, "the example of %s does not load:\n%s", what,
                 errs.text != NULL ? errs.text : "");
    conf_free(conf);
    conf_errors_fini(&errs);
}

Test(conf_docs, examples_are_valid_configurations)
{
    struct names docs = {0};
    doc_names(&docs);
    for (size_t i = 0; i < docs.n; i++) {
        char what[300];
        snprintf(what, sizeof(what), "%s/%s.md", DOCS_DIR, docs.v[i]);
        expect_example_loads(what, read_doc(docs.v[i]), "\n## Example\n");
    }
    names_free(&docs);

    FILE *f = fopen("docs/configuration.md", "r");
    cr_assert_not_null(f, "cannot open docs/configuration.md");
    static char buf[64 * 1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    expect_example_loads("docs/configuration.md", buf, "\n## A complete example\n");
}
