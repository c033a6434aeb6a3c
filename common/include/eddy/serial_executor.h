#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace eddy {

/// Runs submitted jobs one after another on a thread of its own (checkpoint uploads, metadata
/// writes: I/O that must not block a task or the control loop). Lifecycle: the thread starts
/// with the object; the destructor runs what is queued, then joins. Threading: Submit from any
/// thread; jobs run on the executor's thread.
class SerialExecutor {
 public:
  explicit SerialExecutor(std::string name = "eddy-io");
  ~SerialExecutor();
  SerialExecutor(const SerialExecutor&) = delete;
  SerialExecutor& operator=(const SerialExecutor&) = delete;

  void Submit(std::move_only_function<void()> job);
  /// Jobs queued or running.
  size_t pending() const;

 private:
  void Loop();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::move_only_function<void()>> queue_;
  size_t running_ = 0;
  bool stop_ = false;
  std::string name_;
  std::thread thread_;
};

}  // namespace eddy
