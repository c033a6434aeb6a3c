// A task's part in checkpoints: the mailbox, barrier alignment, snapshots and restore.
#include <algorithm>
#include <cstdio>

#include "eddy/proto/checkpoint.pb.h"
#include "eddy/proto/control.pb.h"
#include "eddy/state/keyed_backend.h"
#include "eddy/state/operator_state.h"
#include "eddy/storage/object_store.h"
#include "eddy/worker/task.h"
#include "worker/src/pending_ack.h"

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

bool Task::IsUnaligned(const CheckpointBarrier& barrier) const {
  const auto& hooks = options_.checkpoints;
  return hooks && hooks->exactly_once && hooks->unaligned && !barrier.savepoint();
}

void Task::OnBarrier(int channel, const CheckpointBarrier& barrier) {
  const int64_t id = barrier.id.value();
  const auto c = static_cast<size_t>(channel);
  if (pending_unaligned_ && id == pending_barrier_.id.value()) {
    // A later barrier of the checkpoint snapshotted at its first one: this channel's in-flight
    // data is complete.
    got_barrier_[c] = true;
    recording_[c] = false;
    if (AlignmentComplete()) CompleteAlignment();
    return;
  }
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
    last_checkpoint_ = std::max(last_checkpoint_, pending_barrier_.id.value());
    EndAlignment();
  }
  if (pending_barrier_.id.value() == 0) {
    pending_barrier_ = barrier;
    alignment_start_ns_ = SteadyNs();
    if (IsUnaligned(barrier)) {
      // Snapshot now and send the barrier on; the channels still owing it keep being processed
      // and record what they deliver until their barrier comes.
      got_barrier_[c] = true;
      pending_unaligned_ = true;
      for (size_t i = 0; i < recording_.size(); ++i) {
        if (got_barrier_[i] || channel_ended_[i]) continue;
        recording_[i] = true;
        // A frame begun in an earlier buffer was not processed yet: it is in flight too.
        channel_state_[i].assign(readers_[i].pending());
      }
      PerformCheckpoint(barrier, 0);
      if (!deferred_ack_) {
        EndAlignment();  // declined: nothing to complete
        return;
      }
      if (AlignmentComplete()) CompleteAlignment();
      return;
    }
  } else if (id < pending_barrier_.id.value()) {
    return;
  }
  got_barrier_[c] = true;
  if (exactly_once) blocked_[c] = true;
  if (AlignmentComplete()) CompleteAlignment();
}

void Task::CompleteAlignment() {
  if (pending_unaligned_) {
    if (deferred_ack_) {
      PendingAck p = std::move(*deferred_ack_);
      deferred_ack_.reset();
      p.channels = std::move(channel_state_);
      channel_state_.assign(recording_.size(), std::string());
      const int64_t alignment_ns = SteadyNs() - p.snapshot_ns;
      p.ack->set_alignment_duration_ms(alignment_ns / 1'000'000);
      metrics_.last_alignment_ns.store(alignment_ns, std::memory_order_relaxed);
      DispatchAck(std::move(p));
    }
    EndAlignment();
    return;
  }
  CheckpointBarrier b = std::move(pending_barrier_);
  const bool aligned = !options_.checkpoints || options_.checkpoints->exactly_once;
  PerformCheckpoint(b, aligned ? SteadyNs() - alignment_start_ns_ : 0);
  EndAlignment();
}

void Task::EndAlignment() {
  for (size_t c = 0; c < blocked_.size(); ++c) {
    got_barrier_[c] = false;
    recording_[c] = false;
    channel_state_[c].clear();
    if (!blocked_[c]) continue;
    blocked_[c] = false;
    for (NetworkBuffer* b : stash_[c]) replay_.emplace_back(static_cast<int>(c), b);
    stash_[c].clear();
  }
  pending_barrier_ = CheckpointBarrier{};
  pending_unaligned_ = false;
  deferred_ack_.reset();
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

  auto owned = std::make_unique<PendingAck>();
  PendingAck& pending = *owned;
  pending.ack = std::make_shared<proto::AcknowledgeCheckpoint>();
  pending.store = store;
  pending.snapshot_ns = start_ns;
  proto::AcknowledgeCheckpoint* ack = pending.ack.get();
  ack->set_attempt_id(hooks->attempt);
  ack->set_checkpoint_id(barrier.id.value());
  ack->set_vertex(vertex_.id.value());
  ack->set_subtask(subtask_);
  ack->set_alignment_duration_ms(alignment_ns / 1'000'000);
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
    pending.inline_bytes += raw.size() + timers.size() + op_state.size();
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
      pending.uploads.emplace_back(static_cast<int>(i), std::move(*up));
    }
  }
  const int64_t sync_ns = SteadyNs() - start_ns;
  ack->set_sync_duration_ms(sync_ns / 1'000'000);
  metrics_.checkpoints_taken.fetch_add(1, std::memory_order_relaxed);
  if (pending_unaligned_) {
    // Taken at the first barrier (OnBarrier); sources never get here, they have no channels.
    deferred_ack_ = std::move(owned);
    return;
  }
  metrics_.last_alignment_ns.store(alignment_ns, std::memory_order_relaxed);
  DispatchAck(std::move(pending));
}

