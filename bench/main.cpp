// SPDX-License-Identifier: MIT OR Apache-2.0
// The standalone benchmark executable; `vipc bench` runs the same code.
#include "bench.hpp"

int main(int argc, char** argv) {
    return vipc::bench::run_bench(argc, argv);
}
