#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/datastream.h"
#include "eddy/status.h"

namespace eddy {

/// Parses "500ms", "3s", "1m", "2h", "1d" (and plain integers as milliseconds).
Result<Duration> ParseDuration(std::string_view text);

/// Overrides applied on top of a job spec (from the command line).
struct JobSpecOptions {
  /// >0 replaces the spec's `parallelism`.
  int parallelism = 0;
  /// Folder relative paths resolve against; default: the job file's folder.
  std::string base_dir;
  /// File sinks append instead of truncating at open. Set when the sink's subtasks run in
  /// several processes: the coordinator truncates the files (CompiledJob::output_files) once per
  /// execution attempt, every subtask appends whole lines.
  bool append_output_files = false;
};

/// A job spec compiled into a program (StreamGraph) ready to run.
struct CompiledJob {
  std::string name;
  std::unique_ptr<StreamExecutionEnvironment> env;
  /// Resolved paths of the file sinks' outputs.
  std::vector<std::string> output_files;
};

/// Compiles a job spec (YAML or JSON; the `spec.job` of a FlinkJob). Every problem is reported
/// before anything runs, as "<file>:<line>:<column>: <path>: <message>".
Result<CompiledJob> CompileJobSpec(std::string_view text, const std::string& file_name,
                                   const JobSpecOptions& options = {});
Result<CompiledJob> CompileJobSpecFile(const std::string& path, JobSpecOptions options = {});

}  // namespace eddy
