#include "testutil.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char *test_data_dir(void)
{
    const char *dir = getenv("SEQMT_TEST_DATA");
    struct stat st;

    if (dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return dir;
    fprintf(stderr, "SKIP: corpus folder %s not found; set SEQMT_TEST_DATA to the folder "
                    "holding multi30k/ and wmt-ende-10k/\n",
            dir ? dir : "(SEQMT_TEST_DATA unset)");
    return NULL;
}

int test_run_all(void)
{
    unsigned failures;

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    failures += CU_get_error() != CUE_SUCCESS;
    CU_cleanup_registry();
    return failures ? 1 : 0;
}

int test_count_occurrences(const char *hay, const char *needle)
{
    int n = 0;

    for (const char *p = strstr(hay, needle); p; p = strstr(p + strlen(needle), needle))
        n++;
    return n;
}
