#include "runtime/cuda/cuda_check.h"

#include <string>

#include "core/error.h"

namespace twinfer::runtime {
namespace {

[[noreturn]] void fail(const char* call, int device, const std::string& reason) {
  throw Error("cuda:" + std::to_string(device) + ": " + call + " failed: " + reason);
}

}  // namespace

void cuda_check(cudaError_t status, const char* call, int device) {
  if (status == cudaSuccess) return;
  fail(call, device, std::string(cudaGetErrorName(status)) + " (" + cudaGetErrorString(status) + ")");
}

void cublas_check(cublasStatus_t status, const char* call, int device) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  fail(call, device, std::string(cublasGetStatusName(status)) + " (" + cublasGetStatusString(status) + ")");
}

void cuda_check_launch(const char* kernel, int device) {
  cuda_check(cudaGetLastError(), kernel, device);
}

}  // namespace twinfer::runtime
