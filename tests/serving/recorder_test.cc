#include "serving/recorder.h"

#include <algorithm>
#include <fstream>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "policies/worker_state.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::make_request;

Sequence seq_of(const Request& r, TimeUs started_us, int preemptions = 0) {
  Sequence s;
  s.request = r;
  s.started_us = started_us;
  s.preemptions = preemptions;
  return s;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Percentile, InterpolatesBetweenRanksLikeNumpy) {
  std::vector<double> v{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile(v, 0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);
  EXPECT_DOUBLE_EQ(percentile(v, 100), 4);
  EXPECT_DOUBLE_EQ(percentile({7}, 99), 7);
}

TEST(Percentile, OfCountsEqualsThePercentileOfTheValuesBitForBit) {
  std::mt19937_64 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<double> values;
    const int n = 1 + static_cast<int>(rng() % 300);
    const int distinct = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) values.push_back(double(rng() % std::uint64_t(distinct)) * 3.5);
    std::sort(values.begin(), values.end());
    std::vector<std::pair<double, std::int64_t>> counts;
    for (double v : values) {
      if (counts.empty() || counts.back().first != v) counts.emplace_back(v, 0);
      ++counts.back().second;
    }
    for (double p : {0.0, 1.0, 33.3, 50.0, 90.0, 99.0, 99.9, 100.0}) {
      ASSERT_EQ(percentile_of_counts(counts, p), percentile(values, p)) << "trial " << trial << " p" << p;
    }
  }
}

class RecorderTest : public ::testing::Test {
 protected:
  // Three requests: 0 completes, 1 is rejected, 2 is dropped.
  std::vector<Request> reqs{make_request(0, 0, 100, 11), make_request(1, 1000, 50, 5), make_request(2, 2000, 10, 1)};
  Recorder rec{reqs, {"a", "b"}, SloSpec{/*ttft_ms=*/5, /*tpot_ms=*/1, /*latency_ms=*/0}};

  void run_all() {
    rec.routed(0, 1);
    rec.batch({1, 0, 4000, 1, 100, 0});
    rec.finished(seq_of(reqs[0], 0, 2), 1, Outcome::kCompleted, "", /*first_token_us=*/4000, /*end_us=*/14000);
    rec.reject(1, 1000, "rate limited");
    rec.finished(seq_of(reqs[2], kNever), 0, Outcome::kDropped, "deadline passed", -1, 3000);
  }
};

TEST_F(RecorderTest, CountsEveryOutcomeAndReason) {
  run_all();
  rec.check_all_ended();
  auto s = rec.summary();
  EXPECT_EQ(s["requests"]["total"], 3);
  EXPECT_EQ(s["requests"]["completed"], 1);
  EXPECT_EQ(s["requests"]["rejected"], 1);
  EXPECT_EQ(s["requests"]["dropped"], 1);
  EXPECT_EQ(s["reasons"]["rejected"]["rate limited"], 1);
  EXPECT_EQ(s["reasons"]["dropped"]["deadline passed"], 1);
}

