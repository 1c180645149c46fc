#include "serving/step_log.h"

#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/worker_state.h"
#include "serving/calibration.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(StepLogTest, TheRecorderWritesEveryStepUnmergedAndTheReaderReadsItBack) {
  std::vector<Request> reqs{make_request(0, 0, 40, 3), make_request(1, 0, 24, 3)};
  WorkerState state(KvCapacity{0, 16});
  for (const Request& r : reqs) state.enqueue(r, 0);
  Recorder rec(reqs, {"host/gpu0", "other, with a comma"}, SloSpec{}, /*keep_batches=*/true, /*keep_steps=*/true);
  // A prefill of both prompts (the second in two chunks' worth of cached prefix is not needed here).
  BatchPlan prefill;
  prefill.entries = {BatchEntry{0, 40, false}, BatchEntry{1, 24, false}};
  state.begin(prefill, 0);
  rec.batch(BatchRecord::of(0, prefill, state, 0, 900));
  state.finish(prefill, 900);
  for (int k = 0; k < 2; ++k) {  // two decode steps of both: merged in the timeline, not in steps.csv
    BatchPlan decode;
    decode.entries = {BatchEntry{0, 0, true}, BatchEntry{1, 0, true}};
    state.begin(decode, 900 + 100 * k);
    BatchRecord b = BatchRecord::of(1, decode, state, 900 + 100 * k, 1000 + 100 * k);
    b.engine_us = 7;
    rec.batch(b);
    state.finish(decode, 1000 + 100 * k);
  }
  const std::string path = ::testing::TempDir() + "/steps_roundtrip.csv";
  rec.write_steps_csv(path);
  const auto steps = read_step_log(path);
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[0].worker, "host/gpu0");
  EXPECT_EQ(steps[1].worker, "other, with a comma");
  const IterationShape& p = steps[0].record.iteration;
  EXPECT_EQ(p.prefill_seqs, 2);
  EXPECT_EQ(p.prefill_tokens, 64);
  EXPECT_EQ(p.prefill_attn_pairs, 40 * 40 + 24 * 24);
  EXPECT_EQ(steps[0].record.end_us - steps[0].record.start_us, 900);
  const IterationShape& d = steps[2].record.iteration;
  EXPECT_EQ(d.decode_seqs, 2);
  EXPECT_EQ(d.decode_context_tokens, (41 + 1) + (25 + 1));  // prompt + first output + the second decode's
  EXPECT_EQ(steps[2].record.engine_us, 7);
  EXPECT_DOUBLE_EQ(measured_step(steps[2].record).seconds, 107e-6);
}

TEST(StepLogTest, ABadRowIsNamedByFileLineAndColumn) {
  const std::string header =
      "worker,start_us,duration_us,engine_us,kind,sequences,prefill_seqs,prefill_tokens,prefill_prior_tokens,"
      "prefill_attn_pairs,decode_seqs,decode_context_tokens,batch_input_tokens,batch_max_input_tokens,"
      "batch_output_tokens,batch_max_output_tokens\n";
  const std::string good = "w,0,10,0,iteration,1,0,0,0,0,1,5,0,0,0,0\n";
  EXPECT_EQ(read_step_log(write_file("steps_good.csv", header + good)).size(), 1u);
  auto error_of = [&](const std::string& row) {
    return testing::error_of([&] { read_step_log(write_file("steps_bad.csv", header + good + row)); });
  };
  EXPECT_NE(error_of("w,0,-3,0,iteration,1,0,0,0,0,1,5,0,0,0,0\n").find("steps_bad.csv:3: duration_us"),
            std::string::npos);
  EXPECT_NE(error_of("w,0,3,0,sideways,1,0,0,0,0,1,5,0,0,0,0\n").find("steps_bad.csv:3: kind"), std::string::npos);
  EXPECT_NE(error_of("w,0,3,0,iteration,1,0,0,0,0,1.5,5,0,0,0,0\n").find("steps_bad.csv:3: decode_seqs"),
            std::string::npos);
  EXPECT_NE(error_of("w,0,3\n").find("steps_bad.csv:3"), std::string::npos);
  EXPECT_NE(testing::error_of([&] { read_step_log(write_file("steps_nohdr.csv", "worker,start_us\n")); })
                .find("steps_nohdr.csv"),
            std::string::npos);
}

TEST(StepLogTest, OverlapIsTheShareOfTheStepTheOtherInstancesOfItsHostWereBusy) {
  // cpu_tiny: instances cpu/cpu0 and cpu/cpu1 on host cpu.
  RunConfig config = load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json");
  auto step = [](const std::string& worker, TimeUs start, TimeUs end, int run) {
    LoggedStep s;
    s.worker = worker;
    s.record.start_us = start;
    s.record.end_us = end;
    s.run = run;
    return s;
  };
  const std::vector<LoggedStep> steps = {step("cpu/cpu0", 0, 100, 0),   step("cpu/cpu1", 50, 80, 0),
                                         step("cpu/cpu1", 90, 200, 0),  step("cpu/cpu0", 300, 400, 0),
                                         step("cpu/cpu1", 300, 400, 1)};  // another run: its own clock
  const auto o = host_overlaps(config, steps);
  ASSERT_EQ(o.size(), 5u);
  EXPECT_DOUBLE_EQ(o[0], 0.4);         // 30 + 10 of 100 us
  EXPECT_DOUBLE_EQ(o[1], 1.0);
  EXPECT_DOUBLE_EQ(o[2], 10.0 / 110);
  EXPECT_DOUBLE_EQ(o[3], 0.0);
  EXPECT_DOUBLE_EQ(o[4], 0.0);
}

TEST(StepLogTest, DispatchDelaysCountOnlyRequestsThatFoundTheirWorkerIdle) {
  auto step = [](const std::string& worker, TimeUs start, TimeUs end) {
    LoggedStep s;
    s.worker = worker;
    s.record.start_us = start;
    s.record.end_us = end;
    return s;
  };
  const std::vector<LoggedStep> steps = {step("a", 250, 900), step("a", 900, 1500), step("b", 5200, 6000)};
  std::vector<RequestRecord> r(4);
  r[0].arrival_us = 0, r[0].start_us = 250;      // a idle: 250
  r[1].arrival_us = 1000, r[1].start_us = 1500;  // a busy (step 900-1500): not counted
  r[2].arrival_us = 5000, r[2].start_us = 5200;  // b idle: 200
  r[3].arrival_us = 7000, r[3].start_us = -1;    // never started
  const auto d = dispatch_delays_us(r, {"a", "a", "b", "b"}, steps);
  EXPECT_EQ(d, (std::vector<double>{250, 200}));
  const auto s = dispatch_summary(d);
  EXPECT_DOUBLE_EQ(s["dispatch_us"].get<double>(), 225);
  EXPECT_EQ(s["requests"], 2);
  EXPECT_TRUE(dispatch_summary({}).is_null());
}

TEST(StepLogTest, CalibrationNamesAWorkerTheConfigDoesNotHave) {
  RunConfig config = load_run_config(std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json");
  LoggedStep s;
  s.worker = "elsewhere/gpu9";
  s.record.end_us = 10;
  s.record.iteration.decode_seqs = 1;
  const std::string e = testing::error_of([&] { calibrate_cost_model(config, {s}, "run/steps.csv", FitOptions(), {}); });
  EXPECT_NE(e.find("run/steps.csv: worker 'elsewhere/gpu9' is not an instance of"), std::string::npos) << e;
}

}  // namespace
}  // namespace twinfer
