// SPDX-License-Identifier: MIT OR Apache-2.0
// The behaviours of the contract, each written once (see contract.hpp for the vocabulary
// and docs/CONTRACT.md for the contract and its documented differences). One behaviour per
// test, through the public operations only. Every test of "X wakes blocked parties" first
// waits until the parties are observably parked (EndpointStats::waiting_*), never on time.
#pragma once

#include "contract.hpp"

namespace veridian::ipc::contract {

// ---- send and receive --------------------------------------------------------------------------

CONTRACT_TEST(SendSyncThenReceiveSyncDeliversTheMessage) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.client_send_sync(small(7, 41), a.bound()));
    auto r = a.server_receive_sync(a.bound());
    REQUIRE_OK(r);
    CHECK_EQ(r->message.opcode(), 7u);
    CHECK_EQ(r->message.small_message().data[0], 41u);
    CHECK_EQ(r->message.transaction_id(), 0u);
    CHECK_EQ(r->message.flags() & MessageFlags::IS_REPLY, 0u);
}

CONTRACT_TEST(MessagesFromOneSenderArriveInTheOrderSent) {
    REQUIRE(a.open(Setup{8}));
    for (u64 i = 0; i < 8; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    for (u64 i = 0; i < 8; ++i) {
        auto r = a.server_try_receive();
        REQUIRE_OK(r);
        CHECK_EQ(r->message.small_message().data[0], i);
    }
}

CONTRACT_TEST(TheServerSendsAndTheClientReceives) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.server_send_sync(small(3, 5), a.bound()));
    REQUIRE_OK(a.server_send_async(small(3, 6)));
    auto first = a.client_receive_sync(a.bound());
    REQUIRE_OK(first);
    CHECK_EQ(first->small_message().data[0], 5u);
    auto second = a.client_try_receive();
    REQUIRE_OK(second);
    CHECK_EQ(second->small_message().data[0], 6u);
    CHECK_EQ(second->flags() & MessageFlags::IS_REPLY, 0u);
}

CONTRACT_TEST(FastSendDeliversTheSmallMessage) {
    REQUIRE(a.open(Setup{}));
    const SmallMessage m{0, 99, MessageFlags::URGENT, {1, 2, 3, 4}};
    REQUIRE_OK(a.client_fast_send(m));
    auto r = a.server_receive_sync(a.bound());
    REQUIRE_OK(r);
    REQUIRE(r->message.is_small());
    const SmallMessage& got = r->message.small_message();
    CHECK_EQ(got.opcode, 99u);
    CHECK_EQ(got.flags, MessageFlags::URGENT);
    CHECK_TRUE(got.data[0] == 1 && got.data[1] == 2 && got.data[2] == 3 && got.data[3] == 4);
}

CONTRACT_TEST(TryReceiveOnAnEmptyQueueIsChannelEmpty) {
    REQUIRE(a.open(Setup{}));
    CHECK_ERR(a.client_try_receive(), IpcError::ChannelEmpty);
    CHECK_ERR(a.server_try_receive(), IpcError::ChannelEmpty);
}

CONTRACT_TEST(SendAsyncAndFastSendOnAFullQueueAreChannelFull) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    CHECK_ERR(a.client_send_async(small(1)), IpcError::ChannelFull);
    CHECK_ERR(a.client_fast_send(small(1).small_message()), IpcError::ChannelFull);
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.server_send_async(small(2, i)));
    CHECK_ERR(a.server_send_async(small(2)), IpcError::ChannelFull);
}

CONTRACT_TEST(ReceiveSyncWithNothingToReceiveTimesOut) {
    REQUIRE(a.open(Setup{}));
    CHECK_ERR(a.client_receive_sync(a.after_ms(20)), IpcError::Timeout);
    CHECK_ERR(a.server_receive_sync(a.after_ms(20)), IpcError::Timeout);
}

