#include "core/id_table.h"

#include <random>
#include <string>
#include <unordered_map>

#include <gtest/gtest.h>

namespace twinfer {
namespace {

// Random inserts, lookups and erases agree with std::unordered_map, through growth and many
// backward-shift deletions (ids drawn from a small range collide in the table).
TEST(IdTable, AgreesWithAHashMapUnderRandomOperations) {
  std::mt19937_64 rng(7);
  for (RequestId range : {RequestId{40}, RequestId{5000}, RequestId{1} << 40}) {
    IdTable<std::string> table;
    std::unordered_map<RequestId, std::string> model;
    for (int op = 0; op < 20000; ++op) {
      const RequestId id = rng() % range;
      const bool present = model.count(id) > 0;
      ASSERT_EQ(table.find(id) != nullptr, present) << "op " << op;
      if (present && rng() % 2 == 0) {
        EXPECT_EQ(*table.find(id), model[id]);
        table.erase(id);
        model.erase(id);
      } else if (!present) {
        std::string& v = table.emplace(id);
        EXPECT_EQ(v, "");  // a reused value starts afresh
        v = std::to_string(id);
        model[id] = v;
      }
      ASSERT_EQ(table.size(), model.size());
    }
    for (const auto& [id, v] : model) EXPECT_EQ(*table.find(id), v);
    table.clear();
    EXPECT_EQ(table.size(), 0u);
    for (const auto& [id, v] : model) EXPECT_EQ(table.find(id), nullptr);
  }
}

TEST(IdTable, ValuesKeepTheirAddressWhileOthersComeAndGo) {
  IdTable<int> table;
  int& first = table.emplace(1);
  first = 42;
  for (RequestId id = 2; id < 1000; ++id) table.emplace(id) = int(id);
  for (RequestId id = 2; id < 1000; id += 2) table.erase(id);
  EXPECT_EQ(&first, table.find(1));
  EXPECT_EQ(first, 42);
}

}  // namespace
}  // namespace twinfer
