// SPDX-License-Identifier: MIT OR Apache-2.0
// The contract suite's adapter for the core: a connection is two core endpoints owned
// together, as the seed's Channel does — the server's (requests: the client sends, the
// server receives and replies) and the client's (what the server sends it). Each side holds
// handles with the rights the Setup gives; close() by either side closes both.
//
// Runner supplies the platform and the parties (hosted: ThreadsPlatform or the sim, see
// hosted_runners.hpp; the kernel: its scheduler, see kernel_contract.hpp):
//   Platform& platform(); Allocator& allocator();
//   void run_parties(F...)      runs the callables concurrently, returns when all ended
//   bool wait_until(Pred)       until Pred() holds (polling observable state), false after
//                               a generous bound
//   bool leak_on_exit()         true after a run that was unwound (the sim's deadlock):
//                               the registry must then not be touched again
#pragma once

#include <new>

#include "contract.hpp"
#include "veridian/ipc/core/registry.hpp"

namespace veridian::ipc::contract {

template <typename Runner>
class CoreAdapter {
public:
    // The documented differences (docs/CONTRACT.md), as the suite branches on them.
    static constexpr bool kCloseKeepsWrittenMessages = false;  // "close and queued messages"
    static constexpr bool kCallNeedsReceive = false;           // "rights of call"
    static constexpr bool kReplyKnowsCallerGaveUp = true;      // "reply to a caller that gave up"
    static constexpr bool kServerOutlivesItsClients = false;   // "one endpoint, many clients"
    static constexpr bool kReplyToAFullRingFails = false;      // "reply never blocks"
    static constexpr bool kRevokeWakesBlocked = true;          // capability spaces: revoke wakes

    explicit CoreAdapter(Runner& runner) : runner_(runner) {
        registry_ = new (registry_storage_)
            Registry(runner.platform(), runner.allocator(), /*max_endpoints=*/4);
    }
    ~CoreAdapter() {
        // After an unwound sim run the endpoints' waiter lists may point into dead stacks:
        // the registry is then abandoned, never destroyed.
        if (!runner_.leak_on_exit()) registry_->~Registry();
    }
    CoreAdapter(const CoreAdapter&) = delete;
    CoreAdapter& operator=(const CoreAdapter&) = delete;

    Runner& runner() { return runner_; }
    Deadline after_ms(u64 ms) { return runner_.platform().after_ns(ms * 1'000'000u); }
    // Long enough that only a bug reaches it (the sim's virtual clock gets there only when
    // every task is blocked).
    Deadline bound() { return after_ms(20'000); }
    template <typename... F>
    void run_parties(F&&... parties) {
        runner_.run_parties(static_cast<F&&>(parties)...);
    }
    template <typename Pred>
    bool wait_until(Pred pred) {
        return runner_.wait_until(pred);
    }

    bool open(Setup setup) {
        auto server = registry_->create_endpoint(kServer, setup.capacity);
        auto client = registry_->create_endpoint(kClient, setup.capacity);
        if (!server || !client) return false;
        server_owner_ = *server;
        client_owner_ = *client;
        rights_ = setup.client_rights;
        hand_out();
        return true;
    }

    // ---- the client
    Result<void> client_send_sync(const Message& m, Deadline d) {
        return client_to_server_.send_sync(m, d);
    }
    Result<void> client_send_async(const Message& m) { return client_to_server_.send_async(m); }
    Result<void> client_fast_send(const SmallMessage& m) { return client_to_server_.fast_send(m); }
    Result<Message> client_receive_sync(Deadline d) { return client_inbox_.receive_sync(d); }
    Result<Message> client_try_receive() { return client_inbox_.try_receive(); }
    Result<Message> client_call(const Message& m, Deadline d) {
        return client_to_server_.call(m, d);
    }
    Result<void> client_close() { return close_both(); }
    // The client's view: what waits for it, and its parked parties.
    EndpointStats client_stats() {
        EndpointStats in = server_owner_.stats().value_or(EndpointStats{});
        EndpointStats out = client_owner_.stats().value_or(EndpointStats{});
        EndpointStats s = out;
        s.waiting_senders = in.waiting_senders;
        s.waiting_callers = in.waiting_callers;
        return s;
    }

    // ---- the server
    Result<Request> server_receive_sync(Deadline d) {
        Message m = VIPC_TRY(server_owner_.receive_sync(d));
        return Request{m, 0};
    }
    Result<Request> server_try_receive() {
        Message m = VIPC_TRY(server_owner_.try_receive());
        return Request{m, 0};
    }
    Result<void> server_reply(const Request& request, const Message& response) {
        return server_owner_.reply(request.message, response);
    }
    Result<void> server_send_sync(const Message& m, Deadline d) {
        return server_to_client_.send_sync(m, d);
    }
    Result<void> server_send_async(const Message& m) { return server_to_client_.send_async(m); }
    Result<void> server_close() { return close_both(); }
    // The server's view: its queue and parked receivers, its parked senders to the client.
    EndpointStats server_stats() {
        EndpointStats in = server_owner_.stats().value_or(EndpointStats{});
        EndpointStats out = client_owner_.stats().value_or(EndpointStats{});
        EndpointStats s = in;
        s.waiting_senders = out.waiting_senders;
        s.waiting_callers = 0;
        return s;
    }
    // Ends the client's access: every handle it holds becomes invalid; the server goes on
    // with fresh ones.
    Result<void> revoke_client() {
        // The client's own entries, and anything derived from them; the server's are untouched.
        VIPC_TRY(client_to_server_.revoke());
        VIPC_TRY(client_inbox_.revoke());
        return ok();
    }

private:
    // Each side's handles are entries of its own capability space (the server is process 1,
    // the client process 2), so the core stamps each side's messages with its ProcessId.
    void hand_out() {
        const u16 send = (rights_ & Rights::SEND) != 0 ? Rights::SEND : 0;
        const u16 receive = (rights_ & Rights::RECEIVE) != 0 ? Rights::RECEIVE : 0;
        client_to_server_ =
            server_owner_.transfer(kClient, TransferMode::Copy, send).value_or(Endpoint());
        client_inbox_ = client_owner_.derive(receive).value_or(Endpoint());
        server_to_client_ =
            client_owner_.transfer(kServer, TransferMode::Copy, Rights::SEND).value_or(Endpoint());
    }
    Result<void> close_both() {
        auto a = server_owner_.close();
        auto b = client_owner_.close();
        if (!a) return a;
        return b;
    }

    static constexpr ProcessId kServer{1};
    static constexpr ProcessId kClient{2};

    Runner& runner_;
    alignas(Registry) unsigned char registry_storage_[sizeof(Registry)];
    Registry* registry_ = nullptr;
    u16 rights_ = 0;
    Endpoint server_owner_, client_owner_;  // all rights: the channel's owner
    Endpoint client_to_server_, client_inbox_, server_to_client_;
};

}  // namespace veridian::ipc::contract
