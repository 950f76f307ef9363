// Device queries: whether a CUDA device answers, and a line about it.
#include <string>

#include "tiles.cuh"

#ifndef ICAS_CUDA_ARCHITECTURES
#define ICAS_CUDA_ARCHITECTURES "unknown"
#endif

namespace icas::cuda {

int device_count() {
    int count = 0;
    // Without a driver this returns an error (e.g. "driver version is
    // insufficient"); that means no device, never an exception.
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky error for later calls
        return 0;
    }
    return count;
}

std::string describe() {
    int runtime = 0;
    cudaRuntimeGetVersion(&runtime);
    std::string line = "CUDA runtime " + std::to_string(runtime / 1000) + "." +
                       std::to_string(runtime % 1000 / 10);
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cudaGetLastError();
        return line + ", no device: " + cudaGetErrorString(e);
    }
    if (count == 0) return line + ", no device";
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return line + ", device 0 unreadable";
    return line + ", " + std::to_string(count) + " device(s), 0: " + prop.name + " (sm_" +
           std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

std::string architectures() { return ICAS_CUDA_ARCHITECTURES; }

}  // namespace icas::cuda
