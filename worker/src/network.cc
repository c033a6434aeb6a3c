#include "eddy/worker/network.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <deque>
#include <future>
#include <unordered_map>
#include <zmq.hpp>

namespace eddy::worker {

namespace {

// Data-plane wire format (little endian), one ZeroMQ message of one or two frames:
//   header: 'E' 'D' version type attempt:u64 edge:u32 producer:u32 consumer:u32 value:u32 [kind:u8]
//   data:   header (value = sender backlog in buffers, kind = BufferKind) + payload frame
//   credit: header (value = credits granted), no payload
//   backlog: header (value = buffers queued), no payload; a sender out of credit announces its
//            backlog once so that the receiver can assign floating buffers to it
constexpr uint8_t kVersion = 1;
constexpr uint8_t kTypeData = 1;
constexpr uint8_t kTypeCredit = 2;
constexpr uint8_t kTypeBacklog = 3;
constexpr size_t kCreditHeader = 28;
constexpr size_t kDataHeader = 29;

void Put32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
void Put64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
uint32_t Get32(const char* p) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}
uint64_t Get64(const char* p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

void EncodeHeader(char* h, uint8_t type, const ChannelKey& k, uint32_t value) {
  h[0] = 'E';
  h[1] = 'D';
  h[2] = static_cast<char>(kVersion);
  h[3] = static_cast<char>(type);
  Put64(h + 4, k.attempt);
  Put32(h + 12, k.edge);
  Put32(h + 16, k.producer);
  Put32(h + 20, k.consumer);
  Put32(h + 24, value);
}

}  // namespace

struct NetworkService::Impl final {
  struct Peer {
    std::unique_ptr<zmq::socket_t> dealer;
    int users = 0;
  };

  struct OutChannel final : BufferSink {
    Impl* impl = nullptr;
    ChannelKey key;
    std::string peer;
    Peer* dealer = nullptr;
    std::deque<NetworkBuffer*> queue;  // I/O thread only
    uint32_t credit = 0;
    bool announced = false;  // backlog announced since the last credit
    void Push(NetworkBuffer* b) override { impl->Enqueue(this, b); }
  };

  struct InChannel {
    ChannelKey key;
    int gate_channel = 0;
    std::string peer;
    Peer* dealer = nullptr;
    int credit = 0;   // granted and not yet used
    int backlog = 0;  // last backlog the sender reported
    int pending = 0;  // granted, not yet announced
    bool ended = false;
  };

  struct InGate {
    InputGate* gate = nullptr;
    uint64_t attempt = 0;
    std::unique_ptr<LocalBufferPool> pool;
    std::vector<InChannel> channels;
    int unassigned = 0;  // free receive buffers not promised to any channel
    bool started = false;
    std::atomic<int> recycled{0};
  };

  Options options;
  NetworkStats* stats = nullptr;
  NetworkBufferPool* global = nullptr;
  zmq::context_t ctx{1};
  zmq::socket_t router{ctx, zmq::socket_type::router};
  int wake_fd = -1;
  std::thread io;
  std::atomic<bool> stop{false};

  // Handed over from other threads (short lock, no I/O while held).
  std::mutex mu;
  std::vector<std::pair<OutChannel*, NetworkBuffer*>> pushed;
  std::vector<std::move_only_function<void()>> commands;

  // I/O thread state.
  std::unordered_map<std::string, Peer> peers;
  std::unordered_map<ChannelKey, std::unique_ptr<OutChannel>, ChannelKeyHash> out;
  std::unordered_map<ChannelKey, std::pair<InGate*, size_t>, ChannelKeyHash> in_index;
  std::vector<std::unique_ptr<InGate>> gates;
  std::vector<std::pair<OutChannel*, NetworkBuffer*>> drained;  // reused swap buffer
  uint64_t logged_malformed = 0;

  void Wake() {
    uint64_t one = 1;
    ssize_t r = ::write(wake_fd, &one, sizeof one);
    (void)r;
  }

