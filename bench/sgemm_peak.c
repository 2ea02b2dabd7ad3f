/* Measures OpenBLAS sgemm throughput on this machine: a large square
 * product (the practical peak) and the shapes one training step of the
 * default model uses, so training speed can be read against them.
 *
 * usage: seqmt-sgemm-peak [seconds per shape, default 1] */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Runs C = A B^T with A [m, k] and B [n, k] for about `seconds` and
 * returns GFLOP/s. */
static double measure(int m, int n, int k, double seconds)
{
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * n * k);
    float *c = malloc(sizeof(float) * m * n);
    double start, elapsed;
    long reps = 0;

    for (long i = 0; i < (long)m * k; i++)
        a[i] = (float)(i % 17) * 0.01f;
    for (long i = 0; i < (long)n * k; i++)
        b[i] = (float)(i % 13) * 0.01f;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c, n);
    start = now_seconds();
    do {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, k, b, k, 0.0f, c,
                    n);
        reps++;
        elapsed = now_seconds() - start;
    } while (elapsed < seconds);
    free(a);
    free(b);
    free(c);
    return 2.0 * m * n * k * reps / elapsed / 1e9;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 1.0;
    static const struct {
        const char *what;
        int m, n, k;
    } shapes[] = {
        {"square 2048 (peak)", 2048, 2048, 2048},
        {"input projection, 960 rows x 2048 x 256", 960, 2048, 256},
        {"recurrent step, 64 x 2048 x 512", 64, 2048, 512},
        {"output layer, 900 x 8018 x 512", 900, 8018, 512},
    };

    printf("OpenBLAS %s, %d threads\n", openblas_get_config(), openblas_get_num_threads());
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++)
        printf("%-42s %7.1f GFLOP/s\n", shapes[i].what,
               measure(shapes[i].m, shapes[i].n, shapes[i].k, seconds));
    return 0;
}
