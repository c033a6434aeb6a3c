// The seed's examples through the C++ DataStream API: read sensor.txt, parse into SensorReading,
// then (1) the rolling reduce "max temperature with the latest timestamp" per sensor and (2) the
// TempConsIncreWarning KeyedProcessFunction (temperature rising for 10 s, event time).
//
//   build/examples/example_sensor_reduce [examples/data/sensor.txt]

#include <cstdio>
#include <sstream>
#include <string>

#include "eddy/control/local_executor.h"
#include "eddy/datastream.h"

struct SensorReading {
  std::string id;
  int64_t timestamp = 0;  // seconds, as in the seed's file
  double temperature = 0;
};
EDDY_SERIALIZABLE(SensorReading, id, timestamp, temperature);

std::ostream& operator<<(std::ostream& os, const SensorReading& r) {
  return os << "SensorReading{id='" << r.id << "', timestamp=" << r.timestamp
            << ", temperature=" << r.temperature << "}";
}

/// Alerts when a sensor's temperature rose with every reading for `interval` (the seed's class).
class TempConsIncreWarning final
    : public eddy::KeyedProcessFunction<std::string, SensorReading, std::string> {
 public:
  explicit TempConsIncreWarning(eddy::Duration interval) : interval_(interval) {}

  eddy::Status Open(eddy::RuntimeContext& ctx) override {
    last_temp_ = ctx.GetState(eddy::ValueStateDescriptor<double>{{"last-temp", {}}});
    timer_ts_ = ctx.GetState(eddy::ValueStateDescriptor<int64_t>{{"timer-ts", {}}});
    return eddy::Status::Ok();
  }

  void ProcessElement(const SensorReading& value, eddy::ProcessContext& ctx,
                      eddy::Collector<std::string>&) override {
    double last = last_temp_->Value().value_or(4.9e-324);  // Java's Double.MIN_VALUE
    const int64_t* timer = timer_ts_->Get();
    if (value.temperature > last && timer == nullptr) {
      eddy::Timestamp ts = ctx.timestamp() + interval_;
      ctx.timer_service()->RegisterEventTimeTimer(ts);
      timer_ts_->Update(ts.millis());
    } else if (value.temperature < last && timer != nullptr) {
      ctx.timer_service()->DeleteEventTimeTimer(eddy::Timestamp(*timer));
      timer_ts_->Clear();
    }
    last_temp_->Update(value.temperature);
  }

  void OnTimer(eddy::Timestamp, eddy::OnTimerContext& ctx,
               eddy::Collector<std::string>& out) override {
    out.Collect("sensor " + ctx.CurrentKey<std::string>() + ": temperature rose continuously for " +
                interval_.ToString());
    timer_ts_->Clear();
  }

 private:
  eddy::Duration interval_;
  eddy::ValueState<double>* last_temp_ = nullptr;
  eddy::ValueState<int64_t>* timer_ts_ = nullptr;
};

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "examples/data/sensor.txt";
  eddy::StreamExecutionEnvironment env;
  env.SetParallelism(1);

  auto readings = env.ReadTextFile(path).Map([](const std::string& line) {
    SensorReading r;
    std::stringstream ss(line);
    std::string field;
    std::getline(ss, r.id, ',');
    std::getline(ss, field, ',');
    r.timestamp = std::stoll(field);
    std::getline(ss, field, ',');
    r.temperature = std::stod(field);
    return r;
  });

  // (1) rolling reduce: the highest temperature so far, with the latest timestamp.
  readings.KeyBy([](const SensorReading& r) { return r.id; })
      .Reduce([](const SensorReading& cur, const SensorReading& next) {
        return SensorReading{cur.id, next.timestamp, std::max(cur.temperature, next.temperature)};
      })
      .Print("max");

  // (2) keyed process function with event-time timers.
  auto timed = readings.AssignTimestampsAndWatermarks(
      eddy::WatermarkStrategy<SensorReading>::ForMonotonousTimestamps()
          .WithTimestampAssigner(
              [](const SensorReading& r) { return eddy::Timestamp(r.timestamp * 1000); })
          .WithInterval(eddy::Duration::Millis(0)));
  timed.KeyBy([](const SensorReading& r) { return r.id; })
      .Process<std::string>(
          [] { return std::make_shared<TempConsIncreWarning>(eddy::Duration::Seconds(10)); })
      .Print("alert");

  eddy::control::LocalExecutor executor;
  auto result = executor.Execute(env.graph());
  if (!result.status.ok()) {
    std::fprintf(stderr, "job failed: %s\n", result.status.ToString().c_str());
    return 1;
  }
  return 0;
}
