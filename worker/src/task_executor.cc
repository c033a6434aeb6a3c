#include "eddy/worker/task_executor.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "eddy/rpc/envelope.h"
#include "eddy/spec/job_spec.h"
#include "eddy/worker/deployment.h"

namespace eddy::worker {

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

proto::TaskState ToProto(const Status& s) {
  if (s.ok()) return proto::TASK_FINISHED;
  return s.code() == StatusCode::kCancelled ? proto::TASK_CANCELED : proto::TASK_FAILED;
}

}  // namespace

struct TaskExecutor::Impl {
  /// One execution attempt's subtasks on this worker.
  struct Attempt {
    uint64_t id = 0;
    std::string job_id;
    CompiledJob job;
    std::unique_ptr<JobGraph> graph;
    std::atomic<bool> cancelled{false};
    std::vector<std::unique_ptr<Task>> tasks;
    std::vector<std::pair<int, int>> ids;  // (vertex, subtask) per task
    std::vector<std::thread> threads;
    std::vector<proto::TaskState> states;
    // Previous heartbeat's figures, for ratios.
    std::vector<int64_t> last_busy_ns, last_bp_ns, last_idle_ns;
    int64_t last_report_ms = 0;
    bool started = false;
  };

  WorkerOptions options;
  std::unique_ptr<NetworkBufferPool> global;
  std::unique_ptr<NetworkService> network;
  zmq::context_t ctx{1};
  zmq::socket_t socket{ctx, zmq::socket_type::dealer};
  int wake_fd = -1;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> malformed{0};
  int64_t heartbeat_interval_ms = 1000;
  std::map<uint64_t, std::unique_ptr<Attempt>> attempts;

  // Task threads report their end here; the Run thread forwards it (it owns the socket).
  std::mutex mu;
  std::vector<proto::TaskStateUpdate> updates;

  void Log(const std::string& msg) const {
    std::fprintf(stderr, "eddy-worker[%s]: %s\n", options.worker_id.c_str(), msg.c_str());
  }

