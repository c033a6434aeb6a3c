// StreamGraph -> JobGraph: chaining rules, default partitioners, validation, slots and the plan
// renderings (text, dot, JSON).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "eddy/datastream.h"

namespace eddy {
namespace {

std::vector<std::string> VertexNames(const JobGraph& jg) {
  std::vector<std::string> r;
  for (const auto& v : jg.vertices()) r.push_back(v.name);
  return r;
}

JobGraph Plan(StreamExecutionEnvironment& env) {
  auto jg = JobGraph::FromStreamGraph(env.graph());
  EXPECT_TRUE(jg.ok()) << jg.status().ToString();
  return std::move(jg).value();
}

DataStream<int64_t> Numbers(StreamExecutionEnvironment& env, int parallelism = 0) {
  return env.FromSource<int64_t>(
      [] {
        return std::make_unique<CollectionReader<int64_t>>(
            std::make_shared<const std::vector<int64_t>>());
      },
      "Numbers", MakeTypeInfo<int64_t>(), parallelism);
}

auto Inc = [](const int64_t& v) { return v + 1; };
auto Even = [](const int64_t& v) { return v % 2 == 0; };
auto Drop = [](const int64_t&, Timestamp) {};

// ---------------------------------------------------------------------------------------------
// Chaining
// ---------------------------------------------------------------------------------------------

TEST(ChainingTest, ForwardEdgesWithEqualParallelismChainIntoOneVertex) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  Numbers(env).Map(Inc).Filter(Even).AddSink(Drop, "Out");
  JobGraph jg = Plan(env);
  ASSERT_EQ(jg.vertices().size(), 1u);
  EXPECT_EQ(jg.vertices()[0].name, "Source: Numbers -> Map -> Filter -> Out");
  EXPECT_EQ(jg.vertices()[0].parallelism, 2);
  EXPECT_EQ(jg.vertices()[0].nodes.size(), 4u);
  EXPECT_EQ(jg.vertices()[0].head, NodeId(0));
  EXPECT_TRUE(jg.edges().empty());
  for (const auto& n : env.graph().nodes()) EXPECT_EQ(jg.VertexOf(n.id), VertexId(0));
}

TEST(ChainingTest, DifferentParallelismBreaksTheChainWithRebalance) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  auto m = Numbers(env, 1).Map(Inc);  // source 1 -> map 2: default partitioner
  m.Filter(Even).AddSink(Drop, "Out");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg), (std::vector<std::string>{"Source: Numbers", "Map -> Filter -> Out"}));
  ASSERT_EQ(jg.edges().size(), 1u);
  EXPECT_EQ(jg.edges()[0].stream_edge->partitioner, PartitionerKind::kRebalance);
  EXPECT_EQ(jg.edges()[0].source, VertexId(0));
  EXPECT_EQ(jg.edges()[0].target, VertexId(1));
}

TEST(ChainingTest, DefaultPartitionerResolvesToForwardOrRebalance) {
  StreamExecutionEnvironment env;
  env.SetParallelism(3);
  auto src = Numbers(env);
  auto same = src.Map(Inc, "Same");
  auto wider = src.Map(Inc, "Wider");
  wider.SetParallelism(5);
  auto& g = env.graph();
  for (const auto& e : g.edges()) EXPECT_TRUE(e.default_partitioner);
  ASSERT_TRUE(g.Finalize().ok());
  ASSERT_TRUE(g.Finalize().ok()) << "idempotent";
  for (const auto& e : g.edges()) {
    EXPECT_EQ(e.partitioner,
              e.target == same.node().id ? PartitionerKind::kForward : PartitionerKind::kRebalance);
  }
  // An explicit choice is kept even when the parallelisms match.
  StreamExecutionEnvironment env2;
  env2.SetParallelism(3);
  Numbers(env2).Rebalance().Map(Inc).AddSink(Drop);
  JobGraph jg = Plan(env2);
  EXPECT_EQ(jg.vertices().size(), 2u);
  EXPECT_EQ(jg.edges()[0].stream_edge->partitioner, PartitionerKind::kRebalance);
}

