/* Tests of API keys and rate limits (access.h) with real keys files in a
 * temporary folder and a clock the tests set: every access_check gets its
 * time as an argument, so no test sleeps.
 */
#include "access.h"
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KEY_A "alpha-0123456789abcdef"
#define KEY_B "bravo+/=0123456789ABCDEF"
#define KEY_C "charlie_0123456789.~"
#define KEY_D "delta-0123456789abcdef"
#define T0 1000.0 /* start of the test clock, in seconds */

static char folder[] = "/tmp/seqmt-access-XXXXXX";
static int file_counter;

static int make_folder(void)
{
    return mkdtemp(folder) ? 0 : -1;
}

static int remove_folder(void)
{
    char path[256];

    for (int i = 0; i < file_counter; i++) {
        snprintf(path, sizeof(path), "%s/keys-%d", folder, i);
        unlink(path);
    }
    return rmdir(folder);
}

/* Writes len bytes of text to a new file in the test folder and returns its
 * path (static storage, valid until the next call). */
static const char *write_file_bytes(const char *text, size_t len)
{
    static char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/keys-%d", folder, file_counter++);
    f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(text, 1, len, f), len);
    fclose(f);
    return path;
}

static const char *write_file(const char *text)
{
    return write_file_bytes(text, strlen(text));
}

/* Loads text as a keys file with the given default rate; fails the test
 * with the loader's message when it is rejected. */
static access_control *load_text(const char *text, double default_rate)
{
    char err[512] = "";
    access_control *a = access_load(write_file(text), default_rate, err, sizeof(err));

    if (!a)
        fprintf(stderr, "\naccess_load failed: %s\n", err);
    CU_ASSERT_PTR_NOT_NULL(a);
    return a;
}

/* Sends requests with key at time now until the first one that is not
 * ACCESS_OK, at most limit requests. Returns how many were served. */
static int count_served(access_control *a, const char *key, const char *address, double now,
                        int limit)
{
    int served = 0;

    while (served < limit && access_check(a, key, address, now, NULL) == ACCESS_OK)
        served++;
    return served;
}

/* ---- keys file ---- */

static void test_load_valid_file(void)
{
    access_control *a = load_text("# keys of the test clients\n"
                                  "\n"
                                  KEY_A " 60\n"
                                  "   " KEY_B "\t2   # the slow client\r\n"
                                  KEY_C " unlimited\n"
                                  KEY_D,
                                  10);

    if (!a)
        return;
    CU_ASSERT_EQUAL(access_keys_required(a), 1);
    CU_ASSERT_EQUAL(access_key_count(a), 4);
    CU_ASSERT_EQUAL(access_check(a, KEY_A, "127.0.0.1", T0, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_check(a, KEY_B, "127.0.0.1", T0, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_check(a, KEY_C, "127.0.0.1", T0, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_check(a, KEY_D, "127.0.0.1", T0, NULL), ACCESS_OK);
    access_free(a);
}

static void test_missing_or_unknown_key(void)
{
    char overlong[ACCESS_KEY_MAX + 2];
    unsigned retry = 99;
    access_control *a = load_text(KEY_A "\n" KEY_D "\n", 0);

    if (!a)
        return;
    memset(overlong, 'a', sizeof(overlong) - 1);
    overlong[sizeof(overlong) - 1] = '\0';
    CU_ASSERT_EQUAL(access_check(a, NULL, "127.0.0.1", T0, &retry), ACCESS_FORBIDDEN);
    CU_ASSERT_EQUAL(retry, 0);
    CU_ASSERT_EQUAL(access_check(a, "", "127.0.0.1", T0, NULL), ACCESS_FORBIDDEN);
    CU_ASSERT_EQUAL(access_check(a, "not-a-key-0123456789", "127.0.0.1", T0, NULL),
                    ACCESS_FORBIDDEN);
    /* A prefix, an extension and a one-character change of a real key. */
    CU_ASSERT_EQUAL(access_check(a, "alpha-0123456789abcde", "127.0.0.1", T0, NULL),
                    ACCESS_FORBIDDEN);
    CU_ASSERT_EQUAL(access_check(a, KEY_A "f", "127.0.0.1", T0, NULL), ACCESS_FORBIDDEN);
    CU_ASSERT_EQUAL(access_check(a, "alpha-0123456789abcdeF", "127.0.0.1", T0, NULL),
                    ACCESS_FORBIDDEN);
    CU_ASSERT_EQUAL(access_check(a, overlong, "127.0.0.1", T0, NULL), ACCESS_FORBIDDEN);
    /* The first and the last key of the file are both found. */
    CU_ASSERT_EQUAL(access_check(a, KEY_A, "127.0.0.1", T0, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_check(a, KEY_D, "127.0.0.1", T0, NULL), ACCESS_OK);
    access_free(a);
}

/* Loads text and checks that it is rejected with a message that names the
 * file and the line, and that does not contain secret. */
static void expect_rejected(const char *text, size_t len, const char *line_text,
                            const char *secret)
{
    char err[512] = "";
    const char *path = write_file_bytes(text, len);
    char path_copy[256];
    access_control *a;

    snprintf(path_copy, sizeof(path_copy), "%s", path);
    a = access_load(path_copy, 60, err, sizeof(err));
    CU_ASSERT_PTR_NULL(a);
    access_free(a);
    if (!strstr(err, path_copy) || !strstr(err, line_text))
        fprintf(stderr, "\nmessage \"%s\" lacks \"%s\" or the path\n", err, line_text);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path_copy));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, line_text));
    if (secret)
        CU_ASSERT_PTR_NULL(strstr(err, secret));
}

