// Mooncake traces (Qin et al., 2024): one JSON object a line,
// {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]}.
#include <string>
#include <vector>

#include "traces/json_line.h"
#include "traces/trace_formats.h"

namespace twinfer {

namespace {

enum MooncakeKey : std::size_t { kTimestamp, kInputLength, kOutputLength, kHashIds, kKeys };

constexpr const char* kKeyNames[kKeys] = {"timestamp", "input_length", "output_length", "hash_ids"};

std::size_t key_index(std::string_view key) {
  for (std::size_t k = 0; k < kKeys; ++k) {
    if (key == kKeyNames[k]) return k;
  }
  return kKeys;
}

// The ids between the array's brackets. The first names the first prefix-cache block, so requests
// that share a prompt prefix also share a session key ("h<first id>") and session-affinity routing
// keeps them on one worker.
std::vector<std::uint64_t> hash_ids_of(const JsonMember& member, const LineLocation& at) {
  require_json_kind(member, JsonKind::kArray, at);
  return parse_hash_id_list(json_array_elements(member), ',', member.key, at);
}

Request parse_mooncake_object(const std::vector<JsonMember>& members, const LineLocation& at, SharedStrings& sessions,
                              HashIdSharing& sharing) {
  Request r;
  std::vector<std::uint64_t> ids;
  bool seen[kKeys] = {};
  for (const auto& member : members) {
    const std::size_t key = key_index(member.key);
    if (key == kKeys) at.fail(member.key, "unknown key; valid keys: timestamp, input_length, output_length, hash_ids");
    if (seen[key]) at.fail(member.key, "duplicate key");
    seen[key] = true;
    if (key == kHashIds) {
      ids = hash_ids_of(member, at);
      if (!ids.empty()) r.session = sessions("h" + std::to_string(ids.front()));
      continue;
    }
    require_json_kind(member, JsonKind::kNumber, at);
    if (key == kTimestamp) r.arrival_us = parse_ms_as_us(member.raw, member.key, at);
    if (key == kInputLength) r.input_tokens = parse_token_count(member.raw, member.key, at);
    if (key == kOutputLength) r.output_tokens = parse_token_count(member.raw, member.key, at);
  }
  for (std::size_t key : {kTimestamp, kInputLength, kOutputLength}) {
    if (!seen[key]) at.fail(kKeyNames[key], "missing key");
  }
  r.prefix = make_block_hashes(std::move(ids), kDefaultHashBlockTokens, r.input_tokens, r.session, sharing,
                               kKeyNames[kHashIds], at);
  return r;
}

}  // namespace

void parse_mooncake_jsonl(TextBlocks& text, const RequestSink& sink) {
  SharedStrings sessions;
  HashIdSharing sharing;
  for_each_json_line(text, [&](const std::vector<JsonMember>& members, const LineLocation& at) {
    sink(parse_mooncake_object(members, at, sessions, sharing));
  });
}

}  // namespace twinfer
