// The CUDA backend's class, private to runtime/cuda/. Construction (weights upload, allocations)
// is in cuda_backend_setup.cc; the per-iteration work in cuda_backend.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "runtime/backend/backend.h"
#include "runtime/cuda/device_buffer.h"
#include "runtime/cuda/kernels.h"
#include "runtime/model/transformer_weights.h"

namespace twinfer::runtime {

struct StreamDestroyer {
  void operator()(cudaStream_t stream) const { cudaStreamDestroy(stream); }
};
struct CublasDestroyer {
  void operator()(cublasHandle_t handle) const { cublasDestroy(handle); }
};

// Device pointers of one layer's weights, inside CudaBackend::weights_.
struct DeviceLayerWeights {
  const float* attn_norm = nullptr;
  const float* wq = nullptr;
  const float* wk = nullptr;
  const float* wv = nullptr;
  const float* wo = nullptr;
  const float* mlp_norm = nullptr;
  const float* w_gate = nullptr;
  const float* w_up = nullptr;
  const float* w_down = nullptr;
};

class CudaBackend final : public Backend {
 public:
  // Throws twinfer::Error naming the device on a bad size or any CUDA/cuBLAS failure.
  CudaBackend(int device, const TransformerConfig& config, const BackendLimits& limits);
  ~CudaBackend() override;

  void step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) override;
  const std::vector<float>& last_logits() const override { return last_logits_; }
  std::vector<float> encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) override;
  void copy_kv(const KvTransfers& copies) override;
  std::string name() const override { return name_; }

 private:
  // One forward pass over `tokens` rows. Device pointers point into inputs_. A step's attention
  // reads the paged cache through block_tables; an encode's reads the pass's own K/V.
  struct Pass {
    int tokens = 0;
    bool paged = true;
    int max_keys = 0;                   // most keys one token attends to (sizes attention's shared memory)
    const int* token_ids = nullptr;
    const int* positions = nullptr;
    const int* token_seq = nullptr;     // step only
    const int* block_tables = nullptr;  // step only: [batch][table_stride]
    int table_stride = 0;               // step only
    const int* lengths = nullptr;       // encode only: [sequences]
    int sequences = 0;                  // encode only
    int padded = 0;                     // encode only
  };

  // Setup (cuda_backend_setup.cc). `checked` returns `limits` or throws for a bad size.
  static const BackendLimits& checked(int device, const TransformerConfig& config, const BackendLimits& limits);
  void create_stream_and_cublas();
  void upload_weights(const TransformerWeights& weights);
  void allocate_workspaces();
  void configure_attention();

  // Per iteration (cuda_backend.cc).
  [[noreturn]] void fail(const std::string& what) const;
  void check_batch(const std::vector<StepSequence>& batch) const;
  // Fills host_inputs_ (the block tables as the batch gives them); returns the pass and the sampling rows.
  Pass stage_batch(const std::vector<StepSequence>& batch, int& samples, const int*& sample_rows);
  Pass stage_encode(const std::vector<std::int32_t>& lengths, int padded);
  void upload_inputs(std::size_t count);
  void forward(const Pass& pass);
  void layer(const DeviceLayerWeights& w, int index, const Pass& pass);
  // y[rows][out] = x[rows][in] * w[in][out] + beta * y, all row-major.
  void gemm(const float* x, const float* w, float* y, int rows, int in, int out, float beta);
  void finish(const char* what);

  int device_;
  TransformerConfig config_;
  BackendLimits limits_;
  std::string name_;
  int max_blocks_per_seq_ = 0;

  std::unique_ptr<CUstream_st, StreamDestroyer> stream_;
  std::unique_ptr<cublasContext, CublasDestroyer> cublas_;

  DeviceBuffer<float> weights_;  // every weight, one allocation
  const float* embedding_ = nullptr;
  std::vector<DeviceLayerWeights> layers_;
  const float* final_norm_ = nullptr;
  const float* lm_head_ = nullptr;
  DeviceBuffer<float> kv_pool_;
  // The host-memory tier: host_kv_blocks blocks laid out as the pool's, page-locked so that the
  // copies run on the stream, in order with the steps.
  PinnedBuffer<float> host_tier_;
  std::size_t block_floats_ = 0;

  // Activations [max_batch_tokens][...]: residual stream, normalized input (then attention output),
  // projections and the MLP's two halves.
  DeviceBuffer<float> x_, xn_, q_, k_, v_, gate_, up_;
  // Per-call inputs, packed so that one copy uploads them: token ids, positions, token sequences,
  // sampling rows and block tables (step) or lengths (encode). Sized for the limits.
  DeviceBuffer<int> inputs_;
  PinnedBuffer<int> host_inputs_;
  // Per-call outputs, packed so that one copy downloads them: a step's logits [samples][vocab] then
  // its next tokens (int32 bits) [samples]; an encode's means [sequences].
  DeviceBuffer<float> outputs_;
  PinnedBuffer<float> host_outputs_;

  std::vector<float> last_logits_;
};

}  // namespace twinfer::runtime
