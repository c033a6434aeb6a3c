#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "eddy/operators/operator.h"

namespace eddy {

/// Reads records for one source subtask. Lifecycle: Open -> PollNext until kEndOfInput -> Close.
/// Threading: the source task's thread only. PollNext must return promptly (bounded batch).
template <class T>
class SourceReader {
 public:
  virtual ~SourceReader() = default;
  virtual Status Open(OperatorContext& ctx) {
    (void)ctx;
    return Status::Ok();
  }
  virtual InputStatus PollNext(Output<T>& out) = 0;
  virtual void Close() {}
  /// Position for checkpoints (offset, sequence number).
  virtual void SnapshotPosition(std::string& out) { (void)out; }
  virtual Status RestorePosition(std::string_view in) {
    (void)in;
    return Status::Ok();
  }
};

/// Drives a SourceReader inside the task; emits the final watermark at end of input.
template <class T>
class ReaderSourceOperator final : public SourceOperator<T> {
 public:
  explicit ReaderSourceOperator(std::unique_ptr<SourceReader<T>> reader)
      : reader_(std::move(reader)) {}
  Status Open() override { return reader_->Open(*this->ctx_); }
  InputStatus PollNext() override {
    if (ended_) return InputStatus::kEndOfInput;
    InputStatus s = reader_->PollNext(*this->out_);
    if (s == InputStatus::kEndOfInput) {
      ended_ = true;
      this->out_->EmitWatermark(Watermark::Max());
    }
    return s;
  }
  void Close() override { reader_->Close(); }
  void SnapshotState(std::string& out) override { reader_->SnapshotPosition(out); }
  Status RestoreState(std::string_view in) override { return reader_->RestorePosition(in); }

 private:
  std::unique_ptr<SourceReader<T>> reader_;
  bool ended_ = false;
};

/// Elements of a vector; subtask i of p emits elements i, i+p, ...
template <class T>
class CollectionReader final : public SourceReader<T> {
 public:
  explicit CollectionReader(std::shared_ptr<const std::vector<T>> data) : data_(std::move(data)) {}
  Status Open(OperatorContext& ctx) override {
    next_ = static_cast<size_t>(ctx.subtask_index);
    step_ = static_cast<size_t>(ctx.parallelism);
    return Status::Ok();
  }
  InputStatus PollNext(Output<T>& out) override {
    for (int i = 0; i < 256 && next_ < data_->size(); ++i, next_ += step_) {
      out.Collect((*data_)[next_], Timestamp::None());
    }
    return next_ < data_->size() ? InputStatus::kMoreAvailable : InputStatus::kEndOfInput;
  }
  void SnapshotPosition(std::string& out) override { out = std::to_string(next_); }
  Status RestorePosition(std::string_view in) override {
    next_ = std::stoull(std::string(in));
    return Status::Ok();
  }

 private:
  std::shared_ptr<const std::vector<T>> data_;
  size_t next_ = 0;
  size_t step_ = 1;
};

/// Deterministic generator: element n = f(n) for n in [0, count) (count < 0: unbounded), split
/// across subtasks by n % parallelism, optionally rate-limited (records/s per subtask).
///
/// Position (checkpoints): union operator state of "levels". A level is the parallelism of one
/// run and, per subtask i of it, the next n it would have emitted: n ≡ i (mod p) was emitted iff
/// n < next_i. After a restore (at any parallelism) a subtask j of p' emits n ≡ j (mod p') that
/// no restored level marks emitted, and snapshots the restored levels plus its own new one, so
/// that records are neither lost nor repeated across rescaling.
template <class T>
class GeneratorReader final : public SourceReader<T> {
 public:
  GeneratorReader(std::function<void(int64_t, T&)> f, int64_t count, double rate_per_second)
      : f_(std::move(f)), count_(count), rate_(rate_per_second) {}
  Status Open(OperatorContext& ctx) override {
    subtask_ = ctx.subtask_index;
    next_ = ctx.subtask_index;
    step_ = ctx.parallelism;
    pts_ = ctx.processing_time;
    if (pts_) start_ = pts_->Now();
    store_ = ctx.operator_state;
    if (!store_) return Status::Ok();
    auto& e = store_->Get(kStateName, OperatorStateStore::Mode::kUnion);
    for (const auto& item : e.items) {
      ByteReader r(item);
      Item it{r.GetVarI64(), r.GetVarI64(), r.GetVarI64(), r.GetVarI64()};
      if (r.failed() || it.p <= 0 || it.i < 0 || it.i >= it.p) {
        return Status::ParseError("generator source: corrupt position state");
      }
      auto& lv = levels_[it.level];
      if (lv.empty()) lv.assign(static_cast<size_t>(it.p), -1);
      if (static_cast<int64_t>(lv.size()) != it.p) {
        return Status::ParseError("generator source: inconsistent position state");
      }
      lv[static_cast<size_t>(it.i)] = it.next;
    }
    for (const auto& [level, nexts] : levels_) {
      for (int64_t v : nexts) {
        if (v < 0) return Status::ParseError("generator source: position state misses a subtask");
      }
      level_ = std::max(level_, level + 1);
    }
    // A level whose every position is below another level's smallest is implied by it.
    for (auto it = levels_.begin(); it != levels_.end();) {
      int64_t max_here = *std::max_element(it->second.begin(), it->second.end());
      bool implied = false;
      for (const auto& [other, nexts] : levels_) {
        if (other == it->first) continue;
        int64_t min_other = *std::min_element(nexts.begin(), nexts.end());
        if (max_here < min_other || (max_here == min_other && other > it->first)) implied = true;
      }
      it = implied ? levels_.erase(it) : std::next(it);
    }
    if (!levels_.empty()) {
      // Everything below the smallest restored position was emitted by every level's subtasks.
      int64_t floor = INT64_MAX;
      for (const auto& [level, nexts] : levels_) {
        for (int64_t v : nexts) floor = std::min(floor, v);
      }
      floor = std::max<int64_t>(0, floor - step_);
      next_ = floor + ((subtask_ - floor % step_) % step_ + step_) % step_;
    }
    return Status::Ok();
  }
  InputStatus PollNext(Output<T>& out) override {
    int budget = 512;
    if (rate_ > 0 && pts_) {
      double elapsed_s = static_cast<double>((pts_->Now() - start_).millis()) / 1000.0;
      auto allowed = static_cast<int64_t>(elapsed_s * rate_) + 1;
      budget = static_cast<int>(std::min<int64_t>(budget, allowed - emitted_));
      if (budget <= 0) return InputStatus::kNothingAvailable;
    }
    for (int i = 0; i < budget && (count_ < 0 || next_ < count_); next_ += step_) {
      if (!levels_.empty() && EmittedBefore(next_)) continue;
      f_(next_, value_);
      out.Collect(value_, Timestamp::None());
      ++emitted_;
      ++i;
    }
    return count_ >= 0 && next_ >= count_ ? InputStatus::kEndOfInput : InputStatus::kMoreAvailable;
  }
  void SnapshotPosition(std::string& out) override {
    (void)out;  // all in the union list state: it survives rescaling
    if (!store_) return;
    auto& e = store_->Get(kStateName, OperatorStateStore::Mode::kUnion);
    e.items.clear();
    // Restored levels are written by subtask 0 only (each subtask knows all of them).
    if (subtask_ == 0) {
      for (const auto& [level, nexts] : levels_) {
        for (size_t i = 0; i < nexts.size(); ++i) {
          e.items.push_back(EncodeItem(
              {level, static_cast<int64_t>(nexts.size()), static_cast<int64_t>(i), nexts[i]}));
        }
      }
    }
    e.items.push_back(EncodeItem({level_, step_, subtask_, next_}));
  }

