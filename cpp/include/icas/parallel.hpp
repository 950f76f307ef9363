#pragma once
// Thread-count resolution and exception capture for OpenMP regions.
#include <algorithm>
#include <exception>
#include <mutex>

#ifdef ICAS_HAVE_OPENMP
#include <omp.h>
#endif

namespace icas {

/// Resolve a user thread count: 0 -> the OpenMP default (honours
/// OMP_NUM_THREADS), -1 -> every core, k >= 1 -> k. Always >= 1 and at most
/// 4 threads per core: more only adds overhead (results never depend on the
/// count), and an absurd count (n_threads=100000) would make OpenMP fail to
/// start its threads and take the process down.
inline int resolve_threads(int n_threads) {
#ifdef ICAS_HAVE_OPENMP
    const int procs = omp_get_num_procs() > 0 ? omp_get_num_procs() : 1;
    int k = n_threads == 0 ? omp_get_max_threads() : n_threads < 0 ? procs : n_threads;
    k = std::min(k, 4 * procs);
    if (omp_get_thread_limit() > 0) k = std::min(k, omp_get_thread_limit());
    return std::max(k, 1);
#else
    (void)n_threads;
    return 1;
#endif
}

/// Collects the first exception thrown inside a parallel region so it can be
/// rethrown on the calling thread: an exception escaping an OpenMP region
/// would terminate the process.
class ExceptionCatcher {
  public:
    template <class F>
    void run(F&& f) noexcept {
        try {
            f();
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex_);
            if (!error_) error_ = std::current_exception();
        }
    }
    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

  private:
    std::exception_ptr error_;
    std::mutex mutex_;
};

}  // namespace icas
