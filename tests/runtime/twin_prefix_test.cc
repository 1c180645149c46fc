// Prefix caching in the twin: on a multi-turn trace whose requests arrive one at a time, the
// simulator (`twinfer sim`) and the CPU runtime (`twinfer run`) find the same cached tokens for
// every request, with the cache large enough to keep everything and small enough to evict; and with
// one worker keeping everything, the simulator's hit count is what `twinfer trace info` predicts.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/block_hashes.h"
#include "tests/runtime/process_testing.h"
#include "tests/testing.h"

namespace twinfer {
namespace {

using testing::Children;

const std::string kConfig = std::string(TWINFER_SOURCE_DIR) + "/configs/cpu_tiny.json";

// requests.csv of `dir`: each request's outcome and cached tokens.
std::map<int, std::pair<std::string, int>> cached_in(const std::string& dir) {
  std::istringstream in(testing::slurp(dir + "/requests.csv"));
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = testing::csv_fields(line);
  EXPECT_EQ(header.back(), "cached_tokens") << line;
  std::map<int, std::pair<std::string, int>> out;
  while (std::getline(in, line)) {
    const std::vector<std::string> f = testing::csv_fields(line);
    out[std::stoi(f.at(0))] = {f.at(6), std::stoi(f.back())};
  }
  return out;
}

class TwinPrefix : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/twin_prefix_" + std::to_string(::getpid());
    ::mkdir(dir_.c_str(), 0755);
    children_ = std::make_unique<Children>(dir_);
    // Three conversations of two tenants, a turn every ~0.3 s (gamma gaps, cv 0.1): each request
    // runs alone on the tiny model, so what is cached when it starts does not depend on timing.
    const nlohmann::json spec = {
        {"seed", 5},
        {"spec",
         {{"requests", 24}, {"rate_rps", 3.0}, {"arrival", "gamma"}, {"cv", 0.1},
          {"input", {{"kind", "uniform"}, {"min", 10}, {"max", 70}}},
          {"output", {{"kind", "uniform"}, {"min", 2}, {"max", 12}}},
          {"prefix",
           {{"block_tokens", 8}, {"tenants", 2}, {"system_tokens", {{"kind", "constant"}, {"mean", 90}}},
            {"conversations", 3}, {"turns", {{"kind", "uniform"}, {"min", 3}, {"max", 6}}}, {"max_context", 900}}}}}};
    std::ofstream(dir_ + "/spec.json") << spec.dump();
    trace_ = dir_ + "/multi_turn.csv";
    ASSERT_EQ(children_->run({"trace", "gen", "--spec", dir_ + "/spec.json", "--out", trace_}, "gen.log", 60), 0)
        << children_->log("gen.log");
  }

