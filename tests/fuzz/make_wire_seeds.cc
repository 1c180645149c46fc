// Writes the seed corpus of the wire fuzz target: valid serialized messages, each prefixed by the
// byte that wire_fuzz.cc reads as the message type (0 InferRequest, 1 InferResult, 2 WorkerState,
// 3 BatchList). Usage: make_wire_seeds OUT_DIR (the committed seeds are tests/fuzz/corpus/wire/).
#include <cstdio>
#include <fstream>
#include <string>

#include "core/request.h"
#include "policies/cluster_view.h"
#include "serving/recorder.h"
#include "runtime/rpc/wire.h"

namespace {

void write_seed(const std::string& dir, const std::string& name, char kind, const google::protobuf::Message& m) {
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.put(kind);
  out << m.SerializeAsString();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_wire_seeds OUT_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  namespace rt = twinfer::runtime;

  twinfer::Request r;
  r.id = 7;
  r.arrival_us = 1'000'000;
  r.model = "tiny-llm";
  r.priority = 2;
  r.input_tokens = 128;
  r.output_tokens = 16;
  r.deadline_us = 3'000'000;
  r.session = "chat-1";
  write_seed(dir, "request_full", 0, rt::to_wire(r));
  write_seed(dir, "request_minimal", 0, rt::to_wire(twinfer::Request{}));

  write_seed(dir, "result_completed", 1,
             rt::ended_without_worker(7, twinfer::Outcome::kCompleted, "", 1, 2'000'000));
  write_seed(dir, "result_rejected", 1,
             rt::ended_without_worker(8, twinfer::Outcome::kRejected, "queue full", -1, 2'000'000));

  twinfer::WorkerView view;
  view.index = 1;
  view.waiting = 3;
  view.running = 2;
  view.kv_blocks_total = 1024;
  view.kv_blocks_free = 100;
  view.outstanding_work_us = 5000;
  view.utilization_ewma = 0.5;
  view.latency_ewma_us = 1234.5;
  write_seed(dir, "worker_state", 2, rt::to_wire(view, 9'000'000));

  twinfer::BatchRecord b;
  b.worker = 1;
  b.start_us = 100;
  b.end_us = 250;
  b.size = 4;
  b.prefill_tokens = 512;
  b.decode_seqs = 3;
  twinfer::rpc::BatchList list;
  *list.add_batches() = rt::to_wire(b);
  list.add_errors("worker 2: unavailable");
  write_seed(dir, "batch_list", 3, list);
  return 0;
}
