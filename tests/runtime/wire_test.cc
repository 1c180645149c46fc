#include "runtime/rpc/wire.h"

#include <limits>

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace twinfer::runtime {
namespace {

std::string error_of(const rpc::InferRequest& m) {
  try {
    check_request(m);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

rpc::InferRequest valid_request() {
  rpc::InferRequest m;
  m.set_id(42);
  m.set_arrival_us(1000);
  m.set_input_tokens(128);
  m.set_output_tokens(16);
  m.set_deadline_us(5000);
  m.set_model("tiny-llm");
  m.set_session("chat-1");
  return m;
}

TEST(CheckRequest, AcceptsARequestWithinBoundsAndZeroTokensOrTimes) {
  EXPECT_EQ(error_of(valid_request()), "(no error)");
  EXPECT_EQ(error_of(rpc::InferRequest()), "(no error)");  // every field 0 or empty
  rpc::InferRequest m = valid_request();
  m.set_input_tokens(kMaxWireTokens);
  m.set_output_tokens(kMaxWireTokens);
  m.set_model(std::string(kMaxWireTextBytes, 'm'));
  EXPECT_EQ(error_of(m), "(no error)");
}

TEST(CheckRequest, NegativeTokenCountsNameTheField) {
  rpc::InferRequest m = valid_request();
  m.set_input_tokens(-1);
  EXPECT_EQ(error_of(m), "InferRequest 42: input_tokens: negative token count -1");
  m = valid_request();
  m.set_output_tokens(-2147483647 - 1);
  EXPECT_EQ(error_of(m), "InferRequest 42: output_tokens: negative token count -2147483648");
}

TEST(CheckRequest, TokenCountsPastTheLimitAreRefused) {
  rpc::InferRequest m = valid_request();
  m.set_input_tokens(kMaxWireTokens + 1);
  EXPECT_EQ(error_of(m), "InferRequest 42: input_tokens: 1048577 tokens is more than the limit of 1048576");
  m = valid_request();
  m.set_output_tokens(2147483647);
  EXPECT_EQ(error_of(m), "InferRequest 42: output_tokens: 2147483647 tokens is more than the limit of 1048576");
}

TEST(CheckRequest, NegativeTimesAreRefused) {
  rpc::InferRequest m = valid_request();
  m.set_arrival_us(-5);
  EXPECT_EQ(error_of(m), "InferRequest 42: arrival_us: negative time -5");
  m = valid_request();
  m.set_deadline_us(-1);
  EXPECT_EQ(error_of(m), "InferRequest 42: deadline_us: negative time -1");
}

// Found by the wire fuzzer: a deadline of INT64_MAX (the clock's "never") read back as no deadline,
// and times that large would overflow the router's arithmetic.
TEST(CheckRequest, TimesPastTheClocksRangeAreRefused) {
  rpc::InferRequest m = valid_request();
  m.set_deadline_us(std::numeric_limits<std::int64_t>::max());
  EXPECT_EQ(error_of(m), "InferRequest 42: deadline_us: time 9223372036854775807 past the clock's range (at most 2^62 us)");
  m = valid_request();
  m.set_arrival_us(kMaxWireTimeUs + 1);
  EXPECT_NE(error_of(m).find("arrival_us: time"), std::string::npos);
  m = valid_request();
  m.set_run_zero_us(-3);
  EXPECT_EQ(error_of(m), "InferRequest 42: run_zero_us: negative time -3");
  m = valid_request();
  m.set_deadline_us(kMaxWireTimeUs);
  EXPECT_EQ(error_of(m), "(no error)");
}

TEST(CheckRequest, OversizedModelOrSessionIsRefused) {
  rpc::InferRequest m = valid_request();
  m.set_model(std::string(kMaxWireTextBytes + 1, 'm'));
  EXPECT_EQ(error_of(m), "InferRequest 42: model: 4097 bytes is more than the limit of 4096");
  m = valid_request();
  m.set_session(std::string(10000, 's'));
  EXPECT_EQ(error_of(m), "InferRequest 42: session: 10000 bytes is more than the limit of 4096");
}

TEST(FromWire, ARequestSurvivesTheRoundTripAndDeadlineZeroMeansNone) {
  const rpc::InferRequest m = valid_request();
  const Request r = from_wire(m);
  EXPECT_EQ(r.id, 42u);
  EXPECT_EQ(r.arrival_us, 1000);
  EXPECT_EQ(r.input_tokens, 128);
  EXPECT_EQ(r.output_tokens, 16);
  EXPECT_EQ(r.deadline_us, 5000);
  EXPECT_EQ(to_wire(r).SerializeAsString(), m.SerializeAsString());
  EXPECT_EQ(from_wire(rpc::InferRequest()).deadline_us, kNever);
}

TEST(FromWire, APromptOfTokenIdsTravelsAsTokensAndIsHashedInItsBlocks) {
  rpc::InferRequest m = valid_request();
  m.set_session("");
  m.set_input_tokens(20);
  for (int i = 0; i < 20; ++i) m.add_prompt_token_ids(i * 3);
  EXPECT_EQ(error_of(m), "(no error)");
  const Request r = from_wire(m);
  ASSERT_TRUE(r.prefix.has_tokens());
  EXPECT_EQ(r.prefix.tokens().size(), 20u);
  EXPECT_EQ(r.prefix.block_tokens(), kTokenHashBlockTokens) << "hash_block_tokens 0: the default";
  EXPECT_EQ(r.prefix.size(), 1u);
  EXPECT_EQ(r.prefix, BlockHashes::from_tokens(std::vector<std::int32_t>(m.prompt_token_ids().begin(), m.prompt_token_ids().end()), 16));
  const rpc::InferRequest again = to_wire(r);
  EXPECT_EQ(again.hash_ids_size(), 0) << "the tokens travel, not their hashes";
  EXPECT_EQ(from_wire(again).prefix, r.prefix);
  m.set_hash_block_tokens(4);
  EXPECT_EQ(from_wire(m).prefix.size(), 5u);
}

TEST(CheckRequest, BadPromptTokenIdsAreRefusedNamingTheField) {
  rpc::InferRequest m = valid_request();
  m.set_input_tokens(3);
  m.add_prompt_token_ids(1);
  m.add_prompt_token_ids(2);
  EXPECT_EQ(error_of(m), "InferRequest 42: prompt_token_ids: 2 token ids for input_tokens 3");
  m.add_prompt_token_ids(-5);
  EXPECT_EQ(error_of(m), "InferRequest 42: prompt_token_ids: token id -5 at position 2 is negative");
  m.set_prompt_token_ids(2, 5);
  m.add_hash_ids(9);
  m.set_hash_block_tokens(16);
  EXPECT_EQ(error_of(m), "InferRequest 42: prompt_token_ids: give the prompt's hash_ids or its token ids, not both");
  m.clear_hash_ids();
  m.set_hash_block_tokens(-1);
  EXPECT_EQ(error_of(m), "InferRequest 42: hash_block_tokens: negative block size -1");
}

TEST(FromWire, AnUnknownOutcomeFromANewerPeerReadsAsDropped) {
  EXPECT_EQ(from_wire(static_cast<rpc::Outcome>(17)), Outcome::kDropped);
  EXPECT_EQ(from_wire(rpc::TIMED_OUT), Outcome::kTimedOut);
}

}  // namespace
}  // namespace twinfer::runtime
