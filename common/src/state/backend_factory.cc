// MakeKeyedStateBackend and the local working directories of RocksDB backends.

#include <unistd.h>

#include <atomic>
#include <cstdlib>

#include "eddy/state/keyed_state.h"

namespace eddy {

Result<std::unique_ptr<KeyedStateBackend>> MakeKeyedStateBackend(
    StateBackendKind kind, int max_parallelism, KeyGroupRange range, Clock clock,
    const std::string& local_dir, const RocksDBStateOptions& rocksdb_options) {
  if (kind == StateBackendKind::kHeap) {
    return std::unique_ptr<KeyedStateBackend>(
        std::make_unique<HeapKeyedStateBackend>(max_parallelism, range, std::move(clock)));
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

}  // namespace eddy
