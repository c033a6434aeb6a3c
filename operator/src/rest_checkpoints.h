#pragma once

// The JSON bodies of the REST API's checkpoint and savepoint paths, in Flink's shapes
// (CheckpointingStatistics, CheckpointConfigInfo, the async operation result of savepoints).
// Internal to rest_server.cc, which routes, parses requests and maps errors.

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "eddy/control/control_plane.h"

namespace eddy::control::rest {

using Json = nlohmann::ordered_json;

/// `GET /jobs/:id/checkpoints`: counts, summary, latest and history.
Json CheckpointingStatistics(const JobInfo& job);
/// `GET /jobs/:id/checkpoints/config`.
Json CheckpointConfigInfo(const JobInfo& job);
/// `GET /jobs/:id/checkpoints/details/:checkpointid`: one checkpoint of the history; nullopt when
/// it is not (or no longer) there.
std::optional<Json> CheckpointDetails(const JobInfo& job, int64_t id);
/// `GET /jobs/:id/savepoints/:triggerid`: `{"status": {"id"}, "operation": …}`.
Json SavepointOperation(const SavepointStatus& status);

}  // namespace eddy::control::rest
