#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "eddy/k8s/kube_client.h"

namespace eddy::k8s {

/// Keeps a local copy of one kind of object (client-go's reflector + store): lists, then
/// watches from the list's resourceVersion; follows bookmarks; re-lists when the server answers
/// 410 Gone; reconnects with backoff (1 s … 30 s) when the API server cannot be reached.
/// Handlers run on the informer's thread, after the cache changed.
class Informer {
 public:
  struct Options {
    /// Collection path, optionally with a query: "/api/v1/namespaces/ns/pods?labelSelector=…".
    std::string path;
    int watch_timeout_seconds = 300;
    /// type: ADDED, MODIFIED, DELETED (a re-list reports what vanished as DELETED).
    std::function<void(const std::string& type, const Json& object)> on_event;
    /// Called with every failure (list/watch), for logs and metrics.
    std::function<void(const Status&)> on_error;
  };
  explicit Informer(std::shared_ptr<KubeClient> client, Options options);
  ~Informer();  ///< stops
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();
  void Stop();
  /// True once the first list completed.
  bool Synced() const { return synced_.load(); }
  bool WaitForSync(int64_t timeout_ms);
  /// The cached object "namespace/name" (or "name" for cluster-scoped ones).
  std::optional<Json> Get(const std::string& key) const;
  std::vector<Json> List() const;
  /// Number of (re-)lists so far (tests watch 410 handling with it).
  uint64_t lists() const { return lists_.load(); }

  static std::string KeyOf(const Json& object);

 private:
  void Run();
  Status ListAll(std::string& resource_version);
  void Apply(const std::string& type, const Json& object);

  std::shared_ptr<KubeClient> client_;
  Options o_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Json> cache_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> synced_{false};
  std::atomic<uint64_t> lists_{0};
  std::thread thread_;
};

}  // namespace eddy::k8s
