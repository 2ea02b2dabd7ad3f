/* Placeholder tests: protected tokens masked by class and filled back in
 * source order, with unmatched placeholders removed. */
#include <CUnit/CUnit.h>
#include <string.h>

#include "placeholder.h"
#include "testutil.h"

static void fill(tok_list *list, const char *const *tokens, size_t n)
{
    tok_list_clear(list);
    for (size_t i = 0; i < n; i++)
        tok_list_push(list, tokens[i]);
}

static void test_mask_replaces_protected(void)
{
    static const char *in[] = {"Call", "555", "or", "see", "https://example.org/a?b=1", ",",
                               "write", "anna@example.de", "👍🏽", "now", "3.5"};
    tok_list list = {0}, saved = {0};

    fill(&list, in, 11);
    CU_ASSERT_EQUAL(placeholder_mask(&list, &saved), 5);
    CU_ASSERT_STRING_EQUAL(list.items[0], "Call");
    CU_ASSERT_STRING_EQUAL(list.items[1], "<num>");
    CU_ASSERT_STRING_EQUAL(list.items[4], "<url>");
    CU_ASSERT_STRING_EQUAL(list.items[7], "<email>");
    CU_ASSERT_STRING_EQUAL(list.items[8], "<emoji>");
    CU_ASSERT_STRING_EQUAL(list.items[10], "<num>");
    CU_ASSERT_EQUAL(saved.count, 5);
    CU_ASSERT_STRING_EQUAL(saved.items[0], "555");
    CU_ASSERT_STRING_EQUAL(saved.items[4], "3.5");
    CU_ASSERT(placeholder_is("<num>"));
    CU_ASSERT(!placeholder_is("num"));
    CU_ASSERT(!placeholder_is("<unk>"));
    tok_list_clear(&list);
    tok_list_clear(&saved);
}

/* Placeholders are filled per class in source order, even when the output
 * orders the classes differently. */
static void test_unmask_fills_by_class_in_order(void)
{
    static const char *src[] = {"12", "https://a.org", "7"};
    static const char *out[] = {"<url>", "und", "<num>", "bis", "<num>"};
    tok_list saved = {0}, list = {0};

    fill(&saved, src, 3);
    fill(&list, out, 5);
    CU_ASSERT_EQUAL(placeholder_unmask(&list, &saved), 0);
    CU_ASSERT_EQUAL(list.count, 5);
    CU_ASSERT_STRING_EQUAL(list.items[0], "https://a.org");
    CU_ASSERT_STRING_EQUAL(list.items[2], "12");
    CU_ASSERT_STRING_EQUAL(list.items[4], "7");
    tok_list_clear(&saved);
    tok_list_clear(&list);
}

static void test_unmatched_placeholder_removed(void)
{
    static const char *src[] = {"5"};
    static const char *out[] = {"<num>", "Hunde", "<num>", "<email>", "."};
    tok_list saved = {0}, list = {0};

    fill(&saved, src, 1);
    fill(&list, out, 5);
    CU_ASSERT_EQUAL(placeholder_unmask(&list, &saved), 0);
    CU_ASSERT_EQUAL(list.count, 3);
    CU_ASSERT_STRING_EQUAL(list.items[0], "5");
    CU_ASSERT_STRING_EQUAL(list.items[1], "Hunde");
    CU_ASSERT_STRING_EQUAL(list.items[2], ".");
    tok_list_clear(&saved);
    tok_list_clear(&list);
}

/* The tokenizer cannot produce a placeholder from user text. */
static void test_tokenizer_never_makes_placeholder(void)
{
    tok_list list = {0};

    CU_ASSERT_EQUAL(tok_tokenize("type <num> here <url>", "en", &list), 0);
    for (size_t i = 0; i < list.count; i++)
        CU_ASSERT(!placeholder_is(list.items[i]));
    tok_list_clear(&list);
}

int main(void)
{
    CU_pSuite s;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    s = CU_add_suite("placeholder", NULL, NULL);
    CU_add_test(s, "mask replaces protected", test_mask_replaces_protected);
    CU_add_test(s, "unmask fills by class in order", test_unmask_fills_by_class_in_order);
    CU_add_test(s, "unmatched placeholder removed", test_unmatched_placeholder_removed);
    CU_add_test(s, "tokenizer never makes placeholder", test_tokenizer_never_makes_placeholder);
    return test_run_all();
}
