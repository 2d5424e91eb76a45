/*
 * Generate a MIDI file from C with the Kantor engine's C ABI: the same file,
 * byte for byte, as the Rust example (engine/examples/generate.rs).
 *
 *   tools/c-example.sh MODEL.safetensors OUT.mid [TOKENS] [SEED]
 *
 * The file: format 0, one track, 480 ticks per quarter note; note-on and
 * note-off (velocity 0) messages with running status, tempo meta events,
 * end of track.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kantor.h"

enum { TICKS_PER_QUARTER_OUT = 480, BATCH = 32 };

/* A growable byte buffer. */
typedef struct {
    uint8_t *bytes;
    size_t len, cap;
} Buffer;

static void put_byte(Buffer *b, uint8_t byte) {
    if (b->len == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 4096;
        uint8_t *bytes = realloc(b->bytes, cap);
        if (!bytes) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
        b->bytes = bytes;
        b->cap = cap;
    }
    b->bytes[b->len++] = byte;
}

/* A MIDI variable-length quantity (at most 28 bits, as in midly). */
static void put_varlen(Buffer *b, uint32_t value) {
    value &= 0x0FFFFFFF;
    int started = 0;
    for (int i = 3; i >= 0; i--) {
        uint8_t byte = (value >> (7 * i)) & 0x7F;
        if (started || byte != 0 || i == 0) {
            started = 1;
            put_byte(b, i == 0 ? byte : (uint8_t)(byte | 0x80));
        }
    }
}

static void put_u32_be(Buffer *b, uint32_t v) {
    put_byte(b, v >> 24);
    put_byte(b, v >> 16);
    put_byte(b, v >> 8);
    put_byte(b, v);
}

/* The track being written: delta times from the latest tick, running status. */
typedef struct {
    Buffer events;
    uint32_t last;
    int running_status; /* -1: none */
} Track;

static void put_delta(Track *t, uint32_t tick) {
    uint32_t at = tick * (TICKS_PER_QUARTER_OUT / KANTOR_TICKS_PER_QUARTER);
    put_varlen(&t->events, at > t->last ? at - t->last : 0);
    if (at > t->last) t->last = at;
}

static void put_message(Track *t, const KantorMessage *m) {
    put_delta(t, m->tick);
    if (m->kind == KANTOR_TEMPO) {
        t->running_status = -1; /* meta events cancel running status */
        put_byte(&t->events, 0xFF);
        put_byte(&t->events, 0x51);
        put_byte(&t->events, 3);
        put_byte(&t->events, (m->micros_per_quarter >> 16) & 0xFF);
        put_byte(&t->events, (m->micros_per_quarter >> 8) & 0xFF);
        put_byte(&t->events, m->micros_per_quarter & 0xFF);
        return;
    }
    int on = m->kind == KANTOR_NOTE_ON;
    int status = (on ? 0x90 : 0x80) | (m->channel & 0x0F);
    if (status != t->running_status) {
        put_byte(&t->events, (uint8_t)status);
        t->running_status = status;
    }
    put_byte(&t->events, m->key & 0x7F);
    put_byte(&t->events, on ? (m->velocity & 0x7F) : 0);
}

static int check(kantor_status status, const char *what) {
    if (status != KANTOR_OK) {
        fprintf(stderr, "%s: %s (status %d)\n", what, kantor_status_message(status), (int)status);
        return 0;
    }
    return 1;
}

/* Pops every due message into the track. */
static int play(KantorGenerator *g, Track *t) {
    KantorMessage batch[BATCH];
    size_t n;
    do {
        if (!check(kantor_pop_messages(g, batch, BATCH, &n), "kantor_pop_messages")) return 0;
        for (size_t i = 0; i < n; i++) put_message(t, &batch[i]);
    } while (n == BATCH);
    return 1;
}

static uint8_t *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    Buffer b = {0};
    int c;
    while ((c = getc(f)) != EOF) put_byte(&b, (uint8_t)c);
    int failed = ferror(f);
    fclose(f);
    if (failed) {
        free(b.bytes);
        return NULL;
    }
    *len = b.len;
    return b.bytes ? b.bytes : malloc(1);
}

static int parse_number(const char *text, unsigned long long max, unsigned long long *out) {
    char *end;
    errno = 0;
    if (text[0] == '-' || text[0] == '\0') return 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno || *end != '\0' || v > max) return 0;
    *out = v;
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: generate MODEL.safetensors OUT.mid [TOKENS] [SEED]\n");
        return 2;
    }
    unsigned long long tokens = 600, seed = 1;
    if ((argc > 3 && !parse_number(argv[3], UINT32_MAX, &tokens)) ||
        (argc > 4 && !parse_number(argv[4], UINT64_MAX, &seed))) {
        fprintf(stderr, "TOKENS and SEED are non-negative integers\n");
        return 2;
    }

    size_t model_len;
    uint8_t *model = read_file(argv[1], &model_len);
    if (!model) {
        fprintf(stderr, "%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    size_t memory_len;
    if (!check(kantor_memory_required(model, model_len, &memory_len), argv[1])) return 1;
    /* The engine never allocates: the application gives it memory. */
    void *memory = malloc(memory_len);
    KantorGenerator *g;
    if (!memory) return 1;
    if (!check(kantor_generator_new(model, model_len, memory, memory_len, &g), "kantor_generator_new"))
        return 1;
    KantorSampling sampling;
    kantor_sampling_default(&sampling);
    sampling.seed = seed;
    if (!check(kantor_set_sampling(g, &sampling), "kantor_set_sampling")) return 1;

    Track track = {.running_status = -1};
    for (unsigned long long i = 0; i < tokens; i++) {
        uint16_t token;
        if (!check(kantor_step(g, &token), "kantor_step") || !play(g, &track)) return 1;
    }
    if (!check(kantor_finish(g), "kantor_finish") || !play(g, &track)) return 1;
    put_varlen(&track.events, 0);
    put_byte(&track.events, 0xFF);
    put_byte(&track.events, 0x2F);
    put_byte(&track.events, 0);

    Buffer file = {0};
    const uint8_t header[] = {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 0, 0, 1,
                              TICKS_PER_QUARTER_OUT >> 8, TICKS_PER_QUARTER_OUT & 0xFF};
    for (size_t i = 0; i < sizeof header; i++) put_byte(&file, header[i]);
    const char *mtrk = "MTrk";
    for (int i = 0; i < 4; i++) put_byte(&file, (uint8_t)mtrk[i]);
    put_u32_be(&file, (uint32_t)track.events.len);
    for (size_t i = 0; i < track.events.len; i++) put_byte(&file, track.events.bytes[i]);

    FILE *out = fopen(argv[2], "wb");
    if (!out || fwrite(file.bytes, 1, file.len, out) != file.len || fclose(out) != 0) {
        fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
        return 1;
    }
    KantorStats stats;
    kantor_stats(g, &stats);
    printf("%s: %u tokens (%u ill-formed), %zu KiB of engine memory, %u cache slides\n", argv[2],
           stats.tokens, stats.ill_formed, memory_len / 1024, stats.evictions);
    free(file.bytes);
    free(track.events.bytes);
    free(memory);
    free(model);
    return 0;
}