CONTRACT_TEST(SendSyncOnAQueueThatStaysFullTimesOut) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    CHECK_ERR(a.client_send_sync(small(1), a.after_ms(20)), IpcError::Timeout);
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.server_send_async(small(2, i)));
    CHECK_ERR(a.server_send_sync(small(2), a.after_ms(20)), IpcError::Timeout);
}

CONTRACT_TEST(APastDeadlineNeverBlocksAndGivesTimeout) {
    REQUIRE(a.open(Setup{4}));
    CHECK_ERR(a.client_receive_sync(Deadline::past()), IpcError::Timeout);
    CHECK_ERR(a.server_receive_sync(Deadline::past()), IpcError::Timeout);
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    CHECK_ERR(a.client_send_sync(small(1), Deadline::past()), IpcError::Timeout);
}

CONTRACT_TEST(ABlockedSendSyncGoesOnOnceTheReceiverMakesRoom) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    a.run_parties([&] { CHECK_OK(a.client_send_sync(small(1, 4), a.bound())); },
                  [&] {
                      REQUIRE(a.wait_until([&] { return a.client_stats().waiting_senders == 1; }));
                      for (u64 i = 0; i < 5; ++i) {
                          auto r = a.server_receive_sync(a.bound());
                          REQUIRE_OK(r);
                          CHECK_EQ(r->message.small_message().data[0], i);
                      }
                  });
}

CONTRACT_TEST(ABlockedReceiveSyncGetsTheNextMessage) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] {
            auto r = a.client_receive_sync(a.bound());
            REQUIRE_OK(r);
            CHECK_EQ(r->small_message().data[0], 77u);
        },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_receivers == 1; }));
            CHECK_OK(a.server_send_sync(small(1, 77), a.bound()));
        });
}

// ---- call and reply ----------------------------------------------------------------------------

CONTRACT_TEST(CallGetsTheReplyToItsRequest) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] {
            auto r = a.client_call(small(5, 41), a.bound());
            REQUIRE_OK(r);
            CHECK_EQ(r->small_message().data[0], 42u);
            CHECK_TRUE((r->flags() & MessageFlags::IS_REPLY) != 0);
            CHECK_TRUE(r->transaction_id() != 0);
        },
        [&] {
            auto request = a.server_receive_sync(a.bound());
            REQUIRE_OK(request);
            CHECK_TRUE(request->message.transaction_id() != 0);
            Message response = small(6, request->message.small_message().data[0] + 1);
            CHECK_OK(a.server_reply(*request, response));
        });
}

CONTRACT_TEST(CallWithoutAReplyTimesOut) {
    REQUIRE(a.open(Setup{}));
    CHECK_ERR(a.client_call(small(5), a.after_ms(20)), IpcError::Timeout);
}

CONTRACT_TEST(ReplyToAMessageThatIsNotACallIsInvalidMessage) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.client_send_async(small(1, 9)));
    auto plain = a.server_receive_sync(a.bound());
    REQUIRE_OK(plain);
    CHECK_ERR(a.server_reply(*plain, small(2)), IpcError::InvalidMessage);
    CHECK_ERR(a.client_try_receive(), IpcError::ChannelEmpty);  // nothing was delivered
}

// docs/CONTRACT.md "reply to a caller that gave up".
CONTRACT_TEST(ReplyToACallerThatTimedOut) {
    REQUIRE(a.open(Setup{}));
    CHECK_ERR(a.client_call(small(5, 1), a.after_ms(20)), IpcError::Timeout);
    auto request = a.server_receive_sync(a.bound());
    REQUIRE_OK(request);
    if constexpr (A::kReplyKnowsCallerGaveUp) {
        CHECK_ERR(a.server_reply(*request, small(6)), IpcError::ProcessNotFound);
    } else {
        CHECK_OK(a.server_reply(*request, small(6)));  // dropped by the caller's side
    }
    // Either way nothing reaches the client as an ordinary message.
    CHECK_ERR(a.client_try_receive(), IpcError::ChannelEmpty);
}

