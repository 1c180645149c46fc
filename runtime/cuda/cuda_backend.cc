// One iteration of the CUDA backend: stage the batch on the host, one async copy into the
// preallocated device buffers, the layers' kernels and GEMMs on one stream, one copy back.
#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "runtime/cuda/cuda_backend_impl.h"
#include "runtime/cuda/cuda_check.h"
#include "runtime/backend/step_checks.h"

namespace twinfer::runtime {

void CudaBackend::fail(const std::string& what) const { throw Error(name_ + ": " + what); }

void CudaBackend::check_batch(const std::vector<StepSequence>& batch) const {
  check_step(batch, config_, limits_, name_.c_str());
}

CudaBackend::Pass CudaBackend::stage_batch(const std::vector<StepSequence>& batch, int& samples,
                                           const int*& sample_rows) {
  int tokens = 0;
  int longest = 1;
  for (const StepSequence& s : batch) {
    tokens += static_cast<int>(s.tokens.size());
    longest = std::max(longest, s.cached + static_cast<int>(s.tokens.size()));
  }
  const int stride = (longest + limits_.block_tokens - 1) / limits_.block_tokens;
  // Packed as [token ids][positions][token sequences][sampling rows][block tables], each `tokens`
  // long but the last two (at most one row per sequence, and batch x stride).
  int* host = host_inputs_.get();
  int* host_ids = host;
  int* host_positions = host + tokens;
  int* host_seq = host + 2 * tokens;
  int* host_samples = host + 3 * tokens;
  samples = 0;
  for (const StepSequence& s : batch) samples += s.sample ? 1 : 0;
  int* host_tables = host_samples + samples;

  int row = 0;
  int sample = 0;
  for (std::size_t b = 0; b < batch.size(); ++b) {
    const StepSequence& s = batch[b];
    const std::int32_t length = s.cached + static_cast<std::int32_t>(s.tokens.size());
    const int used = (length + limits_.block_tokens - 1) / limits_.block_tokens;
    std::copy(s.blocks.begin(), s.blocks.begin() + used, host_tables + b * stride);
    for (std::size_t i = 0; i < s.tokens.size(); ++i, ++row) {
      host_ids[row] = s.tokens[i];
      host_positions[row] = s.cached + static_cast<int>(i);
      host_seq[row] = static_cast<int>(b);
    }
    if (s.sample) host_samples[sample++] = row - 1;
  }
  upload_inputs(static_cast<std::size_t>(host_tables - host) + batch.size() * stride);

  const int* device = inputs_.get();
  Pass pass;
  pass.tokens = tokens;
  pass.paged = true;
  pass.max_keys = longest;
  pass.token_ids = device;
  pass.positions = device + tokens;
  pass.token_seq = device + 2 * tokens;
  pass.block_tables = device + (host_tables - host);
  pass.table_stride = stride;
  sample_rows = device + 3 * tokens;
  return pass;
}

CudaBackend::Pass CudaBackend::stage_encode(const std::vector<std::int32_t>& lengths, int padded) {
  const int sequences = static_cast<int>(lengths.size());
  const int tokens = sequences * padded;
  // Packed as [token ids][positions][lengths]. Sequence s carries the prompt tokens of request id s;
  // padding is token 0.
  int* host = host_inputs_.get();
  for (int s = 0; s < sequences; ++s) {
    const std::vector<std::int32_t> prompt = prompt_tokens(static_cast<RequestId>(s), lengths[s], config_.vocab);
    for (int i = 0; i < padded; ++i) {
      const int row = s * padded + i;
      host[row] = i < lengths[s] ? prompt[i] : 0;
      host[tokens + row] = i;
    }
    host[2 * tokens + s] = lengths[s];
  }
  upload_inputs(2 * static_cast<std::size_t>(tokens) + sequences);

  const int* device = inputs_.get();
  Pass pass;
  pass.tokens = tokens;
  pass.paged = false;
  pass.max_keys = padded;
  pass.token_ids = device;
  pass.positions = device + tokens;
  pass.lengths = device + 2 * tokens;
  pass.sequences = sequences;
  pass.padded = padded;
  return pass;
}

void CudaBackend::upload_inputs(std::size_t count) {
  cuda_check(cudaMemcpyAsync(inputs_.get(), host_inputs_.get(), count * sizeof(int), cudaMemcpyHostToDevice,
                             stream_.get()),
             "cudaMemcpyAsync step inputs", device_);
}

void CudaBackend::gemm(const float* x, const float* w, float* y, int rows, int in, int out, float beta) {
  // cuBLAS is column-major: a row-major [r][c] matrix is its transpose, so y^T = w^T x^T.
  const float alpha = 1.f;
  cublas_check(cublasSgemm(cublas_.get(), CUBLAS_OP_N, CUBLAS_OP_N, out, rows, in, &alpha, w, out, x, in, &beta, y, out),
               "cublasSgemm", device_);
}

void CudaBackend::layer(const DeviceLayerWeights& w, int index, const Pass& pass) {
  const int t = pass.tokens;
  const int hidden = config_.hidden;
  const int kv_dim = config_.kv_dim();
  const int ffn = config_.ffn_hidden;
  cudaStream_t stream = stream_.get();

  kernels::rms_norm(x_.get(), nullptr, t, hidden, w.attn_norm, config_.rms_eps, xn_.get(), stream);
  gemm(xn_.get(), w.wq, q_.get(), t, hidden, hidden, 0.f);
  gemm(xn_.get(), w.wk, k_.get(), t, hidden, kv_dim, 0.f);
  gemm(xn_.get(), w.wv, v_.get(), t, hidden, kv_dim, 0.f);
  kernels::rope(q_.get(), k_.get(), pass.positions, t, config_.heads, config_.kv_heads, config_.head_dim(),
                config_.rope_theta, stream);
  // The attention output reuses xn_: the normalized input is no longer needed.
  const kernels::AttentionShape shape{config_.heads, config_.kv_heads, config_.head_dim()};
  if (pass.paged) {
    const kernels::PagedKv cache{kv_pool_.get(), pass.block_tables, pass.table_stride, limits_.block_tokens,
                                 config_.layers, kv_dim};
    kernels::store_kv(k_.get(), v_.get(), pass.token_seq, pass.positions, t, cache, index, stream);
    kernels::paged_attention(q_.get(), pass.token_seq, pass.positions, t, cache, index, shape, pass.max_keys,
                             xn_.get(), stream);
  } else {
    kernels::dense_attention(q_.get(), k_.get(), v_.get(), pass.lengths, pass.sequences, pass.padded, shape,
                             xn_.get(), stream);
  }
  gemm(xn_.get(), w.wo, x_.get(), t, hidden, hidden, 1.f);  // beta 1: adds the residual

  kernels::rms_norm(x_.get(), nullptr, t, hidden, w.mlp_norm, config_.rms_eps, xn_.get(), stream);
  gemm(xn_.get(), w.w_gate, gate_.get(), t, hidden, ffn, 0.f);
  gemm(xn_.get(), w.w_up, up_.get(), t, hidden, ffn, 0.f);
  kernels::swiglu(gate_.get(), up_.get(), static_cast<std::size_t>(t) * ffn, stream);
  gemm(gate_.get(), w.w_down, x_.get(), t, ffn, hidden, 1.f);
  cuda_check_launch("transformer layer kernels", device_);
}

void CudaBackend::forward(const Pass& pass) {
  kernels::embed(pass.token_ids, pass.tokens, embedding_, config_.hidden, x_.get(), stream_.get());
  for (std::size_t l = 0; l < layers_.size(); ++l) layer(layers_[l], static_cast<int>(l), pass);
}

void CudaBackend::finish(const char* what) {
  cuda_check(cudaStreamSynchronize(stream_.get()), what, device_);
}

void CudaBackend::copy_kv(const KvTransfers& copies) {
  check_copies(copies, limits_, name_.c_str());
  if (copies.empty()) return;
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", device_);
  const std::size_t bytes = block_floats_ * sizeof(float);
  const auto pool = [this](std::int32_t b) { return kv_pool_.get() + static_cast<std::size_t>(b) * block_floats_; };
  const auto host = [this](std::int32_t h) { return host_tier_.get() + static_cast<std::size_t>(h) * block_floats_; };
  // On the step's stream: the stores read their blocks before any load or later step writes them.
  for (const KvCopy& c : copies.stores) {
    cuda_check(cudaMemcpyAsync(host(c.host_block), pool(c.block), bytes, cudaMemcpyDeviceToHost, stream_.get()),
               "cudaMemcpyAsync (KV store to host)", device_);
  }
  for (const KvCopy& c : copies.loads) {
    cuda_check(cudaMemcpyAsync(pool(c.block), host(c.host_block), bytes, cudaMemcpyHostToDevice, stream_.get()),
               "cudaMemcpyAsync (KV load from host)", device_);
  }
}

void CudaBackend::step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) {
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", device_);
  check_batch(batch);
  next_tokens.clear();
  last_logits_.clear();
  if (batch.empty()) return;
  int samples = 0;
  const int* sample_rows = nullptr;
  const Pass pass = stage_batch(batch, samples, sample_rows);
  forward(pass);
  if (samples == 0) {
    finish("cudaStreamSynchronize step");
    return;
  }

  cudaStream_t stream = stream_.get();
  const std::size_t logits = static_cast<std::size_t>(samples) * config_.vocab;
  float* device_logits = outputs_.get();
  int* device_next = reinterpret_cast<int*>(outputs_.get() + logits);
  kernels::rms_norm(x_.get(), sample_rows, samples, config_.hidden, final_norm_, config_.rms_eps, xn_.get(), stream);
  gemm(xn_.get(), lm_head_, device_logits, samples, config_.hidden, config_.vocab, 0.f);
  kernels::argmax(device_logits, samples, config_.vocab, device_next, stream);
  cuda_check_launch("sampling kernels", device_);
  cuda_check(cudaMemcpyAsync(host_outputs_.get(), outputs_.get(), (logits + samples) * sizeof(float),
                             cudaMemcpyDeviceToHost, stream),
             "cudaMemcpyAsync logits and next tokens", device_);
  finish("cudaStreamSynchronize step");
  last_logits_.assign(host_outputs_.get(), host_outputs_.get() + logits);
  next_tokens.resize(samples);
  std::memcpy(next_tokens.data(), host_outputs_.get() + logits, samples * sizeof(std::int32_t));
}

std::vector<float> CudaBackend::encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) {
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", device_);
  const int sequences = static_cast<int>(lengths.size());
  const std::int32_t padded = check_encode(lengths, padded_length, config_, limits_, name_);
  if (sequences == 0) return {};

  const Pass pass = stage_encode(lengths, padded);
  forward(pass);
  cudaStream_t stream = stream_.get();
  kernels::rms_norm(x_.get(), nullptr, pass.tokens, config_.hidden, final_norm_, config_.rms_eps, xn_.get(), stream);
  kernels::masked_mean(xn_.get(), pass.lengths, sequences, padded, config_.hidden, outputs_.get(), stream);
  cuda_check_launch("encode kernels", device_);
  cuda_check(cudaMemcpyAsync(host_outputs_.get(), outputs_.get(), sequences * sizeof(float), cudaMemcpyDeviceToHost,
                             stream),
             "cudaMemcpyAsync means", device_);
  finish("cudaStreamSynchronize encode");
  return std::vector<float>(host_outputs_.get(), host_outputs_.get() + sequences);
}

}  // namespace twinfer::runtime
