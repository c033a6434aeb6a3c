#pragma once

/// The control plane's Prometheus metrics (docs/metrics.md): cluster (workers, slots), jobs
/// (counts by state, per job state, restarts, uptime) and malformed control messages, read
/// through `ControlPlane`'s public API at every scrape.

#include <memory>

#include "eddy/control/control_plane.h"
#include "eddy/metrics/metrics.h"

namespace eddy::control {

/// The metric families of `control_plane`, built at scrape time from `Cluster()` and `Jobs()`.
/// Ownership: `control_plane` is not owned and must outlive every scrape: remove the collectable
/// from its server (or destroy the server, or `Detach()` it) before the control plane goes.
std::shared_ptr<metrics::CallbackCollectable> MakeControlPlaneCollectable(
    ControlPlane* control_plane);

/// The families themselves (what the collectable returns); for tests and other front doors.
std::vector<prometheus::MetricFamily> CollectControlPlaneMetrics(ControlPlane& control_plane);

}  // namespace eddy::control
