// Block-wide reductions for kernels whose block size is a multiple of 32, at most 1024.
#pragma once

#include <cuda_runtime.h>

namespace twinfer::runtime::kernels {

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

template <typename Op>
__device__ float warp_reduce(float value, Op op) {
  for (int offset = 16; offset > 0; offset >>= 1) value = op(value, __shfl_xor_sync(0xffffffffu, value, offset));
  return value;
}

// Every thread of the block must call it; every thread gets the result. `scratch` holds 32 floats of
// shared memory; it may be reused by the next reduction right away.
template <typename Op>
__device__ float block_reduce(float value, float* scratch, Op op, float identity) {
  const int lane = threadIdx.x & 31;
  const int warp = threadIdx.x >> 5;
  const int warps = (blockDim.x + 31) >> 5;
  value = warp_reduce(value, op);
  __syncthreads();  // a previous reduction may still be reading scratch[0]
  if (lane == 0) scratch[warp] = value;
  __syncthreads();
  if (warp == 0) {
    value = warp_reduce(lane < warps ? scratch[lane] : identity, op);
    if (lane == 0) scratch[0] = value;
  }
  __syncthreads();
  return scratch[0];
}

}  // namespace twinfer::runtime::kernels
