#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "runtime/backend/backend.h"
#include "runtime/cpu/cpu_backend.h"
#include "runtime/engine/noop_backend.h"

namespace twinfer::runtime {
namespace {

#ifdef TWINFER_HAVE_CUDA
// The CUDA backend lives in libtwinfer_cuda.so (runtime/cuda/cuda_plugin.cc), loaded on first use:
// from $TWINFER_CUDA_LIBRARY, else beside the program or library that holds this code (build/bin
// for the command line; the Python module's RPATH names that folder), else the loader's search path.
struct CudaPlugin {
  int (*device_count)() = nullptr;
  Backend* (*make)(int, const TransformerConfig*, const BackendLimits*, std::string*) = nullptr;
  std::string error;  // why it could not be loaded
};

const CudaPlugin& cuda_plugin() {
  static CudaPlugin plugin;
  static std::once_flag once;
  std::call_once(once, [] {
    std::vector<std::string> paths;
    if (const char* env = std::getenv("TWINFER_CUDA_LIBRARY"); env != nullptr && *env != '\0') paths.push_back(env);
    Dl_info self{};
    if (dladdr(reinterpret_cast<void*>(&cuda_plugin), &self) != 0 && self.dli_fname != nullptr) {
      std::string dir = self.dli_fname;
      dir = dir.find('/') == std::string::npos ? "." : dir.substr(0, dir.rfind('/'));
      paths.push_back(dir + "/libtwinfer_cuda.so");
    }
    paths.push_back("libtwinfer_cuda.so");
    void* handle = nullptr;
    std::string tried;
    for (const std::string& path : paths) {
      handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle != nullptr) break;
      const char* why = dlerror();
      tried += (tried.empty() ? "" : "; ") + (why != nullptr ? std::string(why) : path);
    }
    if (handle == nullptr) {
      plugin.error = "the CUDA backend library could not be loaded (" + tried + ")";
      return;
    }
    plugin.device_count = reinterpret_cast<int (*)()>(dlsym(handle, "twinfer_cuda_device_count"));
    plugin.make = reinterpret_cast<decltype(plugin.make)>(dlsym(handle, "twinfer_make_cuda_backend"));
    if (plugin.device_count == nullptr || plugin.make == nullptr) {
      plugin.error = "libtwinfer_cuda.so lacks its entry points (a library of another build?)";
      plugin.device_count = nullptr;
      plugin.make = nullptr;
    }
  });
  return plugin;
}
#endif

}  // namespace


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
    const CudaPlugin& plugin = cuda_plugin();
    if (plugin.make == nullptr) throw Error("device '" + device + "': " + plugin.error);
    const int count = plugin.device_count();
    if (index < 0 || index >= count) {
      throw Error("device '" + device + "': this host has " + std::to_string(count) + " CUDA device(s)");
    }
    std::string error;
    Backend* backend = plugin.make(index, &config, &limits, &error);
    if (backend == nullptr) throw Error(error);
    return std::unique_ptr<Backend>(backend);
#else
    (void)index;
    throw Error("device '" + device + "': this build has no CUDA support (nvcc was not found at build time)");
#endif
  }
  throw Error("unknown device '" + device + "'; valid: cpu, cuda:N, noop");
}

}  // namespace twinfer::runtime