TEST(ChainingTest, ExplicitForwardBetweenDifferentParallelismsIsRejected) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  Numbers(env, 1).Forward().Map(Inc, "Doubler").AddSink(Drop);
  auto jg = JobGraph::FromStreamGraph(env.graph());
  ASSERT_FALSE(jg.ok());
  EXPECT_EQ(jg.status().code(), StatusCode::kInvalidArgument);
  const std::string& m = jg.status().message();
  EXPECT_NE(m.find("forward edge 'Numbers' -> 'Doubler'"), std::string::npos) << m;
  EXPECT_NE(m.find("1 vs 2"), std::string::npos) << m;
  EXPECT_NE(m.find("rebalance"), std::string::npos) << m;
}

TEST(ChainingTest, DifferentSlotSharingGroupsDoNotChain) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  auto m = Numbers(env).Map(Inc);
  m.SlotSharingGroup("heavy");
  m.Filter(Even).SlotSharingGroup("heavy");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg), (std::vector<std::string>{"Source: Numbers", "Map -> Filter"}));
  EXPECT_EQ(jg.vertices()[1].slot_sharing_group, "heavy");
  EXPECT_EQ(jg.edges()[0].stream_edge->partitioner, PartitionerKind::kForward);
}

TEST(ChainingTest, DisableChainingIsolatesTheOperator) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  Numbers(env).Map(Inc).DisableChaining().Filter(Even).AddSink(Drop, "Out");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg), (std::vector<std::string>{"Source: Numbers", "Map", "Filter -> Out"}));
  EXPECT_EQ(jg.edges().size(), 2u);
}

TEST(ChainingTest, StartNewChainBreaksOnlyBeforeTheOperator) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  Numbers(env).Map(Inc).StartNewChain().Filter(Even).AddSink(Drop, "Out");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg), (std::vector<std::string>{"Source: Numbers", "Map -> Filter -> Out"}));
}

TEST(ChainingTest, ChainingDisabledForTheJob) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  env.DisableOperatorChaining();
  Numbers(env).Map(Inc).Filter(Even).AddSink(Drop, "Out");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg), (std::vector<std::string>{"Source: Numbers", "Map", "Filter", "Out"}));
  for (const auto& e : jg.edges()) EXPECT_EQ(e.stream_edge->partitioner, PartitionerKind::kForward);
}

TEST(ChainingTest, AnOperatorWithSeveralInputsIsAlwaysAChainHead) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  auto a = Numbers(env);
  auto b = Numbers(env);
  a.Union({b}).Map(Inc, "AfterUnion").Filter(Even).AddSink(Drop, "Out");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg), (std::vector<std::string>{"Source: Numbers", "Source: Numbers",
                                                       "AfterUnion -> Filter -> Out"}));
  EXPECT_EQ(jg.edges().size(), 2u);
  // A sink reading two streams is a head too.
  StreamExecutionEnvironment env2;
  env2.SetParallelism(2);
  auto x = Numbers(env2).Map(Inc, "X");
  auto y = Numbers(env2).Map(Inc, "Y");
  x.Union({y}).AddSink(Drop, "Both");
  JobGraph jg2 = Plan(env2);
  EXPECT_EQ(VertexNames(jg2),
            (std::vector<std::string>{"Source: Numbers -> X", "Source: Numbers -> Y", "Both"}));
}

TEST(ChainingTest, KeyByEdgesAreNotChainedAndFanOutChainsBothBranches) {
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  auto src = Numbers(env).Map(Inc);
  src.KeyBy([](const int64_t& v) { return v % 3; }).Reduce([](int64_t a, int64_t b) {
    return a + b;
  });
  src.Filter(Even).AddSink(Drop, "Evens");
  JobGraph jg = Plan(env);
  EXPECT_EQ(VertexNames(jg),
            (std::vector<std::string>{"Source: Numbers -> Map -> Filter -> Evens", "Reduce"}));
  ASSERT_EQ(jg.edges().size(), 1u);
  EXPECT_EQ(jg.edges()[0].stream_edge->partitioner, PartitionerKind::kHash);
}

// ---------------------------------------------------------------------------------------------
// Validation, max parallelism, slots
// ---------------------------------------------------------------------------------------------

