/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The C API end to end: an echo server and a client, one program.
 *
 *   c_echo serve NAME [COUNT]        publish NAME, answer COUNT calls (default: forever), exit
 *   c_echo call NAME TEXT [OPCODE]   call NAME with TEXT's bytes, print the reply
 *
 * The server takes requests of any size (receive_into, with a buffer that grows to what
 * *needed says) and answers a call with opcode + 1 and the request's bytes, except that a
 * call with opcode 1000 + k (k = 1..16) is answered with the error -k
 * (vipc_server_reply_error): so a client in any language can check that each error reaches
 * it as its code. The runtime directory is $VIPC_RUNTIME_DIR (else the default).
 *
 * Build it against an installed veridian-ipc with pkg-config:
 *   cc -std=c11 c_echo.c $(pkg-config --cflags --libs veridian-ipc) -o c_echo
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <veridian/ipc.h>

static int fail(const char* what, int rc) {
    fprintf(stderr, "c_echo: %s: %s (%d): %s\n", what, vipc_error_name(rc), rc,
            vipc_last_error_detail());
    return 1;
}

static int serve(const char* name, long count) {
    vipc_server* server = NULL;
    int rc = vipc_server_publish(name, NULL, &server);
    if (rc != VIPC_OK) return fail("publish", rc);
    printf("c_echo: serving %s\n", name);
    fflush(stdout);
    long served = 0;
    size_t capacity = VIPC_INLINE_MAX;
    unsigned char* buffer = malloc(capacity);
    while (buffer != NULL && (count < 0 || served < count)) {
        vipc_message request;
        size_t needed = 0;
        rc = vipc_server_receive_into(server, &request, buffer, capacity, &needed,
                                      VIPC_DEADLINE_NEVER);
        if (rc == VIPC_ERR_MESSAGE_TOO_LARGE) { /* still queued: grow, take it again */
            unsigned char* bigger = realloc(buffer, needed);
            if (bigger == NULL) break;
            buffer = bigger;
            capacity = needed;
            continue;
        }
        if (rc != VIPC_OK) break;
        if (request.transaction_id == 0) continue; /* one-way: nothing to answer */
        if (request.opcode > 1000 && request.opcode <= 1016) {
            rc = vipc_server_reply_error(server, &request, -(int)(request.opcode - 1000), "c_echo",
                                         vipc_deadline_after_ms(1000));
        } else {
            rc = vipc_server_reply(server, &request, request.opcode + 1, buffer, needed,
                                   vipc_deadline_after_ms(1000));
        }
        if (rc != VIPC_OK) fail("reply", rc); /* that client is gone: serve the others */
        ++served;
    }
    free(buffer);
    printf("c_echo: served %ld calls\n", served);
    /* Closing discards what the clients have not read yet (the last reply, say): first let
     * them hang up, for up to 5 s. */
    vipc_endpoint_stats stats;
    const uint64_t give_up = vipc_deadline_after_ms(5000);
    while (vipc_server_stats(server, &stats) == VIPC_OK && stats.connections > 0 &&
           vipc_now_ns() < give_up) {
        const struct timespec one_ms = {0, 1000000};
        nanosleep(&one_ms, NULL);
    }
    vipc_server_free(server);
    return rc == VIPC_OK ? 0 : 1;
}

static int call(const char* name, const char* text, unsigned opcode) {
    vipc_connection* conn = NULL;
    vipc_connect_options options;
    vipc_connect_options_init(&options);
    /* The server may still be starting: try for up to 5 s. */
    int rc = VIPC_ERR_ENDPOINT_NOT_FOUND;
    for (int i = 0; i < 500 && rc == VIPC_ERR_ENDPOINT_NOT_FOUND; ++i) {
        rc = vipc_connect(name, &options, &conn);
        if (rc == VIPC_ERR_ENDPOINT_NOT_FOUND) {
            const struct timespec ten_ms = {0, 10000000};
            nanosleep(&ten_ms, NULL);
        }
    }
    if (rc != VIPC_OK) return fail("connect", rc);
    vipc_message reply;
    char out[VIPC_INLINE_MAX];
    size_t reply_size = 0;
    rc = vipc_connection_call_into(conn, opcode, text, strlen(text), &reply, out, sizeof out,
                                   &reply_size, vipc_deadline_after_ms(5000));
    if (rc != VIPC_OK) {
        /* The error a server answered with: printed for the tests, "error NAME CODE". */
        printf("error %s %d\n", vipc_error_name(rc), rc);
        vipc_connection_free(conn);
        return 3;
    }
    printf("reply opcode %u: %.*s\n", reply.opcode, (int)reply_size, out);
    vipc_connection_free(conn);
    return 0;
}

int main(int argc, char** argv) {
    if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
        return serve(argv[2], argc >= 4 ? strtol(argv[3], NULL, 10) : -1);
    }
    if (argc >= 4 && strcmp(argv[1], "call") == 0) {
        return call(argv[2], argv[3], argc >= 5 ? (unsigned)strtoul(argv[4], NULL, 10) : 1u);
    }
    fprintf(stderr, "usage: c_echo serve NAME [COUNT] | c_echo call NAME TEXT [OPCODE]\n");
    return 2;
}