static void test_malformed_files_rejected(void)
{
    static const char nul_line[] = KEY_A "\n" KEY_B "\0x\n";

    expect_rejected("# ok\n" KEY_A "\nshort-key\n", strlen("# ok\n" KEY_A "\nshort-key\n"),
                    "line 3: the key has 9 characters", "short-key");
    expect_rejected(KEY_A "\n" KEY_B "\nbad*char-0123456789abc\n", 
                    strlen(KEY_A "\n" KEY_B "\nbad*char-0123456789abc\n"),
                    "line 3: invalid character at position 4", "0123456789abc");
    /* Text that is not a number may be the rest of a key with a space, so
     * the message does not repeat it. */
    expect_rejected(KEY_A " abcdef\n", strlen(KEY_A " abcdef\n"),
                    "line 1: the text after the key is not a rate", "abcdef");
    expect_rejected(KEY_A " abcdef\n", strlen(KEY_A " abcdef\n"), "A key cannot contain spaces",
                    KEY_A);
    expect_rejected(KEY_A " 0\n", strlen(KEY_A " 0\n"), "line 1: invalid rate \"0\"", KEY_A);
    expect_rejected(KEY_A " -5\n", strlen(KEY_A " -5\n"), "line 1: invalid rate \"-5\"", KEY_A);
    expect_rejected(KEY_A " 60.5\n", strlen(KEY_A " 60.5\n"), "line 1: invalid rate \"60.5\"",
                    KEY_A);
    expect_rejected(KEY_A " 1000001\n", strlen(KEY_A " 1000001\n"), "line 1: invalid rate",
                    KEY_A);
    expect_rejected("\n" KEY_A " 60 extra\n", strlen("\n" KEY_A " 60 extra\n"),
                    "line 2: expected KEY or KEY REQUESTS_PER_MINUTE, found 3 fields", KEY_A);
    expect_rejected("my secret key 0123456789 60\n", strlen("my secret key 0123456789 60\n"),
                    "line 1: expected KEY or KEY REQUESTS_PER_MINUTE, found 5 fields", "secret");
    expect_rejected("my secret key 0123456789 60\n", strlen("my secret key 0123456789 60\n"),
                    "A key cannot contain spaces", "0123456789");
    expect_rejected(KEY_A "\n" KEY_B "\n\n" KEY_A " 5\n",
                    strlen(KEY_A "\n" KEY_B "\n\n" KEY_A " 5\n"),
                    "line 4: the key repeats the key on line 1", KEY_A);
    expect_rejected(nul_line, sizeof(nul_line) - 1, "line 2: contains a NUL byte", KEY_B);
    expect_rejected("", 0, "has no keys", NULL);
    expect_rejected("# only a comment\n\n   \n", strlen("# only a comment\n\n   \n"),
                    "has no keys", NULL);
}

