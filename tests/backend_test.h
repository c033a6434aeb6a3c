#pragma once

// Tests parameterized over the keyed state backends. A suite becomes one with
//
//   EDDY_BACKEND_TEST_SUITE(WindowOperatorTest);
//   TEST_P(WindowOperatorTest, Something) { ... }   // runs as Backends/WindowOperatorTest.X/heap
//                                                  // and .../rocksdb
//
// While a test of such a suite runs, TestBackendKind() is its backend: the operator harnesses,
// MakeTestBackend and RunJob create that kind.

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "eddy/state/keyed_state.h"

namespace eddy::testing {

/// The backend kind harnesses, MakeTestBackend and RunJob use (default heap).
inline StateBackendKind& TestBackendKind() {
  static StateBackendKind kind = StateBackendKind::kHeap;
  return kind;
}

/// A keyed backend of `kind` (RocksDB in a fresh directory under $TMPDIR, removed with it).
inline std::unique_ptr<KeyedStateBackend> MakeTestBackend(
    int max_parallelism, KeyGroupRange range, Clock clock = nullptr,
    StateBackendKind kind = TestBackendKind()) {
  auto b = MakeKeyedStateBackend(kind, max_parallelism, range, std::move(clock),
                                 UniqueLocalStateDir("", "eddy-test"));
  if (!b.ok()) {
    std::fprintf(stderr, "cannot create a keyed state backend: %s\n",
                 b.status().ToString().c_str());
    std::abort();
  }
  return std::move(*b);
}

/// A processing-time clock the test moves by hand (state TTL, timers).
struct FakeClock {
  int64_t now = 0;
  Clock AsClock() {
    return [this] { return Timestamp(now); };
  }
};

/// Sums int64 values (reducing-state tests).
class SumReduce final : public ReduceFunction<int64_t> {
 public:
  void Reduce(int64_t& acc, const int64_t& v) const override { acc += v; }
};

/// Fixture of suites run once per backend.
class BackendTest : public ::testing::TestWithParam<StateBackendKind> {
 protected:
  void SetUp() override {
    saved_ = TestBackendKind();
    TestBackendKind() = GetParam();
  }
  void TearDown() override { TestBackendKind() = saved_; }
  StateBackendKind backend_kind() const { return GetParam(); }

 private:
  StateBackendKind saved_ = StateBackendKind::kHeap;
};

inline std::string BackendName(const ::testing::TestParamInfo<StateBackendKind>& info) {
  return std::string(StateBackendKindName(info.param));
}

}  // namespace eddy::testing

/// Declares `Suite` as a suite of TEST_P tests run on the heap and on the RocksDB backend.
#define EDDY_BACKEND_TEST_SUITE(Suite)                                                        \
  class Suite : public ::eddy::testing::BackendTest {};                                       \
  INSTANTIATE_TEST_SUITE_P(                                                                   \
      Backends, Suite,                                                                        \
      ::testing::Values(::eddy::StateBackendKind::kHeap, ::eddy::StateBackendKind::kRocksDB), \
      ::eddy::testing::BackendName)
