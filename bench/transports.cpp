// SPDX-License-Identifier: MIT OR Apache-2.0
// The table of transports, in display order: the floors, the operating system's own
// mechanisms, the libraries, then veridian-ipc. A library that was not found when the bench
// was configured still has its row, saying what to install.
#include "transport.hpp"

namespace vipc::bench {

TransportInfo unavailable_transport(std::string name, std::string description, std::string group,
                                    std::string reason) {
    TransportInfo info;
    info.name = std::move(name);
    info.description = std::move(description);
    info.group = std::move(group);
    info.probe = [reason] { return Status::fail(reason); };
    return info;
}

#if !VIPC_BENCH_HAVE_BOOST
std::vector<TransportInfo> boost_transports() {
    return {unavailable_transport(
        "boost_mq", "Boost.Interprocess message_queue", "peer",
        "not built: Boost.Interprocess headers missing — apt-get install libboost-dev")};
}
#endif

#if !VIPC_BENCH_HAVE_ZMQ
std::vector<TransportInfo> zmq_transports() {
    return {unavailable_transport("zmq", "ZeroMQ PAIR sockets over ipc://", "peer",
                                  "not built: libzmq missing — apt-get install libzmq3-dev")};
}
#endif

#if !VIPC_BENCH_HAVE_NNG
std::vector<TransportInfo> nng_transports() {
    return {unavailable_transport("nng", "NNG pair1 sockets over ipc://", "peer",
                                  "not built: NNG missing — apt-get install libnng-dev")};
}
#endif

#if !VIPC_BENCH_HAVE_ICEORYX
std::vector<TransportInfo> iceoryx_transports() {
    return {
        unavailable_transport("iceoryx", "iceoryx 2.0 publish/subscribe through RouDi", "peer",
                              "not built: iceoryx missing — apt-get install libiceoryx-posh-dev "
                              "libiceoryx-hoofs-dev iceoryx")};
}
#endif

std::vector<TransportInfo> all_transports() {
    std::vector<TransportInfo> all;
    auto add = [&all](std::vector<TransportInfo> rows) {
        for (TransportInfo& row : rows)
            all.push_back(std::move(row));
    };
    add(floor_transports());
    add(os_transports());
    add(eventfd_transports());
    add(boost_transports());
    add(zmq_transports());
    add(nng_transports());
    add(iceoryx_transports());
    add(veridian_transports());
    add(veridian_payload_transports());
    return all;
}

}  // namespace vipc::bench
