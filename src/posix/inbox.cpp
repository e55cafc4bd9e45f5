// SPDX-License-Identifier: MIT OR Apache-2.0
// veridian-ipc posix runtime: the consumer side of a ring (see inbox.hpp).
#include "posix/inbox.hpp"

#include <cstring>

namespace veridian::ipc::posix::detail {

namespace {

// The "data" role of park(): until a record is there.
class DataParking final : public Parking {
public:
    DataParking(RecordConsumer& ring, InboxOwner& owner) : ring_(ring), owner_(owner) {}
    Result<bool> ready() override { return ring_.ready(); }
    Result<void> check(bool slept) override { return owner_.check(slept); }
    const std::atomic<u32>* local_word() override { return owner_.local_wake(); }
    std::atomic<u32>& flag() override { return ring_.ctl()->waiting_for_data; }
    const std::atomic<u32>& word() override { return ring_.data()->tail; }
    u32 peer_cpu() override { return owner_.peer_cpu(); }
    std::atomic<u32>* my_cpu() override { return &ring_.ctl()->cpu; }

private:
    RecordConsumer& ring_;
    InboxOwner& owner_;
};

}  // namespace

void Inbox::attach(SharedWords& words, const RingGeometry& geometry, const RingDataHeader* data,
                   RingCtl* ctl, u32 spin_ns) {
    words_ = &words;
    ring_ = RecordConsumer(words, geometry, data, ctl);
    spin_ = SpinBudget(spin_ns);
}

Result<RecordView> Inbox::next(InboxOwner& owner, Blocking blocking, Deadline deadline) {
    for (;;) {
        // (1)
        auto r = ring_.peek();
        if (r || r.error() != IpcError::ChannelEmpty) return r;
        // (2)
        if (blocking == Blocking::No) {
            VIPC_TRY(owner.check(false));
            return IpcError::ChannelEmpty;
        }
        DataParking data(ring_, owner);
        VIPC_TRY(park(*words_, data, spin_, deadline));
    }
}

void Inbox::attach_pool(const u8* base, u64 bytes, u32 slots) {
    std::lock_guard<std::mutex> lock(loans_mu_);
    pool_bytes_ = bytes;
    holdings_.attach(*words_, base, bytes, slots, ring_.ctl(), ring_.data());
}

Result<std::span<const std::byte>> Inbox::accept_loan(const RecordView& record,
                                                      LoanDescriptor* descriptor) {
    std::memcpy(descriptor, record.body, sizeof *descriptor);  // copied once, then checked
    std::lock_guard<std::mutex> lock(loans_mu_);
    auto view = holdings_.accept(*descriptor);
    if (!view) return view.error();
    ring_.finish(record);
    held_.store(holdings_.held_bytes(), std::memory_order_relaxed);
    return view;
}

Result<void> Inbox::release(LoanId id) {
    std::lock_guard<std::mutex> lock(loans_mu_);
    VIPC_TRY(holdings_.release(id));
    held_.store(holdings_.held_bytes(), std::memory_order_relaxed);
    return ok();
}

Result<Message> Inbox::message(InboxOwner& owner, const RecordView& record) {
    Message m = VIPC_TRY(RecordConsumer::to_message(record));
    ring_.finish(record);
    // A region always comes with its record (a missing one is InvalidMessage there); a
    // capability only when the producer's library marked the record.
    if ((m.is_large() && m.large_message().region.size != 0) ||
        record.attachment == Attachment::OnSocket) {
        VIPC_TRY(receive_attachments(owner.attachment_socket(), regions_, m));
    } else if ((m.flags() & MessageFlags::HAS_CAPABILITY) != 0) {
        m.set_flags(m.flags() & ~MessageFlags::HAS_CAPABILITY);  // nothing was attached
    }
    return m;
}

}  // namespace veridian::ipc::posix::detail
