// Data-plane throughput: 100-byte records framed into 32 KiB buffers by a ResultPartition and
// parsed by a ChannelReader on the consuming side, through
//   local   — an InputGate of the same process (the hand-over between tasks of one worker), and
//   zeromq  — two NetworkServices over tcp loopback with credit-based flow control (the exchange
//             between two workers; both ends in this process so one clock measures them).
// The local case is the baseline of the same invocation; numbers are records/s of wall time and
// records per CPU-second of the whole process (all threads: producer, consumer, I/O, ZeroMQ).
//
//   ./build/bench/network_bench [--records N] [--reps R] [--timeout-ms T]

#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "eddy/worker/channels.h"
#include "eddy/worker/network.h"

namespace {

using eddy::Duration;
using eddy::Timestamp;
using namespace eddy::worker;

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

struct Result {
  double wall_s = 0;
  double cpu_s = 0;
  int64_t received = 0;
};

/// Producer thread emits `n` records into `part`, then ends the partition; the consumer drains
/// `gate` until end of partition, checking every frame.
Result Pump(ResultPartition& part, InputGate& gate, int64_t n) {
  Result r;
  std::atomic<int64_t> received{0};
  auto t0 = std::chrono::steady_clock::now();
  double c0 = CpuSeconds();
  std::thread consumer([&] {
    ChannelReader reader;
    int64_t count = 0;
    int64_t sum = 0;
    for (;;) {
      int ch;
      NetworkBuffer* b = gate.Poll(ch, std::chrono::steady_clock::now() + std::chrono::seconds(30));
      if (!b) break;
      if (b->kind == BufferKind::kEvent) {
        b->Recycle();
        break;
      }
      reader.Feed(b->data, b->size, [&](FrameTag, Timestamp ts, std::string_view payload) {
        ++count;
        sum += ts.millis() + static_cast<int64_t>(payload.size());
      });
      b->Recycle();
    }
    received = count;
    if (sum == 42) std::puts("");  // keep the parse from being optimized away
  });
  char rec[100];
  std::memset(rec, 'x', sizeof rec);
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(rec, &i, sizeof i);
    part.Emit(0, std::string_view(rec, sizeof rec), Timestamp(i));
  }
  part.Finish();
  consumer.join();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.cpu_s = CpuSeconds() - c0;
  r.received = received;
  return r;
}

Result RunLocal(int64_t n, int64_t timeout_ms) {
  NetworkBufferPool global(64);
  InputGate gate(1);
  auto pool = LocalBufferPool::Make(&global, 10);
  IoCounters io;
  std::atomic<bool> cancelled{false};
  ResultPartition part(std::move(*pool), {{&gate, 0, nullptr}}, Duration::Millis(timeout_ms), &io,
                       &cancelled);
  return Pump(part, gate, n);
}

Result RunZeroMq(int64_t n, int64_t timeout_ms, uint64_t attempt) {
  NetworkBufferPool global_a(64), global_b(64);
  NetworkService::Options o;
  o.bind_host = "127.0.0.1";
  o.port = 0;
  auto a = NetworkService::Start(o, &global_a);
  auto b = NetworkService::Start(o, &global_b);
  if (!a.ok() || !b.ok()) {
    std::fprintf(stderr, "cannot start network services\n");
    std::exit(1);
  }
  ChannelKey key{attempt, 0, 0, 0};
  InputGate gate(1);
  if (!(*b)->AddInbound(&gate, {{key, 0, (*a)->endpoint()}}).ok()) std::exit(1);
  BufferSink* sink = (*a)->AddOutbound(key, (*b)->endpoint());
  (*b)->StartAttempt(attempt);
  (*a)->StartAttempt(attempt);
  auto pool = LocalBufferPool::Make(&global_a, 10);
  IoCounters io;
  std::atomic<bool> cancelled{false};
  ResultPartition part(std::move(*pool), {{nullptr, 0, sink}}, Duration::Millis(timeout_ms), &io,
                       &cancelled);
  Result r = Pump(part, gate, n);
  (*a)->ReleaseAttempt(attempt);
  (*b)->ReleaseAttempt(attempt);
  return r;
}

std::string Rate(double r) {
  char buf[32];
  if (r >= 1e6) {
    std::snprintf(buf, sizeof buf, "%.2f M", r / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f k", r / 1e3);
  }
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t records = 20'000'000;
  int reps = 3;
  int64_t timeout_ms = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--records") records = std::atoll(argv[i + 1]);
    if (a == "--reps") reps = std::atoi(argv[i + 1]);
    if (a == "--timeout-ms") timeout_ms = std::atoll(argv[i + 1]);
  }
  std::printf(
      "100-byte records, 32 KiB buffers, buffer timeout %lld ms, %lld records, median of %d\n\n",
      static_cast<long long>(timeout_ms), static_cast<long long>(records), reps);
  std::printf("| channel | rec/s (wall) | rec/s per core | cores busy | vs local per core |\n");
  std::printf("|---|---:|---:|---:|---:|\n");
  double local_per_core = 0;
  uint64_t attempt = 1;
  for (const char* kind : {"local", "zeromq"}) {
    std::vector<Result> runs;
    for (int i = 0; i < reps; ++i) {
      Result r = std::string(kind) == "local" ? RunLocal(records, timeout_ms)
                                              : RunZeroMq(records, timeout_ms, attempt++);
      if (r.received != records) {
        std::fprintf(stderr, "%s: received %lld of %lld records\n", kind,
                     static_cast<long long>(r.received), static_cast<long long>(records));
        return 1;
      }
      runs.push_back(r);
    }
    std::sort(runs.begin(), runs.end(),
              [](const Result& x, const Result& y) { return x.wall_s < y.wall_s; });
    const Result& m = runs[runs.size() / 2];
    double wall = static_cast<double>(records) / m.wall_s;
    double per_core = static_cast<double>(records) / std::max(m.cpu_s, 1e-9);
    if (local_per_core == 0) local_per_core = per_core;
    std::printf("| %s | %s | %s | %.2f | %.2fx |\n", kind, Rate(wall).c_str(),
                Rate(per_core).c_str(), m.cpu_s / m.wall_s, per_core / local_per_core);
  }
  return 0;
}
