#include "core/error.h"
#include "runtime/backend/backend.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/engine/noop_backend.h"
#ifdef TWINFER_HAVE_CUDA
#include "runtime/cuda/cuda_backend.h"
#endif

namespace twinfer::runtime {

std::unique_ptr<Backend> make_backend(const std::string& device, const TransformerConfig& config,
                                      const BackendLimits& limits) {
  if (device == "cpu") return make_cpu_backend(config, limits);
  if (device == "noop") return make_noop_backend(config, limits);
  if (device.rfind("cuda:", 0) == 0) {
    int index = -1;
    try {
      index = std::stoi(device.substr(5));
    } catch (const std::exception&) {
      throw Error("device '" + device + "': expected cuda:N with N a GPU index");
    }
#ifdef TWINFER_HAVE_CUDA
    if (index < 0 || index >= cuda_device_count()) {
      throw Error("device '" + device + "': this host has " + std::to_string(cuda_device_count()) + " CUDA device(s)");
    }
    return make_cuda_backend(index, config, limits);
#else
    (void)index;
    throw Error("device '" + device + "': this build has no CUDA support (nvcc was not found at build time)");
#endif
  }
  throw Error("unknown device '" + device + "'; valid: cpu, cuda:N, noop");
}

}  // namespace twinfer::runtime
