// steps.csv: one row per step a run's workers ran (sim.step_log), with the step's shape as the
// cost model sees it and its duration. Written by the Recorder, read back to fit cost models
// (serving/calibration.h).
#pragma once

#include <string>
#include <vector>

#include "serving/recorder.h"

namespace twinfer {

struct LoggedStep {
  std::string worker;  // the worker's name (its instance's, as in the config)
  BatchRecord record;  // start_us, end_us, size, the shape
  int run = 0;         // which run (which clock) it comes from, when several runs' logs are pooled
};

// Reads a steps.csv file. Throws twinfer::Error "<file>:<line>: <column>: ..." on a malformed row,
// and naming the file when it cannot be read or lacks a column.
std::vector<LoggedStep> read_step_log(const std::string& path);

}  // namespace twinfer
