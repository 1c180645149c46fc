#include <cstdint>
#include <string>

#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "traces/synthetic.h"
#include "traces/trace.h"

namespace twinfer::py_bindings {

void bind_traces(py::module_& m) {
  py::class_<Trace>(m, "Trace", "Requests sorted by arrival, with ids 0..n-1.")
      .def("__len__", [](const Trace& t) { return t.requests.size(); })
      .def_readonly("source", &Trace::source)
      .def(
          "__getitem__",
          [](const Trace& t, std::int64_t i) {
            const auto n = static_cast<std::int64_t>(t.requests.size());
            if (i < 0) i += n;
            if (i < 0 || i >= n) throw py::index_error("trace index out of range");
            return t.requests[static_cast<std::size_t>(i)];
          },
          py::arg("index"))
      .def(
          "write", [](const Trace& t, const std::string& path) { write_trace(t, path); }, py::arg("path"),
          "Writes the native format (CSV or JSONL by the extension).")
      .def(
          "scaled", [](const Trace& t, double rate_scale) { return scale_trace(t, rate_scale); },
          py::arg("rate_scale"), "The trace replayed rate_scale times faster (deadlines kept relative).")
      .def(
          "poisson", [](const Trace& t, std::uint64_t seed) { return poisson_arrivals(t, seed); }, py::arg("seed"),
          "The same requests with Poisson arrivals at the trace's mean rate.")
      .def("__repr__", [](const Trace& t) {
        return "<twinfer.Trace " + std::to_string(t.requests.size()) + " requests from " + t.source + ">";
      });

  m.def(
      "read_trace", [](const std::string& path, const std::string& format) { return read_trace(path, format); },
      py::arg("path"), py::arg("format") = "auto", py::call_guard<py::gil_scoped_release>(),
      "Reads a trace: native_csv, native_jsonl, azure, burstgpt, mooncake, or auto.");
  m.def(
      "synthetic_trace",
      [](const py::dict& spec, std::uint64_t seed) {
        return generate_synthetic(parse_synthetic_spec(from_python(spec), "synthetic"), seed);
      },
      py::arg("spec"), py::arg("seed") = 1, "A seeded synthetic trace (traces/README.md spec).");
}

}  // namespace twinfer::py_bindings
