#include <charconv>
#include <string>

#include "traces/trace_formats.h"

namespace twinfer {

std::vector<std::uint64_t> parse_hash_id_list(std::string_view list, char separator, std::string_view field,
                                              const LineLocation& at) {
  std::vector<std::uint64_t> ids;
  list = trim(list);
  if (list.empty()) return ids;
  for (;;) {
    const std::size_t end = separator == ' ' ? list.find_first_of(" \t") : list.find(separator);
    const std::string_view text = trim(list.substr(0, end));
    std::uint64_t id = 0;
    const char* last = text.data() + text.size();
    const auto result = std::from_chars(text.data(), last, id);
    if (text.empty() || result.ec != std::errc() || result.ptr != last) {
      at.fail(field, "expected non-negative integer hash ids, got " + quoted(text));
    }
    ids.push_back(id);
    if (end == std::string_view::npos) break;
    list = trim(list.substr(end + 1));
    if (separator == ' ' && list.empty()) break;
  }
  return ids;
}

BlockHashes make_block_hashes(std::vector<std::uint64_t> ids, std::int64_t block_tokens, std::int32_t input_tokens,
                              std::string_view field, const LineLocation& at) {
  if (ids.empty()) return {};
  const std::int64_t blocks = (std::int64_t{input_tokens} + block_tokens - 1) / block_tokens;
  if (static_cast<std::int64_t>(ids.size()) > blocks) {
    at.fail(field, std::to_string(ids.size()) + " hash ids for " + std::to_string(input_tokens) + " input tokens in " +
                       std::to_string(block_tokens) + "-token blocks (at most " + std::to_string(blocks) + ")");
  }
  return BlockHashes(static_cast<int>(block_tokens), std::move(ids));
}

}  // namespace twinfer
