// MakeKeyedStateBackend and the local working directories of RocksDB backends.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <set>

#include "eddy/state/keyed_state.h"

namespace eddy {

Result<std::unique_ptr<KeyedStateBackend>> MakeKeyedStateBackend(
    StateBackendKind kind, int max_parallelism, KeyGroupRange range, Clock clock,
    const std::string& local_dir, const RocksDBStateOptions& rocksdb_options) {
  if (kind == StateBackendKind::kHeap) {
    return std::unique_ptr<KeyedStateBackend>(
        std::make_unique<HeapKeyedStateBackend>(max_parallelism, range, std::move(clock)));
  }
  {
    // Once per process and base folder: working directories of processes that died without
    // cleaning up (SIGKILL, OOM) would otherwise pile up with every restart.
    static std::mutex mu;
    static std::set<std::string> swept;
    std::string base = std::filesystem::path(local_dir).parent_path().string();
    std::lock_guard lock(mu);
    if (swept.insert(base).second) RemoveStaleLocalStateDirs(base);
  }
  EDDY_ASSIGN_OR_RETURN(
      auto b, RocksDBKeyedStateBackend::Make(max_parallelism, range, std::move(clock), local_dir,
                                             rocksdb_options));
  return std::unique_ptr<KeyedStateBackend>(std::move(b));
}

std::string UniqueLocalStateDir(std::string_view base, std::string_view hint) {
  static std::atomic<uint64_t> counter{0};
  std::string dir;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    dir = (tmp != nullptr && *tmp != '\0') ? tmp : "/tmp";
    dir += "/eddy-state";
  } else {
    dir.assign(base);
  }
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string name;
  for (char c : hint) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    name.push_back(ok ? c : '_');
  }
  if (name.empty() || name == "." || name == "..") name = "state";
  if (name.size() > 100) name.resize(100);
  return dir + "/" + name + "-" + std::to_string(::getpid()) + "-" +
         std::to_string(counter.fetch_add(1));
}

size_t RemoveStaleLocalStateDirs(const std::string& base) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::directory_iterator it(base, ec);
  if (ec) return 0;
  size_t removed = 0;
  for (const auto& entry : it) {
    if (!entry.is_directory(ec)) continue;
    // `<hint>-<pid>-<n>`: the pid is the second number from the end.
    const std::string name = entry.path().filename().string();
    const size_t last = name.rfind('-');
    if (last == std::string::npos || last == 0) continue;
    const size_t prev = name.rfind('-', last - 1);
    if (prev == std::string::npos) continue;
    int64_t pid = 0;
    const char* first = name.data() + prev + 1;
    const char* end = name.data() + last;
    auto [ptr, err] = std::from_chars(first, end, pid);
    if (err != std::errc() || ptr != end || pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive, or unsure
    fs::remove_all(entry.path(), ec);
    if (!ec) ++removed;
  }
  return removed;
}

}  // namespace eddy
