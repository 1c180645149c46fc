// The read-only types that policies decide on, and the decisions they return.
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "policies/admission.h"
#include "policies/autoscaler.h"
#include "policies/batcher.h"
#include "policies/cluster_view.h"
#include "core/request.h"
#include "policies/router.h"
#include "policies/worker_state.h"

namespace twinfer::py_bindings {
namespace {

void bind_request(py::module_& m) {
  py::class_<Request>(m, "Request", "One request of a trace (times in microseconds).")
      .def_readonly("id", &Request::id)
      .def_readonly("arrival_us", &Request::arrival_us)
      .def_property_readonly("model", [](const Request& r) { return r.model.str(); })
      .def_readonly("priority", &Request::priority)
      .def_readonly("input_tokens", &Request::input_tokens)
      .def_readonly("output_tokens", &Request::output_tokens)
      .def_readonly("deadline_us", &Request::deadline_us)
      .def_property_readonly("session", [](const Request& r) { return r.session.str(); })
      .def_property_readonly("hash_ids", [](const Request& r) { return r.prefix.ids(); },
                             "The prompt's block hash ids (a list; empty when the trace gives none).")
      .def_property_readonly("hash_block_tokens", [](const Request& r) { return r.prefix.block_tokens(); },
                             "Prompt tokens per hash id (0 without hash ids).")
      .def_property_readonly(
          "prompt_token_ids",
          [](const Request& r) { return r.prefix.has_tokens() ? r.prefix.tokens() : std::vector<std::int32_t>{}; },
          "The prompt's token ids when the request came with them (its hash_ids are then hashes of their "
          "blocks); else an empty list.")
      .def("__repr__", [](const Request& r) {
        return "<twinfer.Request id=" + std::to_string(r.id) + " arrival_us=" + std::to_string(r.arrival_us) +
               " input_tokens=" + std::to_string(r.input_tokens) +
               " output_tokens=" + std::to_string(r.output_tokens) + ">";
      });
  m.attr("NEVER_US") = kNever;
}

void bind_views(py::module_& m) {
  py::enum_<Health>(m, "Health")
      .value("up", Health::kUp)
      .value("suspect", Health::kSuspect)
      .value("down", Health::kDown);
  py::enum_<Lifecycle>(m, "Lifecycle")
      .value("stopped", Lifecycle::kStopped)
      .value("starting", Lifecycle::kStarting)
      .value("ready", Lifecycle::kReady)
      .value("draining", Lifecycle::kDraining);
  // A WorkerView (and the ClusterView holding it) is valid only during the policy call it is
  // passed to: its instance belongs to the run.
  py::class_<WorkerView>(m, "WorkerView", "One worker as policies see it; valid during the call only.")
      .def_readonly("index", &WorkerView::index)
      .def_property_readonly("name", [](const WorkerView& w) { return w.instance->name; })
      .def_property_readonly("device", [](const WorkerView& w) { return w.instance->device.name; })
      .def_property_readonly("tp", [](const WorkerView& w) { return w.instance->tp(); })
      .def_property_readonly("model", &WorkerView::model)
      .def_readonly("health", &WorkerView::health)
      .def_readonly("lifecycle", &WorkerView::lifecycle)
      .def_readonly("ready_since_us", &WorkerView::ready_since_us)
      .def_readonly("waiting", &WorkerView::waiting)
      .def_readonly("running", &WorkerView::running)
      .def_property_readonly("outstanding", &WorkerView::outstanding)
      .def_readonly("kv_blocks_total", &WorkerView::kv_blocks_total)
      .def_readonly("kv_blocks_free", &WorkerView::kv_blocks_free)
      .def_property_readonly("kv_used_fraction", &WorkerView::kv_used_fraction)
      .def_readonly("outstanding_work_us", &WorkerView::outstanding_work_us)
      .def_readonly("utilization_ewma", &WorkerView::utilization_ewma)
      .def_readonly("latency_ewma_us", &WorkerView::latency_ewma_us)
      .def("serves", &WorkerView::serves, py::arg("model"))
      .def("eligible", [](const WorkerView& w, const Request& r) { return eligible(w, r); }, py::arg("request"),
           "Not down and serves the request's model.");
  py::class_<ClusterView>(m, "ClusterView", "The cluster at now_us; valid during the call only.")
      .def_readonly("now_us", &ClusterView::now_us)
      .def_property_readonly("workers", [](const ClusterView& v) { return v.all(); })
      .def("__len__", &ClusterView::size);
}

void bind_decisions(py::module_& m) {
  py::class_<RouteDecision>(m, "RouteDecision")
      .def(py::init([](int worker, std::string reason) { return RouteDecision{worker, std::move(reason)}; }),
           py::arg("worker"), py::arg("reason") = "")
      .def_static("to", &RouteDecision::to, py::arg("worker"))
      .def_static("reject", &RouteDecision::reject, py::arg("reason"))
      .def_readwrite("worker", &RouteDecision::worker)
      .def_readwrite("reason", &RouteDecision::reason)
      .def_property_readonly("rejected", &RouteDecision::rejected);
  py::class_<AdmissionDecision>(m, "AdmissionDecision")
      .def(py::init([](bool admitted, std::string reason) { return AdmissionDecision{admitted, std::move(reason)}; }),
           py::arg("admitted"), py::arg("reason") = "")
      .def_static("admit", &AdmissionDecision::admit)
      .def_static("reject", &AdmissionDecision::reject, py::arg("reason"))
      .def_readwrite("admitted", &AdmissionDecision::admitted)
      .def_readwrite("reason", &AdmissionDecision::reason);
}

void bind_scaling(py::module_& m) {
  // Valid during decide() only: `device` and `model` read the pool's instance, which the run owns.
  py::class_<PoolSample>(m, "PoolSample", "One pool as an autoscaler sees it; valid during decide() only.")
      .def_readonly("now_us", &PoolSample::now_us)
      .def_readonly("interval_us", &PoolSample::interval_us)
      .def_readonly("ready", &PoolSample::ready)
      .def_readonly("starting", &PoolSample::starting)
      .def_readonly("draining", &PoolSample::draining)
      .def_readonly("min_replicas", &PoolSample::min_replicas)
      .def_readonly("max_replicas", &PoolSample::max_replicas)
      .def_readonly("utilization", &PoolSample::utilization)
      .def_readonly("kv_used_fraction", &PoolSample::kv_used_fraction)
      .def_readonly("waiting", &PoolSample::waiting)
      .def_readonly("running", &PoolSample::running)
      .def_readonly("arrivals", &PoolSample::arrivals)
      .def_readonly("mean_input_tokens", &PoolSample::mean_input_tokens)
      .def_readonly("mean_output_tokens", &PoolSample::mean_output_tokens)
      .def_readonly("p95_output_tokens", &PoolSample::p95_output_tokens)
      .def_readonly("cold_start_us", &PoolSample::cold_start_us)
      .def_property_readonly("current", &PoolSample::current, "ready + starting: the pool's size")
      .def_property_readonly("device",
                             [](const PoolSample& s) { return s.instance ? s.instance->device.name : std::string(); })
      .def_property_readonly("model",
                             [](const PoolSample& s) { return s.instance ? s.instance->model.name : std::string(); });
  py::class_<ScaleDecision>(m, "ScaleDecision")
      .def(py::init([](int desired, std::string reason) { return ScaleDecision{desired, std::move(reason)}; }),
           py::arg("desired"), py::arg("reason") = "")
      .def_readwrite("desired", &ScaleDecision::desired)
      .def_readwrite("reason", &ScaleDecision::reason);
}

void bind_plans(py::module_& m) {
  py::enum_<BatchKind>(m, "BatchKind")
      .value("iteration", BatchKind::kIteration)
      .value("request_batch", BatchKind::kRequestBatch);
  py::class_<BatchEntry>(m, "BatchEntry")
      .def(py::init([](RequestId id, std::int32_t prefill_tokens, bool decode) {
             return BatchEntry{id, prefill_tokens, decode};
           }),
           py::arg("id"), py::arg("prefill_tokens") = 0, py::arg("decode") = false)
      .def_readwrite("id", &BatchEntry::id)
      .def_readwrite("prefill_tokens", &BatchEntry::prefill_tokens)
      .def_readwrite("decode", &BatchEntry::decode);
  py::class_<BatchDrop>(m, "BatchDrop")
      .def(py::init([](RequestId id, std::string reason) { return BatchDrop{id, std::move(reason)}; }), py::arg("id"),
           py::arg("reason"))
      .def_readwrite("id", &BatchDrop::id)
      .def_readwrite("reason", &BatchDrop::reason);
  py::class_<BatchPlan>(m, "BatchPlan", "A batcher's decision; empty entries: nothing to run now.")
      .def(py::init([](BatchKind kind, std::vector<BatchEntry> entries, std::vector<RequestId> preempt,
                       std::vector<BatchDrop> drop, std::int64_t padded_input_tokens, TimeUs wake_at_us) {
             return BatchPlan{kind, std::move(entries), std::move(preempt), std::move(drop), padded_input_tokens,
                              wake_at_us};
           }),
           py::arg("kind") = BatchKind::kIteration, py::arg("entries") = std::vector<BatchEntry>{},
           py::arg("preempt") = std::vector<RequestId>{}, py::arg("drop") = std::vector<BatchDrop>{},
           py::arg("padded_input_tokens") = 0, py::arg("wake_at_us") = kNever)
      .def_readwrite("kind", &BatchPlan::kind)
      .def_readwrite("entries", &BatchPlan::entries)
      .def_readwrite("preempt", &BatchPlan::preempt)
      .def_readwrite("drop", &BatchPlan::drop)
      .def_readwrite("padded_input_tokens", &BatchPlan::padded_input_tokens)
      .def_readwrite("wake_at_us", &BatchPlan::wake_at_us)
      .def_property_readonly("idle", &BatchPlan::idle);
  py::class_<KvCapacity>(m, "KvCapacity", "The KV cache a batcher manages; blocks_total 0: not tracked.")
      .def(py::init([](std::int64_t blocks_total, int block_tokens, bool prefix_caching) {
             return KvCapacity{blocks_total, block_tokens, prefix_caching};
           }),
           py::arg("blocks_total") = 0, py::arg("block_tokens") = 16, py::arg("prefix_caching") = false)
      .def_readwrite("blocks_total", &KvCapacity::blocks_total)
      .def_readwrite("block_tokens", &KvCapacity::block_tokens)
      .def_readwrite("prefix_caching", &KvCapacity::prefix_caching);
}

void bind_worker_state(py::module_& m) {
  py::class_<Sequence>(m, "Sequence", "A request resident on a worker (a copy).")
      .def_readonly("request", &Sequence::request)
      .def_readonly("enqueued_us", &Sequence::enqueued_us)
      .def_readonly("started_us", &Sequence::started_us)
      .def_readonly("first_token_us", &Sequence::first_token_us)
      .def_readonly("prefill_target", &Sequence::prefill_target)
      .def_readonly("computed", &Sequence::computed)
      .def_readonly("generated", &Sequence::generated)
      .def_property_readonly("kv_blocks", &Sequence::kv_blocks)
      .def_readonly("preemptions", &Sequence::preemptions)
      .def_readonly("cached_tokens", &Sequence::cached_tokens)
      .def_readonly("block_tokens", &Sequence::block_tokens)
      .def_property_readonly("in_prefill", &Sequence::in_prefill)
      .def_property_readonly("prefill_remaining", &Sequence::prefill_remaining)
      .def_property_readonly("output_target", &Sequence::output_target)
      .def_property_readonly("done", &Sequence::done);
  // Passed to Python batchers by reference: valid during next() only.
  py::class_<WorkerState>(m, "WorkerState", "One worker's queue, running set and KV cache; valid during next().")
      .def_property_readonly("waiting",
                             [](const WorkerState& s) {
                               return std::vector<RequestId>(s.waiting().begin(), s.waiting().end());
                             })
      .def_property_readonly("running", [](const WorkerState& s) { return s.running(); })
      .def(
          "get",
          [](const WorkerState& s, RequestId id) {
            // get() asserts on an unknown id; Python gets an exception instead.
            bool known = std::find(s.running().begin(), s.running().end(), id) != s.running().end() ||
                         std::find(s.waiting().begin(), s.waiting().end(), id) != s.waiting().end();
            if (!known) throw py::key_error("request " + std::to_string(id) + " is not on this worker");
            return s.get(id);
          },
          py::arg("id"))
      .def_property_readonly("kv_blocks_free", [](const WorkerState& s) { return s.kv().free(); })
      .def_property_readonly("kv_blocks_total", [](const WorkerState& s) { return s.kv().total(); })
      .def_property_readonly("kv_block_tokens", [](const WorkerState& s) { return s.kv().block_tokens(); })
      .def("kv_blocks_for", [](const WorkerState& s, std::int64_t tokens) { return s.kv().blocks_for(tokens); },
           py::arg("tokens"))
      .def(
          "prefix_hit_tokens",
          [](const WorkerState& s, RequestId id) {
            bool known = std::find(s.waiting().begin(), s.waiting().end(), id) != s.waiting().end();
            if (!known) throw py::key_error("request " + std::to_string(id) + " is not waiting on this worker");
            return s.prefix_hit(s.get(id)).blocks * s.kv().block_tokens();
          },
          py::arg("id"),
          "Tokens of the cached prefix a waiting request starts with if it starts now (0 without prefix "
          "caching): its first chunk is at most prefill_remaining less these.")
      .def("empty", &WorkerState::empty);
}

}  // namespace

void bind_policy_types(py::module_& m) {
  bind_request(m);
  bind_views(m);
  bind_decisions(m);
  bind_scaling(m);
  bind_plans(m);
  bind_worker_state(m);
}

}  // namespace twinfer::py_bindings
