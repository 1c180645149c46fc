// Construction and teardown of the CUDA backend: everything it allocates, it allocates here, once.
#include <algorithm>
#include <climits>
#include <string>

#include "core/error.h"
#include "runtime/cuda/cuda_backend.h"
#include "runtime/cuda/cuda_backend_impl.h"
#include "runtime/cuda/cuda_check.h"

namespace twinfer::runtime {
namespace {

std::string device_name(int device) { return "cuda:" + std::to_string(device); }

std::size_t as_size(std::int64_t n) { return static_cast<std::size_t>(n); }

}  // namespace

int cuda_device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // so that the next CUDA call does not report this one
    return 0;
  }
  return count;
}

std::unique_ptr<Backend> make_cuda_backend(int device, const TransformerConfig& config, const BackendLimits& limits) {
  const int count = cuda_device_count();
  if (device < 0 || device >= count) {
    throw Error(device_name(device) + ": no such CUDA device (" + std::to_string(count) + " visible)");
  }
  return std::make_unique<CudaBackend>(device, config, limits);
}

const BackendLimits& CudaBackend::checked(int device, const TransformerConfig& c, const BackendLimits& limits) {
  const auto require = [&](bool ok, const std::string& what) {
    if (!ok) throw Error(device_name(device) + ": " + what);
  };
  require(c.layers >= 1 && c.hidden >= 1 && c.heads >= 1 && c.kv_heads >= 1 && c.ffn_hidden >= 1 && c.vocab >= 1 &&
              c.max_context >= 1,
          "model sizes must be positive");
  require(c.hidden % c.heads == 0, "hidden " + std::to_string(c.hidden) + " is not a multiple of heads");
  require(c.heads % c.kv_heads == 0, "heads " + std::to_string(c.heads) + " is not a multiple of kv_heads");
  require(c.head_dim() % 2 == 0, "head_dim " + std::to_string(c.head_dim()) + " must be even for rotary embeddings");
  require(limits.kv_blocks >= 1 && limits.kv_blocks <= INT_MAX, "kv_blocks must be in [1, 2^31)");
  require(limits.host_kv_blocks >= 0 && limits.host_kv_blocks <= INT_MAX, "host_kv_blocks must be in [0, 2^31)");
  require(limits.block_tokens >= 1, "block_tokens must be positive");
  require(limits.max_batch_tokens >= 1, "max_batch_tokens must be positive");
  require(limits.max_batch_sequences >= 1, "max_batch_sequences must be positive");
  return limits;
}

CudaBackend::CudaBackend(int device, const TransformerConfig& config, const BackendLimits& limits)
    : device_(device),
      config_(config),
      limits_(checked(device, config, limits)),
      name_(device_name(device)),
      max_blocks_per_seq_((config.max_context + limits.block_tokens - 1) / limits.block_tokens) {
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", device_);
  create_stream_and_cublas();
  configure_attention();
  upload_weights(TransformerWeights::random(config_));
  allocate_workspaces();
  // A cudaMemcpy from pageable memory may return before its DMA lands, and the backend's stream does
  // not wait for the legacy default stream: wait here, once, before any step reads the weights.
  cuda_check(cudaDeviceSynchronize(), "cudaDeviceSynchronize", device_);
}

CudaBackend::~CudaBackend() {
  // Work may still be queued if a step threw; buffers are freed by their members after this.
  cudaSetDevice(device_);
  if (stream_) cudaStreamSynchronize(stream_.get());
}

void CudaBackend::create_stream_and_cublas() {
  cudaStream_t stream = nullptr;
  cuda_check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags", device_);
  stream_.reset(stream);
  cublasHandle_t handle = nullptr;
  cublas_check(cublasCreate(&handle), "cublasCreate", device_);
  cublas_.reset(handle);
  cublas_check(cublasSetStream(handle, stream), "cublasSetStream", device_);
  // Full float32 (no TF32 tensor cores), so that results stay within rounding of the CPU backend.
  cublas_check(cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH), "cublasSetMathMode", device_);
}

