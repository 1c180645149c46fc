#include "bindings/bindings.h"

#include "core/error.h"

namespace twinfer::py_bindings {

py::object to_python(const nlohmann::json& value) {
  return py::module_::import("json").attr("loads")(value.dump());
}

nlohmann::json from_python(const py::handle& value) {
  // numpy scalars (from DataFrames and grids) become plain Python numbers.
  const py::object plain = py::cpp_function([](const py::object& o) -> py::object {
    if (py::hasattr(o, "item")) return o.attr("item")();
    throw py::type_error(std::string("not representable in JSON: ") + std::string(py::repr(o)));
  });
  const std::string text = py::str(py::module_::import("json").attr("dumps")(value, py::arg("default") = plain));
  return nlohmann::json::parse(text);
}

std::string describe(const py::error_already_set& e) {
  std::string type = py::str(e.type().attr("__name__"));
  std::string message = py::str(e.value());
  return message.empty() ? type : type + ": " + message;
}

void bind_errors(py::module_& m) {
  // Every expected failure of the library (bad config key, unknown policy, bad trace line, an
  // exception inside a Python policy) arrives as twinfer.Error with the C++ message.
  static py::exception<Error> error(m, "Error", PyExc_RuntimeError);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      error(e.what());
    }
  });
}

}  // namespace twinfer::py_bindings

PYBIND11_MODULE(_twinfer, m) {
  namespace tb = twinfer::py_bindings;
  m.doc() = "Twinfer: simulate and run AI inference scheduling policies (compiled part)";
  tb::bind_errors(m);
  tb::bind_configs(m);
  tb::bind_traces(m);
  tb::bind_policy_types(m);
  tb::bind_policies(m);
  tb::bind_runs(m);
}
