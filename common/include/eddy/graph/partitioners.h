#pragma once

#include <memory>
#include <random>
#include <string>

#include "eddy/operators/operator.h"
#include "eddy/runtime/stream_io.h"
#include "eddy/state/key_groups.h"

namespace eddy {

/// How records of an edge are distributed over the consumer's subtasks.
enum class PartitionerKind : uint8_t {
  kForward,    ///< one-to-one, same parallelism; the only kind operators chain across
  kHash,       ///< keyBy: by key group
  kRebalance,  ///< round robin over all consumers
  kRescale,    ///< round robin over a local subset of consumers
  kShuffle,    ///< uniformly random
  kBroadcast,  ///< every record to every consumer
  kGlobal,     ///< everything to consumer 0
  kCustom,     ///< user function of the key
};
std::string_view PartitionerName(PartitionerKind k);

template <class T>
class ForwardSelector final : public ChannelSelector<T> {
 public:
  void Setup(int, int) override {}
  int SelectChannel(const T&) override { return 0; }
};
template <class T>
class GlobalSelector final : public ChannelSelector<T> {
 public:
  void Setup(int, int) override {}
  int SelectChannel(const T&) override { return 0; }
};
template <class T>
class BroadcastSelector final : public ChannelSelector<T> {
 public:
  void Setup(int, int) override {}
  bool is_broadcast() const override { return true; }
  int SelectChannel(const T&) override { return 0; }
};
/// Round robin; used for rebalance and rescale (the rescale subset is fixed by the wiring).
template <class T>
class RoundRobinSelector final : public ChannelSelector<T> {
 public:
  void Setup(int n, int subtask) override {
    n_ = n;
    next_ = subtask % n;  // spread the starting points of the producers
  }
  int SelectChannel(const T&) override {
    int c = next_;
    if (++next_ == n_) next_ = 0;
    return c;
  }

 private:
  int n_ = 1;
  int next_ = 0;
};
template <class T>
class ShuffleSelector final : public ChannelSelector<T> {
 public:
  void Setup(int n, int subtask) override {
    n_ = static_cast<uint32_t>(n);
    rng_.seed(0x9e3779b9u + static_cast<uint32_t>(subtask));
  }
  int SelectChannel(const T&) override { return static_cast<int>(rng_() % n_); }

 private:
  uint32_t n_ = 1;
  std::minstd_rand rng_;
};
/// keyBy: channel = keyGroup(key) * n / maxParallelism.
template <class T>
class KeyGroupSelector final : public ChannelSelector<T> {
 public:
  KeyGroupSelector(std::shared_ptr<const KeySelector<T>> key, int max_parallelism)
      : key_(std::move(key)), max_parallelism_(max_parallelism) {}
  void Setup(int n, int) override { n_ = n; }
  int SelectChannel(const T& v) override {
    key_->KeyBytes(v, scratch_);
    return OperatorIndexForKeyGroup(KeyGroupForKeyBytes(scratch_, max_parallelism_), n_,
                                    max_parallelism_);
  }

 private:
  std::shared_ptr<const KeySelector<T>> key_;
  int max_parallelism_;
  int n_ = 1;
  std::string scratch_;
};
/// partitionCustom: channel = f(key, n).
template <class T, class K, class KF, class PF>
class CustomSelector final : public ChannelSelector<T> {
 public:
  CustomSelector(KF key, PF partition) : key_(std::move(key)), partition_(std::move(partition)) {}
  void Setup(int n, int) override { n_ = n; }
  int SelectChannel(const T& v) override {
    int c = partition_(key_(v), n_);
    return c < 0 || c >= n_ ? ((c % n_) + n_) % n_ : c;
  }

 private:
  KF key_;
  PF partition_;
  int n_ = 1;
};

}  // namespace eddy
