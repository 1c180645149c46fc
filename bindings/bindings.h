// The `_twinfer` extension module, bound per area (one file each). Bindings hold no scheduling
// logic: they convert types and forward to the C++ library.
#pragma once

#include <string>

#include <nlohmann/json.hpp>
#include <pybind11/pybind11.h>

namespace twinfer::py_bindings {

namespace py = pybind11;

// JSON <-> Python objects, through Python's json module (exact round trip of the JSON files).
py::object to_python(const nlohmann::json& value);
nlohmann::json from_python(const py::handle& value);

// "<ExceptionType>: <message>" of the Python exception being handled. REQUIRES: the GIL.
std::string describe(const py::error_already_set& e);

void bind_errors(py::module_& m);
void bind_configs(py::module_& m);
void bind_traces(py::module_& m);
void bind_policy_types(py::module_& m);  // Request, views, decisions, plans, worker state
void bind_policies(py::module_& m);      // Python-defined policies and the registries
void bind_runs(py::module_& m);          // simulate, run

}  // namespace twinfer::py_bindings