  std::map<int, std::pair<std::string, int>> run_command(const std::string& command, const std::string& name,
                                                         const std::vector<std::string>& sets) {
    const std::string out = dir_ + "/" + name;
    std::vector<std::string> args = {command, "--config", kConfig, "--trace", trace_, "--out", out, "--seed", "1",
                                     "--set", "policies.batcher.prefix_caching=true"};
    for (const std::string& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    const int rc = children_->run(args, name + ".log", 300);
    EXPECT_EQ(rc, 0) << children_->log(name + ".log");
    return cached_in(out);
  }

  nlohmann::json summary_in(const std::string& name) const {
    return nlohmann::json::parse(testing::slurp(dir_ + "/" + name + "/summary.json"));
  }

  // The cached tokens of every step in timeline.json, summed.
  long long timeline_cached_tokens(const std::string& name) const {
    const nlohmann::json timeline = nlohmann::json::parse(testing::slurp(dir_ + "/" + name + "/timeline.json"));
    long long sum = 0;
    for (const nlohmann::json& e : timeline["traceEvents"]) {
      if (e["name"] == "batch") sum += e["args"]["cached_tokens"].get<long long>();
    }
    return sum;
  }

  std::string dir_;
  std::string trace_;
  std::unique_ptr<Children> children_;
};

TEST_F(TwinPrefix, SimAndRunFindTheSameCachedTokensPerRequestWithAndWithoutEviction) {
  // Round robin over two workers; 1,024 blocks keep everything, 28 (448 tokens; the longest
  // prompt is about 320) evict.
  long long cached_total[2] = {0, 0};
  int run = 0;
  for (const std::string blocks : {"1024", "28"}) {
    SCOPED_TRACE(blocks + " blocks");
    const std::vector<std::string> sets = {"policies.router.name=round_robin", "policies.batcher.kv_blocks=" + blocks};
    const auto simulated = run_command("sim", "sim" + blocks, sets);
    ASSERT_EQ(simulated.size(), 24u);
    int hits = 0;
    for (const auto& [id, ended] : simulated) {
      EXPECT_EQ(ended.first, "completed") << "request " << id;
      hits += ended.second > 0 ? 1 : 0;
      cached_total[run] += ended.second;
    }
    ++run;
    EXPECT_GT(hits, 4) << "a multi-turn trace should hit its own history";
    const auto real = run_command("run", "run" + blocks, sets);
    EXPECT_EQ(real, simulated);
    // The summaries' prefix-cache figures, in tokens and in blocks, and the timeline's cached
    // tokens per step agree too.
    const nlohmann::json sim_cache = summary_in("sim" + blocks)["prefix_cache"];
    EXPECT_EQ(summary_in("run" + blocks)["prefix_cache"], sim_cache);
    EXPECT_EQ(sim_cache["cached_blocks"].get<long long>() * 16, sim_cache["cached_tokens"].get<long long>());
    // Each prompt's blocks round its tokens up to whole 16-token blocks.
    const long long slack = sim_cache["prompt_blocks"].get<long long>() * 16 - sim_cache["prompt_tokens"].get<long long>();
    EXPECT_GE(slack, 0);
    EXPECT_LT(slack, 24 * 16);
    EXPECT_GT(sim_cache["block_hit_rate"].get<double>(), 0.0);
    const long long stepped = timeline_cached_tokens("sim" + blocks);
    EXPECT_EQ(timeline_cached_tokens("run" + blocks), stepped);
    EXPECT_GE(stepped, sim_cache["cached_tokens"].get<long long>()) << "every start counts, recomputes too";
  }
  EXPECT_LT(cached_total[1], cached_total[0]) << "the small cache should have evicted prefixes that were found again";
}

// The host-memory tier (vLLM's CPU offloading): with a device cache that evicts, the blocks it
// evicted come back from host memory; the simulator and the runtime find the same cached tokens for
// every request, and more than without the tier.
TEST_F(TwinPrefix, AHostTierBringsBackEvictedPrefixesAlikeInSimAndRun) {
  const std::vector<std::string> small = {"policies.router.name=round_robin", "policies.batcher.kv_blocks=28"};
  const auto without = run_command("sim", "sim_no_host", small);
  std::vector<std::string> sets = small;
  sets.push_back("policies.batcher.host_kv_blocks=256");
  const auto simulated = run_command("sim", "sim_host", sets);
  ASSERT_EQ(simulated.size(), 24u);
  long long with_tier = 0, without_tier = 0;
  for (const auto& [id, ended] : simulated) {
    EXPECT_EQ(ended.first, "completed") << "request " << id;
    with_tier += ended.second;
    without_tier += without.at(id).second;
  }
  EXPECT_GT(with_tier, without_tier);
  EXPECT_EQ(run_command("run", "run_host", sets), simulated);
  EXPECT_GT(summary_in("sim_host")["prefix_cache"]["host_cached_tokens"].get<long long>(), 0);
  EXPECT_EQ(summary_in("sim_no_host")["prefix_cache"]["host_cached_tokens"].get<long long>(), 0);
  EXPECT_EQ(summary_in("run_host")["prefix_cache"], summary_in("sim_host")["prefix_cache"]);
}

// A router that reads the workers' KV events (llm-d's precise prefix scorer; Dynamo's KV router
// with its events) decides on the same cache contents in both: the simulator hands the events over
// as they happen, the runtime's workers publish them with their views. Each request runs alone, so
// both have seen every event of the requests before it.
TEST_F(TwinPrefix, RoutersReadingKvEventsRouteAndHitAlikeInSimAndRun) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> routers = {
      {"scored",
       {"policies.router.name=scored",
        R"(policies.router.scorers=[{"name": "kv_events", "weight": 1}, {"name": "queue", "weight": 0.1}])"}},
      {"kv_overlap", {"policies.router.name=kv_overlap", "policies.router.use_kv_events=true"}}};
  for (const std::string blocks : {"1024", "28"}) {
    const auto rr = run_command("sim", "rr" + blocks, {"policies.router.name=round_robin", "policies.batcher.kv_blocks=" + blocks});
    long long rr_cached = 0;
    for (const auto& [id, ended] : rr) rr_cached += ended.second;
    for (const auto& [name, router_sets] : routers) {
      SCOPED_TRACE(name + ", " + blocks + " blocks");
      std::vector<std::string> sets = router_sets;
      sets.push_back("policies.batcher.kv_blocks=" + blocks);
      const auto simulated = run_command("sim", "sim_" + name + blocks, sets);
      ASSERT_EQ(simulated.size(), 24u);
      long long cached = 0;
      for (const auto& [id, ended] : simulated) {
        EXPECT_EQ(ended.first, "completed") << "request " << id;
        cached += ended.second;
      }
      // Turns follow their history to the worker that holds it; round robin splits them.
      if (blocks == "1024") {
        EXPECT_GT(cached, rr_cached);
      }
      const auto real = run_command("run", "run_" + name + blocks, sets);
      EXPECT_EQ(real, simulated);
      // The same workers found the same prefixes.
      const nlohmann::json sim_summary = summary_in("sim_" + name + blocks);
      const nlohmann::json run_summary = summary_in("run_" + name + blocks);
      EXPECT_EQ(run_summary["prefix_cache"], sim_summary["prefix_cache"]);
      ASSERT_EQ(run_summary["workers"].size(), 2u);
      for (std::size_t w = 0; w < 2; ++w) {
        EXPECT_EQ(run_summary["workers"][w]["prefix_cache"], sim_summary["workers"][w]["prefix_cache"]) << "worker " << w;
      }
    }
  }
}