/* A UTF-8 byte-order mark at the start of the file is skipped, before a
 * key or a comment; anywhere else it is an invalid character. */
static void test_byte_order_mark_skipped(void)
{
    access_control *a = load_text("\xEF\xBB\xBF" KEY_A " 60\n" KEY_B "\n", 0);

    if (a) {
        CU_ASSERT_EQUAL(access_key_count(a), 2);
        CU_ASSERT_EQUAL(access_check(a, KEY_A, "127.0.0.1", T0, NULL), ACCESS_OK);
        CU_ASSERT_EQUAL(access_check(a, KEY_B, "127.0.0.1", T0, NULL), ACCESS_OK);
        access_free(a);
    }
    a = load_text("\xEF\xBB\xBF# keys\r\n" KEY_C "\r\n", 0);
    if (a) {
        CU_ASSERT_EQUAL(access_key_count(a), 1);
        CU_ASSERT_EQUAL(access_check(a, KEY_C, "127.0.0.1", T0, NULL), ACCESS_OK);
        access_free(a);
    }
    expect_rejected(KEY_A "\n\xEF\xBB\xBF" KEY_B "\n", strlen(KEY_A "\n\xEF\xBB\xBF" KEY_B "\n"),
                    "line 2: invalid character at position 1", KEY_B);
}

static void test_unreadable_file_and_rate(void)
{
    char err[512] = "", path[300];
    access_control *a;

    snprintf(path, sizeof(path), "%s/does-not-exist", folder);
    a = access_load(path, 60, err, sizeof(err));
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot open keys file"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, path));

    a = access_load(NULL, -1, err, sizeof(err));
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid default rate -1"));
    a = access_load(NULL, INFINITY, err, sizeof(err));
    CU_ASSERT_PTR_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "invalid default rate"));
}

/* ---- rate limits ---- */

