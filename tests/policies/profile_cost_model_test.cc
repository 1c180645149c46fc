#include "policies/cost/profile_cost_model.h"

#include <fstream>

#include <gtest/gtest.h>

#include "core/error.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using nlohmann::json;

// f(p, s, c) = 100 + 10 p + 2 s + c + 0.5 p s: multilinear, so interpolation and extrapolation
// over any grid reproduce it exactly.
double f(double p, double s, double c) { return 100 + 10 * p + 2 * s + c + 0.5 * p * s; }

const std::vector<double> kPrefill = {0, 10, 30};
const std::vector<double> kSeqs = {0, 4};
const std::vector<double> kContext = {0, 100, 1000};

json iteration_grid() {
  json times = json::array();
  for (double p : kPrefill) {
    json rows = json::array();
    for (double s : kSeqs) {
      json row = json::array();
      for (double c : kContext) row.push_back(f(p, s, c));
      rows.push_back(row);
    }
    times.push_back(rows);
  }
  return {{"prefill_tokens", kPrefill}, {"decode_seqs", kSeqs}, {"decode_context_tokens", kContext},
          {"time_us", times}};
}

// Batch times: 1000 - 10 * input_tokens along one axis of two points; the others have one point.
json batch_grid() {
  return json::parse(R"({"batch_size": [1], "input_tokens": [0, 10], "max_output_tokens": [5],
                         "time_us": [[[1000], [900]]]})");
}

json table() {
  json entry = {{"device", "TEST"}, {"model", "m"}, {"tp", 1}, {"iteration", iteration_grid()},
                {"batch", batch_grid()}};
  json iteration_only = {{"device", "TEST"}, {"model", "m"}, {"tp", 2}, {"iteration", iteration_grid()}};
  return {{"format", "twinfer-profile-v1"}, {"meta", {{"host", "test"}}}, {"entries", {entry, iteration_only}}};
}

InstanceSpec instance(int tp = 1, const std::string& device = "TEST", const std::string& model = "m") {
  InstanceSpec inst;
  inst.name = "h/gpu0";
  for (int g = 0; g < tp; ++g) inst.gpus.push_back(g);
  inst.device = testing::test_device(device);
  inst.model = testing::test_model(model);
  return inst;
}

IterationShape shape(std::int64_t prefill, std::int64_t seqs, std::int64_t context) {
  IterationShape s;
  s.prefill_tokens = prefill;
  s.decode_seqs = seqs;
  s.decode_context_tokens = context;
  return s;
}

RequestBatchShape batch(std::int64_t size, std::int64_t input, std::int64_t max_output) {
  RequestBatchShape s;
  s.batch_size = size;
  s.input_tokens = input;
  s.max_output_tokens = max_output;
  return s;
}

std::string error_of(const json& t) {
  try {
    ProfileCostModel model(t, "prof.json");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ProfileCostModelTest, ExactAtGridPoints) {
  ProfileCostModel cost(table(), "prof.json");
  EXPECT_EQ(cost.iteration_time_us(instance(), shape(10, 4, 100)), 328);  // f(10, 4, 100)
  EXPECT_EQ(cost.iteration_time_us(instance(), shape(30, 0, 1000)), 1400);
  EXPECT_EQ(cost.iteration_time_us(instance(), shape(0, 0, 0)), 100);
}

TEST(ProfileCostModelTest, InterpolatesMidway) {
  ProfileCostModel cost(table(), "prof.json");
  // f(20, 2, 550) = 100 + 200 + 4 + 550 + 20.
  EXPECT_EQ(cost.iteration_time_us(instance(), shape(20, 2, 550)), 874);
  // f(5, 1, 50) = 100 + 50 + 2 + 50 + 2.5 = 204.5, rounded half away from zero.
  EXPECT_EQ(cost.iteration_time_us(instance(), shape(5, 1, 50)), 205);
}

TEST(ProfileCostModelTest, ExtrapolatesLinearlyBeyondTheGrid) {
  ProfileCostModel cost(table(), "prof.json");
  // f(40, 6, 2000) = 100 + 400 + 12 + 2000 + 120.
  EXPECT_EQ(cost.iteration_time_us(instance(), shape(40, 6, 2000)), 2632);
  EXPECT_EQ(cost.batch_time_us(instance(), batch(1, 20, 5)), 800);
}

TEST(ProfileCostModelTest, SinglePointAxesAreConstantAndResultsClampToOneMicrosecond) {
  ProfileCostModel cost(table(), "prof.json");
  EXPECT_EQ(cost.batch_time_us(instance(), batch(16, 5, 500)), 950);
  EXPECT_EQ(cost.batch_time_us(instance(), batch(1, 200, 5)), 1);  // 1000 - 2000 < 1
}

TEST(ProfileCostModelTest, LooksUpByDeviceModelAndTp) {
  json t = table();
  t["entries"][1]["iteration"]["time_us"][0][0][0] = 7;
  ProfileCostModel cost(t, "prof.json");
  EXPECT_EQ(cost.iteration_time_us(instance(2), shape(0, 0, 0)), 7);
  EXPECT_EQ(cost.iteration_time_us(instance(1), shape(0, 0, 0)), 100);
  ASSERT_NE(cost.find("TEST", "m", 2), nullptr);
  EXPECT_EQ(cost.find("TEST", "m", 3), nullptr);
}

TEST(ProfileCostModelTest, MissingEntryNamesDeviceModelTpAndFile) {
  ProfileCostModel cost(table(), "prof.json");
  try {
    cost.iteration_time_us(instance(1, "H100", "llama"), shape(1, 0, 0));
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("prof.json has no entry for device 'H100', model 'llama', tp 1"), std::string::npos) << m;
    EXPECT_NE(m.find("device 'TEST', model 'm', tp 2"), std::string::npos) << m;  // lists the entries
  }
  try {
    cost.batch_time_us(instance(2), batch(1, 1, 1));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tp 2 has no \"batch\" times"), std::string::npos) << e.what();
  }
}

