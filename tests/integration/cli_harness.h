#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// Running the real `eddy` binary from integration tests.
namespace eddy::testing {

inline std::string EddyBinary() {
  return std::string(EDDY_BINARY_DIR_DEFAULT) + "/operator/eddy";
}

struct RunResult {
  int exit_code = -1;
  std::vector<std::string> lines;  // standard output, one entry per non-empty line
  std::string log;                 // standard error
};

/// Runs `eddy ARGS` (a shell word list) to its end.
inline RunResult RunEddy(const std::string& args) {
  namespace fs = std::filesystem;
  static std::atomic<int> seq{0};
  fs::path err = fs::temp_directory_path() /
                 ("eddy-test-" + std::to_string(::getpid()) + "-" + std::to_string(seq++) + ".err");
  std::string cmd = EddyBinary() + " " + args + " 2>" + err.string();
  RunResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::string out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  size_t start = 0;
  while (start < out.size()) {
    size_t nl = out.find('\n', start);
    if (nl == std::string::npos) nl = out.size();
    if (nl > start) r.lines.push_back(out.substr(start, nl - start));
    start = nl + 1;
  }
  std::ifstream in(err);
  r.log.assign(std::istreambuf_iterator<char>(in), {});
  fs::remove(err);
  return r;
}

/// A copy of examples/<name>.yaml with `top_level` (YAML lines) put in front, in a fresh temp
/// folder next to a link to examples/data (paths in specs are relative to the spec's folder).
/// Returns the copy's path; the folder is the path's parent.
inline std::filesystem::path ExampleCopyWith(const std::string& name,
                                             const std::string& top_level) {
  namespace fs = std::filesystem;
  static std::atomic<int> seq{0};
  const fs::path examples = fs::path(EDDY_SOURCE_DIR_DEFAULT) / "examples";
  fs::path dir = fs::temp_directory_path() / ("eddy-example-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(seq++) + "-" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::create_directory_symlink(examples / "data", dir / "data");
  std::ifstream in(examples / (name + ".yaml"));
  std::string text(std::istreambuf_iterator<char>(in), {});
  std::ofstream(dir / (name + ".yaml")) << top_level << text;
  return dir / (name + ".yaml");
}

/// The golden examples: every examples/<name>.yaml with an examples/expected/<name>.jsonl, sorted.
inline std::vector<std::string> GoldenExamples() {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  for (const auto& e :
       fs::directory_iterator(fs::path(EDDY_SOURCE_DIR_DEFAULT) / "examples" / "expected")) {
    if (e.path().extension() == ".jsonl") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

/// A GoogleTest parameter name for an example ("rolling-max" -> "rolling_max").
struct ExampleParamName {
  template <class Info>
  std::string operator()(const Info& info) const {
    std::string s = info.param;
    std::replace(s.begin(), s.end(), '-', '_');
    return s;
  }
};

}  // namespace eddy::testing
