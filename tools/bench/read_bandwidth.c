/* How fast one core reads memory here: a loop of 32-byte AVX2 loads over a
 * buffer of N MiB, repeated ~2 GiB worth. The ceiling a memory-bound matvec
 * (the teacher's 34 MB of int8 weights per token) can approach.
 *   gcc -O2 -march=native tools/bench/read_bandwidth.c -o /tmp/read-bandwidth
 *   for n in 1 2 8 34 128; do /tmp/read-bandwidth $n; done
 */
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 34;
    if (mib == 0) mib = 1;
    size_t n = mib << 20;
    uint8_t *a = aligned_alloc(64, n);
    if (!a) return 1;
    for (size_t i = 0; i < n; i++) a[i] = (uint8_t)(i * 7);
    __m256i acc = _mm256_setzero_si256();
    int reps = (int)(2048 / mib) + 1;
    double t0 = now();
    for (int r = 0; r < reps; r++)
        for (size_t i = 0; i < n; i += 128) {
            acc = _mm256_add_epi8(acc, _mm256_load_si256((const void *)(a + i)));
            acc = _mm256_add_epi8(acc, _mm256_load_si256((const void *)(a + i + 32)));
            acc = _mm256_add_epi8(acc, _mm256_load_si256((const void *)(a + i + 64)));
            acc = _mm256_add_epi8(acc, _mm256_load_si256((const void *)(a + i + 96)));
        }
    double t = now() - t0;
    int s[8];
    _mm256_storeu_si256((void *)s, acc);
    printf("%zu MiB: %.1f GB/s (checksum bit %d)\n", mib, (double)n * reps / t / 1e9, s[0] & 1);
    return 0;
}
