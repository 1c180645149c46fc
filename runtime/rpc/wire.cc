#include "runtime/rpc/wire.h"

#include <algorithm>

#include "core/error.h"

namespace twinfer::runtime {
namespace {
TimeUs or_minus_one(TimeUs t) { return t == kNever ? -1 : t; }
}  // namespace

rpc::InferRequest to_wire(const Request& r) {
  rpc::InferRequest m;
  m.set_id(r.id);
  m.set_arrival_us(r.arrival_us);
  m.set_model(r.model);
  m.set_priority(r.priority);
  m.set_input_tokens(r.input_tokens);
  m.set_output_tokens(r.output_tokens);
  m.set_deadline_us(r.deadline_us == kNever ? 0 : r.deadline_us);
  m.set_session(r.session);
  if (r.prefix.has_tokens()) {
    m.mutable_prompt_token_ids()->Add(r.prefix.tokens().begin(), r.prefix.tokens().end());
    m.set_hash_block_tokens(r.prefix.block_tokens());
  } else if (!r.prefix.empty()) {
    for (std::size_t i = 0; i < r.prefix.size(); ++i) m.add_hash_ids(r.prefix[i]);
    m.set_hash_block_tokens(r.prefix.block_tokens());
  }
  return m;
}

void check_request(const rpc::InferRequest& m) {
  const auto fail = [&](const char* field, const std::string& problem) {
    throw Error("InferRequest " + std::to_string(m.id()) + ": " + field + ": " + problem);
  };
  const auto check_tokens = [&](const char* field, std::int32_t tokens) {
    if (tokens < 0) fail(field, "negative token count " + std::to_string(tokens));
    if (tokens > kMaxWireTokens) {
      fail(field, std::to_string(tokens) + " tokens is more than the limit of " + std::to_string(kMaxWireTokens));
    }
  };
  check_tokens("input_tokens", m.input_tokens());
  check_tokens("output_tokens", m.output_tokens());
  const auto check_time = [&](const char* field, std::int64_t us) {
    if (us < 0) fail(field, "negative time " + std::to_string(us));
    if (us > kMaxWireTimeUs) fail(field, "time " + std::to_string(us) + " past the clock's range (at most 2^62 us)");
  };
  check_time("arrival_us", m.arrival_us());
  check_time("deadline_us", m.deadline_us());
  check_time("run_zero_us", m.run_zero_us());
  if (m.model().size() > kMaxWireTextBytes) {
    fail("model", std::to_string(m.model().size()) + " bytes is more than the limit of " +
                      std::to_string(kMaxWireTextBytes));
  }
  if (m.session().size() > kMaxWireTextBytes) {
    fail("session", std::to_string(m.session().size()) + " bytes is more than the limit of " +
                        std::to_string(kMaxWireTextBytes));
  }
  if (m.hash_block_tokens() < 0) fail("hash_block_tokens", "negative block size " + std::to_string(m.hash_block_tokens()));
  if (m.prompt_token_ids_size() > 0) {
    if (m.hash_ids_size() > 0) fail("prompt_token_ids", "give the prompt's hash_ids or its token ids, not both");
    if (m.prompt_token_ids_size() != m.input_tokens()) {
      fail("prompt_token_ids", std::to_string(m.prompt_token_ids_size()) + " token ids for input_tokens " +
                                   std::to_string(m.input_tokens()));
    }
    for (int i = 0; i < m.prompt_token_ids_size(); ++i) {
      if (m.prompt_token_ids(i) < 0) {
        fail("prompt_token_ids", "token id " + std::to_string(m.prompt_token_ids(i)) + " at position " +
                                     std::to_string(i) + " is negative");
      }
    }
  }
  if (m.hash_ids_size() > 0) {
    if (m.hash_block_tokens() < 1) fail("hash_block_tokens", "must be >= 1 with hash_ids");
    const std::int64_t blocks = (std::int64_t{m.input_tokens()} + m.hash_block_tokens() - 1) / m.hash_block_tokens();
    if (m.hash_ids_size() > blocks) {
      fail("hash_ids", std::to_string(m.hash_ids_size()) + " ids for " + std::to_string(m.input_tokens()) +
                           " input tokens in " + std::to_string(m.hash_block_tokens()) + "-token blocks (at most " +
                           std::to_string(blocks) + ")");
    }
  }
}

Request from_wire(const rpc::InferRequest& m) {
  Request r;
  r.id = m.id();
  r.arrival_us = m.arrival_us();
  r.model = m.model();
  r.priority = m.priority();
  r.input_tokens = m.input_tokens();
  r.output_tokens = m.output_tokens();
  r.deadline_us = m.deadline_us() == 0 ? kNever : m.deadline_us();
  r.session = m.session();
  if (m.prompt_token_ids_size() > 0) {
    r.prefix = BlockHashes::from_tokens(std::vector<std::int32_t>(m.prompt_token_ids().begin(), m.prompt_token_ids().end()),
                                        m.hash_block_tokens() > 0 ? m.hash_block_tokens() : kTokenHashBlockTokens);
  } else if (m.hash_ids_size() > 0) {
    r.prefix = BlockHashes(m.hash_block_tokens(), std::vector<std::uint64_t>(m.hash_ids().begin(), m.hash_ids().end()));
  }
  return r;
}

std::string malformed_reason(const rpc::InferRequest& m) {
  try {
    check_request(m);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

rpc::Outcome to_wire(Outcome o) {
  switch (o) {
    case Outcome::kCompleted: return rpc::COMPLETED;
    case Outcome::kRejected: return rpc::REJECTED;
    case Outcome::kDropped: return rpc::DROPPED;
    case Outcome::kTimedOut: return rpc::TIMED_OUT;
  }
  return rpc::DROPPED;
}

Outcome from_wire(rpc::Outcome o) {
  switch (o) {
    case rpc::COMPLETED: return Outcome::kCompleted;
    case rpc::REJECTED: return Outcome::kRejected;
    case rpc::TIMED_OUT: return Outcome::kTimedOut;
    default: return Outcome::kDropped;
  }
}

rpc::InferResult result_of(const Finished& f, int worker, TimeUs end_us) {
  rpc::InferResult m;
  m.set_id(f.seq.request.id);
  m.set_outcome(to_wire(f.outcome));
  m.set_reason(f.reason);
  m.set_worker(worker);
  m.set_start_us(or_minus_one(f.seq.started_us));
  m.set_first_token_us(f.outcome == Outcome::kCompleted ? or_minus_one(f.seq.first_token_us) : -1);
  m.set_end_us(end_us);
  m.set_preemptions(f.seq.preemptions);
  m.set_cached_tokens(f.seq.cached_tokens);
  m.set_kv_block_tokens(f.seq.block_tokens);
  return m;
}

rpc::InferResult ended_without_worker(RequestId id, Outcome outcome, const std::string& reason, int worker,
                                      TimeUs end_us) {
  rpc::InferResult m;
  m.set_id(id);
  m.set_outcome(to_wire(outcome));
  m.set_reason(reason);
  m.set_worker(worker);
  m.set_start_us(-1);
  m.set_first_token_us(-1);
  m.set_end_us(end_us);
  m.set_cached_tokens(-1);
  return m;
}

rpc::WorkerState to_wire(const WorkerView& v, TimeUs now_us) {
  rpc::WorkerState m;
  m.set_index(v.index);
  m.set_waiting(v.waiting);
  m.set_running(v.running);
  m.set_kv_blocks_total(v.kv_blocks_total);
  m.set_kv_blocks_free(v.kv_blocks_free);
  m.set_kv_block_tokens(v.kv_block_tokens);
  m.set_outstanding_work_us(v.outstanding_work_us);
  m.set_utilization_ewma(v.utilization_ewma);
  m.set_latency_ewma_us(v.latency_ewma_us);
  m.set_prefix_queried_tokens(v.prefix_queried_tokens);
  m.set_prefix_hit_tokens(v.prefix_hit_tokens);
  m.set_prefix_evictions(v.prefix_evictions);
  m.set_prefix_host_hit_tokens(v.prefix_host_hit_tokens);
  m.set_now_us(now_us);
  return m;
}

void set_kv_events(const std::vector<KvEvent>& events, const KvEventCursor& cursor, rpc::WorkerState& m) {
  m.mutable_kv_event_keys()->Reserve(static_cast<int>(events.size()));
  std::string kinds;
  kinds.reserve(events.size());
  for (const KvEvent& e : events) {
    m.add_kv_event_keys(e.key);
    kinds.push_back(static_cast<char>(e.kind));
  }
  m.set_kv_event_kinds(std::move(kinds));
  m.set_kv_events_log(cursor.log);
  m.set_kv_events_next(cursor.next);
}

void get_kv_events(const rpc::WorkerState& m, KvEventCursor& cursor, std::vector<KvEvent>& out) {
  const std::string& kinds = m.kv_event_kinds();
  const bool well_formed =
      static_cast<std::size_t>(m.kv_event_keys_size()) == kinds.size() &&
      std::all_of(kinds.begin(), kinds.end(), [](char k) {
        return static_cast<std::uint8_t>(k) <= static_cast<std::uint8_t>(KvEventKind::kCleared);
      });
  if (!well_formed) {
    // Forget the worker's cache and read it whole at the next answer.
    out.push_back(KvEvent{0, KvEventKind::kCleared});
    cursor = KvEventCursor{};
    return;
  }
  for (int i = 0; i < m.kv_event_keys_size(); ++i) {
    out.push_back(KvEvent{m.kv_event_keys(i), static_cast<KvEventKind>(kinds[static_cast<std::size_t>(i)])});
  }
  cursor = KvEventCursor{m.kv_events_log(), m.kv_events_next()};
}

void fill_view(const rpc::WorkerState& m, WorkerView& v) {
  v.waiting = m.waiting();
  v.running = m.running();
  v.kv_blocks_total = m.kv_blocks_total();
  v.kv_blocks_free = m.kv_blocks_free();
  v.kv_block_tokens = m.kv_block_tokens();
  v.outstanding_work_us = m.outstanding_work_us();
  v.utilization_ewma = m.utilization_ewma();
  v.latency_ewma_us = m.latency_ewma_us();
  v.prefix_queried_tokens = m.prefix_queried_tokens();
  v.prefix_hit_tokens = m.prefix_hit_tokens();
  v.prefix_evictions = m.prefix_evictions();
  v.prefix_host_hit_tokens = m.prefix_host_hit_tokens();
}

rpc::Batch to_wire(const BatchRecord& b) {
  rpc::Batch m;
  m.set_worker(b.worker);
  m.set_start_us(b.start_us);
  m.set_end_us(b.end_us);
  m.set_size(b.size);
  m.set_prefill_tokens(b.prefill_tokens);
  m.set_decode_seqs(b.decode_seqs);
  m.set_request_batch(b.request_batch);
  m.set_engine_us(b.engine_us);
  m.set_cached_tokens(b.cached_tokens);
  m.set_prefill_prior_tokens(b.iteration.prefill_prior_tokens);
  m.set_prefill_attn_pairs(b.iteration.prefill_attn_pairs);
  m.set_decode_context_tokens(b.iteration.decode_context_tokens);
  m.set_batch_input_tokens(b.batch.input_tokens);
  m.set_batch_max_input_tokens(b.batch.max_input_tokens);
  m.set_batch_output_tokens(b.batch.output_tokens);
  m.set_batch_max_output_tokens(b.batch.max_output_tokens);
  return m;
}

BatchRecord from_wire(const rpc::Batch& m) {
  BatchRecord b;
  b.worker = m.worker();
  b.start_us = m.start_us();
  b.end_us = m.end_us();
  b.size = m.size();
  b.prefill_tokens = m.prefill_tokens();
  b.decode_seqs = m.decode_seqs();
  b.request_batch = m.request_batch();
  b.engine_us = m.engine_us();
  b.cached_tokens = m.cached_tokens();
  if (b.request_batch) {
    b.batch.batch_size = b.size;
    b.batch.input_tokens = m.batch_input_tokens();
    b.batch.max_input_tokens = m.batch_max_input_tokens();
    b.batch.output_tokens = m.batch_output_tokens();
    b.batch.max_output_tokens = m.batch_max_output_tokens();
  } else {
    b.iteration.prefill_tokens = b.prefill_tokens;
    b.iteration.prefill_seqs = b.size - b.decode_seqs;
    b.iteration.decode_seqs = b.decode_seqs;
    b.iteration.prefill_prior_tokens = m.prefill_prior_tokens();
    b.iteration.prefill_attn_pairs = m.prefill_attn_pairs();
    b.iteration.decode_context_tokens = m.decode_context_tokens();
  }
  return b;
}

void check_address(const std::string& address, const std::string& what) {
  const auto colon = address.rfind(':');
  bool ok = colon != std::string::npos && colon > 0 && colon + 1 < address.size();
  long port = -1;
  if (ok) {
    const std::string digits = address.substr(colon + 1);
    ok = digits.find_first_not_of("0123456789") == std::string::npos && digits.size() <= 5;
    if (ok) port = std::stol(digits);
  }
  if (!ok || port < 0 || port > 65535) {
    throw Error(what + ": expected HOST:PORT with a port in 0..65535, got '" + address + "'");
  }
}

}  // namespace twinfer::runtime
