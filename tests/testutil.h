/* Helpers shared by the CUnit runners. */
#ifndef SEQMT_TESTUTIL_H
#define SEQMT_TESTUTIL_H

#include <CUnit/CUnit.h>

/* Folder of the development corpora from SEQMT_TEST_DATA, or NULL (with a
 * skip message on stderr naming the variable) when it is missing. */
const char *test_data_dir(void);

/* Runs every registered suite with the basic interface and returns the
 * process exit status: 0 when every test passed, 1 otherwise. */
int test_run_all(void);

/* Returns the number of non-overlapping occurrences of needle (not empty)
 * in hay. */
int test_count_occurrences(const char *hay, const char *needle);

#endif
