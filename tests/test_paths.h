// The folders that tests, fuzz replays and benchmarks read: the source tree, the shared traces
// beside it (../shared/traces) and the build's programs. They are compiled into one generated file
// (tests/test_paths.cc.in), and TWINFER_SOURCE_DIR, TWINFER_SHARED_TRACES_DIR and
// TWINFER_BINARY_DIR call these functions, so that no other compile line names an absolute path:
// a compiler cache then serves every other object to any checkout, wherever it lies.
#pragma once

namespace twinfer::testing {

const char* source_dir();
const char* shared_traces_dir();  // $TWINFER_SHARED_TRACES_DIR when set, else ../shared/traces
const char* binary_dir();  // where build/bin/twinfer and the test programs are

}  // namespace twinfer::testing