// Prompts given as their token ids (a native trace's prompt_token_ids; over gRPC the InferRequest
// field): the trace above made real, each block of 8 tokens filled from its hash id, so that two
// prompts share their first t tokens exactly when their ids say so. Hashed from the tokens in
// 16-token blocks, they find the same cached tokens per request as the trace's ids found, in the
// simulator and in the runtime (which runs those tokens); a token outside the model's vocabulary
// is rejected in all with one reason. `twinfer serve` over gRPC finds the same.
TEST_F(TwinPrefix, PromptsOfTokenIdsFindWhatTheirHashIdsFoundAlikeInSimRunAndServe) {
  std::istringstream in(testing::slurp(trace_));
  std::string line;
  std::getline(in, line);
  const std::vector<std::string> header = testing::csv_fields(line);
  const auto column = [&](const std::string& name) {
    const auto it = std::find(header.begin(), header.end(), name);
    EXPECT_NE(it, header.end()) << name << " in " << line;
    return static_cast<std::size_t>(it - header.begin());
  };
  const std::size_t arrival = column("arrival_s"), input = column("input_tokens"), output = column("output_tokens"),
                    ids = column("hash_ids"), block = column("hash_block_tokens");
  std::ostringstream jsonl;
  std::string last_arrival;
  for (int row = 0; std::getline(in, line); ++row) {
    const std::vector<std::string> f = testing::csv_fields(line);
    ASSERT_EQ(f.at(block), "8");
    std::vector<std::uint64_t> hash_ids;
    std::istringstream id_text(f.at(ids));
    for (std::uint64_t id; id_text >> id;) hash_ids.push_back(id);
    const int tokens = std::stoi(f.at(input));
    nlohmann::json prompt = nlohmann::json::array();
    for (int p = 0; p < tokens; ++p) {
      const std::size_t k = static_cast<std::size_t>(p / 8);
      const std::uint64_t source = k < hash_ids.size() ? hash_ids[k] : 1'000'000'000ULL + static_cast<std::uint64_t>(row);
      prompt.push_back(mix_hash(source, static_cast<std::uint64_t>(p)) % 1024);
    }
    jsonl << nlohmann::json{{"arrival_s", std::stod(f.at(arrival))},
                            {"input_tokens", tokens},
                            {"output_tokens", std::stoi(f.at(output))},
                            {"prompt_token_ids", prompt}}
                 .dump()
          << "\n";
    last_arrival = f.at(arrival);
  }
  // One more, after the others: a token id the tiny model (vocab 1024) does not have.
  jsonl << nlohmann::json{{"arrival_s", std::stod(last_arrival) + 0.01},
                          {"input_tokens", 3},
                          {"output_tokens", 2},
                          {"prompt_token_ids", {1, 5000, 2}}}
               .dump()
        << "\n";
  const std::string hashed_trace = trace_;
  // `trace info` predicts the same reuse from the tokens as from the ids (the last request's 3
  // tokens share nothing), and says where the ids came from.
  const std::string tokens_trace = dir_ + "/tokens.jsonl";
  std::ofstream(tokens_trace) << jsonl.str();
  const auto reuse = [&](const std::string& path, const std::string& log) {
    EXPECT_EQ(children_->run({"trace", "info", "--trace", path, "--block-tokens", "16"}, log, 60), 0);
    const std::string info = children_->log(log);
    std::smatch m;
    EXPECT_TRUE(std::regex_search(info, m, std::regex(R"(prefix reuse: [0-9.]+% of prompt tokens \((\d+) of (\d+)\))")))
        << info;
    return std::make_pair(m.size() > 2 ? std::stoll(m[1]) : -1LL, info);
  };
  const auto [ids_reuse, ids_info] = reuse(hashed_trace, "info_ids.log");
  const auto [tokens_reuse, tokens_info] = reuse(tokens_trace, "info_tokens.log");
  EXPECT_GT(ids_reuse, 0);
  EXPECT_EQ(tokens_reuse, ids_reuse);
  EXPECT_NE(tokens_info.find("25 of 25 requests carry hash ids (25 hashed from their token ids)"), std::string::npos)
      << tokens_info;
  EXPECT_EQ(ids_info.find("hashed from their token ids"), std::string::npos) << ids_info;
  const std::vector<std::string> sets = {"policies.router.name=round_robin", "policies.batcher.kv_blocks=28"};
  const auto by_ids = run_command("sim", "sim_ids", sets);
  trace_ = tokens_trace;
  const auto simulated = run_command("sim", "sim_tokens", sets);
  ASSERT_EQ(simulated.size(), 25u);
  long long cached = 0;
  for (int id = 0; id < 24; ++id) {
    EXPECT_EQ(simulated.at(id), by_ids.at(id)) << "request " << id;
    cached += simulated.at(id).second;
  }
  EXPECT_GT(cached, 0);
  EXPECT_EQ(simulated.at(24).first, "rejected");
  const auto real = run_command("run", "run_tokens", sets);
  EXPECT_EQ(real, simulated);
  EXPECT_EQ(summary_in("run_tokens")["prefix_cache"], summary_in("sim_tokens")["prefix_cache"]);
  // And over gRPC: `twinfer replay` sends the tokens to `twinfer serve`, which forwards them to its
  // worker processes.
  const int port = testing::free_port();
  std::vector<std::string> serve_args = {"serve", "--config", kConfig, "--spawn-workers", "--listen",
                                         "127.0.0.1:" + std::to_string(port), "--seed", "1", "--set",
                                         "policies.batcher.prefix_caching=true"};
  for (const std::string& set : sets) {
    serve_args.push_back("--set");
    serve_args.push_back(set);
  }
  const pid_t serve = children_->spawn(serve_args, "serve.log");
  ASSERT_TRUE(children_->wait_listening(serve, port, 120)) << children_->log("serve.log");
  const int rc = children_->run({"replay", "--trace", trace_, "--target", "127.0.0.1:" + std::to_string(port), "--config",
                                 kConfig, "--out", dir_ + "/served_tokens", "--timeout-s", "120"},
                                "replay.log", 200);
  EXPECT_EQ(rc, 0) << children_->log("replay.log") << children_->log("serve.log");
  ::kill(serve, SIGTERM);
  EXPECT_EQ(children_->wait_exit(serve, 60), 0) << children_->log("serve.log");
  EXPECT_EQ(cached_in(dir_ + "/served_tokens"), simulated);
  for (const std::string name : {"sim_tokens", "run_tokens", "served_tokens"}) {
    const std::string csv = testing::slurp(dir_ + "/" + name + "/requests.csv");
    EXPECT_NE(csv.find("prompt token id 5000 is outside the vocabulary of any model (1024 tokens)"),
              std::string::npos)
        << name << ":\n" << csv;
  }
  trace_ = hashed_trace;
}

