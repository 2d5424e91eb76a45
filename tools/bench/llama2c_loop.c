/*
 * kantor-bench's driver for llama2.c's forward pass (Kantor's own code).
 *
 * llama2.c's `generate` times with millisecond resolution and makes one
 * generation per process, so this file includes a peer source unmodified and
 * replaces its `main` with a loop that builds the transformer, tokenizer and
 * sampler once and then runs whole generations back to back:
 *
 *     gcc -Ofast -march=native -I PEER_DIR '-DPEER_SOURCE="run.c"' llama2c_loop.c -o loop -lm
 *
 *     loop MODEL TOKENIZER time SECONDS TOKEN
 *         one untimed forward pass (page in the weights), then generations
 *         of seq_len tokens (positions 0..seq_len-1, greedy argmax, starting
 *         from TOKEN at position 0) until SECONDS have passed; prints
 *         "tokens N seconds S tokens_per_second R" (monotonic clock).
 *     loop MODEL TOKENIZER check OUT_FILE TOKEN...
 *         feeds the TOKENs at positions 0, 1, … and writes the logits of
 *         each position to OUT_FILE: n × vocab_size little-endian f32.
 *
 * kantor-bench (tools/bench/src/llama2c.rs) writes this file next to the
 * build and runs it; see DEVELOPERS.md, "Benchmarks".
 */

#ifndef PEER_SOURCE
#error "define PEER_SOURCE as \"run.c\" or \"runq.c\""
#endif

#define main llama2c_main
#include PEER_SOURCE
#undef main

#include <errno.h>

static double monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void fail(const char *message, const char *detail) {
    fprintf(stderr, "llama2c_loop: %s%s\n", message, detail);
    exit(EXIT_FAILURE);
}

static long parse_long(const char *text, const char *what) {
    char *end = NULL;
    errno = 0;
    long value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0') { fail(what, text); }
    return value;
}

static double parse_double(const char *text, const char *what) {
    char *end = NULL;
    errno = 0;
    double value = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0') { fail(what, text); }
    return value;
}

static void write_logits(Transformer *transformer, char **tokens, int n, const char *path) {
    int vocab_size = transformer->config.vocab_size;
    if (n > transformer->config.seq_len) { fail("more TOKENs than seq_len", ""); }
    FILE *out = fopen(path, "wb");
    if (!out) { fail("cannot create ", path); }
    for (int pos = 0; pos < n; pos++) {
        long token = parse_long(tokens[pos], "TOKEN is not an integer: ");
        if (token < 0 || token >= vocab_size) { fail("TOKEN outside the vocabulary: ", tokens[pos]); }
        float *logits = forward(transformer, (int)token, pos);
        if (fwrite(logits, sizeof(float), (size_t)vocab_size, out) != (size_t)vocab_size) {
            fail("cannot write ", path);
        }
    }
    if (fclose(out) != 0) { fail("cannot write ", path); }
}

static void time_generations(Transformer *transformer, Sampler *sampler, int start_token,
                             double seconds) {
    int seq_len = transformer->config.seq_len;
    // Touch every weight once, as the engine's weights are already in memory.
    forward(transformer, start_token, 0);
    long tokens = 0;
    int last = start_token;
    double start = monotonic_seconds();
    double elapsed = 0.0;
    do {
        int token = start_token;
        for (int pos = 0; pos < seq_len; pos++) {
            float *logits = forward(transformer, token, pos);
            token = sample(sampler, logits);
        }
        last = token;
        tokens += seq_len;
        elapsed = monotonic_seconds() - start;
    } while (elapsed < seconds);
    printf("tokens %ld seconds %.6f tokens_per_second %.3f last_token %d\n", tokens, elapsed,
           (double)tokens / elapsed, last);
}

int main(int argc, char *argv[]) {
    const char *mode = argc > 3 ? argv[3] : "";
    int is_check = strcmp(mode, "check") == 0;
    int is_time = strcmp(mode, "time") == 0;
    if (!(is_check && argc >= 6) && !(is_time && argc == 6)) {
        fprintf(stderr,
                "usage: %s MODEL TOKENIZER time SECONDS TOKEN\n"
                "       %s MODEL TOKENIZER check OUT_FILE TOKEN...\n",
                argv[0], argv[0]);
        return EXIT_FAILURE;
    }

    Transformer transformer;
    build_transformer(&transformer, argv[1]);
    int vocab_size = transformer.config.vocab_size;
    Tokenizer tokenizer;
    build_tokenizer(&tokenizer, argv[2], vocab_size);
    Sampler sampler;
    build_sampler(&sampler, vocab_size, 0.0f, 0.9f, 1); // temperature 0: argmax

    if (is_check) {
        write_logits(&transformer, argv + 5, argc - 5, argv[4]);
    } else {
        double seconds = parse_double(argv[4], "SECONDS is not a number: ");
        long start_token = parse_long(argv[5], "TOKEN is not an integer: ");
        if (start_token < 0 || start_token >= vocab_size) {
            fail("TOKEN outside the vocabulary: ", argv[5]);
        }
        time_generations(&transformer, &sampler, (int)start_token, seconds);
    }

    free_sampler(&sampler);
    free_tokenizer(&tokenizer);
    free_transformer(&transformer);
    return EXIT_SUCCESS;
}
