#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "eddy/status.h"
#include "eddy/worker/buffer_pool.h"
#include "eddy/worker/channels.h"

namespace eddy::worker {

/// Names one channel of one execution attempt in the whole cluster: the producer subtask and the
/// consumer subtask of one JobGraph edge. Both workers compute it from the same JobGraph.
struct ChannelKey {
  uint64_t attempt = 0;
  uint32_t edge = 0;
  uint32_t producer = 0;
  uint32_t consumer = 0;
  bool operator==(const ChannelKey&) const = default;
};

struct ChannelKeyHash {
  size_t operator()(const ChannelKey& k) const {
    uint64_t h = k.attempt * 0x9E3779B97F4A7C15ull;
    h ^= (static_cast<uint64_t>(k.edge) << 40) ^ (static_cast<uint64_t>(k.producer) << 20) ^
         k.consumer;
    return static_cast<size_t>(h * 0xC2B2AE3D27D4EB4Full);
  }
};

/// Counters of a worker's data plane, readable from any thread.
struct NetworkStats {
  std::atomic<uint64_t> buffers_sent{0};
  std::atomic<uint64_t> buffers_received{0};
  std::atomic<uint64_t> bytes_sent{0};
  std::atomic<uint64_t> bytes_received{0};
  std::atomic<uint64_t> credits_granted{0};
  std::atomic<uint64_t> credits_received{0};
  /// Messages that are not Eddy data-plane messages (bad magic, version, size, type) or that
  /// break the protocol (a buffer sent without credit). Logged, counted, dropped.
  std::atomic<uint64_t> malformed_messages{0};
  /// Well-formed messages for channels this worker does not know (e.g. of a released attempt).
  std::atomic<uint64_t> unknown_channel_messages{0};
};

/// The data plane of one worker (Flink's NettyShuffleEnvironment, over ZeroMQ): one I/O thread
/// owns a ROUTER socket bound on the data port, through which every message arrives, and one
/// DEALER per peer worker, through which it sends. Buffers for remote consumers are sent only
/// against credit: the receiving side grants exclusive credits per channel and floating credits
/// per gate as buffers of its receive pool are recycled, favouring channels with a backlog.
///
/// Threading: public methods from any thread. Tasks hand buffers over through BufferSink::Push
/// (a short lock, no I/O); the I/O thread alone touches sockets. No queue is unbounded: outgoing
/// queues hold buffers of the producers' bounded pools, incoming data lands only in buffers
/// promised as credit.
class NetworkService {
 public:
  struct Options {
    /// Interface to bind; the port is `port` (0 = an ephemeral port).
    std::string bind_host = "0.0.0.0";
    int port = 6121;
    /// Host name peers use to reach this worker.
    std::string advertised_host = "127.0.0.1";
    /// Flink's taskmanager.network.memory.buffers-per-channel / floating-buffers-per-gate.
    int exclusive_buffers_per_channel = 2;
    int floating_buffers_per_gate = 8;
  };
  /// A remote channel of one input gate: which gate channel its buffers land in and which worker
  /// produces them (where credits go).
  struct InboundChannel {
    ChannelKey key;
    int gate_channel = 0;
    std::string producer_endpoint;
  };

  static Result<std::unique_ptr<NetworkService>> Start(Options options, NetworkBufferPool* global);
  ~NetworkService();
  NetworkService(const NetworkService&) = delete;
  NetworkService& operator=(const NetworkService&) = delete;

  /// tcp://advertised_host:port of the bound ROUTER.
  const std::string& endpoint() const { return endpoint_; }
  int port() const { return port_; }

  /// The sending end of a remote channel. Valid until ReleaseAttempt(key.attempt).
  BufferSink* AddOutbound(const ChannelKey& key, const std::string& consumer_endpoint);
  /// Registers the remote channels of one gate and reserves its receive pool from the worker's
  /// budget (exclusive buffers per channel + floating buffers). Error when the budget is short.
  Status AddInbound(InputGate* gate, std::vector<InboundChannel> channels);
  /// Grants the initial (exclusive) credits of the attempt's inbound channels.
  void StartAttempt(uint64_t attempt);
  /// Drops the attempt's channels and queued buffers; returns once the I/O thread let go of
  /// them (so the gates and producer pools may be destroyed).
  void ReleaseAttempt(uint64_t attempt);

  const NetworkStats& stats() const { return stats_; }

 private:
  struct Impl;
  NetworkService() = default;
  std::unique_ptr<Impl> impl_;
  std::string endpoint_;
  int port_ = 0;
  NetworkStats stats_;
};

}  // namespace eddy::worker
