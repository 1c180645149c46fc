// The CUDA backend's entry points as a loadable library (libtwinfer_cuda.so): the programs load it
// on first use of a cuda:N device (runtime/engine/backend_factory.cc), so that a program that never
// touches a GPU never maps cuBLAS (over 200 MB of resident memory and a tenth of a second of start-up
// to load). C linkage and no exception across the boundary: errors come back as text.
#include <exception>
#include <string>

#include "runtime/cuda/cuda_backend.h"

extern "C" {

__attribute__((visibility("default"))) int twinfer_cuda_device_count() {
  return twinfer::runtime::cuda_device_count();
}

// A new backend (the caller owns it), or null with *error set.
__attribute__((visibility("default"))) twinfer::runtime::Backend* twinfer_make_cuda_backend(
    int device, const twinfer::runtime::TransformerConfig* config, const twinfer::runtime::BackendLimits* limits,
    std::string* error) {
  try {
    return twinfer::runtime::make_cuda_backend(device, *config, *limits).release();
  } catch (const std::exception& e) {
    *error = e.what();
  }
  return nullptr;
}

}  // extern "C"
