#pragma once

#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

#include "eddy/control/local_executor.h"
#include "eddy/datastream.h"
#include "tests/backend_test.h"

namespace eddy::testing {

/// Collects everything a sink receives, from any number of subtasks (thread-safe).
template <class T>
class Collected {
 public:
  void Add(const T& v, Timestamp ts) {
    std::lock_guard lock(mu_);
    values_.push_back(v);
    timestamps_.push_back(ts);
  }
  std::vector<T> values() const {
    std::lock_guard lock(mu_);
    return values_;
  }
  std::vector<T> sorted() const {
    auto v = values();
    std::sort(v.begin(), v.end());
    return v;
  }

 private:
  mutable std::mutex mu_;
  std::vector<T> values_;
  std::vector<Timestamp> timestamps_;
};

template <class T>
std::shared_ptr<Collected<T>> CollectInto(DataStream<T> s) {
  auto c = std::make_shared<Collected<T>>();
  s.AddSink([c](const T& v, Timestamp ts) { c->Add(v, ts); }, "Collect");
  return c;
}

/// Runs the job in this process with the keyed state backend of the running test.
inline control::JobResult RunJob(StreamExecutionEnvironment& env) {
  control::LocalExecutorOptions options;
  options.task.state_backend = TestBackendKind();
  control::LocalExecutor ex(options);
  return ex.Execute(env.graph());
}

}  // namespace eddy::testing