TEST_F(TwinPrefix, OneWorkerKeepingEverythingHitsWhatTraceInfoPredicts) {
  ASSERT_EQ(children_->run({"trace", "info", "--trace", trace_, "--block-tokens", "16"}, "info.log", 60), 0);
  const std::string info = children_->log("info.log");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(info, m, std::regex(R"(prefix reuse: [0-9.]+% of prompt tokens \((\d+) of (\d+)\))")))
      << info;
  const long long predicted = std::stoll(m[1]);
  EXPECT_GT(predicted, 0);
  const std::string out = dir_ + "/one";
  ASSERT_EQ(children_->run({"sim", "--config", kConfig, "--trace", trace_, "--out", out, "--seed", "1", "--set",
                            "policies.batcher.prefix_caching=true", "--set", "cluster.hosts.0.instances.0.count=1"},
                           "one.log", 120),
            0)
      << children_->log("one.log");
  const nlohmann::json summary = nlohmann::json::parse(testing::slurp(out + "/summary.json"));
  EXPECT_EQ(summary["prefix_cache"]["cached_tokens"].get<long long>(), predicted) << summary["prefix_cache"].dump();
  EXPECT_EQ(summary["prefix_cache"]["prompt_tokens"].get<long long>(), std::stoll(m[2]));
  EXPECT_EQ(summary["workers"].size(), 1u);
}

}  // namespace
}  // namespace twinfer