TEST(GraphValidationTest, ParallelismLimits) {
  {
    StreamExecutionEnvironment env;
    Numbers(env).Map(Inc).SetParallelism(0);
    auto st = env.graph().Validate();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("parallelism must be >= 1"), std::string::npos) << st.message();
  }
  {
    StreamExecutionEnvironment env;
    env.SetMaxParallelism(4);
    Numbers(env, 4).Rebalance().Map(Inc, "Wide").SetParallelism(8);
    auto st = env.graph().Finalize();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("'Wide': parallelism 8 exceeds max parallelism 4"),
              std::string::npos)
        << st.message();
  }
  {
    StreamExecutionEnvironment env;
    Numbers(env).Map(Inc, "Capped").SetMaxParallelism(2).SetParallelism(3);
    EXPECT_FALSE(JobGraph::FromStreamGraph(env.graph()).ok()) << "a node's own max parallelism";
  }
}

TEST(GraphValidationTest, MissingInputsAndCycles) {
  {
    StreamGraph g;
    StreamNode n;
    n.name = "Orphan";
    g.AddNode(n);
    auto st = g.Validate();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("'Orphan' has no input"), std::string::npos);
  }
  {
    // A two-input operator with only its first input connected.
    class Two final : public TwoInputOperator<int64_t, int64_t, int64_t> {
     protected:
      void Process1(const int64_t&, Timestamp) override {}
      void Process2(const int64_t&, Timestamp) override {}
    };
    StreamExecutionEnvironment env;
    auto src = Numbers(env);
    StreamNode n;
    n.name = "Join";
    n.out_type = MakeTypeInfo<int64_t>();
    n.factory = [] { return std::make_unique<Two>(); };
    NodeId id = env.graph().AddNode(n);
    src.ConnectTo(id, 0);
    auto st = env.graph().Validate();
    EXPECT_FALSE(st.ok());
    EXPECT_NE(st.message().find("'Join' input 2 is not connected"), std::string::npos)
        << st.message();
    src.ConnectTo(id, 1);
    EXPECT_TRUE(env.graph().Validate().ok());
  }
  {
    StreamGraph g;
    StreamNode s;
    s.name = "S";
    s.is_source = true;
    NodeId a = g.AddNode(s);
    StreamNode m;
    m.name = "M1";
    NodeId b = g.AddNode(m);
    m.name = "M2";
    NodeId c = g.AddNode(m);
    for (auto [from, to] : {std::pair{a, b}, std::pair{c, b}, std::pair{b, c}}) {
      StreamEdge e;
      e.source = from;
      e.target = to;
      g.AddEdge(e);
    }
    auto jg = JobGraph::FromStreamGraph(g);
    ASSERT_FALSE(jg.ok());
    EXPECT_NE(jg.status().message().find("cycle"), std::string::npos) << jg.status().message();
  }
}

TEST(GraphValidationTest, EffectiveMaxParallelismAndPerVertexOverride) {
  {
    StreamExecutionEnvironment env;
    env.SetParallelism(200);
    Numbers(env).AddSink(Drop);
    EXPECT_EQ(env.graph().EffectiveMaxParallelism(), DefaultMaxParallelism(200));
    EXPECT_EQ(env.graph().EffectiveMaxParallelism(), 512);
  }
  StreamExecutionEnvironment env;
  env.SetParallelism(2);
  env.SetMaxParallelism(64);
  auto m = Numbers(env).Rebalance().Map(Inc);
  m.SetMaxParallelism(16);
  m.AddSink(Drop);
  JobGraph jg = Plan(env);
  EXPECT_EQ(env.graph().EffectiveMaxParallelism(), 64);
  ASSERT_EQ(jg.vertices().size(), 2u);
  EXPECT_EQ(jg.vertices()[0].max_parallelism, 64);
  EXPECT_EQ(jg.vertices()[1].max_parallelism, 16);
}

TEST(GraphValidationTest, RequiredSlotsSumsTheHighestParallelismPerSharingGroup) {
  StreamExecutionEnvironment env;
  env.SetParallelism(4);
  auto src = Numbers(env, 2);
  auto m = src.Rebalance().Map(Inc);  // parallelism 4, default group
  auto heavy = m.Rebalance().Map(Inc, "Heavy");
  heavy.SetParallelism(3).SlotSharingGroup("heavy");
  heavy.Rebalance().Map(Inc, "Heavy2").SetParallelism(2).SlotSharingGroup("heavy");
  JobGraph jg = Plan(env);
  EXPECT_EQ(jg.RequiredSlots(), 4 + 3);
  StreamExecutionEnvironment one;
  one.SetParallelism(5);
  Numbers(one).Map(Inc).AddSink(Drop);
  EXPECT_EQ(Plan(one).RequiredSlots(), 5);
}

