// The C++ kernel tests: `icas_cpp_tests [name-filter]`. Exit 0 when every
// check passes. Built with -DICAS_BUILD_TESTS=ON and run by ctest.
#include "check.hpp"

int main(int argc, char** argv) { return icas_test::run_all(argc, argv); }
