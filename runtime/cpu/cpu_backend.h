// The CPU backend: the transformer on Eigen, with a paged KV cache allocated once.
#pragma once

#include <memory>

#include "runtime/backend/backend.h"

namespace twinfer::runtime {

// Builds the weights from config (seeded) and allocates the KV pool and workspaces of `limits`.
std::unique_ptr<Backend> make_cpu_backend(const TransformerConfig& config, const BackendLimits& limits);

}  // namespace twinfer::runtime
