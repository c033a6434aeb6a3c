// The seed's watermark walkthrough through the C++ API: 5 s tumbling event-time windows with
// 3 s bounded out-of-orderness; window [0, 5) fires when the 8 s element arrives and holds
// 1, 4, 2, 3 (seconds); the 4.1 s element is late and goes to a side output.
//
//   build/examples/example_window_walkthrough

#include <cstdio>

#include "eddy/control/local_executor.h"
#include "eddy/datastream.h"

int main() {
  eddy::StreamExecutionEnvironment env;
  env.SetParallelism(1);
  std::vector<int64_t> ms = {1000, 4000, 5000, 2000, 3000, 6000, 7000, 5000, 8000, 4100};
  auto events = env.FromCollection(ms).AssignTimestampsAndWatermarks(
      eddy::WatermarkStrategy<int64_t>::ForBoundedOutOfOrderness(eddy::Duration::Seconds(3))
          .WithTimestampAssigner([](const int64_t& t) { return eddy::Timestamp(t); })
          .WithInterval(eddy::Duration::Millis(0)));

  class ListWindow final : public eddy::ProcessWindowFunction<int64_t, std::string> {
   public:
    void Process(eddy::WindowContext& ctx, const std::vector<int64_t>& els,
                 eddy::Collector<std::string>& out) override {
      std::string s =
          "[" + std::to_string(ctx.window().start) + ", " + std::to_string(ctx.window().end) + "):";
      for (int64_t e : els) s += " " + std::to_string(e);
      out.Collect(s);
    }
  };
  eddy::OutputTag<int64_t> late("late");
  auto windows =
      events.WindowAll(eddy::TumblingEventTimeWindows<int64_t>(eddy::Duration::Seconds(5)))
          .SideOutputLateData(late)
          .Process<std::string>([] { return std::make_shared<ListWindow>(); });
  windows.Print("window");
  windows.GetSideOutput(late).Print("late");

  eddy::control::LocalExecutor executor;
  auto result = executor.Execute(env.graph());
  return result.status.ok() ? 0 : 1;
}