TEST_F(RecorderTest, LatencyTtftTpotFromTimes) {
  run_all();
  auto s = rec.summary();
  EXPECT_DOUBLE_EQ(s["latency_ms"]["p50"].get<double>(), 14.0);
  EXPECT_DOUBLE_EQ(s["ttft_ms"]["mean"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(s["tpot_ms"]["mean"].get<double>(), 1.0);  // 10 ms for 10 more tokens
  EXPECT_DOUBLE_EQ(s["queue_ms"]["mean"].get<double>(), 0.0);
  // Span: first arrival 0 to last end 14 ms.
  EXPECT_DOUBLE_EQ(s["duration_s"].get<double>(), 0.014);
  EXPECT_NEAR(s["throughput_rps"].get<double>(), 1 / 0.014, 1e-9);
  EXPECT_NEAR(s["tokens_per_s"].get<double>(), 11 / 0.014, 1e-9);
  // TTFT 4 <= 5 and TPOT 1 <= 1: met. One of three requests.
  EXPECT_NEAR(s["slo_attainment"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_EQ(s["workers"][1]["batches"], 1);
  EXPECT_EQ(s["workers"][1]["preemptions"], 2);
  EXPECT_NEAR(s["workers"][1]["utilization"].get<double>(), 4.0 / 14, 1e-12);
}

TEST_F(RecorderTest, SloMissedWhenTtftTooLong) {
  Recorder strict(reqs, {"a", "b"}, SloSpec{3, 0, 0});
  strict.finished(seq_of(reqs[0], 0), 1, Outcome::kCompleted, "", 4000, 14000);
  EXPECT_EQ(strict.summary()["goodput_rps"].get<double>(), 0.0);
}

TEST_F(RecorderTest, UnfinishedRequestsAreReported) {
  rec.reject(1, 1000, "x");
  try {
    rec.check_all_ended();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("2 request(s) never ended (ids 0, 2)"), std::string::npos) << e.what();
  }
}

TEST_F(RecorderTest, RequestsCsvAndTimeline) {
  rec.routed(0, 1);
  rec.batch({1, 0, 4000, 1, 100, 0});
  rec.finished(seq_of(reqs[0], 0), 1, Outcome::kCompleted, "", 4000, 14000);
  rec.reject(1, 1000, "queue full, 5 waiting");
  rec.finished(seq_of(reqs[2], kNever), 0, Outcome::kDropped, "x", -1, 3000);
  std::string dir = ::testing::TempDir();
  rec.write_requests_csv(dir + "/requests.csv");
  rec.write_timeline_json(dir + "/timeline.json");
  std::string csv = slurp(dir + "/requests.csv");
  EXPECT_NE(csv.find("0,0,b,0,4000,14000,completed,,100,11,0,0,1,-1\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("1,1000,,-1,-1,1000,rejected,\"queue full, 5 waiting\",50,5,0,0,0,-1\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("2,2000,a,-1,-1,3000,dropped,x,10,1,0,0,0,-1\n"), std::string::npos) << csv;
  auto timeline = nlohmann::json::parse(slurp(dir + "/timeline.json"));
  int slices = 0;
  for (const auto& e : timeline["traceEvents"]) {
    if (e["ph"] == "X") {
      ++slices;
      EXPECT_EQ(e["tid"], 1);
      EXPECT_EQ(e["dur"], 4000);
    }
  }
  EXPECT_EQ(slices, 1);
}

TEST_F(RecorderTest, RetriesAndLostRequestsAreCountedAndMarkersReachTheTimeline) {
  rec.routed(0, 0);
  rec.routed(0, 1);  // a retry on another worker
  rec.finished(seq_of(reqs[0], 0), 1, Outcome::kCompleted, "", 4000, 14000);
  rec.routed(1, 0);
  rec.lost(1, Outcome::kTimedOut, "no answer within 2000 ms", 3000);
  rec.routed(2, 0);
  rec.routed(2, 1);
  rec.routed(2, 0);
  rec.lost(2, Outcome::kDropped, "worker a crashed; gave up after 3 attempts", 5000);
  rec.marker(2500, 0, "crash", "f.json: faults[0]");
  EXPECT_TRUE(rec.ended(2));
  auto s = rec.summary();
  EXPECT_EQ(s["requests"]["retried"], 2);
  EXPECT_EQ(s["requests"]["retries"], 3);
  EXPECT_EQ(s["requests"]["timed_out"], 1);
  EXPECT_EQ(s["reasons"]["timed_out"]["no answer within 2000 ms"], 1);
  EXPECT_EQ(s["reasons"]["dropped"]["worker a crashed; gave up after 3 attempts"], 1);
  EXPECT_EQ(rec.records()[2].worker, 0);  // the worker of its last attempt
  std::string dir = ::testing::TempDir();
  rec.write_timeline_json(dir + "/markers.json");
  auto tl = nlohmann::json::parse(slurp(dir + "/markers.json"));
  int instants = 0;
  for (const auto& e : tl["traceEvents"]) {
    if (e["ph"] != "i") continue;
    ++instants;
    EXPECT_EQ(e["name"], "crash");
    EXPECT_EQ(e["ts"], 2500);
    EXPECT_EQ(e["tid"], 0);
    EXPECT_EQ(e["args"]["detail"], "f.json: faults[0]");
  }
  EXPECT_EQ(instants, 1);
}

TEST_F(RecorderTest, RecordsJoinTheRequestsFieldsToWhatTheRunAdded) {
  reqs[1].priority = 3;
  reqs[1].deadline_us = 9000;
  rec.routed(0, 1);
  rec.finished(seq_of(reqs[0], 200, 1), 1, Outcome::kCompleted, "", 4000, 14000);
  // Two requests ended for one reason, each with its own copy of the text.
  rec.reject(1, 1000, std::string("queue full"));
  rec.routed(2, 0);
  rec.lost(2, Outcome::kRejected, std::string("queue full"), 2500);
  const std::vector<RequestRecord> rows = rec.records();
  ASSERT_EQ(rows.size(), 3u);
  const RequestRecord& done = rows[0];
  EXPECT_EQ(done.input_tokens, 100);
  EXPECT_EQ(done.output_tokens, 11);
  EXPECT_EQ(done.worker, 1);
  EXPECT_EQ(done.start_us, 200);
  EXPECT_EQ(done.first_token_us, 4000);
  EXPECT_EQ(done.end_us, 14000);
  EXPECT_EQ(done.preemptions, 1);
  EXPECT_EQ(done.attempts, 1);
  EXPECT_TRUE(done.ended);
  EXPECT_EQ(done.reason, "");
  EXPECT_EQ(rows[1].arrival_us, 1000);
  EXPECT_EQ(rows[1].priority, 3);      // read from the request, which the recorder does not copy
  EXPECT_EQ(rows[1].deadline_us, 9000);
  EXPECT_EQ(rows[1].outcome, Outcome::kRejected);
  EXPECT_EQ(rows[1].reason, "queue full");
  EXPECT_EQ(rows[2].reason, "queue full");
  EXPECT_EQ(rows[2].worker, 0);
  EXPECT_EQ(rec.record(2).end_us, 2500);
  EXPECT_EQ(rec.summary()["reasons"]["rejected"]["queue full"], 2);
}

TEST_F(RecorderTest, TimelineMergesBackToBackDecodeIterationsOfOneSize) {
  rec.batch({0, 0, 10, 2, 50, 1});   // prefill: its own slice
  rec.batch({0, 10, 20, 2, 0, 2});   // decode
  rec.batch({0, 20, 31, 2, 0, 2});   // decode, same size, back to back: merged
  rec.batch({0, 31, 40, 1, 0, 1});   // other size
  rec.batch({0, 45, 50, 1, 0, 1});   // gap
  rec.batch({1, 50, 60, 1, 0, 1});   // other worker
  std::string path = ::testing::TempDir() + "/merged_timeline.json";
  rec.write_timeline_json(path);
  std::vector<std::pair<long, int>> slices;  // (dur, iterations)
  auto timeline = nlohmann::json::parse(slurp(path));
  for (const auto& e : timeline["traceEvents"]) {
    if (e["ph"] == "X") slices.emplace_back(e["dur"].get<long>(), e["args"]["iterations"].get<int>());
  }
  std::vector<std::pair<long, int>> expected{{10, 1}, {21, 2}, {9, 1}, {5, 1}, {10, 1}};
  EXPECT_EQ(slices, expected);
  EXPECT_EQ(rec.batches(), 6);
  rec.reject(0, 0, "-");
  rec.reject(1, 0, "-");
  rec.reject(2, 0, "-");
  EXPECT_EQ(rec.summary()["workers"][0]["batches"], 5);
}

}  // namespace
}  // namespace twinfer