// docs/CONTRACT.md "reply to a caller that gave up": a second reply finds no caller.
CONTRACT_TEST(ASecondReplyToTheSameCallReachesNobody) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] {
            auto r = a.client_call(small(5, 1), a.bound());
            REQUIRE_OK(r);
            CHECK_EQ(r->small_message().data[0], 2u);
        },
        [&] {
            auto request = a.server_receive_sync(a.bound());
            REQUIRE_OK(request);
            REQUIRE_OK(a.server_reply(*request, small(6, 2)));
            if constexpr (A::kReplyKnowsCallerGaveUp) {
                CHECK_ERR(a.server_reply(*request, small(6, 3)), IpcError::ProcessNotFound);
            } else {
                CHECK_OK(a.server_reply(*request, small(6, 3)));  // dropped by the caller's side
            }
        });
    CHECK_ERR(a.client_try_receive(), IpcError::ChannelEmpty);
}

// docs/CONTRACT.md "reply never blocks": with everything the client has not read filling
// what waits for it (across processes that is its ring and, while a call waits, its local
// inbox: twice the capacity), the server's reply does not wait for room.
CONTRACT_TEST(ReplyToACallerWhoseRingIsFullNeverBlocks) {
    REQUIRE(a.open(Setup{4}));
    constexpr u32 kUnread = A::kReplyToAFullRingFails ? 8 : 4;
    a.run_parties(
        [&] {
            if constexpr (A::kReplyToAFullRingFails) {
                // The reply was dropped: the call ends at its deadline.
                CHECK_ERR(a.client_call(small(5, 1), a.after_ms(300)), IpcError::Timeout);
            } else {
                auto r = a.client_call(small(5, 1), a.bound());
                REQUIRE_OK(r);
                CHECK_EQ(r->small_message().data[0], 2u);
            }
        },
        [&] {
            auto request = a.server_receive_sync(a.bound());
            REQUIRE_OK(request);
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_callers == 1; }));
            REQUIRE(a.wait_until([&] {
                (void)a.server_send_async(small(1));
                return a.client_stats().queued >= kUnread;
            }));
            CHECK_ERR(a.server_send_async(small(1)), IpcError::ChannelFull);
            if constexpr (A::kReplyToAFullRingFails) {
                CHECK_ERR(a.server_reply(*request, small(6, 2)), IpcError::ChannelFull);
            } else {
                CHECK_OK(a.server_reply(*request, small(6, 2)));
            }
        });
}

CONTRACT_TEST(ABlockedCallerIsWokenByItsReply) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] {
            auto r = a.client_call(small(5, 10), a.bound());
            REQUIRE_OK(r);
            CHECK_EQ(r->small_message().data[0], 11u);
        },
        [&] {
            auto request = a.server_receive_sync(a.bound());
            REQUIRE_OK(request);
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_callers == 1; }));
            CHECK_OK(a.server_reply(*request, small(6, 11)));
        });
}

// ---- close -------------------------------------------------------------------------------------

CONTRACT_TEST(CloseIsIdempotent) {
    REQUIRE(a.open(Setup{}));
    CHECK_OK(a.client_close());
    CHECK_OK(a.client_close());
    CHECK_OK(a.server_close());
    CHECK_OK(a.server_close());
}

CONTRACT_TEST(OperationsOnAClosedClientAreEndpointNotFound) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.client_close());
    CHECK_ERR(a.client_send_sync(small(1), a.after_ms(20)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_send_async(small(1)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_fast_send(small(1).small_message()), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_receive_sync(a.after_ms(20)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_try_receive(), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_call(small(1), a.after_ms(20)), IpcError::EndpointNotFound);
}

CONTRACT_TEST(OperationsOnAClosedServerAreEndpointNotFound) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.server_close());
    CHECK_ERR(a.server_receive_sync(a.after_ms(20)), IpcError::EndpointNotFound);
    CHECK_ERR(a.server_try_receive(), IpcError::EndpointNotFound);
    CHECK_ERR(a.server_send_async(small(1)), IpcError::EndpointNotFound);
    CHECK_ERR(a.server_send_sync(small(1), a.after_ms(20)), IpcError::EndpointNotFound);
}

