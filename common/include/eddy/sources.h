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

/// The checkpointed position of a source that deals records n = 0, 1, 2, ... round-robin to its
/// subtasks (record n to subtask n % p): union operator state of "levels". A level is the
/// parallelism of one run and, per subtask i of it, the next n it would have read (n ≡ i (mod p)
/// was emitted iff n < next_i) with the reader's byte offset there (-1 = none). After a restore
/// (at any parallelism) a subtask j of p' emits the n ≡ j (mod p') that no restored level marks
/// emitted, and snapshots the restored levels plus its own new one, so that records are neither
/// lost nor repeated across rescaling. Used by the generator and the file source.
class RoundRobinPosition {
 public:
  /// Reads the restored levels from `store` (null = no state). `what` names the source in errors.
  Status Load(OperatorStateStore* store, std::string name, std::string what, int subtask,
              int parallelism);
  bool restored() const { return !levels_.empty(); }
  /// Whether a restored level already emitted record n.
  bool EmittedBefore(int64_t n) const {
    for (const auto& [level, nexts] : levels_) {
      const Next& x = nexts[static_cast<size_t>(n % static_cast<int64_t>(nexts.size()))];
      if (n < x.next) return true;
    }
    return false;
  }
  /// The smallest restored position (every record below it was emitted) and the byte offset
  /// recorded with it (-1 = none); {0, 0} when nothing was restored.
  std::pair<int64_t, int64_t> Floor() const;
  /// Records this subtask's position (next record, byte offset) in the state.
  void Snapshot(int64_t next, int64_t offset);

 private:
  struct Next {
    int64_t next = -1, offset = -1;
  };
  OperatorStateStore* store_ = nullptr;
  std::string name_;
  int64_t subtask_ = 0, parallelism_ = 1;
  std::map<int64_t, std::vector<Next>> levels_;  // restored: level -> position per subtask
  int64_t level_ = 0;                            // this run's level
};

/// Deterministic generator: element n = f(n) for n in [0, count) (count < 0: unbounded), split
/// across subtasks by n % parallelism, optionally rate-limited (records/s per subtask). Its
/// position is a RoundRobinPosition: it survives rescaling.
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
    EDDY_RETURN_NOT_OK(position_.Load(ctx.operator_state, "_generator.position", "generator source",
                                      ctx.subtask_index, ctx.parallelism));
    if (position_.restored()) {
      // Start at this subtask's first record at or after the floor (everything below it was
      // emitted); records a restored level emitted are skipped.
      int64_t floor = position_.Floor().first;
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
    const bool restored = position_.restored();
    for (int i = 0; i < budget && (count_ < 0 || next_ < count_); next_ += step_) {
      if (restored && position_.EmittedBefore(next_)) continue;
      f_(next_, value_);
      out.Collect(value_, Timestamp::None());
      ++emitted_;
      ++i;
    }
    return count_ >= 0 && next_ >= count_ ? InputStatus::kEndOfInput : InputStatus::kMoreAvailable;
  }
  void SnapshotPosition(std::string& out) override {
    (void)out;  // all in the union list state: it survives rescaling
    position_.Snapshot(next_, -1);
  }

 private:
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
  RoundRobinPosition position_;
};

/// Lines of a text file. Subtask i of p reads lines i, i+p, ... (deterministic split).
/// The checkpointed position (line number and byte offset) is a RoundRobinPosition: it survives
/// rescaling.
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
  RoundRobinPosition position_;
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