// ---------------------------------------------------------------------------------------------
// Plan renderings
// ---------------------------------------------------------------------------------------------

TEST(PlanTest, TextDotAndJsonDescribeVerticesAndEdges) {
  StreamExecutionEnvironment env;
  env.SetJobName("plan-job");
  env.SetParallelism(2);
  OutputTag<int64_t> late("late-data");
  auto windows = Numbers(env)
                     .KeyBy([](const int64_t& v) { return v % 2; })
                     .Window(TumblingEventTimeWindows<int64_t>(Duration::Seconds(5)))
                     .SideOutputLateData(late)
                     .Reduce([](int64_t a, int64_t b) { return a + b; });
  windows.AddSink(Drop, "Results");
  windows.GetSideOutput(late)
      .Map(Inc, "LateMap")
      .SetParallelism(1)
      .SlotSharingGroup("side")
      .Uid("late-map");
  JobGraph jg = Plan(env);
  ASSERT_EQ(jg.vertices().size(), 3u);

  std::string text = jg.ToText();
  EXPECT_NE(text.find("Job: plan-job (max parallelism 128, slots 3)"), std::string::npos) << text;
  EXPECT_NE(text.find("[0] Source: Numbers  parallelism=2"), std::string::npos) << text;
  EXPECT_NE(text.find("Window(TumblingEventTimeWindows(5s), reduce) -> Results  parallelism=2"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("<- [0] HASH"), std::string::npos) << text;
  EXPECT_NE(text.find("LateMap  parallelism=1 slotSharingGroup=side"), std::string::npos) << text;
  EXPECT_NE(text.find("<- [1] REBALANCE (side output late-data)"), std::string::npos) << text;

  std::string dot = jg.ToDot();
  EXPECT_EQ(dot.rfind("digraph \"plan-job\" {", 0), 0u) << dot;
  EXPECT_NE(dot.find("v0 -> v1 [label=\"HASH\"]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("v1 -> v2 [label=\"REBALANCE\"]"), std::string::npos) << dot;
  EXPECT_NE(dot.find("parallelism 1"), std::string::npos) << dot;
  EXPECT_EQ(dot.back(), '\n');

  auto j = nlohmann::json::parse(jg.ToJson());
  EXPECT_EQ(j["name"], "plan-job");
  EXPECT_EQ(j["maxParallelism"], 128);
  EXPECT_EQ(j["slots"], 3);
  ASSERT_EQ(j["nodes"].size(), 3u);
  EXPECT_EQ(j["nodes"][0]["inputs"].size(), 0u);
  EXPECT_EQ(j["nodes"][1]["inputs"][0]["ship_strategy"], "HASH");
  EXPECT_EQ(j["nodes"][1]["inputs"][0]["id"], 0);
  EXPECT_EQ(j["nodes"][1]["operators"].size(), 2u);
  EXPECT_EQ(j["nodes"][2]["operators"][0]["uid"], "late-map");
  EXPECT_EQ(j["nodes"][2]["slotSharingGroup"], "side");
  EXPECT_EQ(j["nodes"][2]["parallelism"], 1);
  EXPECT_EQ(j["nodes"][2]["inputs"][0]["ship_strategy"], "REBALANCE");
}

TEST(PlanTest, TwoInputEdgesAreMarked) {
  class Two final : public TwoInputOperator<int64_t, int64_t, int64_t> {
   protected:
    void Process1(const int64_t&, Timestamp) override {}
    void Process2(const int64_t&, Timestamp) override {}
  };
  StreamExecutionEnvironment env;
  auto a = Numbers(env);
  auto b = Numbers(env);
  StreamNode n;
  n.name = "Pair";
  n.out_type = MakeTypeInfo<int64_t>();
  n.factory = [] { return std::make_unique<Two>(); };
  NodeId id = env.graph().AddNode(n);
  a.ConnectTo(id, 0);
  b.ConnectTo(id, 1);
  JobGraph jg = Plan(env);
  std::string text = jg.ToText();
  EXPECT_NE(text.find("<- [1] FORWARD input 2"), std::string::npos) << text;
  auto j = nlohmann::json::parse(jg.ToJson());
  EXPECT_EQ(j["nodes"][2]["inputs"][1]["input"], 1);
}

}  // namespace
}  // namespace eddy