  void Enqueue(OutChannel* c, NetworkBuffer* b) {
    bool was_empty;
    {
      std::lock_guard lock(mu);
      was_empty = pushed.empty() && commands.empty();
      pushed.emplace_back(c, b);
    }
    if (was_empty) Wake();
  }

  void Post(std::move_only_function<void()> f) {
    {
      std::lock_guard lock(mu);
      commands.push_back(std::move(f));
    }
    Wake();
  }

  void PostAndWait(std::move_only_function<void()> f) {
    std::promise<void> done;
    auto fut = done.get_future();
    Post([&] {
      f();
      done.set_value();
    });
    fut.wait();
  }

  Peer* PeerFor(const std::string& endpoint) {
    auto& p = peers[endpoint];
    if (!p.dealer) {
      p.dealer = std::make_unique<zmq::socket_t>(ctx, zmq::socket_type::dealer);
      p.dealer->set(zmq::sockopt::linger, 0);
      // Unlimited: what is queued is bounded by credits (data) and receive pools (credits).
      p.dealer->set(zmq::sockopt::sndhwm, 0);
      p.dealer->connect(endpoint);
    }
    ++p.users;
    return &p;
  }

  void DropPeerUse(const std::string& endpoint) {
    auto it = peers.find(endpoint);
    if (it == peers.end()) return;
    if (--it->second.users <= 0) peers.erase(it);
  }

  void Malformed(const char* why) {
    stats->malformed_messages.fetch_add(1, std::memory_order_relaxed);
    // Logged, but not so often that garbage floods the log.
    if (logged_malformed < 20 || (logged_malformed & (logged_malformed - 1)) == 0) {
      std::fprintf(stderr, "eddy-worker: data plane: dropped malformed message: %s (%llu so far)\n",
                   why, static_cast<unsigned long long>(stats->malformed_messages.load()));
    }
    ++logged_malformed;
  }

  // ---- sending ----

  void TrySend(OutChannel& c) {
    while (c.credit > 0 && !c.queue.empty()) {
      NetworkBuffer* b = c.queue.front();
      c.queue.pop_front();
      char h[kDataHeader];
      EncodeHeader(h, kTypeData, c.key, static_cast<uint32_t>(c.queue.size()));
      h[28] = static_cast<char>(b->kind);
      // The payload is copied into the message so that the buffer returns to its pool now: its
      // pool may go away with the task long before ZeroMQ is done with the bytes.
      zmq::message_t payload(b->data, b->size);
      size_t size = b->size;
      b->Recycle();
      c.dealer->dealer->send(zmq::const_buffer(h, kDataHeader), zmq::send_flags::sndmore);
      c.dealer->dealer->send(payload, zmq::send_flags::none);
      --c.credit;
      stats->buffers_sent.fetch_add(1, std::memory_order_relaxed);
      stats->bytes_sent.fetch_add(size, std::memory_order_relaxed);
    }
    if (c.credit == 0 && !c.queue.empty() && !c.announced) {
      char h[kCreditHeader];
      EncodeHeader(h, kTypeBacklog, c.key, static_cast<uint32_t>(c.queue.size()));
      c.dealer->dealer->send(zmq::const_buffer(h, kCreditHeader), zmq::send_flags::none);
      c.announced = true;
    }
  }

  // ---- receiving ----

  void Grant(InGate& g) {
    const int exclusive = options.exclusive_buffers_per_channel;
    while (g.unassigned > 0) {
      InChannel* pick = nullptr;
      for (auto& c : g.channels) {
        if (!c.ended && c.credit < exclusive) {
          pick = &c;
          break;
        }
      }
      if (!pick) {
        int best = 0;
        for (auto& c : g.channels) {
          int want = c.backlog - c.credit;
          if (!c.ended && want > best) {
            best = want;
            pick = &c;
          }
        }
      }
      if (!pick) break;
      ++pick->credit;
      ++pick->pending;
      --g.unassigned;
    }
    for (auto& c : g.channels) {
      if (c.pending == 0) continue;
      char h[kCreditHeader];
      EncodeHeader(h, kTypeCredit, c.key, static_cast<uint32_t>(c.pending));
      c.dealer->dealer->send(zmq::const_buffer(h, kCreditHeader), zmq::send_flags::none);
      stats->credits_granted.fetch_add(static_cast<uint64_t>(c.pending), std::memory_order_relaxed);
      c.pending = 0;
    }
  }

