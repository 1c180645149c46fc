// Built-in device profiles.
//
// Peak figures are vendor datasheet numbers: dense (no sparsity) FP16/BF16 tensor throughput,
// memory bandwidth and capacity. Efficiencies are the fractions of those peaks that well-tuned
// inference kernels reach in practice (large GEMMs typically reach 60-75% of peak; streaming
// memory-bound kernels such as decode attention reach 75-85% of HBM bandwidth).
//
// price_per_hour: rounded public-cloud on-demand prices per device-hour (US dollars, 2024, the
// order of magnitude across hyperscalers and specialist GPU clouds). They only set the scale of
// cost reports; a config overrides them under "devices".
#include "core/cluster_config.h"

namespace twinfer {
namespace {

DeviceProfile make_profile(const char* name, double peak_tflops, double mem_bandwidth_gbps, double mem_gb,
                           double compute_efficiency, double bandwidth_efficiency, double price_per_hour) {
  DeviceProfile d;
  d.name = name;
  d.peak_tflops = peak_tflops;
  d.mem_bandwidth_gbps = mem_bandwidth_gbps;
  d.mem_gb = mem_gb;
  d.compute_efficiency = compute_efficiency;
  d.bandwidth_efficiency = bandwidth_efficiency;
  d.price_per_hour = price_per_hour;
  return d;
}

std::vector<DeviceProfile> make_builtin_profiles() {
  return {
      // NVIDIA H100 SXM5 datasheet: 989 TFLOPS dense BF16 (1,979 with sparsity), 3.35 TB/s HBM3, 80 GB.
      make_profile("H100", 989, 3350, 80, 0.65, 0.80, 4.00),
      // NVIDIA H200 SXM datasheet: same compute as H100 SXM (989 dense BF16), 4.8 TB/s HBM3e, 141 GB.
      make_profile("H200", 989, 4800, 141, 0.65, 0.80, 5.00),
      // NVIDIA A100 80GB SXM datasheet: 312 TFLOPS dense BF16 (624 sparse), 2,039 GB/s HBM2e, 80 GB.
      make_profile("A100", 312, 2039, 80, 0.70, 0.80, 2.50),
      // NVIDIA L4 datasheet: 121 TFLOPS dense BF16 (242 sparse), 300 GB/s GDDR6, 24 GB.
      make_profile("L4", 121, 300, 24, 0.60, 0.75, 0.80),
      // A 2-core server CPU (AVX2/AVX-512 FMA, ~0.2 TFLOPS) with one DDR channel's worth of bandwidth
      // and 16 GB: the machine the CPU backend of the runtime runs on. Price of a 2-vCPU cloud VM.
      make_profile("CPU", 0.2, 20, 16, 0.50, 0.70, 0.10),
  };
}

}  // namespace

const std::vector<DeviceProfile>& builtin_device_profiles() {
  static const std::vector<DeviceProfile> profiles = make_builtin_profiles();
  return profiles;
}

}  // namespace twinfer