static void test_key_rate_and_retry_after(void)
{
    unsigned retry = 0;
    access_control *a = load_text(KEY_A " 60\n" KEY_B " 2\n", 0);

    if (!a)
        return;
    /* 60 per minute: a burst of 60, then one per second. */
    CU_ASSERT_EQUAL(count_served(a, KEY_A, NULL, T0, 1000), 60);
    CU_ASSERT_EQUAL(access_check(a, KEY_A, NULL, T0, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 1);
    CU_ASSERT_EQUAL(access_check(a, KEY_A, NULL, T0 + 0.5, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 1); /* 0.5 s rounded up */
    CU_ASSERT_EQUAL(access_check(a, KEY_A, NULL, T0 + 1.0, &retry), ACCESS_OK);
    CU_ASSERT_EQUAL(retry, 0);
    CU_ASSERT_EQUAL(access_check(a, KEY_A, NULL, T0 + 1.0, NULL), ACCESS_LIMITED);

    /* 2 per minute: 30 s between requests once the burst is spent, and the
     * first key's state does not affect the second's. */
    CU_ASSERT_EQUAL(count_served(a, KEY_B, NULL, T0, 1000), 2);
    CU_ASSERT_EQUAL(access_check(a, KEY_B, NULL, T0, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 30);
    CU_ASSERT_EQUAL(access_check(a, KEY_B, NULL, T0 + 29.0, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 1);
    CU_ASSERT_EQUAL(access_check(a, KEY_B, NULL, T0 + 30.0, &retry), ACCESS_OK);

    /* Waiting exactly Retry-After seconds is always enough. */
    CU_ASSERT_EQUAL(access_check(a, KEY_B, NULL, T0 + 30.0, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(access_check(a, KEY_B, NULL, T0 + 30.0 + retry, NULL), ACCESS_OK);

    /* After a long pause the bucket is full again, but not fuller. */
    CU_ASSERT_EQUAL(count_served(a, KEY_A, NULL, T0 + 3600, 1000), 60);
    access_free(a);
}

static void test_default_and_unlimited_keys(void)
{
    access_control *a = load_text(KEY_A "\n" KEY_C " unlimited\n", 5);

    if (!a)
        return;
    CU_ASSERT_EQUAL(count_served(a, KEY_A, NULL, T0, 1000), 5);
    CU_ASSERT_EQUAL(count_served(a, KEY_C, NULL, T0, 10000), 10000);
    access_free(a);

    /* A default rate of 0 leaves keys without a rate unlimited. */
    a = load_text(KEY_A "\n", 0);
    if (!a)
        return;
    CU_ASSERT_EQUAL(count_served(a, KEY_A, NULL, T0, 10000), 10000);
    access_free(a);
}

static void test_addresses_without_keys(void)
{
    char err[256];
    unsigned retry = 0;
    access_control *a = access_load(NULL, 3, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(access_keys_required(a), 0);
    CU_ASSERT_EQUAL(access_key_count(a), 0);
    /* Keys are ignored: the address has the bucket. */
    CU_ASSERT_EQUAL(count_served(a, NULL, "192.0.2.1", T0, 100), 3);
    CU_ASSERT_EQUAL(access_check(a, "anything-at-all-here", "192.0.2.1", T0, &retry),
                    ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 20);
    CU_ASSERT_EQUAL(count_served(a, NULL, "2001:db8::1", T0, 100), 3);
    CU_ASSERT_EQUAL(count_served(a, NULL, NULL, T0, 100), 3);
    CU_ASSERT_EQUAL(access_client_count(a), 3);
    CU_ASSERT_EQUAL(access_check(a, NULL, "192.0.2.1", T0 + 20, NULL), ACCESS_OK);
    access_free(a);

    /* No limit at all with a default rate of 0. */
    a = access_load(NULL, 0, err, sizeof(err));
    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_EQUAL(count_served(a, NULL, "192.0.2.1", T0, 10000), 10000);
    CU_ASSERT_EQUAL(access_client_count(a), 0);
    access_free(a);
}

static void test_fractional_rate_and_clock(void)
{
    char err[256];
    unsigned retry = 0;
    access_control *a = access_load(NULL, 0.5, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* Half a request per minute: a bucket of 1, refilled in 120 s. */
    CU_ASSERT_EQUAL(count_served(a, NULL, "192.0.2.7", T0, 100), 1);
    CU_ASSERT_EQUAL(access_check(a, NULL, "192.0.2.7", T0, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 120);
    /* A clock that goes back refills nothing. */
    CU_ASSERT_EQUAL(access_check(a, NULL, "192.0.2.7", T0 - 500, &retry), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(retry, 120);
    CU_ASSERT_EQUAL(access_check(a, NULL, "192.0.2.7", T0 + 120, NULL), ACCESS_OK);
    access_free(a);
}

static void test_address_table_is_bounded(void)
{
    char err[256], address[64];
    access_control *a = access_load(NULL, 1, err, sizeof(err));

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    /* Fill the table with drained buckets, one microsecond apart, so that
     * client 0 is the least recently seen. */
    for (int i = 0; i < ACCESS_MAX_CLIENTS; i++) {
        snprintf(address, sizeof(address), "10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        access_check(a, NULL, address, T0 + i * 1e-6, NULL);
    }
    CU_ASSERT_EQUAL(access_client_count(a), ACCESS_MAX_CLIENTS);
    CU_ASSERT_EQUAL(access_check(a, NULL, "10.0.0.1", T0 + 0.1, NULL), ACCESS_LIMITED);

    /* A new address evicts client 0, which then starts with a full bucket.
     * Its return evicts client 2, the least recently seen after the check
     * of client 1 above, so client 3 is still tracked and drained. */
    CU_ASSERT_EQUAL(access_check(a, NULL, "192.0.2.1", T0 + 0.1, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_client_count(a), ACCESS_MAX_CLIENTS);
    CU_ASSERT_EQUAL(access_check(a, NULL, "10.0.0.0", T0 + 0.1, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_client_count(a), ACCESS_MAX_CLIENTS);
    CU_ASSERT_EQUAL(access_check(a, NULL, "10.0.0.3", T0 + 0.1, NULL), ACCESS_LIMITED);
    CU_ASSERT_EQUAL(access_check(a, NULL, "10.0.0.2", T0 + 0.1, NULL), ACCESS_OK);

    /* A minute later every bucket has refilled, so one new address drops
     * them all. */
    CU_ASSERT_EQUAL(access_check(a, NULL, "192.0.2.2", T0 + 61, NULL), ACCESS_OK);
    CU_ASSERT_EQUAL(access_client_count(a), 1);
    access_free(a);
}

/* ---- concurrency ---- */

#define CHECK_THREADS 4
#define CHECKS_PER_THREAD 1000
#define SHARED_RATE 1000

typedef struct {
    access_control *a;
    int served;
    int limited;
} thread_counts;

static void *check_many(void *arg)
{
    thread_counts *t = arg;

    for (int i = 0; i < CHECKS_PER_THREAD; i++) {
        access_result r = access_check(t->a, KEY_A, "127.0.0.1", T0, NULL);

        t->served += r == ACCESS_OK;
        t->limited += r == ACCESS_LIMITED;
    }
    return NULL;
}

static void test_concurrent_checks_exact(void)
{
    pthread_t threads[CHECK_THREADS];
    thread_counts counts[CHECK_THREADS] = {0};
    int served = 0, limited = 0;
    access_control *a = load_text(KEY_A " 1000\n", 0);

    if (!a)
        return;
    for (int i = 0; i < CHECK_THREADS; i++) {
        counts[i].a = a;
        CU_ASSERT_EQUAL_FATAL(pthread_create(&threads[i], NULL, check_many, &counts[i]), 0);
    }
    for (int i = 0; i < CHECK_THREADS; i++) {
        pthread_join(threads[i], NULL);
        served += counts[i].served;
        limited += counts[i].limited;
    }
    /* The clock does not move, so exactly one bucket's worth is served. */
    CU_ASSERT_EQUAL(served, SHARED_RATE);
    CU_ASSERT_EQUAL(limited, CHECK_THREADS * CHECKS_PER_THREAD - SHARED_RATE);
    access_free(a);
}

static void test_free_null(void)
{
    access_free(NULL);
    CU_PASS("access_free(NULL) returned");
}

int main(void)
{
    CU_pSuite suite;

    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    suite = CU_add_suite("access", make_folder, remove_folder);
    if (!suite)
        return 1;
    CU_add_test(suite, "load valid keys file", test_load_valid_file);
    CU_add_test(suite, "missing or unknown key is forbidden", test_missing_or_unknown_key);
    CU_add_test(suite, "malformed files name the line", test_malformed_files_rejected);
    CU_add_test(suite, "byte-order mark skipped", test_byte_order_mark_skipped);
    CU_add_test(suite, "unreadable file and bad rate", test_unreadable_file_and_rate);
    CU_add_test(suite, "key rate and Retry-After", test_key_rate_and_retry_after);
    CU_add_test(suite, "default and unlimited keys", test_default_and_unlimited_keys);
    CU_add_test(suite, "addresses limited without keys", test_addresses_without_keys);
    CU_add_test(suite, "fractional rate, clock going back", test_fractional_rate_and_clock);
    CU_add_test(suite, "address table is bounded", test_address_table_is_bounded);
    CU_add_test(suite, "concurrent checks are exact", test_concurrent_checks_exact);
    CU_add_test(suite, "free NULL", test_free_null);
    return test_run_all();
}
