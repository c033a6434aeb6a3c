// The ZeroMQ data plane: ordered delivery between two services over tcp loopback, credit-based
// flow control bounding what a slow receiver holds, floating credits for backlogged channels,
// and garbage on the data port being counted and dropped.

#include "eddy/worker/network.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>
#include <zmq.hpp>

namespace eddy::worker {
namespace {

using namespace std::chrono_literals;

std::unique_ptr<NetworkService> StartService(NetworkBufferPool* pool) {
  NetworkService::Options o;
  o.bind_host = "127.0.0.1";
  o.port = 0;
  auto s = NetworkService::Start(o, pool);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return std::move(*s);
}

template <class Pred>
bool WaitFor(Pred p, std::chrono::milliseconds timeout = 5000ms) {
  auto end = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < end) {
    if (p()) return true;
    std::this_thread::sleep_for(2ms);
  }
  return p();
}

/// Sends `n` numbered data buffers and an end-of-partition event through `sink`.
void Produce(LocalBufferPool& pool, BufferSink* sink, int n, std::atomic<bool>& cancelled) {
  int64_t waited = 0;
  for (int i = 0; i < n; ++i) {
    NetworkBuffer* b = pool.Request(cancelled, waited);
    if (!b) return;
    std::memcpy(b->data, &i, sizeof i);
    b->size = 1000 + static_cast<size_t>(i % 7);
    sink->Push(b);
  }
  NetworkBuffer* b = pool.Request(cancelled, waited);
  if (!b) return;
  b->kind = BufferKind::kEvent;
  b->data[0] = static_cast<char>(EventType::kEndOfPartition);
  b->size = 1;
  sink->Push(b);
}

struct Pair {
  NetworkBufferPool global_a{256};
  NetworkBufferPool global_b{256};
  std::unique_ptr<NetworkService> a = StartService(&global_a);
  std::unique_ptr<NetworkService> b = StartService(&global_b);
};

TEST(NetworkServiceTest, DeliversInOrderAcrossProcessesBoundary) {
  Pair p;
  ChannelKey key{7, 1, 0, 0};
  InputGate gate(1);
  ASSERT_TRUE(p.b->AddInbound(&gate, {{key, 0, p.a->endpoint()}}).ok());
  BufferSink* sink = p.a->AddOutbound(key, p.b->endpoint());
  p.b->StartAttempt(7);
  p.a->StartAttempt(7);
  auto pool = LocalBufferPool::Make(&p.global_a, 8);
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> cancelled{false};
  constexpr int kN = 2000;
  std::thread producer([&] { Produce(**pool, sink, kN, cancelled); });
  int expected = 0;
  bool ended = false;
  while (!ended) {
    int ch = -1;
    NetworkBuffer* b = gate.Poll(ch, std::chrono::steady_clock::now() + 5s);
    ASSERT_NE(b, nullptr) << "timed out after " << expected << " buffers";
    EXPECT_EQ(ch, 0);
    if (b->kind == BufferKind::kEvent) {
      ended = true;
    } else {
      int v;
      std::memcpy(&v, b->data, sizeof v);
      EXPECT_EQ(v, expected);
      EXPECT_EQ(b->size, 1000 + static_cast<size_t>(expected % 7));
      ++expected;
    }
    b->Recycle();
  }
  producer.join();
  EXPECT_EQ(expected, kN);
  EXPECT_EQ(p.b->stats().buffers_received.load(), static_cast<uint64_t>(kN + 1));
  EXPECT_EQ(p.a->stats().buffers_sent.load(), static_cast<uint64_t>(kN + 1));
  EXPECT_EQ(p.b->stats().malformed_messages.load(), 0u);
  p.a->ReleaseAttempt(7);
  p.b->ReleaseAttempt(7);
  EXPECT_EQ(p.global_b.used(), 0u) << "the receive pool went back to the budget";
}

TEST(NetworkServiceTest, CreditsBoundWhatASlowReceiverHolds) {
  Pair p;
  ChannelKey key{9, 0, 0, 0};
  InputGate gate(1);
  ASSERT_TRUE(p.b->AddInbound(&gate, {{key, 0, p.a->endpoint()}}).ok());
  BufferSink* sink = p.a->AddOutbound(key, p.b->endpoint());
  p.b->StartAttempt(9);
  p.a->StartAttempt(9);
  auto pool = LocalBufferPool::Make(&p.global_a, 16);
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> cancelled{false};
  std::thread producer([&] { Produce(**pool, sink, 500, cancelled); });
  // Nobody consumes: the receiver may hold only what it promised (2 exclusive + 8 floating),
  // and the producer ends up blocked on its own pool.
  ASSERT_TRUE(WaitFor([&] { return (*pool)->available() == 0; }));
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(p.b->stats().buffers_received.load(), 10u);
  EXPECT_EQ(p.b->stats().malformed_messages.load(), 0u);
  // Draining resumes the flow to the end.
  int got = 0;
  for (;;) {
    int ch;
    NetworkBuffer* b = gate.Poll(ch, std::chrono::steady_clock::now() + 5s);
    ASSERT_NE(b, nullptr);
    bool end = b->kind == BufferKind::kEvent;
    b->Recycle();
    if (end) break;
    ++got;
  }
  producer.join();
  EXPECT_EQ(got, 500);
  p.a->ReleaseAttempt(9);
  p.b->ReleaseAttempt(9);
}

TEST(NetworkServiceTest, FloatingCreditsGoToTheBackloggedChannel) {
  Pair p;
  ChannelKey busy{3, 0, 0, 0};
  ChannelKey quiet{3, 0, 1, 0};
  InputGate gate(2);
  ASSERT_TRUE(
      p.b->AddInbound(&gate, {{busy, 0, p.a->endpoint()}, {quiet, 1, p.a->endpoint()}}).ok());
  BufferSink* sink = p.a->AddOutbound(busy, p.b->endpoint());
  p.a->AddOutbound(quiet, p.b->endpoint());
  p.b->StartAttempt(3);
  p.a->StartAttempt(3);
  auto pool = LocalBufferPool::Make(&p.global_a, 32);
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> cancelled{false};
  std::thread producer([&] { Produce(**pool, sink, 100, cancelled); });
  // 2 exclusive credits of the busy channel + all 8 floating ones; the quiet channel keeps its 2.
  ASSERT_TRUE(WaitFor([&] { return p.b->stats().buffers_received.load() == 10; }));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(p.b->stats().buffers_received.load(), 10u);
  cancelled = true;
  (*pool)->Wake();
  producer.join();
  p.a->ReleaseAttempt(3);
  p.b->ReleaseAttempt(3);
}

TEST(NetworkServiceTest, GarbageOnTheDataPortIsCountedAndDropped) {
  Pair p;
  // Raw bytes that are not even ZMTP: ZeroMQ closes the connection, nothing reaches us.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(p.b->port()));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const char junk[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n\xff\xfe garbage";
  ASSERT_GT(::write(fd, junk, sizeof junk), 0);
  ::close(fd);

  // Well-framed ZeroMQ messages that are not ours, or break the protocol.
  zmq::context_t ctx;
  zmq::socket_t d(ctx, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.connect(p.b->endpoint());
  d.send(zmq::str_buffer("hello"), zmq::send_flags::none);  // bad magic
  char h[29] = {'E', 'D', 9, 1};                            // bad version
  d.send(zmq::const_buffer(h, 29), zmq::send_flags::none);
  h[2] = 1;
  h[3] = 2;  // credit with the data header size
  d.send(zmq::const_buffer(h, 29), zmq::send_flags::none);
  h[3] = 1;  // data without payload
  d.send(zmq::const_buffer(h, 29), zmq::send_flags::none);
  h[3] = 7;  // unknown type
  d.send(zmq::const_buffer(h, 28), zmq::send_flags::none);
  ASSERT_TRUE(WaitFor([&] { return p.b->stats().malformed_messages.load() == 5; }))
      << p.b->stats().malformed_messages.load();
  // A well-formed buffer for a channel nobody registered, without credit: unknown channel.
  h[3] = 1;
  h[28] = 0;
  d.send(zmq::const_buffer(h, 29), zmq::send_flags::sndmore);
  d.send(zmq::str_buffer("payload"), zmq::send_flags::none);
  ASSERT_TRUE(WaitFor([&] { return p.b->stats().unknown_channel_messages.load() == 1; }));

  // And the service still works.
  ChannelKey key{11, 0, 0, 0};
  InputGate gate(1);
  ASSERT_TRUE(p.b->AddInbound(&gate, {{key, 0, p.a->endpoint()}}).ok());
  BufferSink* sink = p.a->AddOutbound(key, p.b->endpoint());
  p.b->StartAttempt(11);
  auto pool = LocalBufferPool::Make(&p.global_a, 4);
  ASSERT_TRUE(pool.ok());
  std::atomic<bool> cancelled{false};
  Produce(**pool, sink, 1, cancelled);
  int ch;
  NetworkBuffer* b = gate.Poll(ch, std::chrono::steady_clock::now() + 5s);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->kind, BufferKind::kData);
  b->Recycle();
  b = gate.Poll(ch, std::chrono::steady_clock::now() + 5s);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->kind, BufferKind::kEvent);
  b->Recycle();
  p.a->ReleaseAttempt(11);
  p.b->ReleaseAttempt(11);
}

}  // namespace
}  // namespace eddy::worker
