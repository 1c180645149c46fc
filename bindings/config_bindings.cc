#include <string>
#include <vector>

#include <pybind11/stl.h>

#include "bindings/bindings.h"
#include "serving/run_config.h"

namespace twinfer::py_bindings {
namespace {

RunConfig with_overrides(const RunConfig& config, const std::vector<std::string>& overrides) {
  nlohmann::json raw = config.raw;
  for (const auto& o : overrides) apply_override(raw, o);
  return parse_run_config(raw, config.source);
}

std::vector<std::string> worker_names(const RunConfig& config) {
  std::vector<std::string> names;
  for (const auto& inst : config.cluster.instances) names.push_back(inst.name);
  return names;
}

// The config's workload.trace resolved against its folder, as the command line does; "" if none.
std::string default_trace(const RunConfig& config) {
  const std::string& t = config.workload.trace;
  if (t.empty() || t[0] == '/') return t;
  return config.base_dir + "/" + t;
}

}  // namespace

void bind_configs(py::module_& m) {
  py::class_<RunConfig>(m, "Config", "A parsed run config (cluster, policies, workload, sim options).")
      .def("to_dict", [](const RunConfig& c) { return to_python(c.raw); }, "The whole config after overrides.")
      .def("with_overrides", &with_overrides, py::arg("overrides"),
           "A new Config with 'a.b.c=value' overrides applied (value parsed as JSON, else a string).")
      .def_property_readonly("worker_names", &worker_names)
      .def_property_readonly("source", [](const RunConfig& c) { return c.source; })
      .def_property_readonly("base_dir", [](const RunConfig& c) { return c.base_dir; })
      .def_property_readonly("default_trace", &default_trace)
      .def("__repr__", [](const RunConfig& c) {
        return "<twinfer.Config " + (c.source.empty() ? std::string("(in memory)") : c.source) + ", " +
               std::to_string(c.cluster.instances.size()) + " workers>";
      });

  m.def("load_config", &load_run_config, py::arg("path"), py::arg("overrides") = std::vector<std::string>{},
        "Reads a JSON config file and applies 'a.b.c=value' overrides in order.");
  m.def(
      "config_from_dict",
      [](const py::dict& d, const std::string& source) { return parse_run_config(from_python(d), source); },
      py::arg("config"), py::arg("source") = "", "Parses a config given as a dict (same schema as the files).");
}

}  // namespace twinfer::py_bindings
