// Turns CUDA runtime and cuBLAS status codes into twinfer::Error, naming the call and the device.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

namespace twinfer::runtime {

// Throws twinfer::Error "cuda:<device>: <call> failed: <error string>" unless `status` is success.
void cuda_check(cudaError_t status, const char* call, int device);
void cublas_check(cublasStatus_t status, const char* call, int device);

// Throws if the last kernel launch on this thread failed (bad configuration, no kernel image for
// the device's architecture). `kernel` names the launch in the message.
void cuda_check_launch(const char* kernel, int device);

}  // namespace twinfer::runtime
