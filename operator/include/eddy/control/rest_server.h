#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/control/control_plane.h"
#include "eddy/status.h"

namespace eddy::control {

/// Version string the REST API reports as `flink-version` (Flink's /overview and /config).
inline constexpr const char* kEddyRestVersion = "eddy-0.1.0";

/// A request as the REST API sees it, independent of the HTTP library.
struct RestRequest {
  std::string method;  // "GET", "POST", "PATCH", ...
  /// Decoded path segments: "/jobs/abc/plan" -> {"jobs", "abc", "plan"}.
  std::vector<std::string> path;
  /// Decoded query parameters, one value per key.
  std::map<std::string, std::string> query;
  std::string body;
};

/// A JSON response: the HTTP status code and the body (always a JSON document).
struct RestResponse {
  int status = 200;
  std::string body;
};

/// The Dispatcher's REST API over a control plane: Flink's monitoring paths and JSON shapes
/// (`/overview`, `/jobs`, `/jobs/overview`, `/jobs/:id`, `/jobs/:id/plan`,
/// `/jobs/:id/exceptions`, `/jobs/:id/metrics`, `/jobs/:id/vertices/:vid`,
/// `/jobs/:id/vertices/:vid/{backpressure,watermarks,metrics}`, `/taskmanagers`,
/// `/taskmanagers/:id`, `/config`), Flink's cancel (`PATCH /jobs/:id?mode=cancel`), checkpoint
/// statistics (`/jobs/:id/checkpoints`, `.../config`, `.../details/:cid`), savepoints (`POST
/// /jobs/:id/savepoints`, `GET /jobs/:id/savepoints/:trigger`) and stop-with-savepoint (`POST
/// /jobs/:id/stop`), and Eddy's submission (`POST /jobs` with a job spec as the body; Flink's
/// `savepointPath`/`allowNonRestoredState` query). A leading `/v1` is accepted as in Flink.
/// Errors are `{"errors": ["..."]}` with 400 (bad input), 404 (unknown path or id), 405 (method),
/// 409 (cancel of a finished job, savepoint of an ended one), 503 (savepoint while tasks deploy)
/// or 500 (a bug); no exception leaves this function.
/// Threading: any thread (it only calls ControlPlane's thread-safe methods).
RestResponse HandleRestRequest(ControlPlane& cp, const RestRequest& request);

/// The HTTP endpoint of the REST API (cpprestsdk's http_listener).
///
/// Lifecycle: `Start` binds and serves at once; the destructor stops accepting, waits for
/// requests in flight and returns. The ControlPlane must outlive the server.
/// Threading: requests are served on cpprestsdk's thread pool; Start and the destructor may be
/// called from any thread.
class RestServer {
 public:
  /// Serves `cp` at `address`, e.g. "http://127.0.0.1:8081" (Flink's rest.port 8081). Port 0 is
  /// not supported by cpprestsdk: pick a free port. IOError if the address cannot be bound,
  /// InvalidArgument if it is not an http:// URI with a port.
  static Result<std::unique_ptr<RestServer>> Start(ControlPlane* cp, const std::string& address);
  /// Serves any handler (the operator routes each job's requests to its JobMaster). The handler
  /// runs on cpprestsdk's thread pool and must not throw.
  static Result<std::unique_ptr<RestServer>> Start(
      std::function<RestResponse(const RestRequest&)> handler, const std::string& address);
  ~RestServer();
  RestServer(const RestServer&) = delete;
  RestServer& operator=(const RestServer&) = delete;

  /// The address served, as given to Start.
  const std::string& address() const;

 private:
  struct Impl;
  RestServer() = default;
  std::unique_ptr<Impl> impl_;
};

}  // namespace eddy::control
