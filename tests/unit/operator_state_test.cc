#include <gtest/gtest.h>

#include "eddy/state/operator_state.h"

namespace eddy {
namespace {

std::string Snapshot(
    std::initializer_list<
        std::pair<std::string, std::pair<OperatorStateStore::Mode, std::vector<std::string>>>>
        lists) {
  OperatorStateStore s;
  for (const auto& [name, v] : lists) s.Get(name, v.first).items = v.second;
  std::string out;
  SnapshotOperatorState(s, out);
  return out;
}

using Mode = OperatorStateStore::Mode;

TEST(OperatorStateTest, EvenSplitRedistributesAllElementsContiguously) {
  // 2 old subtasks with 3 offsets each (the seed's example) onto 3 new subtasks: 2 each.
  auto a = Snapshot({{"offsets", {Mode::kSplit, {"a1", "a2", "a3"}}}});
  auto b = Snapshot({{"offsets", {Mode::kSplit, {"b1", "b2", "b3"}}}});
  auto r = RedistributeOperatorState({a, b}, 3);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  std::vector<std::string> all;
  for (auto& s : *r) {
    auto& items = s.Get("offsets", Mode::kSplit).items;
    EXPECT_EQ(items.size(), 2u);
    all.insert(all.end(), items.begin(), items.end());
  }
  EXPECT_EQ(all, (std::vector<std::string>{"a1", "a2", "a3", "b1", "b2", "b3"}));
  // 7 elements onto 3: sizes 2, 2, 3 (differ by at most one).
  auto c = Snapshot({{"l", {Mode::kSplit, {"1", "2", "3", "4", "5", "6", "7"}}}});
  auto r2 = RedistributeOperatorState({c}, 3);
  ASSERT_TRUE(r2.ok());
  size_t lo = 100, hi = 0, sum = 0;
  for (auto& s : *r2) {
    size_t n = s.Get("l", Mode::kSplit).items.size();
    lo = std::min(lo, n);
    hi = std::max(hi, n);
    sum += n;
  }
  EXPECT_EQ(sum, 7u);
  EXPECT_LE(hi - lo, 1u);
}

TEST(OperatorStateTest, UnionGivesEverythingToEverySubtaskAndBroadcastOneCopy) {
  auto a = Snapshot({{"u", {Mode::kUnion, {"x"}}}, {"rules", {Mode::kBroadcast, {"r1", "r2"}}}});
  auto b =
      Snapshot({{"u", {Mode::kUnion, {"y", "z"}}}, {"rules", {Mode::kBroadcast, {"r1", "r2"}}}});
  auto r = RedistributeOperatorState({a, b}, 4);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->size(), 4u);
  for (auto& s : *r) {
    EXPECT_EQ(s.Get("u", Mode::kUnion).items, (std::vector<std::string>{"x", "y", "z"}));
    EXPECT_EQ(s.Get("rules", Mode::kBroadcast).items, (std::vector<std::string>{"r1", "r2"}));
  }
}

TEST(OperatorStateTest, CorruptSnapshotIsAnErrorNotACrash) {
  auto a = Snapshot({{"offsets", {Mode::kSplit, {"a1", "a2", "a3"}}}});
  for (size_t cut = 1; cut < a.size(); ++cut) {
    auto r = RedistributeOperatorState({a.substr(0, cut)}, 2);
    EXPECT_FALSE(r.ok()) << "cut " << cut;
  }
  EXPECT_FALSE(RedistributeOperatorState({"\x07garbage"}, 2).ok());
}

}  // namespace
}  // namespace eddy
