// One iteration of the CUDA backend: stage the batch on the host, a few async copies into the
// preallocated device buffers, the layers' kernels and GEMMs on one stream, one copy back.
#include <algorithm>
#include <cmath>
#include <string>
#include <unordered_set>

#include "policies/error.h"
#include "runtime/cuda/cuda_backend_impl.h"
#include "runtime/cuda/cuda_check.h"

namespace twinfer::runtime {

void CudaBackend::fail(const std::string& what) const { throw Error(name_ + ": " + what); }

void CudaBackend::check_batch(const std::vector<StepSequence>& batch) const {
  if (static_cast<std::int64_t>(batch.size()) > limits_.max_batch_sequences) {
    fail("batch of " + std::to_string(batch.size()) + " sequences exceeds max_batch_sequences " +
         std::to_string(limits_.max_batch_sequences));
  }
  std::int64_t tokens = 0;
  std::int64_t blocks = 0;
  std::unordered_set<RequestId> seen;
  for (const StepSequence& s : batch) {
    const std::string which = "request " + std::to_string(s.id);
    if (!seen.insert(s.id).second) fail(which + " appears twice in one batch");
    if (s.tokens.empty()) fail(which + " has no tokens to process");
    if (s.cached != blocks_.length(s.id)) {
      fail(which + " claims " + std::to_string(s.cached) + " cached tokens; its KV cache holds " +
           std::to_string(blocks_.length(s.id)));
    }
    const std::int64_t length = static_cast<std::int64_t>(s.cached) + static_cast<std::int64_t>(s.tokens.size());
    if (length > config_.max_context) {
      fail(which + " reaches " + std::to_string(length) + " tokens, past max_context " +
           std::to_string(config_.max_context));
    }
    for (std::int32_t t : s.tokens) {
      if (t < 0 || t >= config_.vocab) fail(which + " has token " + std::to_string(t) + " outside the vocabulary");
    }
    tokens += static_cast<std::int64_t>(s.tokens.size());
    blocks += blocks_.blocks_needed(s.id, static_cast<std::int32_t>(length));
  }
  if (tokens > limits_.max_batch_tokens) {
    fail("batch of " + std::to_string(tokens) + " tokens exceeds max_batch_tokens " +
         std::to_string(limits_.max_batch_tokens));
  }
  if (blocks > blocks_.free_blocks()) {
    fail("KV cache full: the batch needs " + std::to_string(blocks) + " more blocks, " +
         std::to_string(blocks_.free_blocks()) + " are free");
  }
}

int CudaBackend::stage_batch(const std::vector<StepSequence>& batch) {
  int row = 0;
  int samples = 0;
  for (std::size_t s = 0; s < batch.size(); ++s) {
    const StepSequence& sequence = batch[s];
    const std::int32_t length = sequence.cached + static_cast<std::int32_t>(sequence.tokens.size());
    const std::vector<int>& blocks = blocks_.extend(sequence.id, length);
    std::copy(blocks.begin(), blocks.end(), host_block_tables_.get() + s * max_blocks_per_seq_);
    for (std::size_t i = 0; i < sequence.tokens.size(); ++i, ++row) {
      host_tokens_[row] = sequence.tokens[i];
      host_positions_[row] = sequence.cached + static_cast<int>(i);
      host_token_seq_[row] = static_cast<int>(s);
    }
    if (sequence.sample) host_sample_rows_[samples++] = row - 1;
  }
  return samples;
}

void CudaBackend::upload(int* device, const int* host, std::size_t count, const char* what) {
  if (count == 0) return;
  cuda_check(cudaMemcpyAsync(device, host, count * sizeof(int), cudaMemcpyHostToDevice, stream_.get()), what, device_);
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
  kernels::rope(q_.get(), k_.get(), positions_.get(), t, config_.heads, config_.kv_heads, config_.head_dim(),
                config_.rope_theta, stream);
  // The attention output reuses xn_: the normalized input is no longer needed.
  const kernels::AttentionShape shape{config_.heads, config_.kv_heads, config_.head_dim()};
  if (pass.paged) {
    const kernels::PagedKv cache{kv_pool_.get(), block_tables_.get(), max_blocks_per_seq_, limits_.block_tokens,
                                 config_.layers, kv_dim};
    kernels::store_kv(k_.get(), v_.get(), token_seq_.get(), positions_.get(), t, cache, index, stream);
    kernels::paged_attention(q_.get(), token_seq_.get(), positions_.get(), t, cache, index, shape, config_.max_context,
                             xn_.get(), stream);
  } else {
    kernels::dense_attention(q_.get(), k_.get(), v_.get(), lengths_.get(), pass.sequences, pass.padded, shape,
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
  kernels::embed(tokens_.get(), pass.tokens, embedding_, config_.hidden, x_.get(), stream_.get());
  for (std::size_t l = 0; l < layers_.size(); ++l) layer(layers_[l], static_cast<int>(l), pass);
}

void CudaBackend::finish(const char* what) {
  cuda_check(cudaStreamSynchronize(stream_.get()), what, device_);
}

void CudaBackend::step(const std::vector<StepSequence>& batch, std::vector<std::int32_t>& next_tokens) {
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", device_);
  check_batch(batch);
  next_tokens.clear();
  last_logits_.clear();
  if (batch.empty()) return;
  const int samples = stage_batch(batch);
  int tokens = 0;
  for (const StepSequence& s : batch) tokens += static_cast<int>(s.tokens.size());

  upload(tokens_.get(), host_tokens_.get(), tokens, "cudaMemcpyAsync tokens");
  upload(positions_.get(), host_positions_.get(), tokens, "cudaMemcpyAsync positions");
  upload(token_seq_.get(), host_token_seq_.get(), tokens, "cudaMemcpyAsync token sequences");
  upload(block_tables_.get(), host_block_tables_.get(), batch.size() * max_blocks_per_seq_,
         "cudaMemcpyAsync block tables");
  upload(sample_rows_.get(), host_sample_rows_.get(), samples, "cudaMemcpyAsync sample rows");
  forward(Pass{tokens, true, 0, 0});

  if (samples > 0) {
    cudaStream_t stream = stream_.get();
    const std::size_t logits = static_cast<std::size_t>(samples) * config_.vocab;
    kernels::rms_norm(x_.get(), sample_rows_.get(), samples, config_.hidden, final_norm_, config_.rms_eps, xn_.get(),
                      stream);
    gemm(xn_.get(), lm_head_, logits_.get(), samples, config_.hidden, config_.vocab, 0.f);
    kernels::argmax(logits_.get(), samples, config_.vocab, next_.get(), stream);
    cuda_check_launch("sampling kernels", device_);
    cuda_check(cudaMemcpyAsync(host_next_.get(), next_.get(), samples * sizeof(int), cudaMemcpyDeviceToHost, stream),
               "cudaMemcpyAsync next tokens", device_);
    cuda_check(cudaMemcpyAsync(host_logits_.get(), logits_.get(), logits * sizeof(float), cudaMemcpyDeviceToHost, stream),
               "cudaMemcpyAsync logits", device_);
    finish("cudaStreamSynchronize step");
    next_tokens.assign(host_next_.get(), host_next_.get() + samples);
    last_logits_.assign(host_logits_.get(), host_logits_.get() + logits);
  } else {
    finish("cudaStreamSynchronize step");
  }
}

std::vector<float> CudaBackend::encode(const std::vector<std::int32_t>& lengths, std::int32_t padded_length) {
  cuda_check(cudaSetDevice(device_), "cudaSetDevice", device_);
  const int sequences = static_cast<int>(lengths.size());
  std::int32_t padded = padded_length;
  if (padded == 0) {
    for (std::int32_t n : lengths) padded = std::max(padded, n);
  }
  if (sequences > limits_.max_batch_sequences) {
    fail("encode of " + std::to_string(sequences) + " sequences exceeds max_batch_sequences " +
         std::to_string(limits_.max_batch_sequences));
  }
  if (padded < 0 || padded > config_.max_context) {
    fail("encode padded length " + std::to_string(padded) + " outside [0, max_context " +
         std::to_string(config_.max_context) + "]");
  }
  for (std::int32_t n : lengths) {
    if (n < 0 || n > padded) fail("encode length " + std::to_string(n) + " outside [0, " + std::to_string(padded) + "]");
  }
  const std::int64_t tokens = static_cast<std::int64_t>(sequences) * padded;
  if (tokens > limits_.max_batch_tokens) {
    fail("encode of " + std::to_string(tokens) + " padded tokens exceeds max_batch_tokens " +
         std::to_string(limits_.max_batch_tokens));
  }
  if (tokens == 0) return std::vector<float>(lengths.size(), 0.f);

  // Sequence s carries the prompt tokens of request id s; padding is token 0.
  for (int s = 0; s < sequences; ++s) {
    const std::vector<std::int32_t> prompt = prompt_tokens(static_cast<RequestId>(s), lengths[s], config_.vocab);
    for (int i = 0; i < padded; ++i) {
      const std::size_t row = static_cast<std::size_t>(s) * padded + i;
      host_tokens_[row] = i < lengths[s] ? prompt[i] : 0;
      host_positions_[row] = i;
    }
    host_lengths_[s] = lengths[s];
  }
  upload(tokens_.get(), host_tokens_.get(), tokens, "cudaMemcpyAsync tokens");
  upload(positions_.get(), host_positions_.get(), tokens, "cudaMemcpyAsync positions");
  upload(lengths_.get(), host_lengths_.get(), sequences, "cudaMemcpyAsync lengths");
  forward(Pass{static_cast<int>(tokens), false, sequences, padded});

  cudaStream_t stream = stream_.get();
  kernels::rms_norm(x_.get(), nullptr, static_cast<int>(tokens), config_.hidden, final_norm_, config_.rms_eps,
                    xn_.get(), stream);
  kernels::masked_mean(xn_.get(), lengths_.get(), sequences, padded, config_.hidden, means_.get(), stream);
  cuda_check_launch("encode kernels", device_);
  cuda_check(cudaMemcpyAsync(host_means_.get(), means_.get(), sequences * sizeof(float), cudaMemcpyDeviceToHost, stream),
             "cudaMemcpyAsync means", device_);
  finish("cudaStreamSynchronize encode");
  return std::vector<float>(host_means_.get(), host_means_.get() + sequences);
}

}  // namespace twinfer::runtime
