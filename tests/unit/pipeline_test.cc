#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace eddy {
namespace {

using testing::CollectInto;
using testing::RunJob;

TEST(PipelineTest, MapFilterFlatMapChain) {
  for (int p : {1, 2, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    auto lines = env.FromCollection<std::string>(
        {"sensor_1,1547718199,35.8", "sensor_6,1547718201,15.4", "sensor_7,1547718202,6.7"});
    auto lengths =
        CollectInto(lines.Map([](const std::string& s) { return static_cast<int64_t>(s.size()); }));
    auto fields = CollectInto(
        lines.FlatMap<std::string>([](const std::string& s, Collector<std::string>& out) {
          size_t start = 0;
          while (true) {
            size_t c = s.find(',', start);
            out.Collect(s.substr(start, c - start));
            if (c == std::string::npos) break;
            start = c + 1;
          }
        }));
    auto only1 =
        CollectInto(lines.Filter([](const std::string& s) { return s.rfind("sensor_1", 0) == 0; }));
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    EXPECT_EQ(lengths->sorted(), (std::vector<int64_t>{23, 24, 24}));
    EXPECT_EQ(fields->values().size(), 9u);
    EXPECT_EQ(only1->values(), std::vector<std::string>{"sensor_1,1547718199,35.8"});
  }
}

TEST(PipelineTest, KeyedRollingReduceAcrossParallelism) {
  for (int p : {1, 3, 4}) {
    StreamExecutionEnvironment env;
    env.SetParallelism(p);
    std::vector<std::pair<std::string, int64_t>> data;
    for (int i = 0; i < 1000; ++i) data.emplace_back("k" + std::to_string(i % 7), i);
    auto s = env.FromCollection(data).Rebalance().Map([](const auto& v) { return v; });
    auto sums = CollectInto(s.KeyBy([](const std::pair<std::string, int64_t>& v) {
                               return v.first;
                             }).Reduce([](const auto& a, const auto& b) {
      return std::make_pair(a.first, a.second + b.second);
    }));
    auto r = RunJob(env);
    ASSERT_TRUE(r.status.ok()) << r.status.ToString();
    auto v = sums->values();
    EXPECT_EQ(v.size(), 1000u);
    std::map<std::string, int64_t> last;
    for (auto& [k, x] : v) last[k] = std::max(last[k], x);
    int64_t total = 0;
    for (auto& [k, x] : last) total += x;
    EXPECT_EQ(total, 999 * 1000 / 2);
  }
}

}  // namespace
}  // namespace eddy