CONTRACT_TEST(TheClientOfAClosedServerGetsEndpointNotFound) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.server_close());
    CHECK_ERR(a.client_send_async(small(1)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_send_sync(small(1), a.after_ms(20)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_receive_sync(a.after_ms(20)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_try_receive(), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_call(small(1), a.after_ms(20)), IpcError::EndpointNotFound);
}

CONTRACT_TEST(TheServerSendingToAClosedClientGetsEndpointNotFound) {
    REQUIRE(a.open(Setup{}));
    REQUIRE_OK(a.client_close());
    CHECK_ERR(a.server_send_async(small(1)), IpcError::EndpointNotFound);
    CHECK_ERR(a.server_send_sync(small(1), a.after_ms(20)), IpcError::EndpointNotFound);
}

// docs/CONTRACT.md "close and queued messages": across processes what was written before
// the peer closed stays readable (as in Zircon); the core's channel close discards what is
// queued (it owns both queues) and counts it.
CONTRACT_TEST(MessagesTheServerSentBeforeClosing) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.server_send_sync(small(1, i), a.bound()));
    REQUIRE_OK(a.server_close());
    if constexpr (A::kCloseKeepsWrittenMessages) {
        for (u64 i = 0; i < 4; ++i) {
            auto r = a.client_receive_sync(a.bound());
            REQUIRE_OK(r);
            CHECK_EQ(r->small_message().data[0], i);
        }
    }
    CHECK_ERR(a.client_receive_sync(a.after_ms(20)), IpcError::EndpointNotFound);
    CHECK_ERR(a.client_try_receive(), IpcError::EndpointNotFound);
}

CONTRACT_TEST(MessagesTheClientSentBeforeClosing) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_sync(small(1, i), a.bound()));
    REQUIRE_OK(a.client_close());
    if constexpr (A::kCloseKeepsWrittenMessages) {
        for (u64 i = 0; i < 4; ++i) {
            auto r = a.server_receive_sync(a.bound());
            REQUIRE_OK(r);
            CHECK_EQ(r->message.small_message().data[0], i);
        }
    }
    // docs/CONTRACT.md "one endpoint, many clients": a posix server lives on after a
    // client's close (it serves the others); the core channel's close ended both queues.
    if constexpr (A::kServerOutlivesItsClients) {
        CHECK_ERR(a.server_try_receive(), IpcError::ChannelEmpty);
    } else {
        CHECK_ERR(a.server_try_receive(), IpcError::EndpointNotFound);
    }
}

CONTRACT_TEST(ServerCloseWakesTheClientsBlockedReceiver) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] { CHECK_ERR(a.client_receive_sync(a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_receivers == 1; }));
            CHECK_OK(a.server_close());
        });
}

CONTRACT_TEST(ServerCloseWakesTheClientsBlockedSender) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    a.run_parties(
        [&] { CHECK_ERR(a.client_send_sync(small(1), a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_senders == 1; }));
            CHECK_OK(a.server_close());
        });
}

CONTRACT_TEST(ServerCloseWakesTheClientsBlockedCaller) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] { CHECK_ERR(a.client_call(small(5), a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_callers == 1; }));
            CHECK_OK(a.server_close());
        });
}

CONTRACT_TEST(ServerCloseWakesItsOwnBlockedReceiver) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] { CHECK_ERR(a.server_receive_sync(a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.server_stats().waiting_receivers == 1; }));
            CHECK_OK(a.server_close());
        });
}

