#pragma once

// The scalar function library: signatures (checked by the Binder) and implementations (called by
// CallNode). Special forms that need lazy evaluation or operator semantics (if, nullif, coalesce,
// mod) are bound by the Binder itself and listed here only by name.

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "common/src/expr/nodes.h"

namespace eddy::expr {

/// What an argument must be. A null literal is accepted everywhere.
enum class ParamKind : uint8_t {
  kString,           ///< string
  kText,             ///< string or bytes
  kNumeric,          ///< int64, double or timestamp
  kInteger,          ///< int64
  kStringOrNumeric,  ///< string, int64, double or timestamp
  kAny,
};

enum class ReturnKind : uint8_t {
  kString,
  kInt64,
  kDouble,
  kBool,
  kTimestamp,
  kSameNumeric,   ///< double if the first argument is double, else int64
  kUnifyOrdered,  ///< the common type of all arguments, to which they are converted
};

struct FunctionDef {
  std::string_view name;
  int min_args = 0;
  int max_args = 0;  ///< -1: any number
  /// params[i] describes argument i; arguments past the third use params[2].
  std::array<ParamKind, 3> params{};
  ReturnKind ret = ReturnKind::kString;
  bool null_propagating = true;  ///< any null argument makes the result null
  ScalarFn fn = nullptr;
  std::string_view signature;  ///< for error messages: "substr(string, int64[, int64])"
};

/// Looks up a library function by lower-case name; nullptr when absent.
const FunctionDef* FindFunction(std::string_view name);

/// Every callable name (library and special forms), for "did you mean" suggestions.
std::vector<std::string_view> AllFunctionNames();

}  // namespace eddy::expr
