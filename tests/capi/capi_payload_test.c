/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The C API's payloads of every size up to the endpoint's inline maximum, both directions:
 * 1 B, 64 B (a vipc_message holds it), 65 B and 4 KiB (payload records: receive gives
 * MESSAGE_TOO_LARGE and the message stays queued until receive_into takes it), the maximum,
 * one over it (MESSAGE_TOO_LARGE naming the limit); sends, calls (call and call_into) and
 * replies, with the server in a second thread. */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <veridian/ipc.h>

static int checks = 0;
static int failures = 0;
static pthread_mutex_t check_mu = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        const int ok_ = (cond); /* evaluated outside the lock: it may block */                  \
        pthread_mutex_lock(&check_mu);                                                          \
        ++checks;                                                                               \
        if (!ok_) {                                                                             \
            ++failures;                                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; detail: %s\n", __FILE__, __LINE__, #cond, \
                    vipc_last_error_detail());                                                  \
        }                                                                                       \
        pthread_mutex_unlock(&check_mu);                                                        \
    } while (0)
#define CHECK_RC(call, want) CHECK((call) == (want))

enum { REPLY_OVER_MAX = 99 };

static uint8_t pattern[1 << 17];

/* A payload of `size` bytes, different for each size. */
static const uint8_t* bytes_of(size_t size) {
    for (size_t i = 0; i < size; ++i)
        pattern[i] = (uint8_t)(i * 7 + size);
    return pattern;
}

/* The server thread: takes every request with receive_into (growing its buffer to what
 * *needed says: the request stays queued meanwhile) and echoes it with opcode + 1; opcode
 * REPLY_OVER_MAX first tries a reply one byte over the maximum (it must be refused). */
static void* serve(void* arg) {
    vipc_server* s = arg;
    uint32_t max = 0;
    CHECK_RC(vipc_server_max_inline(s, &max), VIPC_OK);
    size_t capacity = 16;
    uint8_t* buffer = malloc(capacity);
    for (;;) {
        vipc_message req;
        size_t needed = 0;
        int rc = vipc_server_receive_into(s, &req, buffer, capacity, &needed, VIPC_DEADLINE_NEVER);
        if (rc == VIPC_ERR_MESSAGE_TOO_LARGE) {
            CHECK(needed > capacity);
            buffer = realloc(buffer, needed);
            capacity = needed;
            continue;
        }
        if (rc != VIPC_OK) break; /* closed */
        CHECK(req.size == needed);
        if (req.opcode == REPLY_OVER_MAX) {
            uint8_t* big = calloc(1, (size_t)max + 1);
            CHECK_RC(vipc_server_reply(s, &req, 0, big, (size_t)max + 1, 0),
                     VIPC_ERR_MESSAGE_TOO_LARGE);
            CHECK(strstr(vipc_last_error_detail(), "vipc_server_reply_region") != NULL);
            free(big);
            CHECK_RC(vipc_server_reply(s, &req, req.opcode + 1, NULL, 0, 0), VIPC_OK);
        } else {
            CHECK_RC(vipc_server_reply(s, &req, req.opcode + 1, buffer, needed, 0), VIPC_OK);
        }
    }
    free(buffer);
    return NULL;
}

/* A client thread: calls of sizes 0..4096 in a mixed order, each echo checked byte for byte
 * (its own payload bytes, so a reply given to the wrong call would show). */
struct caller {
    vipc_connection* c;
    unsigned seed;
    int ok;
};

static void* call_many(void* arg) {
    struct caller* me = arg;
    static _Thread_local uint8_t request[4096], reply[4096];
    me->ok = 0;
    for (unsigned i = 0; i < 200; ++i) {
        const size_t size = (i * 37u + me->seed * 101u) % 4097u;
        for (size_t k = 0; k < size; ++k)
            request[k] = (uint8_t)(k + i + me->seed);
        vipc_message header;
        size_t reply_size = 0;
        const int rc =
            vipc_connection_call_into(me->c, 7, request, size, &header, reply, sizeof reply,
                                      &reply_size, vipc_deadline_after_ms(10000));
        if (rc != VIPC_OK || reply_size != size || header.opcode != 8 ||
            memcmp(reply, request, size) != 0) {
            fprintf(stderr, "call %u of %zu bytes: rc %d (%s), reply %zu bytes, opcode %u\n", i,
                    size, rc, vipc_last_error_detail(), reply_size, header.opcode);
            return NULL;
        }
    }
    me->ok = 1;
    return NULL;
}

/* A one-way message client → server of `size` bytes, taken on the server. */
static void client_to_server(vipc_connection* c, vipc_server* s, size_t size) {
    static uint8_t got[1 << 17];
    const uint8_t* want = bytes_of(size);
    CHECK_RC(vipc_connection_send(c, 21, want, size, vipc_deadline_after_ms(1000)), VIPC_OK);
    vipc_message m;
    if (size <= VIPC_INLINE_MAX) {
        CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
        CHECK(m.kind == VIPC_KIND_BYTES && m.opcode == 21 && m.size == size);
        CHECK(memcmp(m.bytes, want, size) == 0);
        return;
    }
    /* Too big for a vipc_message: refused, twice (nothing lost), then taken into a buffer. */
    CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK(strstr(vipc_last_error_detail(), "vipc_server_receive_into") != NULL);
    CHECK_RC(vipc_server_try_receive(s, &m), VIPC_ERR_MESSAGE_TOO_LARGE);
    size_t needed = 0;
    CHECK_RC(vipc_server_receive_into(s, &m, got, size - 1, &needed, 0),
             VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK(needed == size);
    memset(&m, 0, sizeof m);
    CHECK_RC(vipc_server_try_receive_into(s, &m, got, sizeof got, &needed), VIPC_OK);
    CHECK(needed == size && m.size == size && m.opcode == 21 && m.transaction_id == 0);
    CHECK(m.sender_pid == (uint64_t)getpid() && m.connection != 0);
    CHECK(memcmp(got, want, size) == 0 && memcmp(m.bytes, want, VIPC_INLINE_MAX) == 0);
    CHECK_RC(vipc_server_try_receive_into(s, &m, got, sizeof got, &needed), VIPC_ERR_CHANNEL_EMPTY);
}

/* A one-way message server → client of `size` bytes, taken on the client. */
static void server_to_client(vipc_server* s, uint64_t to, vipc_connection* c, size_t size) {
    static uint8_t got[1 << 17];
    const uint8_t* want = bytes_of(size);
    CHECK_RC(vipc_server_send(s, to, 22, want, size, vipc_deadline_after_ms(1000)), VIPC_OK);
    vipc_message m;
    if (size <= VIPC_INLINE_MAX) {
        CHECK_RC(vipc_connection_receive(c, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
        CHECK(m.kind == VIPC_KIND_BYTES && m.opcode == 22 && m.size == size);
        CHECK(memcmp(m.bytes, want, size) == 0);
        return;
    }
    CHECK_RC(vipc_connection_receive(c, &m, vipc_deadline_after_ms(1000)),
             VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK(strstr(vipc_last_error_detail(), "vipc_connection_receive_into") != NULL);
    size_t needed = 0;
    CHECK_RC(vipc_connection_try_receive_into(c, &m, got, 3, &needed), VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK(needed == size);
    CHECK_RC(
        vipc_connection_receive_into(c, &m, got, sizeof got, &needed, vipc_deadline_after_ms(1000)),
        VIPC_OK);
    CHECK(needed == size && m.size == size && m.opcode == 22);
    CHECK(memcmp(got, want, size) == 0);
    CHECK_RC(vipc_connection_try_receive_into(c, &m, got, sizeof got, &needed),
             VIPC_ERR_CHANNEL_EMPTY);
}

int main(void) {
    char dir[64];
    strcpy(dir, "/tmp/vipc-capi-payload-XXXXXX");
    if (mkdtemp(dir) == NULL) return 1;
    vipc_server_options so;
    vipc_connect_options co;
    CHECK_RC(vipc_server_options_init(&so), VIPC_OK);
    CHECK_RC(vipc_connect_options_init(&co), VIPC_OK);
    so.runtime_dir = dir;
    co.runtime_dir = dir;
    vipc_server* s = NULL;
    vipc_connection* c = NULL;
    CHECK_RC(vipc_server_publish("capi/payload", &so, &s), VIPC_OK);
    CHECK_RC(vipc_connect("capi/payload", &co, &c), VIPC_OK);
    uint32_t max = 0, server_max = 0;
    CHECK_RC(vipc_connection_max_inline(c, &max), VIPC_OK);
    CHECK_RC(vipc_server_max_inline(s, &server_max), VIPC_OK);
    CHECK(max == 4096 && server_max == max); /* the default */
    const size_t sizes[] = {1, 64, 65, 4096, max};

    /* One-way, both directions, every size; then one over the maximum. */
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k)
        client_to_server(c, s, sizes[k]);
    vipc_message m;
    CHECK_RC(vipc_connection_send(c, 1, "x", 1, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
    const uint64_t to = m.connection;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k)
        server_to_client(s, to, c, sizes[k]);
    CHECK_RC(vipc_connection_send(c, 1, bytes_of(max + 1), max + 1, 0), VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK(strstr(vipc_last_error_detail(), "4096") != NULL);
    CHECK(strstr(vipc_last_error_detail(), "region") != NULL);
    CHECK_RC(vipc_server_send(s, to, 1, bytes_of(max + 1), max + 1, 0), VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK_RC(vipc_server_try_receive(s, &m), VIPC_ERR_CHANNEL_EMPTY); /* nothing was sent */
    CHECK_RC(vipc_connection_try_receive(c, &m), VIPC_ERR_CHANNEL_EMPTY);

    /* Calls, with the server in its own thread. */
    pthread_t server_thread;
    CHECK(pthread_create(&server_thread, NULL, serve, s) == 0);
    static uint8_t reply_bytes[1 << 17];
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {
        const size_t size = sizes[k];
        const uint8_t* want = bytes_of(size);
        vipc_message reply;
        int rc = vipc_connection_call(c, 7, want, size, &reply, vipc_deadline_after_ms(5000));
        if (size <= VIPC_INLINE_MAX) {
            CHECK_RC(rc, VIPC_OK);
            CHECK(reply.opcode == 8 && reply.size == size && memcmp(reply.bytes, want, size) == 0);
        } else {
            /* The echo is too big for a vipc_message. */
            CHECK_RC(rc, VIPC_ERR_MESSAGE_TOO_LARGE);
            CHECK(strstr(vipc_last_error_detail(), "vipc_connection_call_into") != NULL);
        }
        size_t reply_size = 0;
        memset(&reply, 0, sizeof reply);
        CHECK_RC(
            vipc_connection_call_into(c, 9, want, size, &reply, reply_bytes, sizeof reply_bytes,
                                      &reply_size, vipc_deadline_after_ms(5000)),
            VIPC_OK);
        CHECK(reply_size == size && reply.size == size && reply.opcode == 10);
        CHECK((reply.flags & VIPC_FLAG_IS_REPLY) && reply.sender_pid == (uint64_t)getpid());
        CHECK(memcmp(reply_bytes, want, size) == 0);
        CHECK(memcmp(reply.bytes, want, size < VIPC_INLINE_MAX ? size : VIPC_INLINE_MAX) == 0);
    }
    {
        /* A short reply buffer: MESSAGE_TOO_LARGE with the size (the reply is dropped). */
        vipc_message reply;
        size_t reply_size = 0;
        CHECK_RC(vipc_connection_call_into(c, 9, bytes_of(4096), 4096, &reply, reply_bytes, 100,
                                           &reply_size, vipc_deadline_after_ms(5000)),
                 VIPC_ERR_MESSAGE_TOO_LARGE);
        CHECK(reply_size == 4096);
        /* Requests over the maximum are refused before anything is sent. */
        CHECK_RC(vipc_connection_call_into(c, 9, bytes_of(max + 1), max + 1, &reply, reply_bytes,
                                           sizeof reply_bytes, &reply_size, 0),
                 VIPC_ERR_MESSAGE_TOO_LARGE);
        CHECK_RC(vipc_connection_call(c, 9, bytes_of(max + 1), max + 1, &reply, 0),
                 VIPC_ERR_MESSAGE_TOO_LARGE);
        /* A reply over the maximum is refused on the server (it answers with 0 bytes). */
        CHECK_RC(vipc_connection_call_into(c, REPLY_OVER_MAX, NULL, 0, &reply, reply_bytes,
                                           sizeof reply_bytes, &reply_size,
                                           vipc_deadline_after_ms(5000)),
                 VIPC_OK);
        CHECK(reply_size == 0 && reply.opcode == REPLY_OVER_MAX + 1);
        CHECK_RC(vipc_connection_call_into(NULL, 1, NULL, 0, &reply, NULL, 0, NULL, 0),
                 VIPC_ERR_INVALID_MESSAGE);
        CHECK_RC(vipc_server_receive_into(s, NULL, NULL, 0, NULL, 0), VIPC_ERR_INVALID_MESSAGE);
    }
    /* Two receiving threads on the server, two calling threads (a connection each: one call
     * in flight per connection, so a reply always finds room in its ring): every
     * receive_into that finds its buffer short leaves the message for the next receive, and
     * no message is lost or given to the wrong call. */
    {
        pthread_t second_server, callers[2];
        vipc_connection* other = NULL;
        CHECK_RC(vipc_connect("capi/payload", &co, &other), VIPC_OK);
        struct caller who[2] = {{c, 1, 0}, {other, 2, 0}};
        CHECK(pthread_create(&second_server, NULL, serve, s) == 0);
        for (int i = 0; i < 2; ++i)
            CHECK(pthread_create(&callers[i], NULL, call_many, &who[i]) == 0);
        for (int i = 0; i < 2; ++i)
            CHECK(pthread_join(callers[i], NULL) == 0);
        CHECK(who[0].ok == 1 && who[1].ok == 1);
        vipc_connection_free(other);
        CHECK_RC(vipc_server_close(s), VIPC_OK);
        CHECK(pthread_join(second_server, NULL) == 0);
    }
    CHECK(pthread_join(server_thread, NULL) == 0);
    vipc_connection_free(c);
    vipc_server_free(s);
    rmdir(dir);
    if (failures != 0) {
        fprintf(stderr, "capi_payload_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("capi_payload_test: %d checks passed\n", checks);
    return 0;
}
