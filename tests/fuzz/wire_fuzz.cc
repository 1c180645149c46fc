// Fuzz target: the gRPC messages as a router or worker receives them (runtime/rpc/wire.h). The
// first byte picks the message type, the rest is its serialized form, parsed as gRPC would parse
// it, then checked and converted by the project's functions.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "runtime/rpc/wire.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

using twinfer::fuzz::check;
namespace rpc = twinfer::rpc;
namespace rt = twinfer::runtime;

// A request that passes check_request() converts to a Request within bounds and back unchanged.
void fuzz_infer_request(const std::uint8_t* data, std::size_t size) {
  rpc::InferRequest m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  try {
    rt::check_request(m);
  } catch (const twinfer::Error&) {
    return;
  }
  const twinfer::Request r = rt::from_wire(m);
  check(r.input_tokens >= 0 && r.input_tokens <= rt::kMaxWireTokens, "input_tokens within bounds");
  check(r.output_tokens >= 0 && r.output_tokens <= rt::kMaxWireTokens, "output_tokens within bounds");
  check(r.arrival_us >= 0, "arrival_us not negative");
  check(r.deadline_us == twinfer::kNever || r.deadline_us > 0, "deadline_us positive or none");
  const rpc::InferRequest back = rt::to_wire(r);
  check(back.id() == m.id() && back.arrival_us() == m.arrival_us() && back.deadline_us() == m.deadline_us() &&
            back.input_tokens() == m.input_tokens() && back.output_tokens() == m.output_tokens() &&
            back.priority() == m.priority() && back.model() == m.model() && back.session() == m.session(),
        "to_wire(from_wire(m)) == m");
  // Worker and router addresses come from configs and flags, not the wire, but check_address
  // must hold on any text.
  try {
    rt::check_address(m.model(), "fuzz");
  } catch (const twinfer::Error&) {
  }
}

void fuzz_infer_result(const std::uint8_t* data, std::size_t size) {
  rpc::InferResult m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  // Unknown enum values (a newer peer) read as dropped.
  const twinfer::Outcome o = rt::from_wire(m.outcome());
  check(rt::to_wire(o) == m.outcome() || o == twinfer::Outcome::kDropped, "outcome round trip");
}

void fuzz_worker_state(const std::uint8_t* data, std::size_t size) {
  rpc::WorkerState m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  twinfer::WorkerView view;
  rt::fill_view(m, view);
  check(view.waiting == m.waiting() && view.running == m.running(), "fill_view copies the queue sizes");
}

void fuzz_batch_list(const std::uint8_t* data, std::size_t size) {
  rpc::BatchList m;
  if (!m.ParseFromArray(data, static_cast<int>(size))) return;
  for (const rpc::Batch& b : m.batches()) {
    const rpc::Batch back = rt::to_wire(rt::from_wire(b));
    check(back.start_us() == b.start_us() && back.end_us() == b.end_us() && back.size() == b.size() &&
              back.prefill_tokens() == b.prefill_tokens() && back.decode_seqs() == b.decode_seqs() &&
              back.worker() == b.worker(),
          "batch fields survive the round trip");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0 || size > twinfer::fuzz::kMaxInputBytes) return 0;
  const std::uint8_t kind = data[0];
  ++data;
  --size;
  switch (kind % 4) {
    case 0: fuzz_infer_request(data, size); break;
    case 1: fuzz_infer_result(data, size); break;
    case 2: fuzz_worker_state(data, size); break;
    default: fuzz_batch_list(data, size); break;
  }
  return 0;
}
