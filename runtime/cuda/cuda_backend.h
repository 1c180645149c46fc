// The CUDA backend: cuBLAS GEMMs and the project's own kernels (attention over the paged KV cache,
// RMSNorm, rotary embeddings, SwiGLU, greedy sampling). Built only where nvcc is found.
#pragma once

#include <memory>

#include "runtime/backend/backend.h"

namespace twinfer::runtime {

// Number of CUDA devices usable now (0 when there is no GPU or no driver).
int cuda_device_count();

// Copies the seeded weights to GPU `device` and allocates the KV pool and workspaces of `limits`
// there, once. Throws twinfer::Error naming the device on any CUDA or cuBLAS failure.
std::unique_ptr<Backend> make_cuda_backend(int device, const TransformerConfig& config, const BackendLimits& limits);

}  // namespace twinfer::runtime
