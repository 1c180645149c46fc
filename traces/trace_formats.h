// The trace formats, one reader each (internal to traces/; read_trace() and for_each_request()
// are the public entries). Each reader takes the file's text (whole or a block at a time) and
// passes its requests to `sink` in file order: ids unset, arrivals as written (absolute formats
// not yet rebased). Errors throw twinfer::Error "<path>:<line>: <field>: <problem>".
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/request.h"
#include "traces/text_input.h"
#include "traces/trace.h"

namespace twinfer {

using RequestSink = std::function<void(Request&&)>;

void parse_native_csv(TextBlocks& text, const RequestSink& sink);
void parse_native_jsonl(TextBlocks& text, const RequestSink& sink);
void parse_azure_csv(TextBlocks& text, const RequestSink& sink);
void parse_burstgpt_csv(TextBlocks& text, const RequestSink& sink);
void parse_mooncake_jsonl(TextBlocks& text, const RequestSink& sink);

// The format `auto` resolves to for this file: "native_csv", "native_jsonl", "azure", "burstgpt"
// or "mooncake", chosen by the extension of `path` and the first line of `text`.
std::string detect_trace_format(const std::string& path, std::string_view text);

// An Azure TIMESTAMP "YYYY-MM-DD HH:MM:SS[.fraction]" as microseconds since 1970-01-01 00:00:00
// (proleptic Gregorian calendar, no time zone); digits past the sixth fractional one round half up.
TimeUs parse_azure_timestamp_us(std::string_view text, const LineLocation& at);

// Mooncake's hash ids cover blocks of this many prompt tokens; the native formats' default.
inline constexpr int kDefaultHashBlockTokens = 512;

// Hash ids as a trace writes them: non-negative integers separated by `separator` (',' between a
// JSON array's brackets, ' ' in a CSV field), blanks around each allowed. Errors name `field`.
std::vector<std::uint64_t> parse_hash_id_list(std::string_view list, char separator, std::string_view field,
                                              const LineLocation& at);
// Token ids as a trace writes them, as hash ids are: non-negative integers below 2^31.
std::vector<std::int32_t> parse_token_id_list(std::string_view list, char separator, std::string_view field,
                                              const LineLocation& at);
// Shares hash-id arrays between the requests of one trace as it is read, as the turns of a
// conversation re-send its history: a request whose ids extend those of the last request of its
// session (without a session: of the last whose ids began with the same id), or repeat their
// start, reads the same array, so that a multi-turn trace holds each conversation's ids once. One
// per read; the sessions it is given must outlive it.
class HashIdSharing {
 public:
  BlockHashes share(const SharedString& session, std::vector<std::uint64_t> ids, int block_tokens);

 private:
  struct Last {
    std::shared_ptr<std::vector<std::uint64_t>> ids;
    int block_tokens = 0;
  };
  std::unordered_map<std::string_view, Last> by_session_;
  std::unordered_map<std::uint64_t, Last> by_first_id_;
};

// The ids of a request of `input_tokens` prompt tokens in blocks of `block_tokens`: at most one id
// per block (fewer: only the first blocks are described), shared through `sharing` with the
// request's `session`. Errors name `field`.
BlockHashes make_block_hashes(std::vector<std::uint64_t> ids, std::int64_t block_tokens, std::int32_t input_tokens,
                              const SharedString& session, HashIdSharing& sharing, std::string_view field,
                              const LineLocation& at);

// A prompt of `input_tokens` given as its token ids (exactly that many), hashed in blocks of
// `block_tokens` (BlockHashes::from_tokens). Errors name `field`.
BlockHashes make_token_block_hashes(std::vector<std::int32_t> tokens, std::int64_t block_tokens,
                                    std::int32_t input_tokens, std::string_view field, const LineLocation& at);

// The native formats as text (see write_trace()).
std::string format_native_csv(const Trace& trace);
std::string format_native_jsonl(const Trace& trace);

}  // namespace twinfer
