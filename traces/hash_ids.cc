#include <algorithm>
#include <charconv>
#include <memory>
#include <string>
#include <type_traits>

#include "traces/trace_formats.h"

namespace twinfer {

namespace {

// The blank-trimmed items of `list` separated by `separator` (' ': blanks), each a whole number of
// type T, not negative; otherwise fails naming `field` and what the items are (`what`).
template <typename T>
std::vector<T> parse_number_list(std::string_view list, char separator, std::string_view field, const char* what,
                                 const LineLocation& at) {
  std::vector<T> out;
  list = trim(list);
  if (list.empty()) return out;
  for (;;) {
    const std::size_t end = separator == ' ' ? list.find_first_of(" \t") : list.find(separator);
    const std::string_view text = trim(list.substr(0, end));
    T value = 0;
    const char* last = text.data() + text.size();
    const auto result = std::from_chars(text.data(), last, value);
    bool negative = false;
    if constexpr (std::is_signed_v<T>) negative = value < 0;
    if (text.empty() || result.ec != std::errc() || result.ptr != last || negative) {
      at.fail(field, std::string("expected non-negative integer ") + what + ", got " + quoted(text));
    }
    out.push_back(value);
    if (end == std::string_view::npos) break;
    list = trim(list.substr(end + 1));
    if (separator == ' ' && list.empty()) break;
  }
  return out;
}

}  // namespace

std::vector<std::uint64_t> parse_hash_id_list(std::string_view list, char separator, std::string_view field,
                                              const LineLocation& at) {
  return parse_number_list<std::uint64_t>(list, separator, field, "hash ids", at);
}

std::vector<std::int32_t> parse_token_id_list(std::string_view list, char separator, std::string_view field,
                                              const LineLocation& at) {
  return parse_number_list<std::int32_t>(list, separator, field, "token ids (below 2^31)", at);
}

// A conversation's next turn repeats the previous turn's ids but the last (its partial last block
// has grown), then adds its own. So the shared array holds a session's ids less each request's last
// one, which the request keeps to itself (BlockHashes' `last`).
BlockHashes HashIdSharing::share(const SharedString& session, std::vector<std::uint64_t> ids, int block_tokens) {
  if (ids.empty()) return {};
  Last& last = session.empty() ? by_first_id_[ids.front()] : by_session_[std::string_view(session.str())];
  const std::uint64_t own = ids.back();
  if (last.ids != nullptr && last.block_tokens == block_tokens) {
    std::vector<std::uint64_t>& known = *last.ids;
    const std::size_t n = std::min(known.size(), ids.size());
    const auto common = static_cast<std::size_t>(
        std::mismatch(known.begin(), known.begin() + static_cast<std::ptrdiff_t>(n), ids.begin()).first - known.begin());
    if (common == ids.size()) return BlockHashes(block_tokens, last.ids, ids.size(), false, 0);
    if (common == known.size()) {
      known.insert(known.end(), ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end() - 1);
      return BlockHashes(block_tokens, last.ids, ids.size() - 1, true, own);
    }
    if (common > 0 && common == ids.size() - 1) return BlockHashes(block_tokens, last.ids, common, true, own);
  }
  ids.pop_back();
  last.ids = std::make_shared<std::vector<std::uint64_t>>(std::move(ids));
  last.block_tokens = block_tokens;
  return BlockHashes(block_tokens, last.ids, last.ids->size(), true, own);
}

BlockHashes make_block_hashes(std::vector<std::uint64_t> ids, std::int64_t block_tokens, std::int32_t input_tokens,
                              const SharedString& session, HashIdSharing& sharing, std::string_view field,
                              const LineLocation& at) {
  if (ids.empty()) return {};
  const std::int64_t blocks = (std::int64_t{input_tokens} + block_tokens - 1) / block_tokens;
  if (static_cast<std::int64_t>(ids.size()) > blocks) {
    at.fail(field, std::to_string(ids.size()) + " hash ids for " + std::to_string(input_tokens) + " input tokens in " +
                       std::to_string(block_tokens) + "-token blocks (at most " + std::to_string(blocks) + ")");
  }
  return sharing.share(session, std::move(ids), static_cast<int>(block_tokens));
}

BlockHashes make_token_block_hashes(std::vector<std::int32_t> tokens, std::int64_t block_tokens,
                                    std::int32_t input_tokens, std::string_view field, const LineLocation& at) {
  if (tokens.size() != static_cast<std::size_t>(input_tokens)) {
    at.fail(field, std::to_string(tokens.size()) + " token ids for input_tokens " + std::to_string(input_tokens));
  }
  return BlockHashes::from_tokens(std::move(tokens), static_cast<int>(block_tokens));
}

}  // namespace twinfer