  void Wake() {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd, &one, sizeof one);
    (void)r;
  }

  void Send(proto::Envelope& e) {
    std::string bytes = rpc::Pack(e);
    // The DEALER queues while the control plane is unreachable; never block the loop on it.
    (void)socket.send(zmq::buffer(bytes), zmq::send_flags::dontwait);
  }

  /// Slot sharing: the subtasks with the same index share a slot.
  int slots_used() const {
    int n = 0;
    for (const auto& [id, a] : attempts) {
      std::map<int, int> per_index;
      for (const auto& [vx, s] : a->ids) per_index[s] = 1;
      n += static_cast<int>(per_index.size());
    }
    return n;
  }

  void SendRegistration() {
    proto::Envelope e;
    auto* r = e.mutable_register_worker();
    r->set_worker_id(options.worker_id);
    r->set_slots(options.slots);
    r->set_data_endpoint(network->endpoint());
    r->set_metrics_endpoint(options.metrics_endpoint);
    r->set_pid(static_cast<int32_t>(::getpid()));
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    r->set_host(host);
    Send(e);
  }

  void SendHeartbeat() {
    proto::Envelope e;
    auto* hb = e.mutable_heartbeat();
    hb->set_worker_id(options.worker_id);
    hb->set_slots_used(slots_used());
    hb->set_buffers_used(global->used());
    hb->set_buffers_total(global->total());
    int64_t now = NowMs();
    for (auto& [id, a] : attempts) {
      if (!a->started) continue;
      double interval_ns = static_cast<double>(std::max<int64_t>(1, now - a->last_report_ms)) * 1e6;
      for (size_t i = 0; i < a->tasks.size(); ++i) {
        const Task& t = *a->tasks[i];
        auto* r = hb->add_tasks();
        r->set_attempt_id(a->id);
        r->set_vertex(a->ids[i].first);
        r->set_subtask(a->ids[i].second);
        r->set_state(a->states[i]);
        r->set_records_in(t.metrics().records_in.load());
        r->set_bytes_in(t.metrics().bytes_in.load());
        r->set_records_out(t.io().records_out.load());
        r->set_bytes_out(t.io().bytes_out.load());
        r->set_input_watermark(t.metrics().input_watermark.load());
        r->set_bad_records(t.metrics().bad_records.load());
        int64_t busy = t.metrics().busy_ns.load(), bp = t.io().backpressured_ns.load(),
                idle = t.metrics().idle_ns.load();
        auto ratio = [&](int64_t cur, int64_t& last) {
          double v = static_cast<double>(cur - last) / interval_ns;
          last = cur;
          return std::clamp(v, 0.0, 1.0);
        };
        r->set_busy_ratio(ratio(busy, a->last_busy_ns[i]));
        r->set_backpressured_ratio(ratio(bp, a->last_bp_ns[i]));
        r->set_idle_ratio(ratio(idle, a->last_idle_ns[i]));
      }
      a->last_report_ms = now;
    }
    Send(e);
  }

  void HandleDeploy(const proto::DeployAttempt& d) {
    proto::Envelope reply;
    auto* ack = reply.mutable_deploy_ack();
    ack->set_attempt_id(d.attempt_id());
    auto fail = [&](const std::string& msg) {
      Log("deployment of attempt " + std::to_string(d.attempt_id()) + " of job " + d.job_id() +
          " failed: " + msg);
      ack->set_ok(false);
      ack->set_error(msg);
      Send(reply);
    };
    if (attempts.count(d.attempt_id())) return fail("attempt already deployed");
    auto a = std::make_unique<Attempt>();
    a->id = d.attempt_id();
    a->job_id = d.job_id();
    JobSpecOptions jo;
    jo.parallelism = d.parallelism();
    jo.base_dir = d.base_dir();
    jo.append_output_files = true;
    auto job = CompileJobSpec(d.spec_text(), d.spec_file(), jo);
    if (!job.ok()) return fail(job.status().message());
    a->job = std::move(*job);
    auto jg = JobGraph::FromStreamGraph(a->job.env->graph());
    if (!jg.ok()) return fail(jg.status().message());
    a->graph = std::make_unique<JobGraph>(std::move(*jg));
    std::map<std::pair<int, int>, std::string> where;
    for (const auto& p : d.placements()) {
      where[{p.vertex(), p.subtask()}] =
          p.worker_id() == options.worker_id ? std::string() : p.data_endpoint();
    }
    for (const auto& v : a->graph->vertices()) {
      for (int s = 0; s < v.parallelism; ++s) {
        if (!where.count({v.id.value(), s}))
          return fail("the placement misses subtask " + std::to_string(s) + " of vertex '" +
                      v.name + "' (do control plane and worker run the same Eddy version?)");
      }
    }
    DeploymentOptions o;
    o.global = global.get();
    o.buffer_timeout = d.buffer_timeout_ms() >= 0 ? Duration::Millis(d.buffer_timeout_ms())
                                                  : a->job.env->graph().buffer_timeout;
    o.cancelled = &a->cancelled;
    o.is_local = [&where](VertexId v, int s) { return where.at({v.value(), s}).empty(); };
    o.endpoint_of = [&where](VertexId v, int s) { return where.at({v.value(), s}); };
    o.network = network.get();
    o.attempt = a->id;
    auto tasks = DeployTasks(*a->graph, o);
    if (!tasks.ok()) {
      network->ReleaseAttempt(a->id);
      return fail(tasks.status().message());
    }
    a->tasks = std::move(*tasks);
    for (const auto& t : a->tasks) {
      a->ids.emplace_back(t->vertex_id().value(), t->subtask());
      a->states.push_back(proto::TASK_DEPLOYING);
    }
    a->last_busy_ns.assign(a->tasks.size(), 0);
    a->last_bp_ns.assign(a->tasks.size(), 0);
    a->last_idle_ns.assign(a->tasks.size(), 0);
    Log("deployed " + std::to_string(a->tasks.size()) + " subtasks of job '" + a->job.name +
        "' (attempt " + std::to_string(a->id) + ")");
    attempts[a->id] = std::move(a);
    ack->set_ok(true);
    Send(reply);
  }

  void HandleStart(uint64_t id) {
    auto it = attempts.find(id);
    if (it == attempts.end() || it->second->started) return;
    Attempt& a = *it->second;
    a.started = true;
    a.last_report_ms = NowMs();
    network->StartAttempt(id);
    for (size_t i = 0; i < a.tasks.size(); ++i) {
      a.states[i] = proto::TASK_RUNNING;
      a.threads.emplace_back([this, &a, i] {
        Status s = a.tasks[i]->Run();
        if (!s.ok() && s.code() != StatusCode::kCancelled) {
          Log("task " + a.tasks[i]->name() + " failed: " + s.ToString());
        }
        proto::TaskStateUpdate u;
        u.set_attempt_id(a.id);
        u.set_vertex(a.ids[i].first);
        u.set_subtask(a.ids[i].second);
        u.set_state(a.cancelled.load() && !s.ok() ? proto::TASK_CANCELED : ToProto(s));
        if (!s.ok()) u.set_error(s.ToString());
        {
          std::lock_guard lock(mu);
          updates.push_back(std::move(u));
        }
        Wake();
      });
    }
  }

  void Cancel(Attempt& a) {
    a.cancelled = true;
    for (auto& t : a.tasks) t->Cancel();
  }

  void Release(uint64_t id) {
    auto it = attempts.find(id);
    if (it == attempts.end()) return;
    Attempt& a = *it->second;
    Cancel(a);
    for (auto& t : a.threads) t.join();
    network->ReleaseAttempt(id);
    attempts.erase(it);
  }

  void ForwardUpdates() {
    std::vector<proto::TaskStateUpdate> batch;
    {
      std::lock_guard lock(mu);
      batch.swap(updates);
    }
    for (auto& u : batch) {
      if (auto it = attempts.find(u.attempt_id()); it != attempts.end()) {
        for (size_t i = 0; i < it->second->ids.size(); ++i) {
          if (it->second->ids[i] == std::pair<int, int>(u.vertex(), u.subtask()))
            it->second->states[i] = u.state();
        }
      }
      proto::Envelope e;
      *e.mutable_task_state() = std::move(u);
      Send(e);
    }
  }

  Status Loop() {
    socket.set(zmq::sockopt::routing_id, options.worker_id);
    socket.set(zmq::sockopt::linger, 0);
    socket.connect(options.jobmanager);
    SendRegistration();
    bool registered = false;
    int64_t start = NowMs();
    int64_t last_heard = start;
    int64_t next_beat = start + 1000;
    zmq::pollitem_t items[2] = {{socket.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    while (!stop.load()) {
      int64_t now = NowMs();
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(std::max<int64_t>(1, next_beat - now)));
      } catch (const zmq::error_t& e) {
        if (e.num() != EINTR) Log(std::string("poll failed: ") + e.what());
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t v;
        ssize_t r = ::read(wake_fd, &v, sizeof v);
        (void)r;
      }
      ForwardUpdates();
      while (true) {
        zmq::message_t m;
        if (!socket.recv(m, zmq::recv_flags::dontwait)) break;
        auto env = rpc::Unpack(std::string_view(static_cast<const char*>(m.data()), m.size()));
        if (!env.ok()) {
          malformed.fetch_add(1);
          Log("dropped control message: " + env.status().message());
          continue;
        }
        last_heard = NowMs();
        switch (env->body_case()) {
          case proto::Envelope::kRegisterAck:
            if (!env->register_ack().accepted()) {
              return Status::InvalidArgument("the control plane refused this worker: " +
                                             env->register_ack().error());
            }
            if (!registered) {
              Log("registered with " + options.jobmanager + ", " + std::to_string(options.slots) +
                  " slots, data plane at " + network->endpoint());
            }
            registered = true;
            if (env->register_ack().heartbeat_interval_ms() > 0)
              heartbeat_interval_ms = env->register_ack().heartbeat_interval_ms();
            break;
          case proto::Envelope::kDeploy:
            HandleDeploy(env->deploy());
            break;
          case proto::Envelope::kStart:
            HandleStart(env->start().attempt_id());
            break;
          case proto::Envelope::kCancel:
            if (auto it = attempts.find(env->cancel().attempt_id()); it != attempts.end())
              Cancel(*it->second);
            break;
          case proto::Envelope::kRelease:
            Release(env->release().attempt_id());
            break;
          case proto::Envelope::kShutdown:
            Log("asked to shut down: " + env->shutdown().reason());
            stop = true;
            break;
          default:
            malformed.fetch_add(1);
            Log("dropped control message of unexpected kind " +
                std::to_string(static_cast<int>(env->body_case())));
        }
      }
      now = NowMs();
      if (!registered && now - start > options.registration_timeout_ms) {
        return Status::Unavailable("no answer from the control plane at " + options.jobmanager +
                                   " within " + std::to_string(options.registration_timeout_ms) +
                                   " ms");
      }
      if (registered && now - last_heard > options.jobmanager_timeout_ms) {
        return Status::Unavailable("lost the control plane at " + options.jobmanager +
                                   ": nothing heard for " + std::to_string(now - last_heard) +
                                   " ms");
      }
      if (now >= next_beat) {
        // Until registered, the heartbeat is the registration (the control plane may start
        // after us or may have forgotten us).
        if (registered) {
          SendHeartbeat();
        } else {
          SendRegistration();
        }
        next_beat = now + heartbeat_interval_ms;
      }
    }
    return Status::Ok();
  }
};

