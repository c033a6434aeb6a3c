#pragma once

/// User functions of window joins and coGroups (Flink's JoinFunction, FlatJoinFunction,
/// CoGroupFunction). The interval join's ProcessJoinFunction is in functions.h.

#include <vector>

#include "eddy/functions.h"

namespace eddy {

/// Called once per pair of elements with equal keys in the same window.
template <class L, class R, class OUT>
class JoinFunction : public RichFunction {
 public:
  virtual OUT Join(const L& left, const R& right) = 0;
};

/// Like JoinFunction, emitting zero or more results per pair.
template <class L, class R, class OUT>
class FlatJoinFunction : public RichFunction {
 public:
  virtual void Join(const L& left, const R& right, Collector<OUT>& out) = 0;
};

/// Called once per key and window with all elements of both sides (one side may be empty).
template <class L, class R, class OUT>
class CoGroupFunction : public RichFunction {
 public:
  virtual void CoGroup(const std::vector<L>& left, const std::vector<R>& right,
                       Collector<OUT>& out) = 0;
};

}  // namespace eddy