TEST(ProfileCostModelTest, MalformedTablesNameTheFileAndKey) {
  json t = table();
  t["format"] = "twinfer-profile-v2";
  EXPECT_EQ(error_of(t).rfind("prof.json.format: expected \"twinfer-profile-v1\"", 0), 0u) << error_of(t);
  t = table();
  t["entries"][0]["iteration"]["time_us"][1].erase(1);
  EXPECT_NE(error_of(t).find("prof.json: entries[0].iteration.time_us[1]: expected an array of 2"), std::string::npos)
      << error_of(t);
  t = table();
  t["entries"][0]["iteration"]["decode_context_tokens"] = {0, 100, 100};
  EXPECT_NE(error_of(t).find("entries[0].iteration.decode_context_tokens: values must strictly increase"),
            std::string::npos)
      << error_of(t);
  t = table();
  t["entries"][0]["batch"]["time_us"][0][1][0] = "slow";
  EXPECT_NE(error_of(t).find("entries[0].batch.time_us[0][1][0]: expected a non-negative time"), std::string::npos)
      << error_of(t);
  t = table();
  t["entries"][1]["tp"] = 1;
  EXPECT_NE(error_of(t).find("prof.json: entries[1]: a second entry for device 'TEST', model 'm', tp 1"),
            std::string::npos)
      << error_of(t);
  t = table();
  t["entries"][0]["gpu"] = "x";
  EXPECT_NE(error_of(t).find("prof.json: entries[0]: unknown key 'gpu'"), std::string::npos) << error_of(t);
  t = table();
  t["entries"][0].erase("iteration");
  t["entries"][0].erase("batch");
  EXPECT_NE(error_of(t).find("entries[0].iteration: an entry needs"), std::string::npos) << error_of(t);
  t = table();
  t.erase("entries");
  EXPECT_NE(error_of(t).find("prof.json.entries: required"), std::string::npos) << error_of(t);
}

TEST(ProfileCostModelTest, LoadReadsAFileAndNamesItInErrors) {
  const std::string good = write_temp("good_profile.json", table().dump());
  EXPECT_EQ(ProfileCostModel::load(good).iteration_time_us(instance(), shape(10, 4, 100)), 328);
  const std::string bad = write_temp("bad_profile.json", "{\"format\": ");
  try {
    ProfileCostModel::load(bad);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad + ": invalid JSON", 0), 0u) << e.what();
  }
  try {
    ProfileCostModel::load(::testing::TempDir() + "no_such_profile.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no_such_profile.json: cannot open"), std::string::npos) << e.what();
  }
}

TEST(ProfileCostModelTest, ShippedExampleTable) {
  ProfileCostModel cost =
      ProfileCostModel::load(std::string(TWINFER_SOURCE_DIR) + "/configs/profiles/example_profile.json");
  ASSERT_NE(cost.find("CPU", "tiny-llm", 1), nullptr);
  EXPECT_EQ(cost.iteration_time_us(instance(1, "CPU", "tiny-llm"), shape(64, 4, 1024)), 13250);
  // Midway between 1 and 8 sequences, 16 input tokens, 1 output token: both 4400.
  EXPECT_EQ(cost.batch_time_us(instance(1, "CPU", "tiny-llm"), batch(4, 16, 1)), 4400);
}

}  // namespace
}  // namespace twinfer
