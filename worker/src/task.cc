#include "eddy/worker/task.h"

#include <algorithm>
#include <set>
#include <thread>

#include "eddy/state/keyed_state.h"
#include "worker/src/pending_ack.h"

namespace eddy::worker {

int64_t SteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void TaskTimeService::RegisterTimer(Timestamp time, std::function<void(Timestamp)> cb) {
  heap_.push(Entry{time, seq_++, std::move(cb)});
}

Timestamp TaskTimeService::RunDue() {
  if (heap_.empty()) return Timestamp::Max();
  Timestamp now = Now();
  while (!heap_.empty() && heap_.top().time <= now) {
    auto cb = std::move(const_cast<Entry&>(heap_.top()).cb);
    heap_.pop();
    cb(now);
  }
  return next();
}

Task::Task(const JobGraph& job, VertexId vertex, int subtask, Wiring wiring, TaskOptions options)
    : job_(job),
      vertex_(job.vertex(vertex)),
      subtask_(subtask),
      wiring_(std::move(wiring)),
      options_(std::move(options)),
      time_service_(options_.clock) {
  name_ = vertex_.name + " (" + std::to_string(subtask + 1) + "/" +
          std::to_string(vertex_.parallelism) + ")";
  const StreamGraph& g = job_.stream_graph();
  is_source_ = g.node(vertex_.head).is_source;
  // Sized once: metrics read the counters from other threads while the task runs.
  counters_.resize(vertex_.nodes.size());
  for (NodeId id : vertex_.nodes) operator_names_.push_back(g.node(id).name);
  if (is_source_) {
    latency_interval_ms_ = std::max<int64_t>(0, g.latency_tracking_interval.millis());
  } else {
    // The source vertices upstream of this one: the latency series this task can observe.
    std::set<int> sources, seen{vertex_.id.value()};
    std::vector<VertexId> todo{vertex_.id};
    while (!todo.empty()) {
      VertexId v = todo.back();
      todo.pop_back();
      for (const JobEdge& e : job_.edges()) {
        if (e.target != v || !seen.insert(e.source.value()).second) continue;
        if (g.node(job_.vertex(e.source).head).is_source) sources.insert(e.source.value());
        todo.push_back(e.source);
      }
    }
    for (int src : sources) {
      latency_.push_back(LatencySeries{
          VertexId(src),
          std::make_unique<metrics::AtomicHistogram>(metrics::HistogramBuckets::DefaultSeconds())});
    }
  }
}

Task::~Task() = default;

void Task::Cancel() {
  cancelled_.store(true);
  if (wiring_.gate) wiring_.gate->Wake();
  for (auto& p : wiring_.partitions) p->pool().Wake();
}

Status Task::BuildChain() {
  const StreamGraph& g = job_.stream_graph();
  std::map<int, size_t> pos;
  for (NodeId id : vertex_.nodes) {
    const StreamNode& n = g.node(id);
    pos[id.value()] = operators_.size();
    operators_.push_back(n.factory());
    auto ctx = std::make_unique<OperatorContext>();
    ctx->task_name = name_;
    ctx->operator_name = n.name;
    ctx->subtask_index = subtask_;
    ctx->parallelism = vertex_.parallelism;
    ctx->max_parallelism = vertex_.max_parallelism;
    ctx->processing_time = &time_service_;
    ctx->max_bad_records = options_.max_bad_records;
    ctx->task_failure = &failure_;
    contexts_.push_back(std::move(ctx));
  }
  // Wire outputs: chained edges call the next operator directly, the others go to partitions.
  for (size_t i = 0; i < operators_.size(); ++i) {
    const StreamNode& n = g.node(vertex_.nodes[i]);
    std::vector<OutputBase*> main;
    std::map<int, std::vector<OutputBase*>> sides;
    for (const StreamEdge* e : g.OutEdges(n.id)) {
      TypeInfoPtr type = e->side_tag == 0 ? n.out_type : n.side_types.at(e->side_tag);
      std::unique_ptr<OutputBase> out;
      if (auto it = pos.find(e->target.value()); it != pos.end()) {
        out = type->MakeChainingOutput(operators_[it->second]->input(e->target_input));
      } else {
        ResultPartition* w = wiring_.writers.at(e);
        auto sel =
            e->make_selector(e->partitioner, job_.vertex(job_.VertexOf(e->target)).max_parallelism);
        sel->Setup(w->num_channels(), subtask_);
        out = type->MakeWriterOutput(w, std::move(sel));
      }
      (e->side_tag == 0 ? main : sides[e->side_tag]).push_back(out.get());
      outputs_.push_back(std::move(out));
    }
    auto combine = [&](const TypeInfoPtr& type, std::vector<OutputBase*>& outs) -> OutputBase* {
      if (outs.size() == 1) return outs[0];
      outputs_.push_back(outs.empty() ? type->MakeDiscardingOutput()
                                      : type->MakeFanOutOutput(outs));
      return outputs_.back().get();
    };
    OutputBase* out = combine(n.out_type, main);
    if (!sides.empty()) {
      std::vector<std::pair<int, OutputBase*>> side_outs;
      for (auto& [tag, outs] : sides)
        side_outs.emplace_back(tag, combine(n.side_types.at(tag), outs));
      outputs_.push_back(n.out_type->MakeRoutingOutput(out, std::move(side_outs)));
      out = outputs_.back().get();
    }
    OperatorContext* ctx = contexts_[i].get();
    ctx->counters = &counters_[i];
    op_states_.push_back(std::make_unique<OperatorStateStore>());
    ctx->operator_state = op_states_.back().get();
    if (operators_[i]->is_keyed()) {
      auto range = KeyGroupRangeForSubtask(vertex_.max_parallelism, vertex_.parallelism, subtask_);
      EDDY_ASSIGN_OR_RETURN(
          auto backend,
          MakeKeyedStateBackend(
              options_.state_backend, vertex_.max_parallelism, range, options_.clock,
              UniqueLocalStateDir(options_.local_state_dir, g.job_name + "-" + n.name),
              options_.rocksdb));
      backend->set_error_sink(&failure_);
      backends_.push_back(std::move(backend));
      ctx->keyed_backend = backends_.back().get();
    }
    operators_[i]->Setup(ctx, out);
  }
  EDDY_RETURN_NOT_OK(RestoreChain(/*after_open=*/false));
  // Inputs of the chain head.
  StreamOperatorBase* head = operators_.front().get();
  int num_inputs = head->num_inputs();
  input_channels_.resize(static_cast<size_t>(num_inputs));
  for (size_t c = 0; c < wiring_.channel_input.size(); ++c) {
    int in = wiring_.channel_input[c];
    channel_local_.push_back(static_cast<int>(input_channels_[static_cast<size_t>(in)].size()));
    input_channels_[static_cast<size_t>(in)].push_back(static_cast<int>(c));
  }
  readers_.resize(wiring_.channel_input.size());
  channel_ended_.assign(wiring_.channel_input.size(), false);
  blocked_.assign(wiring_.channel_input.size(), false);
  got_barrier_.assign(wiring_.channel_input.size(), false);
  recording_.assign(wiring_.channel_input.size(), false);
  channel_state_.assign(wiring_.channel_input.size(), std::string());
  stash_.resize(wiring_.channel_input.size());
  for (int i = 0; i < num_inputs; ++i) {
    TypeInfoPtr type;
    for (const StreamEdge* e : g.InEdges(vertex_.head)) {
      if (e->target_input != i) continue;
      const StreamNode& src = g.node(e->source);
      type = e->side_tag == 0 ? src.out_type : src.side_types.at(e->side_tag);
    }
    if (!type) return Status::Internal(name_ + ": input " + std::to_string(i) + " has no type");
    decoders_.push_back(type->MakeDecoder(head->input(i)));
    valves_.emplace_back(
        std::max<int>(1, static_cast<int>(input_channels_[static_cast<size_t>(i)].size())));
  }
  // Open downstream first so that an operator never emits into an unopened one.
  for (size_t i = operators_.size(); i-- > 0;) {
    EDDY_RETURN_NOT_OK(
        operators_[i]->Open().WithContext(name_ + ": " + contexts_[i]->operator_name));
    ++opened_;
  }
  return RestoreChain(/*after_open=*/true);
}

Status Task::Run() {
  metrics_.started_ns.store(SteadyNs(), std::memory_order_relaxed);
  struct MarkEnd {
    TaskMetrics& m;
    ~MarkEnd() { m.ended_ns.store(SteadyNs(), std::memory_order_relaxed); }
  } mark_end{metrics_};
  Status st;
  try {
    st = BuildChain();
    if (st.ok()) {
      st = operators_.front()->num_inputs() == 0 ? RunSource() : RunInputs();
    }
    // stop-with-savepoint without drain ends here: no end-of-input, so nothing more is emitted.
    if (st.ok() && !cancelled_ && !stop_now_) {
      FinishChain();
      if (!failure_.ok()) st = failure_.WithContext(name_);
    }
    // Only what was opened (a restore may fail before any operator opened; they open tail first).
    for (size_t i = operators_.size() - opened_; i < operators_.size(); ++i) operators_[i]->Close();
  } catch (const std::exception& e) {
    st = Status::Internal(name_ + ": a function threw: " + e.what());
  }
  // Buffers held back by an unfinished alignment go back to their pools.
  for (auto& q : stash_) {
    for (NetworkBuffer* b : q) b->Recycle();
    q.clear();
  }
  for (auto& [c, b] : replay_) b->Recycle();
  replay_.clear();
  if (st.ok() && cancelled_) st = Status::Cancelled(name_ + " was cancelled");
  return st;
}

std::chrono::steady_clock::time_point Task::NextWake() {
  auto now = std::chrono::steady_clock::now();
  auto wake = now + std::chrono::milliseconds(100);
  Timestamp t = time_service_.next();
  if (t != Timestamp::Max()) {
    int64_t delta = (t - time_service_.Now()).millis();
    wake = std::min(wake, now + std::chrono::milliseconds(std::max<int64_t>(0, delta)));
  }
  if (next_flush_ms_ != INT64_MAX) {
    int64_t steady_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
    wake = std::min(
        wake, now + std::chrono::milliseconds(std::max<int64_t>(0, next_flush_ms_ - steady_ms)));
  }
  return wake;
}

TaskTimes Task::Times() const {
  TaskTimes t;
  t.idle_ns = metrics_.idle_ns.load(std::memory_order_relaxed);
  t.backpressured_ns = wiring_.io->backpressured_ns.load(std::memory_order_relaxed);
  if (is_source_) {
    int64_t start = metrics_.started_ns.load(std::memory_order_relaxed);
    int64_t end = metrics_.ended_ns.load(std::memory_order_relaxed);
    if (start != 0) {
      int64_t elapsed = (end != 0 ? end : SteadyNs()) - start;
      t.busy_ns = std::max<int64_t>(0, elapsed - t.idle_ns - t.backpressured_ns);
    }
  } else {
    // Waiting for an output buffer happens while processing a buffer: it is not busy time.
    t.busy_ns =
        std::max<int64_t>(0, metrics_.busy_ns.load(std::memory_order_relaxed) - t.backpressured_ns);
  }
  return t;
}

std::pair<size_t, size_t> Task::OutputBuffers() const {
  size_t used = 0, total = 0;
  for (const auto& p : wiring_.partitions) {
    total += p->pool().capacity();
    used += p->pool().capacity() - p->pool().available();
  }
  return {used, total};
}

void Task::EmitLatencyMarkers(int64_t now_ms) {
  LatencyMarker m;
  m.created_us = WallClockMicros();
  m.source_vertex = static_cast<uint32_t>(vertex_.id.value());
  m.source_subtask = static_cast<uint32_t>(subtask_);
  for (auto& p : wiring_.partitions) p->EmitLatencyMarker(m);
  next_marker_ms_ = now_ms + latency_interval_ms_;
}

void Task::OnLatencyMarker(std::string_view payload) {
  LatencyMarker m;
  if (!DecodeLatencyMarker(payload, m)) return;  // not worth failing the task for
  metrics_.latency_markers_in.fetch_add(1, std::memory_order_relaxed);
  for (auto& s : latency_) {
    if (s.source.value() == static_cast<int>(m.source_vertex)) {
      s.histogram->Observe(
          static_cast<double>(std::max<int64_t>(0, WallClockMicros() - m.created_us)) * 1e-6);
      break;
    }
  }
  for (auto& p : wiring_.partitions) p->EmitLatencyMarker(m);
}

void Task::FlushOutputs() {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  if (now >= next_marker_ms_) EmitLatencyMarkers(now);
  if (now < next_flush_ms_ && next_flush_ms_ != INT64_MAX) return;
  int64_t next = INT64_MAX;
  for (auto& p : wiring_.partitions) next = std::min(next, p->FlushIfDue(now));
  next_flush_ms_ = next;
}

Status Task::RunSource() {
  auto* source = static_cast<SourceOperatorBase*>(operators_.front().get());
  if (latency_interval_ms_ > 0 && !wiring_.partitions.empty()) {
    // The first marker goes out at once, then one per interval (Flink's LatencyMarkerEmitter).
    next_marker_ms_ = 0;
  }
  while (!cancelled_.load(std::memory_order_relaxed)) {
    time_service_.RunDue();
    if (has_mail_.load(std::memory_order_acquire)) ProcessMail();
    if (stop_now_ || drain_end_) return Status::Ok();
    if (source_stopped_) {
      // Stopped for a savepoint: nothing more is produced; wait for it to complete or abort.
      next_flush_ms_ = 0;
      FlushOutputs();
      auto before = std::chrono::steady_clock::now();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      metrics_.idle_ns.fetch_add((std::chrono::steady_clock::now() - before).count(),
                                 std::memory_order_relaxed);
      continue;
    }
    InputStatus s = source->PollNext();
    if (!failure_.ok()) return failure_.WithContext(name_);
    if (s == InputStatus::kEndOfInput) break;
    if (s == InputStatus::kNothingAvailable) {
      next_flush_ms_ = 0;  // idle: push out whatever is buffered
      FlushOutputs();
      auto before = std::chrono::steady_clock::now();
      auto wake = std::min(NextWake(), before + std::chrono::milliseconds(1));
      std::this_thread::sleep_until(wake);
      metrics_.idle_ns.fetch_add((std::chrono::steady_clock::now() - before).count(),
                                 std::memory_order_relaxed);
    } else if (next_flush_ms_ == INT64_MAX) {
      next_flush_ms_ = 0;
      FlushOutputs();
    } else {
      FlushOutputs();
    }
  }
  return Status::Ok();
}

Status Task::RunInputs() {
  const int total = static_cast<int>(wiring_.channel_input.size());
  EDDY_RETURN_NOT_OK(ReplayRestoredChannels());
  while (!cancelled_.load(std::memory_order_relaxed) && channels_ended_ < total) {
    time_service_.RunDue();
    if (has_mail_.load(std::memory_order_acquire)) ProcessMail();
    if (stop_now_) return Status::Ok();
    int channel = -1;
    auto t0 = std::chrono::steady_clock::now();
    NetworkBuffer* b = NextBuffer(channel);
    auto t1 = std::chrono::steady_clock::now();
    metrics_.idle_ns.fetch_add((t1 - t0).count(), std::memory_order_relaxed);
    if (b) {
      EDDY_RETURN_NOT_OK(ProcessBuffer(channel, b));
      if (!failure_.ok()) return failure_.WithContext(name_);
      metrics_.busy_ns.fetch_add((std::chrono::steady_clock::now() - t1).count(),
                                 std::memory_order_relaxed);
      if (next_flush_ms_ == INT64_MAX) next_flush_ms_ = 0;
    }
    FlushOutputs();
  }
  return Status::Ok();
}

Status Task::ProcessBuffer(int channel, NetworkBuffer* b) {
  const int input = wiring_.channel_input[static_cast<size_t>(channel)];
  const int local = channel_local_[static_cast<size_t>(channel)];
  InputBase* head_input = operators_.front()->input(input);
  WatermarkCombiner& valve = valves_[static_cast<size_t>(input)];
  if (b->kind == BufferKind::kEvent) {
    auto ev = static_cast<EventType>(b->data[0]);
    CheckpointBarrier barrier;
    bool is_barrier = ev == EventType::kCheckpointBarrier &&
                      DecodeBarrier(std::string_view(b->data, b->size), barrier);
    b->Recycle();
    if (ev == EventType::kEndOfPartition && !channel_ended_[static_cast<size_t>(channel)]) {
      ++channels_ended_;
      channel_ended_[static_cast<size_t>(channel)] = true;
      if (valve.SetIdle(local, true)) head_input->ProcessWatermark(valve.current());
      // An ended channel will send no barrier: it no longer holds an alignment back (and what it
      // recorded for an unaligned checkpoint is complete).
      recording_[static_cast<size_t>(channel)] = false;
      if (pending_barrier_.id.value() != 0 && AlignmentComplete()) CompleteAlignment();
    } else if (is_barrier) {
      OnBarrier(channel, barrier);
    } else if (ev == EventType::kCheckpointBarrier) {
      return Status::ParseError(name_ + ": malformed checkpoint barrier on input channel " +
                                std::to_string(channel));
    }
    return Status::Ok();
  }
  // Unaligned checkpoint pending and this channel's barrier not here yet: the buffer is in flight
  // with respect to the snapshot (processed now, and replayed on restore).
  if (recording_[static_cast<size_t>(channel)]) {
    channel_state_[static_cast<size_t>(channel)].append(b->data, b->size);
  }
  Status st = ProcessData(channel, b->data, b->size);
  b->Recycle();
  return st;
}

Status Task::ProcessData(int channel, const char* data, size_t size) {
  const int input = wiring_.channel_input[static_cast<size_t>(channel)];
  const int local = channel_local_[static_cast<size_t>(channel)];
  InputBase* head_input = operators_.front()->input(input);
  WatermarkCombiner& valve = valves_[static_cast<size_t>(input)];
  RecordDecoder* decoder = decoders_[static_cast<size_t>(input)].get();
  uint64_t records = 0;
  uint64_t bad = 0;
  bool ok = readers_[static_cast<size_t>(channel)].Feed(
      data, size, [&](FrameTag tag, Timestamp ts, std::string_view payload) {
        switch (tag) {
          case FrameTag::kRecord:
          case FrameTag::kRecordTs:
            ++records;
            if (!decoder->Decode(payload, ts)) ++bad;
            break;
          case FrameTag::kWatermark:
            if (valve.Update(local, ts)) {
              metrics_.input_watermark.store(valve.current().millis(), std::memory_order_relaxed);
              head_input->ProcessWatermark(valve.current());
            }
            break;
          case FrameTag::kIdleness: {
            bool was_all_idle = valve.all_idle();
            bool advanced = valve.SetIdle(local, !payload.empty() && payload[0] != 0);
            if (advanced) head_input->ProcessWatermark(valve.current());
            if (valve.all_idle() != was_all_idle) head_input->ProcessIdleness(valve.all_idle());
            break;
          }
          case FrameTag::kLatencyMarker:
            OnLatencyMarker(payload);
            break;
        }
      });
  metrics_.bytes_in.fetch_add(size, std::memory_order_relaxed);
  metrics_.records_in.fetch_add(records, std::memory_order_relaxed);
  if (!ok)
    return Status::ParseError(name_ + ": corrupt frame on input channel " +
                              std::to_string(channel));
  if (bad > 0) {
    uint64_t total_bad = metrics_.bad_records.fetch_add(bad) + bad;
    if (options_.max_bad_records >= 0 &&
        total_bad > static_cast<uint64_t>(options_.max_bad_records)) {
      return Status::ParseError(name_ + ": " + std::to_string(total_bad) +
                                " undecodable records exceed the limit");
    }
  }
  return Status::Ok();
}

void Task::FinishChain() {
  for (auto& op : operators_) op->Finish();
  for (auto& p : wiring_.partitions) p->Finish();
}

}  // namespace eddy::worker
