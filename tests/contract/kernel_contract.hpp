// SPDX-License-Identifier: MIT OR Apache-2.0
// CONTRACT_TEST in the kernel: each behaviour registers a case (at global construction) that
// kernel_contract.cpp runs on the kernel's scheduler, printing "PASS <name>" or
// "FAIL <name>: <why>" on the serial port. CONTRACT_TEST_HOSTED bodies are not compiled
// into the kernel (their template is never instantiated).
#pragma once

namespace veridian::ipc::contract::kernel {

struct Case {
    const char* name;
    void (*run)();
    Case* next;
};

// The registered cases, in registration order.
Case*& first_case();
Case*& last_case();

struct Register {
    explicit Register(Case* c) {
        if (last_case() == nullptr) {
            first_case() = c;
        } else {
            last_case()->next = c;
        }
        last_case() = c;
    }
};

}  // namespace veridian::ipc::contract::kernel

#define CONTRACT_TEST(Name)                                                                      \
    template <typename A>                                                                        \
    void Name##_body(A& a);                                                                      \
    inline ::veridian::ipc::contract::kernel::Case Name##_case{                                  \
        #Name, [] { ::veridian::ipc::contract::kernel::run_case(&Name##_body<KernelAdapter>); }, \
        nullptr};                                                                                \
    inline const ::veridian::ipc::contract::kernel::Register Name##_register{&Name##_case};      \
    template <typename A>                                                                        \
    void Name##_body([[maybe_unused]] A& a)
#define CONTRACT_TEST_HOSTED(Name) \
    template <typename A>          \
    void Name##_body([[maybe_unused]] A& a)
