// SPDX-License-Identifier: MIT OR Apache-2.0
// The usage examples: the quick start (create a registry and an endpoint, send, receive)
// and the examples in the core's header comments, written out as they appear there so that
// a change that breaks them fails to compile or fails here. Only the umbrella header is
// included, as a user would.
#include <gtest/gtest.h>

#include "veridian/ipc.hpp"

namespace {

using namespace veridian::ipc;

TEST(QuickStart, CreateARegistryAndAnEndpointThenSendAndReceive) {
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator);

    Result<Endpoint> endpoint = registry.create_endpoint(ProcessId{1});
    ASSERT_TRUE(endpoint.has_value());

    Message hello = Message::small(/*capability=*/0, /*opcode=*/1);
    hello.small_message().data[0] = 42;
    ASSERT_TRUE(endpoint->send_async(hello).has_value());

    Result<Message> received = endpoint->receive_sync(platform.after_ns(1'000'000));
    ASSERT_TRUE(received.has_value());
    EXPECT_EQ(received->opcode(), 1u);
    EXPECT_EQ(received->small_message().data[0], 42u);
}

// error.hpp
Result<Message> error_header_example(Endpoint& endpoint, u64* used) {
    Result<Message> r = endpoint.try_receive();
    if (!r) return r.error();  // or: Message m = VIPC_TRY(endpoint.try_receive());
    *used = r->small_message().data[0];
    Message m = VIPC_TRY(endpoint.try_receive());
    return m;
}

// message.hpp
Result<void> message_header_example(Endpoint& endpoint, u64 capability) {
    Message m = Message::small(capability, /*opcode=*/42);
    m.small_message().data[0] = 7;
    VIPC_TRY(endpoint.send_async(m));
    return ok();
}

// endpoint.hpp
Result<Message> endpoint_header_example(Registry& registry, Platform& platform) {
    Endpoint server = VIPC_TRY(registry.create_endpoint(ProcessId{1}));
    Endpoint client = VIPC_TRY(server.transfer(ProcessId{2}, TransferMode::Copy,
                                               Rights::SEND));  // client's own entry
    VIPC_TRY(client.send_sync(Message::small(0, 1)));           // sender() = ProcessId{2}
    Message m = VIPC_TRY(server.receive_sync(platform.after_ns(1'000'000)));
    return m;
}

// registry.hpp
Result<EndpointId> registry_header_example(Registry& registry) {
    auto [endpoint, guard] = VIPC_TRY(registry.create_endpoint_with_guard(ProcessId{1}));
    // ... guard's destructor closes the endpoint and removes it from the registry.
    return endpoint.id();
}

TEST(HeaderExamples, ErrorHeaderExampleReturnsTheErrorOrUsesTheValue) {
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator);
    Endpoint e = *registry.create_endpoint(ProcessId{1});
    u64 used = 0;
    Result<Message> empty = error_header_example(e, &used);
    ASSERT_FALSE(empty.has_value());
    EXPECT_EQ(empty.error(), IpcError::ChannelEmpty);
    ASSERT_TRUE(message_header_example(e, 0).has_value());
    ASSERT_TRUE(message_header_example(e, 0).has_value());
    Result<Message> second = error_header_example(e, &used);
    ASSERT_TRUE(second.has_value());
    EXPECT_EQ(used, 7u);
    EXPECT_EQ(second->opcode(), 42u);
}

TEST(HeaderExamples, MessageHeaderExampleSendsOpcode42WithData7) {
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator);
    Endpoint e = *registry.create_endpoint(ProcessId{1});
    ASSERT_TRUE(message_header_example(e, 0x99).has_value());
    Result<Message> m = e.try_receive();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->capability(), 0x99u);
    EXPECT_EQ(m->opcode(), 42u);
    EXPECT_EQ(m->small_message().data[0], 7u);
}

TEST(HeaderExamples, EndpointHeaderExampleDeliversFromTheDerivedClientToTheServer) {
    ThreadsPlatform platform;
    HeapAllocator allocator;
    Registry registry(platform, allocator);
    Result<Message> m = endpoint_header_example(registry, platform);
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->opcode(), 1u);
    EXPECT_EQ(m->sender(), ProcessId{2});
}

TEST(HeaderExamples, RegistryHeaderExampleGuardRemovesTheEndpointOnScopeExit) {
    ThreadsPlatform platform;  // or the sim platform, or a kernel's scheduler
    HeapAllocator allocator;
    Registry registry(platform, allocator);
    Result<EndpointId> id = registry_header_example(registry);
    ASSERT_TRUE(id.has_value());
    EXPECT_GE(*id, 1u);
    EXPECT_FALSE(registry.lookup(*id).has_value());
    EXPECT_EQ(registry.stats().created, 1u);
    EXPECT_EQ(registry.stats().live, 0u);
}

}  // namespace
