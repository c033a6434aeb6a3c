#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace eddy::testing {

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