 private:
  static constexpr const char* kStateName = "_generator.position";
  struct Item {
    int64_t level, p, i, next;
  };
  static std::string EncodeItem(const Item& it) {
    std::string out;
    ByteWriter w(out);
    w.PutVarI64(it.level);
    w.PutVarI64(it.p);
    w.PutVarI64(it.i);
    w.PutVarI64(it.next);
    return out;
  }
  bool EmittedBefore(int64_t n) const {
    for (const auto& [level, nexts] : levels_) {
      if (n < nexts[static_cast<size_t>(n % static_cast<int64_t>(nexts.size()))]) return true;
    }
    return false;
  }

  std::function<void(int64_t, T&)> f_;
  int64_t count_;
  double rate_;
  int64_t subtask_ = 0;
  int64_t next_ = 0;
  int64_t step_ = 1;
  int64_t emitted_ = 0;
  ProcessingTimeService* pts_ = nullptr;
  Timestamp start_;
  T value_{};
  OperatorStateStore* store_ = nullptr;
  std::map<int64_t, std::vector<int64_t>> levels_;  // restored: level -> next per subtask
  int64_t level_ = 0;                               // this run's level
};

/// Lines of a text file. Subtask i of p reads lines i, i+p, ... (deterministic split).
/// The byte offset is the checkpointed position.
class TextFileReader final : public SourceReader<std::string> {
 public:
  explicit TextFileReader(std::string path) : path_(std::move(path)) {}
  ~TextFileReader() override;
  Status Open(OperatorContext& ctx) override;
  InputStatus PollNext(Output<std::string>& out) override;
  void Close() override;
  void SnapshotPosition(std::string& out) override;
  Status RestorePosition(std::string_view in) override;

 private:
  bool ReadLine();
  std::string path_;
  std::FILE* file_ = nullptr;
  std::string line_;
  int64_t line_no_ = 0;
  int subtask_ = 0;
  int parallelism_ = 1;
};

/// Lines from a TCP server (Flink's socketTextStream); only subtask 0 connects. Reconnects with
/// backoff when the peer is not there (yet); ends when the peer closes the connection.
class SocketTextReader final : public SourceReader<std::string> {
 public:
  SocketTextReader(std::string host, int port) : host_(std::move(host)), port_(port) {}
  ~SocketTextReader() override;
  Status Open(OperatorContext& ctx) override;
  InputStatus PollNext(Output<std::string>& out) override;
  void Close() override;

 private:
  bool Connect();
  std::string host_;
  int port_;
  int fd_ = -1;
  bool active_ = true;
  std::string buf_;
  ProcessingTimeService* pts_ = nullptr;
  Timestamp next_attempt_;
  int attempts_ = 0;
};

/// Lines from standard input; only subtask 0 reads.
class StdinReader final : public SourceReader<std::string> {
 public:
  Status Open(OperatorContext& ctx) override;
  InputStatus PollNext(Output<std::string>& out) override;

 private:
  bool active_ = true;
  std::string buf_;
};

}  // namespace eddy