  /// The inbound channel `k` and its gate; counts and returns nulls for an unknown channel.
  std::pair<InGate*, InChannel*> FindInbound(const ChannelKey& k) {
    auto it = in_index.find(k);
    if (it == in_index.end()) {
      stats->unknown_channel_messages.fetch_add(1, std::memory_order_relaxed);
      return {nullptr, nullptr};
    }
    return {it->second.first, &it->second.first->channels[it->second.second]};
  }

  void OnData(const ChannelKey& k, uint32_t backlog, uint8_t kind, const zmq::message_t& payload) {
    auto [gp, cp] = FindInbound(k);
    if (!gp) return;
    InGate& g = *gp;
    InChannel& c = *cp;
    if (c.credit <= 0 || c.ended) {
      Malformed("buffer sent without credit");
      return;
    }
    NetworkBuffer* b = g.pool->TryRequest();
    if (!b) {
      Malformed("buffer sent without credit (receive pool exhausted)");
      return;
    }
    std::memcpy(b->data, payload.data(), payload.size());
    b->size = payload.size();
    b->kind = static_cast<BufferKind>(kind);
    --c.credit;
    c.backlog = static_cast<int>(backlog);
    if (b->kind == BufferKind::kEvent && b->size == 1 &&
        static_cast<EventType>(b->data[0]) == EventType::kEndOfPartition) {
      c.ended = true;
      g.unassigned += c.credit;  // its unused credits go back to the gate
      c.credit = 0;
    }
    stats->buffers_received.fetch_add(1, std::memory_order_relaxed);
    stats->bytes_received.fetch_add(payload.size(), std::memory_order_relaxed);
    g.gate->Push(c.gate_channel, b);
    if (c.backlog > c.credit) Grant(g);
  }

  void OnBacklog(const ChannelKey& k, uint32_t backlog) {
    auto [gp, cp] = FindInbound(k);
    if (!gp) return;
    InGate& g = *gp;
    InChannel& c = *cp;
    c.backlog = static_cast<int>(std::min<uint32_t>(backlog, 1u << 20));
    if (g.started) Grant(g);
  }

