#include "eddy/control/worker_launcher.h"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

extern char** environ;

namespace eddy::control {

std::string DescribeExit(int st) {
  if (WIFSIGNALED(st)) {
    int sig = WTERMSIG(st);
    const char* abbrev = sigabbrev_np(sig);
    return "killed by signal " + std::to_string(sig) +
           (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string());
  }
  if (WIFEXITED(st)) return "exited with status " + std::to_string(WEXITSTATUS(st));
  return "ended (wait status " + std::to_string(st) + ")";
}

ProcessLauncher::ProcessLauncher(ProcessLauncherOptions o) : o_(std::move(o)) {
  if (o_.worker_binary.empty()) {
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    std::vector<std::filesystem::path> candidates;
    if (!ec) {
      candidates.push_back(self.parent_path() / "eddy-worker");
      candidates.push_back(self.parent_path().parent_path() / "worker" / "eddy-worker");
      candidates.push_back(self.parent_path().parent_path().parent_path() / "worker" /
                           "eddy-worker");
    }
    for (const auto& c : candidates) {
      if (std::filesystem::exists(c, ec)) {
        o_.worker_binary = c.string();
        break;
      }
    }
    if (o_.worker_binary.empty()) o_.worker_binary = "eddy-worker";
  }
}

ProcessLauncher::~ProcessLauncher() {
  StopAll();
}

Status ProcessLauncher::Launch(const std::string& worker_id, const std::string& jobmanager,
                               int slots) {
  std::vector<std::string> args = {o_.worker_binary,
                                   "--id",
                                   worker_id,
                                   "--jobmanager",
                                   jobmanager,
                                   "--slots",
                                   std::to_string(slots),
                                   "--data-port",
                                   "0",
                                   "--bind",
                                   "127.0.0.1",
                                   "--network-buffers",
                                   std::to_string(o_.network_buffers),
                                   "--exit-with-parent"};
  // Several workers share this machine: each serves /metrics on any free loopback port, which it
  // logs and reports when it registers.
  for (const char* a : {"--metrics-port", "0", "--metrics-bind", "127.0.0.1"}) args.push_back(a);
  for (const auto& a : o_.extra_args) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, o_.worker_binary.c_str(), nullptr, nullptr, argv.data(), environ);
  if (rc != 0) {
    return Status::IOError("cannot start worker '" + worker_id + "' (" + o_.worker_binary +
                           "): " + std::strerror(rc));
  }
  running_[worker_id] = pid;
  return Status::Ok();
}

void ProcessLauncher::Stop(const std::string& worker_id) {
  auto it = running_.find(worker_id);
  if (it == running_.end()) return;
  ::kill(it->second, SIGTERM);
  for (int i = 0; i < 100; ++i) {
    int st;
    if (::waitpid(it->second, &st, WNOHANG) == it->second) {
      running_.erase(it);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(it->second, SIGKILL);
  int st;
  ::waitpid(it->second, &st, 0);
  running_.erase(it);
}

std::vector<WorkerLauncher::Exit> ProcessLauncher::PollExits() {
  std::vector<Exit> out;
  for (auto it = running_.begin(); it != running_.end();) {
    int st = 0;
    if (::waitpid(it->second, &st, WNOHANG) == it->second) {
      out.push_back({it->first, "process " + std::to_string(it->second) + " " + DescribeExit(st)});
      it = running_.erase(it);
    } else {
      ++it;
    }
  }
  return out;
}

void ProcessLauncher::StopAll() {
  for (auto& [id, pid] : running_) ::kill(pid, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (!running_.empty() && std::chrono::steady_clock::now() < deadline) {
    PollExits();
    if (!running_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& [id, pid] : running_) {
    ::kill(pid, SIGKILL);
    int st;
    ::waitpid(pid, &st, 0);
  }
  running_.clear();
}

pid_t ProcessLauncher::pid(const std::string& worker_id) const {
  auto it = running_.find(worker_id);
  return it == running_.end() ? -1 : it->second;
}

}  // namespace eddy::control
