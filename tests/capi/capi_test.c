/* SPDX-License-Identifier: MIT OR Apache-2.0 */
/* The C API from C11, in one process and one thread (calls are begun and their replies
 * polled, so nothing blocks): errors the runtime finds reach C as their codes with a detail;
 * payloads of every inline size; regions; capabilities; both pollable descriptors; stats;
 * NULL arguments. (Every error code across processes: examples/run_c_echo_example.sh.) */
#define _POSIX_C_SOURCE 200809L
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <veridian/ipc.h>

static int checks = 0;
static int failures = 0;

#define CHECK(cond)                                                                             \
    do {                                                                                        \
        ++checks;                                                                               \
        if (!(cond)) {                                                                          \
            ++failures;                                                                         \
            fprintf(stderr, "%s:%d: CHECK(%s) failed; detail: %s\n", __FILE__, __LINE__, #cond, \
                    vipc_last_error_detail());                                                  \
        }                                                                                       \
    } while (0)
#define CHECK_RC(call, want) CHECK((call) == (want))

static char dir[64];

static int readable(int fd) {
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, 5000) == 1;
}

/* Serves what is queued: echo with opcode + 1, or the error an opcode 1000 + k asks for. */
static void serve_queued(vipc_server* s) {
    vipc_message req;
    while (vipc_server_try_receive(s, &req) == VIPC_OK) {
        if (req.opcode > 1000) {
            CHECK_RC(vipc_server_reply_error(s, &req, -(int)(req.opcode - 1000), "asked for", 0),
                     VIPC_OK);
        } else if (req.region_size > 0) {
            vipc_region* r = NULL;
            void* data = NULL;
            uint64_t size = 0;
            int writable = 1;
            CHECK_RC(vipc_region_receive(&req, &r), VIPC_OK);
            CHECK_RC(vipc_region_data(r, &data, &size, &writable), VIPC_OK);
            CHECK(writable == 0 && size == req.region_size);
            uint8_t sum = 0;
            for (uint64_t i = 0; i < size; ++i)
                sum = (uint8_t)(sum + ((uint8_t*)data)[i]);
            CHECK_RC(vipc_server_reply(s, &req, req.opcode + 1, &sum, 1, 0), VIPC_OK);
            vipc_region_free(r);
        } else {
            CHECK_RC(vipc_server_reply(s, &req, req.opcode + 1, req.bytes, req.size, 0), VIPC_OK);
        }
    }
}

/* A call made without blocking: begin, then poll both descriptors until the reply is in. */
static int call_polled(vipc_server* s, vipc_connection* c, uint32_t opcode, const void* data,
                       size_t size, vipc_message* reply) {
    int sfd = -1, cfd = -1;
    uint64_t txid = 0;
    CHECK_RC(vipc_server_pollable_fd(s, &sfd), VIPC_OK);
    CHECK_RC(vipc_connection_pollable_fd(c, &cfd), VIPC_OK);
    int rc = vipc_connection_call_begin(c, opcode, data, size, &txid, vipc_deadline_after_ms(1000));
    if (rc != VIPC_OK) return rc;
    for (int round = 0; round < 100; ++round) {
        struct pollfd p[2] = {{sfd, POLLIN, 0}, {cfd, POLLIN, 0}};
        CHECK(poll(p, 2, 5000) > 0);
        if (p[0].revents & POLLIN) serve_queued(s);
        if (p[1].revents & POLLIN) {
            rc = vipc_connection_call_poll(c, txid, reply);
            if (rc != VIPC_ERR_CHANNEL_EMPTY) return rc;
        }
    }
    vipc_connection_call_cancel(c, txid);
    return VIPC_ERR_TIMEOUT;
}