void Task::DispatchAck(PendingAck pending) {
  std::shared_ptr<const CheckpointHooks> hooks = options_.checkpoints;
  uint64_t in_flight = 0;
  std::vector<std::pair<std::string, std::string>> channel_files;  // key, data
  if (!pending.channels.empty()) {
    auto* head = pending.ack->mutable_operators(0)->mutable_state();
    head->set_num_input_channels(static_cast<int32_t>(pending.channels.size()));
    const StreamNode& node = job_.stream_graph().node(vertex_.head);
    for (size_t c = 0; c < pending.channels.size(); ++c) {
      std::string& data = pending.channels[c];
      if (data.empty()) continue;
      in_flight += data.size();
      auto* ch = head->add_input_channels();
      ch->set_channel(static_cast<int32_t>(c));
      ch->set_size(data.size());
      // Small channel states travel inline in the metadata; larger ones are files of the
      // checkpoint (deleted with it).
      if (data.size() <= hooks->max_inline_channel_state) {
        pending.inline_bytes += data.size();
        ch->set_inline_data(std::move(data));
        continue;
      }
      std::string key = "chk-" + std::to_string(pending.ack->checkpoint_id()) + "/" +
                        KeySafe(node.uid) + "-" + std::to_string(subtask_) + "-channel-" +
                        std::to_string(c);
      ch->mutable_file()->set_key(key);
      ch->mutable_file()->set_size(data.size());
      channel_files.emplace_back(std::move(key), std::move(data));
    }
    pending.ack->set_persisted_in_flight(in_flight);
    metrics_.last_in_flight_bytes.store(in_flight, std::memory_order_relaxed);
    metrics_.in_flight_bytes_total.fetch_add(in_flight, std::memory_order_relaxed);
  }
  std::string task_name = name_;
  hooks->run_async([hooks, ack = std::move(pending.ack), store = std::move(pending.store),
                    inline_bytes = pending.inline_bytes, task_name,
                    uploads = std::move(pending.uploads),
                    channel_files = std::move(channel_files)]() mutable {
    const int64_t t0 = SteadyNs();
    uint64_t checkpointed = inline_bytes, full = inline_bytes;
    auto fail = [&](const std::string& why) {
      proto::DeclineCheckpoint d;
      d.set_attempt_id(ack->attempt_id());
      d.set_checkpoint_id(ack->checkpoint_id());
      d.set_vertex(ack->vertex());
      d.set_subtask(ack->subtask());
      d.set_reason(task_name + ": " + why);
      hooks->decline(std::move(d));
    };
    for (auto& [key, data] : channel_files) {
      if (Status st = store->Put(key, data); !st.ok()) {
        return fail("uploading in-flight data to " + store->root() + " failed: " + st.ToString());
      }
      checkpointed += data.size();
      full += data.size();
    }
    for (auto& [i, upload] : uploads) {
      auto handle = upload();
      if (!handle.ok()) {
        return fail("uploading state of '" + ack->operators(i).name() + "' to " + store->root() +
                    " failed: " + handle.status().ToString());
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

Status Task::ReplayRestoredChannels() {
  std::vector<std::pair<int, std::string>> channels = std::move(restored_channels_);
  restored_channels_.clear();
  for (auto& [channel, data] : channels) {
    EDDY_RETURN_NOT_OK(ProcessData(channel, data.data(), data.size()));
    if (!failure_.ok()) return failure_.WithContext(name_);
  }
  return Status::Ok();
}

Status Task::RestoreChannelState(const proto::OperatorState& st, storage::ObjectStore& store,
                                 const std::string& what) {
  const size_t channels = wiring_.channel_input.size();
  for (const auto& sub : st.subtasks()) {
    if (sub.input_channels().empty()) continue;
    // In-flight data belongs to one consumer subtask and to channels numbered by the producers'
    // parallelism: it cannot be split or merged (Flink rescales it; Eddy does not).
    if (st.parallelism() != vertex_.parallelism ||
        static_cast<size_t>(sub.num_input_channels()) != channels) {
      return Status::InvalidArgument(
          what + ": the checkpoint is unaligned and holds in-flight data of " +
          std::to_string(st.parallelism()) + " subtasks with " +
          std::to_string(sub.num_input_channels()) + " input channels each, but this job runs " +
          std::to_string(vertex_.parallelism) + " subtasks with " + std::to_string(channels) +
          "; restore unaligned checkpoints at the same parallelism, and rescale from a "
          "savepoint (savepoints are always aligned)");
    }
    if (sub.subtask() != subtask_) continue;
    for (const auto& ch : sub.input_channels()) {
      if (ch.channel() < 0 || static_cast<size_t>(ch.channel()) >= channels) {
        return Status::ParseError(what + ": in-flight data of input channel " +
                                  std::to_string(ch.channel()) + " is out of range");
      }
      std::string data;
      if (ch.has_file() && !ch.file().key().empty()) {
        auto got = store.Get(ch.file().key());
        if (!got.ok()) {
          return got.status().WithContext(what + ": in-flight data of input channel " +
                                          std::to_string(ch.channel()));
        }
        data = std::move(*got);
      } else {
        data = ch.inline_data();
      }
      if (data.size() != ch.size()) {
        return Status::ParseError(
            what + ": in-flight data of input channel " + std::to_string(ch.channel()) + " has " +
            std::to_string(data.size()) + " bytes, expected " + std::to_string(ch.size()));
      }
      restored_channels_.emplace_back(ch.channel(), std::move(data));
    }
  }
  std::sort(restored_channels_.begin(), restored_channels_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  return Status::Ok();
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
      if (i == 0) EDDY_RETURN_NOT_OK(RestoreChannelState(*st, store, what));
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
