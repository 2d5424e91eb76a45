/*
 * kantor.h: the Kantor engine's C ABI (library: libkantor_ffi.a / .so,
 * crate engine/ffi). Written by hand; engine/ffi/tests/header.rs checks it
 * against the library's exports, constants and struct layouts.
 *
 * The app gives the model bytes and the memory; nothing is allocated and
 * nothing needs freeing. Every function returns a kantor_status:
 * KANTOR_OK or a KANTOR_ERROR_* code (null pointers, short buffers, bad
 * models, out-of-range arguments, calls out of order). A generator is not
 * thread-safe: use one from one thread at a time.
 *
 *   size_t size;
 *   kantor_memory_required(model, model_len, &size);
 *   KantorGenerator *g;
 *   kantor_generator_new(model, model_len, memory, size, &g);
 *   kantor_set_sampling(g, &sampling);      (optional, before the first token)
 *   kantor_feed(g, prompt, prompt_len);     (optional)
 *   kantor_step(g, &token);                 (repeat)
 *   kantor_pop_messages(g, messages, 16, &n);
 *   kantor_finish(g);                       (at the end: the last note-offs)
 */
#ifndef KANTOR_H
#define KANTOR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t kantor_status;

#define KANTOR_OK 0
/* A required pointer argument was null. */
#define KANTOR_ERROR_NULL 1
/* A buffer (the generator's memory, a message array) is too small. */
#define KANTOR_ERROR_BUFFER_TOO_SMALL 2
/* The model bytes are not a valid Kantor model. */
#define KANTOR_ERROR_BAD_MODEL 3
/* An argument is out of range: a token id, a sampling setting. */
#define KANTOR_ERROR_BAD_ARGUMENT 4
/* Not allowed now: sampling is set before the first token is fed or generated. */
#define KANTOR_ERROR_BAD_STATE 5
/* The pointer is not a generator made by kantor_generator_new. */
#define KANTOR_ERROR_BAD_HANDLE 6
/* The engine panicked (a bug in Kantor); this generator can no longer be used. */
#define KANTOR_ERROR_PANIC 7

/* Grid ticks per quarter note in KantorMessage.tick. */
#define KANTOR_TICKS_PER_QUARTER 12

/* KantorMessage.kind */
#define KANTOR_NOTE_ON 1
#define KANTOR_NOTE_OFF 2
/* A tempo change (not a wire message: the player's clock changes). */
#define KANTOR_TEMPO 3

/* A generator; lives in the memory given to kantor_generator_new. */
typedef struct KantorGenerator KantorGenerator;

/* Sampling settings and the seed. */
typedef struct KantorSampling {
    uint64_t seed;        /* seed of the sampler's random generator (any value) */
    float temperature;    /* finite, >= 0; 0 picks the most likely token */
    uint32_t top_k;       /* keep the top_k most likely tokens (0 = off) */
    float top_p;          /* in [0, 1]: keep the smallest set reaching top_p (1 = off) */
    uint32_t constrained; /* 1: mask ill-formed tokens (as the firmware does); 0: off */
} KantorSampling;

/* A timed MIDI message. */
typedef struct KantorMessage {
    uint32_t tick;               /* grid tick (KANTOR_TICKS_PER_QUARTER per quarter note) */
    uint8_t kind;                /* KANTOR_NOTE_ON, KANTOR_NOTE_OFF or KANTOR_TEMPO */
    uint8_t channel;             /* 0-15 (notes) */
    uint8_t key;                 /* 0-127 (notes) */
    uint8_t velocity;            /* 1-127 (note-on), else 0 */
    uint32_t micros_per_quarter; /* tempo, else 0 */
} KantorMessage;

/* Where a generator stands. */
typedef struct KantorStats {
    uint32_t tokens;        /* tokens fed so far (prompt and generated) */
    uint32_t ill_formed;    /* tokens the decoder rejected */
    uint32_t dropped_notes; /* notes dropped by a full message queue */
    uint32_t evictions;     /* how often the KV cache slid */
    uint32_t position;      /* positions in the KV cache */
    uint32_t now;           /* the decoder's clock: grid tick of the last token */
    uint32_t bar_start;     /* grid tick at which the current bar starts */
    uint32_t bar_end;       /* grid tick at which the current bar ends */
    uint32_t idle;          /* 1 if no message waits (released or not) */
    uint32_t vocab_size;    /* valid token ids are below it */
    uint32_t context;       /* the model's context length */
} KantorStats;

/* A static English description of a status code (never NULL). */
const char *kantor_status_message(kantor_status status);

/* Writes the default sampling: temperature 0.8, top-k 50, top-p 0.95, seed 1, constrained. */
kantor_status kantor_sampling_default(KantorSampling *out);

/* Checks the model and writes the bytes of memory a generator for it needs
 * (whatever the memory's alignment). */
kantor_status kantor_memory_required(const uint8_t *model, size_t model_len, size_t *out_size);

/* Makes a generator for the model inside memory (any alignment) and writes its
 * handle. The model bytes and the memory must not overlap and must stay valid
 * (the model unchanged) while the generator is used. Calling it again on the
 * same memory starts afresh. */
kantor_status kantor_generator_new(const uint8_t *model, size_t model_len, void *memory,
                                   size_t memory_len, KantorGenerator **out_generator);

/* Sets the sampling; only before the first token is fed or generated. */
kantor_status kantor_set_sampling(KantorGenerator *generator, const KantorSampling *sampling);

/* Feeds prompt tokens (all checked against the vocabulary before any is fed). */
kantor_status kantor_feed(KantorGenerator *generator, const uint16_t *tokens, size_t count);

/* Samples the next token, feeds it back and decodes it (starting with Bos if
 * nothing was fed); writes the token. */
kantor_status kantor_step(KantorGenerator *generator, uint16_t *out_token);

/* Moves up to capacity (>= 1) due messages, in time order, into out and writes
 * how many; call again while it fills the array. */
kantor_status kantor_pop_messages(KantorGenerator *generator, KantorMessage *out, size_t capacity,
                                  size_t *out_count);

/* Releases every pending message (the last note-offs): call at the end, then pop. */
kantor_status kantor_finish(KantorGenerator *generator);

/* Writes where the generator stands. */
kantor_status kantor_stats(KantorGenerator *generator, KantorStats *out);

#ifdef __cplusplus
}
#endif

#endif /* KANTOR_H */