int main(void) {
    strcpy(dir, "/tmp/vipc-capi-XXXXXX");
    if (mkdtemp(dir) == NULL) return 1;
    vipc_server_options so;
    vipc_connect_options co;
    CHECK_RC(vipc_server_options_init(&so), VIPC_OK);
    CHECK_RC(vipc_connect_options_init(&co), VIPC_OK);
    so.runtime_dir = dir;
    co.runtime_dir = dir;

    /* Names and connect. */
    vipc_server* s = NULL;
    vipc_connection* c = NULL;
    CHECK_RC(vipc_connect("capi/none", &co, &c), VIPC_ERR_ENDPOINT_NOT_FOUND);
    CHECK(strstr(vipc_last_error_detail(), "capi/none") != NULL);
    CHECK_RC(vipc_server_publish("capi//bad", &so, &s), VIPC_ERR_INVALID_MESSAGE);
    so.capacity = 2;
    so.max_connections = 2;
    CHECK_RC(vipc_server_publish("capi/t", &so, &s), VIPC_OK);
    vipc_server* twice = NULL;
    CHECK_RC(vipc_server_publish("capi/t", &so, &twice), VIPC_ERR_ENDPOINT_BUSY);
    CHECK_RC(vipc_connect("capi/t", &co, &c), VIPC_OK);
    uint64_t pid = 0;
    CHECK_RC(vipc_connection_server_pid(c, &pid), VIPC_OK);
    CHECK(pid == (uint64_t)getpid());

    /* Payloads of every inline size, and one over. */
    vipc_message reply;
    uint8_t bytes[VIPC_INLINE_MAX + 1];
    for (size_t i = 0; i < sizeof bytes; ++i)
        bytes[i] = (uint8_t)(i * 3);
    const size_t sizes[] = {0, 1, 47, 48, 63, 64};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; ++k) {
        CHECK_RC(call_polled(s, c, 7, bytes, sizes[k], &reply), VIPC_OK);
        CHECK(reply.kind == VIPC_KIND_BYTES && reply.opcode == 8 && reply.size == sizes[k]);
        CHECK(memcmp(reply.bytes, bytes, sizes[k]) == 0);
        CHECK(reply.sender_pid == (uint64_t)getpid() && (reply.flags & VIPC_FLAG_IS_REPLY));
    }
    CHECK_RC(call_polled(s, c, 7, bytes, VIPC_INLINE_MAX + 1, &reply), VIPC_ERR_MESSAGE_TOO_LARGE);
    CHECK(strstr(vipc_last_error_detail(), "vipc_connection_call_into") != NULL);

    /* An error reply, polled. */
    CHECK_RC(call_polled(s, c, 1000 + 9, NULL, 0, &reply), VIPC_ERR_PERMISSION_DENIED);
    CHECK(strstr(vipc_last_error_detail(), "PermissionDenied: asked for") != NULL);
    CHECK_RC(vipc_connection_call_poll(c, 999999, &reply), VIPC_ERR_INVALID_MESSAGE);

    /* A region, shared read-only. */
    vipc_region* region = NULL;
    void* data = NULL;
    uint64_t size = 0;
    CHECK_RC(vipc_region_create(1 << 20, &region), VIPC_OK);
    CHECK_RC(vipc_region_data(region, &data, &size, NULL), VIPC_OK);
    memset(data, 1, (size_t)size); /* the sum of 2^20 ones, mod 256, is 0 */
    ((uint8_t*)data)[0] = 5;       /* ... now 4 */
    {
        uint64_t txid = 0;
        int sfd = -1;
        CHECK_RC(vipc_server_pollable_fd(s, &sfd), VIPC_OK);
        CHECK_RC(vipc_connection_send_region(c, 3, NULL, 0, region, VIPC_TRANSFER_SHARE_READ_ONLY,
                                             vipc_deadline_after_ms(1000)),
                 VIPC_OK);
        (void)txid;
        vipc_message got;
        CHECK(readable(sfd));
        CHECK_RC(vipc_server_try_receive(s, &got), VIPC_OK);
        CHECK(got.region_size == (1u << 20) && got.transaction_id == 0);
        vipc_region* theirs = NULL;
        CHECK_RC(vipc_region_receive(&got, &theirs), VIPC_OK);
        CHECK_RC(vipc_region_receive(&got, &theirs), VIPC_ERR_INVALID_MEMORY_REGION); /* once */
        void* view = NULL;
        CHECK_RC(vipc_region_data(theirs, &view, NULL, NULL), VIPC_OK);
        CHECK(((uint8_t*)view)[0] == 5 && ((uint8_t*)view)[1] == 1);
        vipc_region_free(theirs);
    }
    vipc_region_free(region);
    region = NULL;
    CHECK_RC(vipc_region_create(0, &region), VIPC_ERR_INVALID_MEMORY_REGION);
    CHECK(region == NULL); /* outputs are written only on success */

    /* The queue is full at capacity 2 (deadline 0 never waits). */
    CHECK_RC(vipc_connection_send(c, 1, "a", 1, 0), VIPC_OK);
    CHECK_RC(vipc_connection_send(c, 1, "b", 1, 0), VIPC_OK);
    CHECK_RC(vipc_connection_send(c, 1, "c", 1, 0), VIPC_ERR_CHANNEL_FULL);
    vipc_message m;
    CHECK_RC(vipc_server_try_receive(s, &m), VIPC_OK);
    CHECK(m.size == 1 && m.bytes[0] == 'a');
    CHECK(m.caller_deadline == VIPC_DEADLINE_NEVER); /* not a call */
    CHECK_RC(vipc_server_try_receive(s, &m), VIPC_OK);
    CHECK_RC(vipc_server_try_receive(s, &m), VIPC_ERR_CHANNEL_EMPTY);
    CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(10)), VIPC_ERR_TIMEOUT);
    CHECK(strcmp(vipc_error_name(VIPC_ERR_TIMEOUT), "Timeout") == 0);

    /* A call's deadline reaches the server, on its clock: the caller's D plus the way there. */
    {
        uint64_t txid = 0;
        const uint64_t before = vipc_now_ns();
        CHECK_RC(vipc_connection_call_begin(c, 9, "d", 1, &txid, vipc_deadline_after_ms(1000)),
                 VIPC_OK);
        CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
        const uint64_t after = vipc_now_ns();
        CHECK(m.transaction_id == txid);
        CHECK(m.caller_deadline >= before + 1000000000u);
        CHECK(m.caller_deadline <= after + 1000000000u);
        CHECK_RC(vipc_server_reply(s, &m, 10, "d", 1, 0), VIPC_OK);
        vipc_message reply;
        int rc = VIPC_ERR_CHANNEL_EMPTY;
        for (int i = 0; i < 1000 && rc == VIPC_ERR_CHANNEL_EMPTY; ++i) {
            rc = vipc_connection_call_poll(c, txid, &reply);
            if (rc == VIPC_ERR_CHANNEL_EMPTY) poll(NULL, 0, 1);
        }
        CHECK_RC(rc, VIPC_OK);
        CHECK(reply.opcode == 10);
    }

    /* The server's one-way message to the client; small messages. */
    vipc_small sm = {0, 77, 0, {1, 2, 3, 4}};
    CHECK_RC(vipc_connection_send_small(c, &sm, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK(m.kind == VIPC_KIND_SMALL && m.opcode == 77 && m.words[3] == 4);
    CHECK_RC(vipc_server_send(s, m.connection, 5, "hi", 2, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK_RC(vipc_connection_receive(c, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK(m.opcode == 5 && m.size == 2 && memcmp(m.bytes, "hi", 2) == 0);
    CHECK_RC(vipc_connection_try_receive(c, &m), VIPC_ERR_CHANNEL_EMPTY);

    /* Rights: a receive-only connection cannot send; the connection limit. */
    vipc_connect_options ro = co;
    ro.rights = VIPC_RIGHT_RECEIVE;
    vipc_connection* receive_only = NULL;
    CHECK_RC(vipc_connect("capi/t", &ro, &receive_only), VIPC_OK);
    CHECK_RC(vipc_connection_send(receive_only, 1, NULL, 0, 0), VIPC_ERR_PERMISSION_DENIED);
    vipc_connection* third = NULL;
    CHECK_RC(vipc_connect("capi/t", &co, &third), VIPC_ERR_RESOURCE_BUSY);
    vipc_connection_free(receive_only);

    /* Capabilities: minted, sent, taken, connected through, revoked. */
    vipc_capability* cap = NULL;
    uint64_t cap_id = 0;
    CHECK_RC(vipc_server_mint_capability(s, VIPC_RIGHT_SEND | VIPC_RIGHT_GRANT, &cap, &cap_id),
             VIPC_OK);
    CHECK_RC(vipc_connection_send(c, 1, NULL, 0, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK_RC(vipc_server_send_capability(s, m.connection, 6, cap, vipc_deadline_after_ms(1000)),
             VIPC_OK);
    CHECK_RC(vipc_connection_receive(c, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK(m.capability_count == 1 && (m.flags & VIPC_FLAG_HAS_CAPABILITY));
    vipc_capability* mine = NULL;
    uint32_t rights = 0;
    CHECK_RC(vipc_capability_receive(&m, 0, &mine), VIPC_OK);
    CHECK_RC(vipc_capability_receive(&m, 0, &mine), VIPC_ERR_INVALID_CAPABILITY); /* once */
    CHECK_RC(vipc_capability_rights(mine, &rights), VIPC_OK);
    CHECK(rights & VIPC_RIGHT_SEND);
    vipc_connect_options send_only = co;
    send_only.rights = VIPC_RIGHT_SEND;
    vipc_connection* through = NULL;
    CHECK_RC(vipc_connect_capability(mine, &send_only, &through), VIPC_OK);
    CHECK_RC(vipc_connection_send(through, 4, "cap", 3, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK_RC(vipc_server_receive(s, &m, vipc_deadline_after_ms(1000)), VIPC_OK);
    CHECK(m.opcode == 4 && m.size == 3);
    CHECK_RC(vipc_server_revoke(s, cap_id), VIPC_OK);
    vipc_connection* again = NULL;
    CHECK_RC(vipc_connect_capability(mine, &send_only, &again), VIPC_ERR_INVALID_CAPABILITY);
    CHECK_RC(vipc_server_revoke(s, 4242), VIPC_ERR_INVALID_CAPABILITY);
    vipc_connection_free(through);
    vipc_capability_free(mine);
    vipc_capability_free(cap);

    /* Stats, from the handle and through the discovery socket. */
    vipc_endpoint_stats st;
    CHECK_RC(vipc_server_stats(s, &st), VIPC_OK);
    CHECK(st.owner_pid == (uint64_t)getpid() && st.capacity == 2 && st.received >= 10);
    CHECK_RC(vipc_stat_endpoint("capi/t", dir, &st), VIPC_OK);
    CHECK(st.owner_pid == (uint64_t)getpid());

    /* Close: the client's descriptor wakes, its calls give ENDPOINT_NOT_FOUND. */
    int cfd = -1;
    CHECK_RC(vipc_connection_pollable_fd(c, &cfd), VIPC_OK);
    CHECK_RC(vipc_server_close(s), VIPC_OK);
    CHECK(readable(cfd));
    CHECK_RC(vipc_connection_try_receive(c, &m), VIPC_ERR_ENDPOINT_NOT_FOUND);
    CHECK_RC(vipc_connection_close(c), VIPC_OK);
    CHECK_RC(vipc_connection_send(c, 1, NULL, 0, 0),
             VIPC_ERR_ENDPOINT_NOT_FOUND); /* as a closed core endpoint */

    /* NULL arguments are refused, never dereferenced. */
    CHECK_RC(vipc_server_publish(NULL, NULL, &s), VIPC_ERR_INVALID_MESSAGE);
    CHECK_RC(vipc_connection_call(NULL, 1, NULL, 0, &reply, 0), VIPC_ERR_INVALID_MESSAGE);
    CHECK_RC(vipc_connection_send(c, 1, NULL, 5, 0), VIPC_ERR_INVALID_MESSAGE);
    CHECK_RC(vipc_server_free(NULL), VIPC_OK);

    vipc_connection_free(c);
    vipc_server_free(s);
    rmdir(dir);
    if (failures != 0) {
        fprintf(stderr, "capi_test: %d of %d checks failed\n", failures, checks);
        return 1;
    }
    printf("capi_test: %d checks passed\n", checks);
    return 0;
}