CONTRACT_TEST(ClientCloseWakesItsOwnBlockedReceiver) {
    REQUIRE(a.open(Setup{}));
    a.run_parties(
        [&] { CHECK_ERR(a.client_receive_sync(a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_receivers == 1; }));
            CHECK_OK(a.client_close());
        });
}

CONTRACT_TEST(ClientCloseWakesItsOwnBlockedSender) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    a.run_parties(
        [&] { CHECK_ERR(a.client_send_sync(small(1), a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.client_stats().waiting_senders == 1; }));
            CHECK_OK(a.client_close());
        });
}

CONTRACT_TEST(ClientCloseWakesTheServerBlockedSendingToIt) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 4; ++i)
        REQUIRE_OK(a.server_send_async(small(1, i)));
    a.run_parties(
        [&] { CHECK_ERR(a.server_send_sync(small(1), a.bound()), IpcError::EndpointNotFound); },
        [&] {
            REQUIRE(a.wait_until([&] { return a.server_stats().waiting_senders == 1; }));
            CHECK_OK(a.client_close());
        });
}

// ---- rights ------------------------------------------------------------------------------------

CONTRACT_TEST(AClientWithoutSendCannotSend) {
    REQUIRE(a.open(Setup{4, Rights::RECEIVE}));
    CHECK_ERR(a.client_send_sync(small(1), a.after_ms(20)), IpcError::PermissionDenied);
    CHECK_ERR(a.client_send_async(small(1)), IpcError::PermissionDenied);
    CHECK_ERR(a.client_fast_send(small(1).small_message()), IpcError::PermissionDenied);
    CHECK_ERR(a.client_call(small(1), a.after_ms(20)), IpcError::PermissionDenied);
}

CONTRACT_TEST(AClientWithoutReceiveCannotReceive) {
    REQUIRE(a.open(Setup{4, Rights::SEND}));
    CHECK_ERR(a.client_receive_sync(a.after_ms(20)), IpcError::PermissionDenied);
    CHECK_ERR(a.client_try_receive(), IpcError::PermissionDenied);
    REQUIRE_OK(a.client_send_async(small(1, 3)));  // sending still works
    auto r = a.server_receive_sync(a.bound());
    REQUIRE_OK(r);
    CHECK_EQ(r->message.small_message().data[0], 3u);
}

// docs/CONTRACT.md "rights of call": across processes the reply travels on the ring a
// client gets only with RECEIVE.
CONTRACT_TEST(ACallNeedsSendAndAcrossProcessesReceive) {
    REQUIRE(a.open(Setup{4, Rights::SEND}));
    if constexpr (A::kCallNeedsReceive) {
        CHECK_ERR(a.client_call(small(5), a.after_ms(20)), IpcError::PermissionDenied);
    } else {
        CHECK_ERR(a.client_call(small(5), a.after_ms(20)), IpcError::Timeout);
    }
}

// ---- statistics --------------------------------------------------------------------------------

CONTRACT_TEST(StatsCountWhatIsQueued) {
    REQUIRE(a.open(Setup{4}));
    for (u64 i = 0; i < 3; ++i)
        REQUIRE_OK(a.client_send_async(small(1, i)));
    REQUIRE_OK(a.server_send_async(small(2)));
    REQUIRE_OK(a.server_try_receive());
    const EndpointStats server = a.server_stats();
    CHECK_EQ(server.queued, 2u);
    CHECK_EQ(server.capacity, 4u);
    CHECK_TRUE(server.received >= 1);
    CHECK_TRUE(server.active);
    const EndpointStats client = a.client_stats();
    CHECK_EQ(client.queued, 1u);
    CHECK_EQ(client.capacity, 4u);
    CHECK_EQ(client.waiting_receivers + client.waiting_senders + client.waiting_callers, 0u);
    REQUIRE_OK(a.server_close());
    CHECK_TRUE(!a.server_stats().active);
}

}  // namespace veridian::ipc::contract
