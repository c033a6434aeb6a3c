// A task's part in checkpoints: the mailbox, barrier alignment, snapshots and restore.
#include <cstdio>

#include "eddy/proto/checkpoint.pb.h"
#include "eddy/proto/control.pb.h"
#include "eddy/state/keyed_backend.h"
#include "eddy/state/operator_state.h"
#include "eddy/storage/object_store.h"
#include "eddy/worker/task.h"

namespace eddy::worker {

namespace {

/// An operator uid as part of an object key: anything but [A-Za-z0-9._-] becomes '_'.
std::string KeySafe(const std::string& uid) {
  std::string out = uid;
  for (char& c : out) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return out.empty() ? std::string("op") : out;
}

const proto::OperatorState* FindOperator(const proto::CheckpointMetadata& md,
                                         const std::string& uid) {
  for (const auto& op : md.operators()) {
    if (op.uid() == uid) return &op;
  }
  return nullptr;
}

}  // namespace

void Task::TriggerCheckpoint(CheckpointBarrier barrier) {
  {
    std::lock_guard lock(mail_mu_);
    mail_.push_back(Mail{Mail::Kind::kTrigger, std::move(barrier)});
  }
  has_mail_.store(true, std::memory_order_release);
  if (wiring_.gate) wiring_.gate->Wake();
}

void Task::NotifyCheckpoint(CheckpointId id, bool completed) {
  Mail m{completed ? Mail::Kind::kComplete : Mail::Kind::kAbort, {}};
  m.barrier.id = id;
  {
    std::lock_guard lock(mail_mu_);
    mail_.push_back(std::move(m));
  }
  has_mail_.store(true, std::memory_order_release);
  if (wiring_.gate) wiring_.gate->Wake();
}

void Task::ProcessMail() {
  std::vector<Mail> mail;
  {
    std::lock_guard lock(mail_mu_);
    mail.swap(mail_);
    has_mail_.store(false, std::memory_order_release);
  }
  for (auto& m : mail) {
    CheckpointId id = m.barrier.id;
    switch (m.kind) {
      case Mail::Kind::kTrigger:
        if (!is_source_ || source_stopped_ || id.value() <= last_checkpoint_) break;
        PerformCheckpoint(m.barrier, 0);
        if (m.barrier.stop()) {
          if (m.barrier.drain()) {
            // Drain: the final watermark fires every window, then the input ends as if the
            // source had run out (end of partition follows in FinishChain).
            static_cast<SourceOperatorBase*>(operators_.front().get())->EmitFinalWatermark();
            drain_end_ = true;
          } else {
            source_stopped_ = true;
          }
        }
        break;
      case Mail::Kind::kComplete:
        for (auto& op : operators_) op->NotifyCheckpointComplete(id);
        for (auto& b : backends_) b->NotifyCheckpointComplete(id);
        if (stop_after_ != 0 && stop_after_ == id.value()) stop_now_ = true;
        break;
      case Mail::Kind::kAbort:
        for (auto& op : operators_) op->NotifyCheckpointAborted(id);
        for (auto& b : backends_) b->NotifyCheckpointAborted(id);
        if (stop_after_ == id.value()) {
          stop_after_ = 0;
          source_stopped_ = false;
        }
        if (pending_barrier_.id == id) {
          last_checkpoint_ = std::max(last_checkpoint_, id.value());
          EndAlignment();
        }
        break;
    }
  }
}

NetworkBuffer* Task::NextBuffer(int& channel) {
  for (;;) {
    if (!replay_.empty()) {
      auto [c, b] = replay_.front();
      replay_.pop_front();
      if (blocked_[static_cast<size_t>(c)]) {
        stash_[static_cast<size_t>(c)].push_back(b);
        continue;
      }
      channel = c;
      return b;
    }
    NetworkBuffer* b = wiring_.gate->Poll(channel, NextWake());
    if (!b) return nullptr;
    if (!blocked_[static_cast<size_t>(channel)]) return b;
    stash_[static_cast<size_t>(channel)].push_back(b);
    if (has_mail_.load(std::memory_order_relaxed)) return nullptr;
  }
}

bool Task::AlignmentComplete() const {
  for (size_t c = 0; c < got_barrier_.size(); ++c) {
    if (!got_barrier_[c] && !channel_ended_[c]) return false;
  }
  return true;
}

void Task::OnBarrier(int channel, const CheckpointBarrier& barrier) {
  const int64_t id = barrier.id.value();
  if (id <= last_checkpoint_) return;  // late barrier of a checkpoint given up or done
  const bool exactly_once = !options_.checkpoints || options_.checkpoints->exactly_once;
  if (pending_barrier_.id.value() != 0 && id > pending_barrier_.id.value()) {
    // A newer checkpoint overtook the pending one (it was aborted upstream): give that up.
    if (options_.checkpoints && options_.checkpoints->decline) {
      proto::DeclineCheckpoint d;
      d.set_attempt_id(options_.checkpoints->attempt);
      d.set_checkpoint_id(pending_barrier_.id.value());
      d.set_vertex(vertex_.id.value());
      d.set_subtask(subtask_);
      d.set_reason(name_ + ": barrier of checkpoint " + std::to_string(id) +
                   " arrived before alignment of this one finished");
      options_.checkpoints->decline(std::move(d));
    }
    last_checkpoint_ = pending_barrier_.id.value();
    EndAlignment();
  }
  if (pending_barrier_.id.value() == 0) {
    pending_barrier_ = barrier;
    alignment_start_ns_ = SteadyNs();
  } else if (id < pending_barrier_.id.value()) {
    return;
  }
  got_barrier_[static_cast<size_t>(channel)] = true;
  if (exactly_once) blocked_[static_cast<size_t>(channel)] = true;
  if (AlignmentComplete()) {
    CheckpointBarrier b = std::move(pending_barrier_);
    PerformCheckpoint(b, exactly_once ? SteadyNs() - alignment_start_ns_ : 0);
    EndAlignment();
  }
}

void Task::EndAlignment() {
  for (size_t c = 0; c < blocked_.size(); ++c) {
    got_barrier_[c] = false;
    if (!blocked_[c]) continue;
    blocked_[c] = false;
    for (NetworkBuffer* b : stash_[c]) replay_.emplace_back(static_cast<int>(c), b);
    stash_[c].clear();
  }
  pending_barrier_ = CheckpointBarrier{};
}

void Task::PerformCheckpoint(const CheckpointBarrier& barrier, int64_t alignment_ns) {
  const int64_t start_ns = SteadyNs();
  last_checkpoint_ = std::max(last_checkpoint_, barrier.id.value());
  for (auto& op : operators_) op->PrepareSnapshotPreBarrier(barrier.id);
  for (auto& p : wiring_.partitions) p->BroadcastBarrier(barrier);
  if (barrier.stop() && !barrier.drain()) stop_after_ = barrier.id.value();
  std::shared_ptr<const CheckpointHooks> hooks = options_.checkpoints;
  if (!hooks || !hooks->acknowledge) return;

  auto decline = [&](const std::string& why) {
    proto::DeclineCheckpoint d;
    d.set_attempt_id(hooks->attempt);
    d.set_checkpoint_id(barrier.id.value());
    d.set_vertex(vertex_.id.value());
    d.set_subtask(subtask_);
    d.set_reason(name_ + ": " + why);
    hooks->decline(std::move(d));
  };
  std::shared_ptr<storage::ObjectStore> store = hooks->store;
  if (barrier.savepoint()) {
    auto sp = storage::OpenObjectStore(barrier.target);
    if (!sp.ok()) return decline("savepoint directory: " + sp.status().message());
    store = std::move(*sp);
  }
  if (!store) return decline("no checkpoint storage configured");

  auto ack = std::make_shared<proto::AcknowledgeCheckpoint>();
  ack->set_attempt_id(hooks->attempt);
  ack->set_checkpoint_id(barrier.id.value());
  ack->set_vertex(vertex_.id.value());
  ack->set_subtask(subtask_);
  ack->set_alignment_duration_ms(alignment_ns / 1'000'000);
  uint64_t inline_bytes = 0;
  std::vector<std::pair<int, SnapshotUpload>> uploads;
  const StreamGraph& g = job_.stream_graph();
  for (size_t i = 0; i < operators_.size(); ++i) {
    const StreamNode& node = g.node(vertex_.nodes[i]);
    auto* os = ack->add_operators();
    os->set_uid(node.uid);
    os->set_name(node.name);
    auto* st = os->mutable_state();
    st->set_subtask(subtask_);
    std::string raw;
    operators_[i]->SnapshotState(raw);
    std::string timers;
    operators_[i]->SnapshotTimers(timers);
    std::string op_state;
    if (!op_states_[i]->entries().empty()) SnapshotOperatorState(*op_states_[i], op_state);
    inline_bytes += raw.size() + timers.size() + op_state.size();
    st->set_raw(std::move(raw));
    st->set_timers(std::move(timers));
    st->set_operator_state(std::move(op_state));
    if (KeyedStateBackend* kb = contexts_[i]->keyed_backend) {
      std::string base = KeySafe(node.uid) + "-" + std::to_string(subtask_);
      SnapshotTarget target;
      target.store = store.get();
      target.checkpoint_id = barrier.id;
      target.savepoint = barrier.savepoint();
      if (barrier.savepoint()) {
        target.exclusive_prefix = base + "-";
      } else {
        target.exclusive_prefix = "chk-" + std::to_string(barrier.id.value()) + "/" + base + "-";
        target.shared_prefix = "shared/" + base + "/";
      }
      auto up = kb->SnapshotAsync(target);
      if (!up.ok()) return decline("snapshot of '" + node.name + "': " + up.status().message());
      uploads.emplace_back(static_cast<int>(i), std::move(*up));
    }
  }
  const int64_t sync_ns = SteadyNs() - start_ns;
  ack->set_sync_duration_ms(sync_ns / 1'000'000);
  metrics_.last_alignment_ns.store(alignment_ns, std::memory_order_relaxed);
  metrics_.checkpoints_taken.fetch_add(1, std::memory_order_relaxed);
  std::string task_name = name_;
  hooks->run_async(
      [hooks, ack, store, inline_bytes, task_name, uploads = std::move(uploads)]() mutable {
        const int64_t t0 = SteadyNs();
        uint64_t checkpointed = inline_bytes, full = inline_bytes;
        for (auto& [i, upload] : uploads) {
          auto handle = upload();
          if (!handle.ok()) {
            proto::DeclineCheckpoint d;
            d.set_attempt_id(ack->attempt_id());
            d.set_checkpoint_id(ack->checkpoint_id());
            d.set_vertex(ack->vertex());
            d.set_subtask(ack->subtask());
            d.set_reason(task_name + ": uploading state of '" + ack->operators(i).name() + "' to " +
                         store->root() + " failed: " + handle.status().ToString());
            hooks->decline(std::move(d));
            return;
          }
          checkpointed += handle->checkpointed_size();
          full += handle->full_size();
          *ack->mutable_operators(i)->mutable_state()->mutable_keyed() = std::move(*handle);
        }
        ack->set_async_duration_ms((SteadyNs() - t0) / 1'000'000);
        ack->set_checkpointed_size(checkpointed);
        ack->set_full_size(full);
        hooks->acknowledge(std::move(*ack));
      });
}

Status Task::RestoreChain(bool after_open) {
  const auto& hooks = options_.checkpoints;
  if (!hooks || !hooks->restore || !hooks->restore->metadata) return Status::Ok();
  const proto::CheckpointMetadata& md = *hooks->restore->metadata;
  storage::ObjectStore& store = *hooks->restore->store;
  const StreamGraph& g = job_.stream_graph();
  for (size_t i = 0; i < operators_.size(); ++i) {
    const StreamNode& node = g.node(vertex_.nodes[i]);
    const proto::OperatorState* st = FindOperator(md, node.uid);
    if (!st) continue;  // an operator the snapshot does not know starts empty
    const std::string what = name_ + ": restoring '" + node.name + "' (uid " + node.uid +
                             ") from checkpoint " + std::to_string(md.checkpoint_id());
    if (!after_open) {
      if (KeyedStateBackend* kb = contexts_[i]->keyed_backend) {
        std::vector<proto::KeyedStateHandle> handles;
        for (const auto& sub : st->subtasks()) {
          if (sub.has_keyed()) handles.push_back(sub.keyed());
        }
        EDDY_RETURN_NOT_OK(kb->RestoreFromHandles(handles, store).WithContext(what));
      }
      std::vector<std::string> old(static_cast<size_t>(std::max(st->parallelism(), 0)));
      bool any = false;
      for (const auto& sub : st->subtasks()) {
        if (sub.subtask() < 0 || static_cast<size_t>(sub.subtask()) >= old.size()) {
          return Status::ParseError(what + ": subtask " + std::to_string(sub.subtask()) +
                                    " is out of range");
        }
        old[static_cast<size_t>(sub.subtask())] = sub.operator_state();
        any = any || !sub.operator_state().empty();
      }
      if (any) {
        auto stores = RedistributeOperatorState(old, vertex_.parallelism);
        if (!stores.ok()) return stores.status().WithContext(what);
        *op_states_[i] = std::move((*stores)[static_cast<size_t>(subtask_)]);
      }
      continue;
    }
    for (const auto& sub : st->subtasks()) {
      EDDY_RETURN_NOT_OK(operators_[i]->RestoreTimers(sub.timers()).WithContext(what));
    }
    for (const auto& sub : st->subtasks()) {
      if (sub.raw().empty()) continue;
      if (st->parallelism() != vertex_.parallelism) {
        std::fprintf(stderr,
                     "eddy: %s: its own state (e.g. a source position) cannot be redistributed "
                     "from parallelism %d to %d; it starts from the beginning\n",
                     what.c_str(), st->parallelism(), vertex_.parallelism);
        break;
      }
      if (sub.subtask() == subtask_) {
        EDDY_RETURN_NOT_OK(operators_[i]->RestoreState(sub.raw()).WithContext(what));
      }
    }
  }
  return Status::Ok();
}

}  // namespace eddy::worker
