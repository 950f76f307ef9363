#pragma once
// A tiny self-contained test harness (no download, no dependency): TEST(name)
// registers a test, CHECK* record failures with file and line and go on, and
// REQUIRE* stop the current test. main() lives in the test program:
// `return icas_test::run_all(argc, argv);` runs every test, or only those
// whose name contains argv[1]. Exit status 0 means every check passed.
#include <cmath>
#include <cstdio>
#include <exception>
#include <functional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

namespace icas_test {

struct Test {
    const char* name;
    std::function<void()> body;
};

inline std::vector<Test>& registry() {
    static std::vector<Test> tests;
    return tests;
}

inline int& failures() {
    static int count = 0;
    return count;
}

struct Register {
    Register(const char* name, std::function<void()> body) {
        registry().push_back({name, std::move(body)});
    }
};

/// Thrown by REQUIRE* to abandon the current test after a failure.
struct Abort {};

/// Failures reported in the current test (the first few are printed).
inline int& test_failures() {
    static int count = 0;
    return count;
}

inline void fail(const char* file, int line, const std::string& what) {
    ++failures();
    if (++test_failures() <= 20)
        std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

/// Vectors print their size and first elements in failure messages.
template <class T>
std::ostream& operator<<(std::ostream& s, const std::vector<T>& v) {
    s << "[" << v.size() << ":";
    for (size_t i = 0; i < v.size() && i < 16; ++i) s << " " << v[i];
    return s << (v.size() > 16 ? " ...]" : "]");
}

template <class A, class B>
std::string describe(const char* expr, const A& a, const B& b) {
    std::ostringstream s;
    s << expr << "  (" << a << " vs " << b << ")";
    return s.str();
}

inline int run_all(int argc, char** argv) {
    const std::string filter = argc > 1 ? argv[1] : "";
    int ran = 0, failed_tests = 0;
    for (const Test& t : registry()) {
        if (!filter.empty() && std::string(t.name).find(filter) == std::string::npos) continue;
        const int before = failures();
        test_failures() = 0;
        try {
            t.body();
        } catch (const Abort&) {
        } catch (const std::exception& e) {
            fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
        } catch (...) {
            fail(__FILE__, __LINE__, "unexpected non-standard exception");
        }
        ++ran;
        const bool ok = failures() == before;
        if (!ok) ++failed_tests;
        if (test_failures() > 20)
            std::fprintf(stderr, "(%d more failed checks not shown)\n", test_failures() - 20);
        std::fprintf(stderr, "[%s] %s\n", ok ? "  ok  " : "FAILED", t.name);
    }
    std::fprintf(stderr, "%d tests, %d failed, %d failed checks\n", ran, failed_tests, failures());
    if (ran == 0) {
        std::fprintf(stderr, "no test matches '%s'\n", filter.c_str());
        return 1;
    }
    return failures() == 0 ? 0 : 1;
}

}  // namespace icas_test

#define ICAS_TEST_CAT2(a, b) a##b
#define ICAS_TEST_CAT(a, b) ICAS_TEST_CAT2(a, b)

/// TEST(name) { ... }: defines and registers a test.
#define TEST(name)                                                        \
    static void ICAS_TEST_CAT(icas_test_fn_, name)();                     \
    static const icas_test::Register ICAS_TEST_CAT(icas_test_reg_, name)( \
        #name, &ICAS_TEST_CAT(icas_test_fn_, name));                      \
    static void ICAS_TEST_CAT(icas_test_fn_, name)()

#define CHECK(cond)                                              \
    do {                                                         \
        if (!(cond)) icas_test::fail(__FILE__, __LINE__, #cond); \
    } while (0)

#define CHECK_EQ(a, b)                                                            \
    do {                                                                          \
        const auto icas_a_ = (a);                                                 \
        const auto icas_b_ = (b);                                                 \
        if (!(icas_a_ == icas_b_))                                                \
            icas_test::fail(__FILE__, __LINE__,                                   \
                            icas_test::describe(#a " == " #b, icas_a_, icas_b_)); \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                                     \
    do {                                                                                          \
        const double icas_a_ = static_cast<double>(a);                                            \
        const double icas_b_ = static_cast<double>(b);                                            \
        if (!(std::fabs(icas_a_ - icas_b_) <= (tol)))                                             \
            icas_test::fail(__FILE__, __LINE__,                                                   \
                            icas_test::describe("|" #a " - " #b "| <= " #tol, icas_a_, icas_b_)); \
    } while (0)

/// CHECK_THROWS(Exception, statement): the statement throws that exception type.
#define CHECK_THROWS(Exc, stmt)                                                        \
    do {                                                                               \
        bool icas_thrown_ = false;                                                     \
        try {                                                                          \
            stmt;                                                                      \
        } catch (const Exc&) {                                                         \
            icas_thrown_ = true;                                                       \
        } catch (...) {                                                                \
        }                                                                              \
        if (!icas_thrown_) icas_test::fail(__FILE__, __LINE__, #stmt " throws " #Exc); \
    } while (0)

#define REQUIRE(cond)                                   \
    do {                                                \
        if (!(cond)) {                                  \
            icas_test::fail(__FILE__, __LINE__, #cond); \
            throw icas_test::Abort{};                   \
        }                                               \
    } while (0)

#define REQUIRE_EQ(a, b)                                                     \
    do {                                                                     \
        const int icas_before_ = icas_test::failures();                      \
        CHECK_EQ(a, b);                                                      \
        if (icas_test::failures() != icas_before_) throw icas_test::Abort{}; \
    } while (0)
