// The standalone benchmark executable; `vipc bench` runs the same code.
#include "bench.hpp"

int main(int argc, char** argv) {
    return vipc::bench::run_bench(argc, argv);
}
