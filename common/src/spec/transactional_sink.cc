#include "spec/transactional_sink.h"

#include <cstdio>

#include "eddy/clock.h"
#include "eddy/serialization.h"

namespace eddy {

namespace {

constexpr char kStateName[] = "_transactional_file_sink.pending";

std::string Encode(int64_t checkpoint, const storage::StagedObject& s) {
  std::string out;
  ByteWriter w(out);
  w.PutU8(1);
  w.PutVarI64(checkpoint);
  w.PutBytes(s.key);
  w.PutBytes(s.upload_id);
  w.PutVarU64(s.size);
  w.PutVarU64(s.part_etags.size());
  for (const auto& e : s.part_etags) w.PutBytes(e);
  return out;
}

bool Decode(std::string_view in, int64_t& checkpoint, storage::StagedObject& s) {
  ByteReader r(in);
  if (r.GetU8() != 1) return false;
  checkpoint = r.GetVarI64();
  s.key = std::string(r.GetBytes());
  s.upload_id = std::string(r.GetBytes());
  s.size = r.GetVarU64();
  uint64_t n = r.GetVarU64();
  if (r.failed() || n > r.remaining()) return false;
  for (uint64_t i = 0; i < n; ++i) s.part_etags.emplace_back(r.GetBytes());
  return !r.failed();
}

}  // namespace

Status TransactionalFileSinkFunction::Open(RuntimeContext& ctx) {
  ctx_ = &ctx;
  EDDY_ASSIGN_OR_RETURN(store_, storage::OpenObjectStore(dir_));
  EDDY_ASSIGN_OR_RETURN(fmt_, RowFormatter::Make(opts_, schema_));
  // Unique per attempt, so that this attempt's parts never collide with a failed one's.
  token_ = std::to_string(EpochMillis()) + std::to_string(ctx.attempt_number());
  // Restored pending parts belong to a completed checkpoint: commit them (idempotent; every
  // subtask sees the whole union list and may race on the same part, which is fine).
  auto& restored = ctx.GetUnionListState(kStateName);
  for (const auto& item : restored.items) {
    int64_t cp = 0;
    storage::StagedObject s;
    if (!Decode(item, cp, s)) {
      return Status::ParseError("transactional file sink: corrupt pending-part state");
    }
    Status st = store_->CommitStaged(s);
    if (!st.ok() && st.code() != StatusCode::kNotFound) {
      return st.WithContext("transactional file sink: committing restored part " +
                            store_->Uri(s.key));
    }
  }
  restored.items.clear();
  // Parts this subtask index staged after that checkpoint are not covered by it: abort them.
  // Subtask 0 also cleans up after subtask indices that no longer exist (scaled down).
  std::vector<std::string> prefixes = {"part-" + std::to_string(ctx.subtask_index()) + "-"};
  if (ctx.subtask_index() == 0) {
    auto all = store_->ListStaged("part-");
    if (all.ok()) {
      for (const auto& s : *all) {
        // part-<subtask>-...
        size_t dash = s.key.find('-', 5);
        if (dash == std::string::npos) continue;
        int idx = std::atoi(s.key.substr(5, dash - 5).c_str());
        if (idx >= ctx.parallelism()) (void)store_->AbortStaged(s);
      }
    }
  }
  for (const auto& prefix : prefixes) {
    auto leftovers = store_->ListStaged(prefix);
    if (!leftovers.ok()) return leftovers.status().WithContext("transactional file sink");
    for (const auto& s : *leftovers) {
      Status st = store_->AbortStaged(s);
      if (!st.ok()) return st.WithContext("transactional file sink: aborting " + s.upload_id);
    }
  }
  return Status::Ok();
}

void TransactionalFileSinkFunction::Invoke(const Row& v, Timestamp) {
  fmt_->Append(v, buffer_);
  buffer_.push_back('\n');
  if (buffer_.size() >= roll_bytes_) StageOpenPart();
}

bool TransactionalFileSinkFunction::StageOpenPart() {
  if (buffer_.empty()) return true;
  std::string key = "part-" + std::to_string(ctx_->subtask_index()) + "-" + token_ + "-" +
                    std::to_string(next_part_++) + ext_;
  auto staged = store_->Stage(key, buffer_);
  if (!staged.ok()) {
    ctx_->Fail(staged.status().WithContext("transactional file sink: staging " + store_->Uri(key)));
    return false;
  }
  buffer_.clear();
  pending_.push_back(Pending{0, std::move(*staged)});
  return true;
}

void TransactionalFileSinkFunction::PrepareSnapshotPreBarrier(CheckpointId id) {
  if (!StageOpenPart()) return;
  for (auto& p : pending_) {
    if (p.checkpoint == 0) p.checkpoint = id.value();
  }
}

void TransactionalFileSinkFunction::SnapshotState() {
  auto& e = ctx_->GetUnionListState(kStateName);
  e.items.clear();
  for (const auto& p : pending_) {
    if (p.checkpoint != 0) e.items.push_back(Encode(p.checkpoint, p.staged));
  }
}

Status TransactionalFileSinkFunction::CommitUpTo(int64_t checkpoint) {
  Status first;
  std::vector<Pending> keep;
  for (auto& p : pending_) {
    if (p.checkpoint == 0 || p.checkpoint > checkpoint) {
      keep.push_back(std::move(p));
      continue;
    }
    Status s = store_->CommitStaged(p.staged);
    if (!s.ok()) {
      // Kept: the next completed checkpoint (or a restore) commits it again.
      if (first.ok()) first = s.WithContext("committing " + store_->Uri(p.staged.key));
      keep.push_back(std::move(p));
    }
  }
  pending_ = std::move(keep);
  return first;
}

void TransactionalFileSinkFunction::NotifyCheckpointComplete(CheckpointId id) {
  Status s = CommitUpTo(id.value());
  if (!s.ok()) {
    std::fprintf(stderr, "eddy: transactional file sink: %s (retried at the next checkpoint)\n",
                 s.ToString().c_str());
  }
}

void TransactionalFileSinkFunction::Finish() {
  // End of a bounded input: nothing follows, so everything written is committed now.
  if (!StageOpenPart()) return;
  for (auto& p : pending_) {
    if (p.checkpoint == 0) p.checkpoint = INT64_MAX;
  }
  Status s = CommitUpTo(INT64_MAX);
  if (!s.ok()) ctx_->Fail(s.WithContext("transactional file sink"));
}

}  // namespace eddy
