#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "eddy/status.h"

namespace eddy::control {

/// What the ResourceManager asks of the platform: start a worker that registers itself with the
/// control plane, stop one, and learn which ones died. ProcessLauncher implements it with local
/// processes; the Kubernetes launcher with pods. Threading: the control plane's thread only.
class WorkerLauncher {
 public:
  struct Exit {
    std::string worker_id;
    std::string reason;  // "killed by signal 9 (SIGKILL)", "exited with status 1"
  };
  virtual ~WorkerLauncher() = default;
  /// Starts worker `worker_id` offering `slots`, registering at `jobmanager`.
  virtual Status Launch(const std::string& worker_id, const std::string& jobmanager, int slots) = 0;
  /// Stops a worker (graceful first).
  virtual void Stop(const std::string& worker_id) = 0;
  /// Workers that ended since the last call.
  virtual std::vector<Exit> PollExits() = 0;
  /// Stops every worker it started and waits for them.
  virtual void StopAll() = 0;
};

/// Options of local worker processes.
struct ProcessLauncherOptions {
  /// Path of the eddy-worker binary. Default: next to the running executable, else $PATH.
  std::string worker_binary;
  /// Network buffers per worker (32 KiB each).
  size_t network_buffers = 2048;
  /// Extra arguments for every worker.
  std::vector<std::string> extra_args;
};

/// Spawns `eddy-worker` processes on this machine (data plane on ephemeral loopback ports).
/// Workers die with the process that started them.
class ProcessLauncher final : public WorkerLauncher {
 public:
  explicit ProcessLauncher(ProcessLauncherOptions o = {});
  ~ProcessLauncher() override;
  Status Launch(const std::string& worker_id, const std::string& jobmanager, int slots) override;
  void Stop(const std::string& worker_id) override;
  std::vector<Exit> PollExits() override;
  void StopAll() override;
  /// The pid of a running worker, or -1.
  pid_t pid(const std::string& worker_id) const;

 private:
  ProcessLauncherOptions o_;
  std::map<std::string, pid_t> running_;
};

/// "killed by signal 9 (SIGKILL)" / "exited with status 1" for a waitpid status.
std::string DescribeExit(int wait_status);

}  // namespace eddy::control