  void OnCredit(const ChannelKey& k, uint32_t n) {
    auto it = out.find(k);
    if (it == out.end()) {
      stats->unknown_channel_messages.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    stats->credits_received.fetch_add(n, std::memory_order_relaxed);
    OutChannel& c = *it->second;
    // A credit beyond what any receive pool could hold is not from a well-behaved peer.
    if (n > (1u << 20) || c.credit > (1u << 20)) {
      Malformed("implausible credit");
      return;
    }
    c.credit += n;
    c.announced = false;
    TrySend(c);
  }

  void ReceiveOne() {
    zmq::message_t id, hdr, payload, extra;
    if (!router.recv(id, zmq::recv_flags::dontwait)) return;
    if (!id.more()) {
      Malformed("message without body");
      return;
    }
    (void)router.recv(hdr, zmq::recv_flags::none);
    bool has_payload = hdr.more();
    if (has_payload) (void)router.recv(payload, zmq::recv_flags::none);
    bool more = has_payload && payload.more();
    bool too_many = more;
    while (more) {
      (void)router.recv(extra, zmq::recv_flags::none);
      more = extra.more();
    }
    const char* h = static_cast<const char*>(hdr.data());
    if (hdr.size() < kCreditHeader || h[0] != 'E' || h[1] != 'D') {
      Malformed("not an Eddy data-plane message (bad magic or short header)");
      return;
    }
    if (static_cast<uint8_t>(h[2]) != kVersion) {
      Malformed("unsupported data-plane protocol version");
      return;
    }
    if (too_many) {
      Malformed("too many frames");
      return;
    }
    ChannelKey k{Get64(h + 4), Get32(h + 12), Get32(h + 16), Get32(h + 20)};
    uint32_t value = Get32(h + 24);
    uint8_t type = static_cast<uint8_t>(h[3]);
    if (type == kTypeCredit) {
      if (hdr.size() != kCreditHeader || has_payload) {
        Malformed("credit message of the wrong size");
        return;
      }
      OnCredit(k, value);
    } else if (type == kTypeBacklog) {
      if (hdr.size() != kCreditHeader || has_payload) {
        Malformed("backlog message of the wrong size");
        return;
      }
      OnBacklog(k, value);
    } else if (type == kTypeData) {
      if (hdr.size() != kDataHeader || !has_payload || payload.size() > kBufferSize) {
        Malformed("data message of the wrong size");
        return;
      }
      uint8_t kind = static_cast<uint8_t>(h[28]);
      if (kind > static_cast<uint8_t>(BufferKind::kEvent)) {
        Malformed("data message of an unknown buffer kind");
        return;
      }
      OnData(k, value, kind, payload);
    } else {
      Malformed("unknown data-plane message type");
    }
  }

  void RunCommands() {
    std::vector<std::move_only_function<void()>> cmds;
    {
      std::lock_guard lock(mu);
      cmds.swap(commands);
      drained.swap(pushed);
    }
    for (auto& [c, b] : drained) {
      c->queue.push_back(b);
      TrySend(*c);
    }
    drained.clear();
    for (auto& f : cmds) f();
  }

  void CollectRecycled() {
    for (auto& g : gates) {
      int n = g->recycled.exchange(0, std::memory_order_acq_rel);
      if (n == 0) continue;
      g->unassigned += n;
      if (g->started) Grant(*g);
    }
  }

  void Loop() {
    zmq::pollitem_t items[2] = {{router.handle(), 0, ZMQ_POLLIN, 0},
                                {nullptr, wake_fd, ZMQ_POLLIN, 0}};
    while (!stop.load(std::memory_order_relaxed)) {
      try {
        zmq::poll(items, 2, std::chrono::milliseconds(200));
      } catch (const zmq::error_t& e) {
        if (e.num() == EINTR) continue;
        std::fprintf(stderr, "eddy-worker: data plane: poll failed: %s\n", e.what());
        continue;
      }
      if (items[1].revents & ZMQ_POLLIN) {
        uint64_t v;
        ssize_t r = ::read(wake_fd, &v, sizeof v);
        (void)r;
      }
      RunCommands();
      CollectRecycled();
      // Bounded batch per round so commands and credits are not starved by a busy sender.
      for (int i = 0; i < 256; ++i) {
        if (!(router.get(zmq::sockopt::events) & ZMQ_POLLIN)) break;
        ReceiveOne();
      }
    }
  }

  void Release(uint64_t attempt) {
    for (auto it = out.begin(); it != out.end();) {
      if (it->first.attempt != attempt) {
        ++it;
        continue;
      }
      for (auto* b : it->second->queue) b->Recycle();
      DropPeerUse(it->second->peer);
      it = out.erase(it);
    }
    for (auto it = in_index.begin(); it != in_index.end();) {
      it = it->first.attempt == attempt ? in_index.erase(it) : std::next(it);
    }
    for (auto it = gates.begin(); it != gates.end();) {
      if ((*it)->attempt != attempt) {
        ++it;
        continue;
      }
      for (auto& c : (*it)->channels) DropPeerUse(c.peer);
      // Callers release an attempt only after its task threads ended, so no buffer of this
      // pool is touched again (the gate's queue may still point into it, unread).
      (*it)->pool->SetRecycleListener(nullptr);
      it = gates.erase(it);
    }
  }
};

Result<std::unique_ptr<NetworkService>> NetworkService::Start(Options options,
                                                              NetworkBufferPool* global) {
  std::unique_ptr<NetworkService> s(new NetworkService());
  s->impl_ = std::make_unique<Impl>();
  auto& impl = *s->impl_;
  impl.options = options;
  impl.stats = &s->stats_;
  impl.global = global;
  std::string bind = "tcp://" + options.bind_host + ":" +
                     (options.port == 0 ? std::string("*") : std::to_string(options.port));
  try {
    impl.router.set(zmq::sockopt::linger, 0);
    impl.router.set(zmq::sockopt::rcvhwm, 0);
    impl.router.bind(bind);
    std::string last = impl.router.get(zmq::sockopt::last_endpoint);
    s->port_ = std::stoi(last.substr(last.rfind(':') + 1));
  } catch (const std::exception& e) {
    return Status::IOError("data plane: cannot bind " + bind + ": " + e.what());
  }
  s->endpoint_ = "tcp://" + options.advertised_host + ":" + std::to_string(s->port_);
  impl.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl.wake_fd < 0) return Status::IOError("data plane: eventfd failed");
  impl.io = std::thread([&impl] { impl.Loop(); });
  return s;
}

NetworkService::~NetworkService() {
  if (!impl_) return;
  impl_->stop = true;
  impl_->Wake();
  if (impl_->io.joinable()) impl_->io.join();
  for (auto& [k, c] : impl_->out) {
    for (auto* b : c->queue) b->Recycle();
  }
  for (auto& g : impl_->gates) g->pool->SetRecycleListener(nullptr);
  impl_->out.clear();
  impl_->gates.clear();
  impl_->peers.clear();
  if (impl_->wake_fd >= 0) ::close(impl_->wake_fd);
}

BufferSink* NetworkService::AddOutbound(const ChannelKey& key,
                                        const std::string& consumer_endpoint) {
  auto c = std::make_unique<Impl::OutChannel>();
  c->impl = impl_.get();
  c->key = key;
  c->peer = consumer_endpoint;
  BufferSink* sink = c.get();
  Impl* impl = impl_.get();
  impl->PostAndWait([impl, c = std::move(c)]() mutable {
    c->dealer = impl->PeerFor(c->peer);
    impl->out[c->key] = std::move(c);
  });
  return sink;
}

Status NetworkService::AddInbound(InputGate* gate, std::vector<InboundChannel> channels) {
  if (channels.empty()) return Status::Ok();
  size_t n = channels.size() * static_cast<size_t>(impl_->options.exclusive_buffers_per_channel) +
             static_cast<size_t>(impl_->options.floating_buffers_per_gate);
  EDDY_ASSIGN_OR_RETURN(auto pool, LocalBufferPool::Make(impl_->global, n));
  auto g = std::make_unique<Impl::InGate>();
  g->gate = gate;
  g->attempt = channels.front().key.attempt;
  g->unassigned = static_cast<int>(n);
  Impl* impl = impl_.get();
  Impl::InGate* raw = g.get();
  pool->SetRecycleListener([impl, raw] {
    // Only the first recycle since the I/O thread last collected needs to wake it.
    if (raw->recycled.fetch_add(1, std::memory_order_acq_rel) == 0) impl->Wake();
  });
  g->pool = std::move(pool);
  for (auto& ch : channels) {
    Impl::InChannel c;
    c.key = ch.key;
    c.gate_channel = ch.gate_channel;
    c.peer = ch.producer_endpoint;
    g->channels.push_back(std::move(c));
  }
  impl->PostAndWait([impl, g = std::move(g)]() mutable {
    for (size_t i = 0; i < g->channels.size(); ++i) {
      g->channels[i].dealer = impl->PeerFor(g->channels[i].peer);
      impl->in_index[g->channels[i].key] = {g.get(), i};
    }
    impl->gates.push_back(std::move(g));
  });
  return Status::Ok();
}

void NetworkService::StartAttempt(uint64_t attempt) {
  Impl* impl = impl_.get();
  impl->PostAndWait([impl, attempt] {
    for (auto& g : impl->gates) {
      if (g->attempt != attempt || g->started) continue;
      g->started = true;
      impl->Grant(*g);
    }
  });
}

void NetworkService::ReleaseAttempt(uint64_t attempt) {
  Impl* impl = impl_.get();
  impl->PostAndWait([impl, attempt] { impl->Release(attempt); });
}

}  // namespace eddy::worker