Result<std::unique_ptr<TaskExecutor>> TaskExecutor::Make(WorkerOptions options) {
  std::unique_ptr<TaskExecutor> te(new TaskExecutor());
  te->impl_ = std::make_unique<Impl>();
  auto& impl = *te->impl_;
  if (options.slots <= 0)
    options.slots = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (options.worker_id.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    options.worker_id = std::string(host) + "-" + std::to_string(::getpid());
  }
  impl.options = options;
  impl.global = std::make_unique<NetworkBufferPool>(options.network_buffers);
  EDDY_ASSIGN_OR_RETURN(impl.network, NetworkService::Start(options.network, impl.global.get()));
  impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl.wake_fd < 0) return Status::IOError("eventfd failed");
  return te;
}

TaskExecutor::~TaskExecutor() {
  if (!impl_) return;
  std::vector<uint64_t> ids;
  for (auto& [id, a] : impl_->attempts) ids.push_back(id);
  for (auto id : ids) impl_->Release(id);
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

Status TaskExecutor::Run() {
  try {
    return impl_->Loop();
  } catch (const zmq::error_t& e) {
    return Status::IOError(std::string("control connection failed: ") + e.what());
  }
}

void TaskExecutor::RequestStop() {
  impl_->stop.store(true);
  uint64_t one = 1;
  ssize_t r = ::write(impl_->wake_fd, &one, sizeof one);
  (void)r;
}

const NetworkService& TaskExecutor::network() const { return *impl_->network; }

uint64_t TaskExecutor::malformed_control_messages() const { return impl_->malformed.load(); }

}  // namespace eddy::worker
