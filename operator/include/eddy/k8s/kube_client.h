#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "eddy/k8s/kube_config.h"
#include "eddy/status.h"

namespace eddy::k8s {

using Json = nlohmann::json;

/// One answer of the API server.
struct KubeResponse {
  int http_status = 0;
  Json body;  ///< the decoded body (an object; a `Status` object for errors)
  bool ok() const { return http_status >= 200 && http_status < 300; }
  /// The `Status` object's reason ("NotFound", "AlreadyExists", "Conflict", "Invalid", …).
  std::string reason() const;
  /// The `Status` object's message, else the HTTP status.
  std::string message() const;
};

/// Maps a failed answer to a Status: 404 NotFound, 409 AlreadyExists → AlreadyExists,
/// 409 Conflict → Unavailable (re-read and retry), 410 Gone → OutOfRange, 400/422 →
/// InvalidArgument, 401/403 → InvalidArgument (naming the denied request), 429/5xx → Unavailable.
/// `what` names the request ("GET /api/v1/…").
Status ResponseStatus(const KubeResponse& r, const std::string& what);

struct KubeClientOptions {
  /// Per request (the whole exchange; watches have their own).
  int64_t request_timeout_ms = 30000;
  /// Attempts for transport errors, 429 and 5xx (exponential backoff 200 ms … 5 s; a 429's
  /// Retry-After is honoured up to 10 s). Creates (POST) are retried only when nothing reached
  /// the server (connection refused) or on 429/503.
  int max_attempts = 5;
  /// `User-Agent` header.
  std::string user_agent = "eddy-operator/0.1";
  /// Called after every request with the verb, the HTTP status (0 = transport error) and the
  /// seconds it took: the operator's request-latency histogram.
  std::function<void(std::string_view verb, int http_status, double seconds)> observer;
};

/// A small client of the Kubernetes REST API on cpprestsdk: JSON requests with bearer-token or
/// client-certificate authentication, retries, and streaming watches. Thread-safe: requests may
/// run concurrently from any thread.
class KubeClient {
 public:
  static Result<std::shared_ptr<KubeClient>> Make(KubeConfig config,
                                                  KubeClientOptions options = {});
  ~KubeClient();
  KubeClient(const KubeClient&) = delete;
  KubeClient& operator=(const KubeClient&) = delete;

  const KubeConfig& config() const;

  /// One request with retries. `path` includes the query ("/api/v1/pods?limit=10"). A transport
  /// failure after the last attempt is Unavailable; HTTP errors come back as a response.
  Result<KubeResponse> Request(std::string_view method, const std::string& path,
                               const Json* body = nullptr,
                               std::string_view content_type = "application/json");

  /// Convenience wrappers: the object on 2xx, ResponseStatus(...) otherwise.
  Result<Json> Get(const std::string& path);
  Result<Json> Create(const std::string& collection_path, const Json& object);
  Result<Json> Replace(const std::string& path, const Json& object);
  /// RFC 7386 JSON merge patch.
  Result<Json> MergePatch(const std::string& path, const Json& patch);
  /// Server-side apply (`application/apply-patch+yaml`, JSON is YAML) as `field_manager`.
  Result<Json> Apply(const std::string& path, const Json& object, const std::string& field_manager,
                     bool force = true);
  /// Ok when deleted or already gone. `propagation`: Background, Foreground, Orphan or "".
  Status Delete(const std::string& path, std::string_view propagation = "Background",
                int64_t grace_period_seconds = -1);

  /// A watch event: `type` ADDED, MODIFIED, DELETED, BOOKMARK or ERROR, `object`.
  using WatchHandler = std::function<void(const std::string& type, const Json& object)>;
  /// Streams `GET path?watch=1&resourceVersion=rv&allowWatchBookmarks=true&timeoutSeconds=…`
  /// to `handler` until the server ends the stream (Ok), `stop` becomes true (Cancelled), or
  /// the stream fails (Unavailable). An ERROR event with code 410 returns OutOfRange ("Gone":
  /// the caller re-lists). `path` may carry a query (label selectors). Pass the resourceVersion
  /// of a list: an empty one needs consistent reads from the watch cache, which kube-apiserver
  /// 1.34+ refuses on etcd 3.4 (no RequestWatchProgress).
  Status Watch(const std::string& path, const std::string& resource_version, int timeout_seconds,
               const WatchHandler& handler, const std::atomic<bool>& stop);

 private:
  struct Impl;
  KubeClient() = default;
  std::unique_ptr<Impl> impl_;
};

/// "a%2Fb": a value inside a query string.
std::string QueryEscape(std::string_view s);

}  // namespace eddy::k8s