void CudaBackend::configure_attention() {
  // Attention keeps one score per key in shared memory: max_context bounds the keys of a step and
  // the padded length of an encode.
  const std::size_t bytes = kernels::attention_shared_bytes(config_.head_dim(), config_.max_context);
  int optin = 0;
  cuda_check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device_), "cudaDeviceGetAttribute",
             device_);
  if (bytes > static_cast<std::size_t>(optin)) {
    throw Error(name_ + ": max_context " + std::to_string(config_.max_context) + " needs " + std::to_string(bytes) +
                " bytes of shared memory per attention block; the device allows " + std::to_string(optin));
  }
  if (bytes > 48 * 1024) {
    cuda_check(kernels::allow_attention_shared_bytes(bytes), "cudaFuncSetAttribute", device_);
  }
}

void CudaBackend::upload_weights(const TransformerWeights& weights) {
  std::vector<const std::vector<float>*> parts = {&weights.embedding, &weights.final_norm, &weights.lm_head};
  for (const LayerWeights& l : weights.layers) {
    for (const std::vector<float>* p : {&l.attn_norm, &l.wq, &l.wk, &l.wv, &l.wo, &l.mlp_norm, &l.w_gate, &l.w_up,
                                        &l.w_down}) {
      parts.push_back(p);
    }
  }
  std::size_t total = 0;
  for (const std::vector<float>* p : parts) total += p->size();
  weights_ = DeviceBuffer<float>(total, device_);

  std::size_t offset = 0;
  const auto put = [&](const std::vector<float>& host) {
    float* at = weights_.get() + offset;
    cuda_check(cudaMemcpy(at, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy weights",
               device_);
    offset += host.size();
    return at;
  };
  embedding_ = put(weights.embedding);
  final_norm_ = put(weights.final_norm);
  lm_head_ = put(weights.lm_head);
  for (const LayerWeights& l : weights.layers) {
    DeviceLayerWeights d;
    d.attn_norm = put(l.attn_norm);
    d.wq = put(l.wq);
    d.wk = put(l.wk);
    d.wv = put(l.wv);
    d.wo = put(l.wo);
    d.mlp_norm = put(l.mlp_norm);
    d.w_gate = put(l.w_gate);
    d.w_up = put(l.w_up);
    d.w_down = put(l.w_down);
    layers_.push_back(d);
  }
}

void CudaBackend::allocate_workspaces() {
  const std::size_t tokens = as_size(limits_.max_batch_tokens);
  const std::size_t sequences = as_size(limits_.max_batch_sequences);
  const std::size_t hidden = as_size(config_.hidden);
  const std::size_t kv_dim = as_size(config_.kv_dim());
  const std::size_t ffn = as_size(config_.ffn_hidden);
  const std::size_t vocab = as_size(config_.vocab);
  const std::size_t tables = sequences * as_size(max_blocks_per_seq_);

  kv_pool_ = DeviceBuffer<float>(as_size(limits_.kv_blocks) * as_size(limits_.block_tokens) * as_size(config_.layers) *
                                     kv_dim * 2,
                                 device_);
  block_floats_ = as_size(limits_.block_tokens) * as_size(config_.layers) * kv_dim * 2;
  host_tier_ = PinnedBuffer<float>(as_size(limits_.host_kv_blocks) * block_floats_, device_);
  x_ = DeviceBuffer<float>(tokens * hidden, device_);
  xn_ = DeviceBuffer<float>(tokens * hidden, device_);
  q_ = DeviceBuffer<float>(tokens * hidden, device_);
  k_ = DeviceBuffer<float>(tokens * kv_dim, device_);
  v_ = DeviceBuffer<float>(tokens * kv_dim, device_);
  gate_ = DeviceBuffer<float>(tokens * ffn, device_);
  up_ = DeviceBuffer<float>(tokens * ffn, device_);

  const std::size_t inputs = 3 * tokens + 2 * sequences + tables;
  inputs_ = DeviceBuffer<int>(inputs, device_);
  host_inputs_ = PinnedBuffer<int>(inputs, device_);
  const std::size_t outputs = sequences * (vocab + 1);
  outputs_ = DeviceBuffer<float>(outputs, device_);
  host_outputs_ = PinnedBuffer<float>(outputs, device_);
  last_logits_.reserve(sequences * vocab);
}

}  // namespace twinfer::runtime
