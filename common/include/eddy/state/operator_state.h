#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "eddy/operators/operator.h"
#include "eddy/status.h"

namespace eddy {

/// Serializes an operator's non-keyed state (all named lists with their redistribution mode).
void SnapshotOperatorState(const OperatorStateStore& store, std::string& out);

/// Redistributes the operator state snapshots of `old_snapshots.size()` subtasks onto
/// `new_parallelism` subtasks, as Flink does on rescale:
///  - split (ListState): all elements of all old subtasks concatenated, then cut into contiguous,
///    nearly equal parts (sizes differ by at most one);
///  - union (UnionListState): every new subtask gets all elements;
///  - broadcast (BroadcastState): every new subtask gets one old subtask's copy (they are equal).
/// Returns one store per new subtask; ParseError on a corrupt snapshot.
Result<std::vector<OperatorStateStore>> RedistributeOperatorState(
    const std::vector<std::string>& old_snapshots, int new_parallelism);

}  // namespace eddy
