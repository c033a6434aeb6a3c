// Restart strategies (Flink's semantics and defaults) and the control plane's RPC endpoint
// facing garbage, strangers and bad registrations.

#include <gtest/gtest.h>

#include "operator/src/flinkjob_reconciler.h"

#include <chrono>
#include <thread>
#include <zmq.hpp>

#include "eddy/control/control_plane.h"
#include "eddy/control/restart_strategy.h"
#include "eddy/rpc/envelope.h"

namespace eddy::control {
namespace {

using Kind = RestartStrategyConfig::Kind;

TEST(RestartStrategyTest, DefaultsAreFlinksExponentialDelay) {
  RestartStrategyConfig c;
  EXPECT_EQ(c.kind, Kind::kExponentialDelay);
  EXPECT_EQ(c.initial_delay, Duration::Millis(1000));
  EXPECT_EQ(c.max_delay, Duration::Millis(60000));
  EXPECT_DOUBLE_EQ(c.multiplier, 1.5);
}

TEST(RestartStrategyTest, NoneNeverRestarts) {
  RestartStrategy s({.kind = Kind::kNone});
  EXPECT_FALSE(s.OnFailure(0).has_value());
}

TEST(RestartStrategyTest, FixedDelayGivesUpAfterItsAttempts) {
  RestartStrategyConfig c;
  c.kind = Kind::kFixedDelay;
  c.attempts = 2;
  c.delay = Duration::Millis(250);
  RestartStrategy s(c);
  EXPECT_EQ(s.OnFailure(0), Duration::Millis(250));
  EXPECT_EQ(s.OnFailure(10), Duration::Millis(250));
  EXPECT_FALSE(s.OnFailure(20).has_value());
}

TEST(RestartStrategyTest, FailureRateCountsFailuresWithinTheInterval) {
  RestartStrategyConfig c;
  c.kind = Kind::kFailureRate;
  c.max_failures_per_interval = 2;
  c.interval = Duration::Millis(1000);
  RestartStrategy s(c);
  EXPECT_TRUE(s.OnFailure(0).has_value());
  EXPECT_TRUE(s.OnFailure(500).has_value());
  EXPECT_FALSE(s.OnFailure(900).has_value()) << "third failure within one second";
  RestartStrategy t(c);
  EXPECT_TRUE(t.OnFailure(0).has_value());
  EXPECT_TRUE(t.OnFailure(500).has_value());
  EXPECT_TRUE(t.OnFailure(1600).has_value()) << "the first two fell out of the interval";
}

TEST(RestartStrategyTest, ExponentialDelayGrowsToItsCapWithJitterAndResets) {
  RestartStrategyConfig c;
  c.initial_delay = Duration::Millis(1000);
  c.max_delay = Duration::Millis(5000);
  c.multiplier = 2;
  c.jitter = 0.1;
  c.reset_threshold = Duration::Millis(100000);
  RestartStrategy s(c);
  const double expected[] = {1000, 2000, 4000, 5000, 5000};
  int64_t now = 0;
  for (double e : expected) {
    auto d = s.OnFailure(now += 10);
    ASSERT_TRUE(d.has_value());
    EXPECT_GE(d->millis(), static_cast<int64_t>(e * 0.9) - 1);
    EXPECT_LE(d->millis(), std::min<int64_t>(5000, static_cast<int64_t>(e * 1.1) + 1));
  }
  // A long failure-free stretch starts over at the initial delay.
  auto d = s.OnFailure(now + 200000);
  ASSERT_TRUE(d.has_value());
  EXPECT_LE(d->millis(), 1101);
}

TEST(RestartStrategyTest, ParsesTheSpecMappingAndNamesBadFields) {
  auto c = ParseRestartStrategy("{type: fixed-delay, attempts: 5, delay: 3s}");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->kind, Kind::kFixedDelay);
  EXPECT_EQ(c->attempts, 5);
  EXPECT_EQ(c->delay, Duration::Millis(3000));
  auto e = ParseRestartStrategy("{type: exponential-delay, initialDelay: 500ms, maxDelay: 1m}");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->initial_delay, Duration::Millis(500));
  EXPECT_EQ(e->max_delay, Duration::Millis(60000));
  auto bad = ParseRestartStrategy("{type: sometimes}");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("sometimes"), std::string::npos);
  auto unknown = ParseRestartStrategy("{type: none, retries: 3}");
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("retries"), std::string::npos);
  auto dur = ParseRestartStrategy("{type: fixed-delay, delay: soon}");
  ASSERT_FALSE(dur.ok());
  EXPECT_NE(dur.status().message().find("restartStrategy.delay"), std::string::npos);
}

std::unique_ptr<ControlPlane> StartPlane() {
  ControlPlaneOptions o;
  o.rpc_bind_host = "127.0.0.1";
  o.rpc_port = 0;
  o.verbose = false;
  auto cp = ControlPlane::Start(std::move(o));
  EXPECT_TRUE(cp.ok()) << cp.status().ToString();
  return std::move(*cp);
}

template <class Pred>
bool Eventually(Pred p) {
  for (int i = 0; i < 250; ++i) {
    if (p()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return p();
}

TEST(ControlPlaneTest, GarbageAndStrangersAreCountedAndDropped) {
  auto cp = StartPlane();
  zmq::context_t ctx;
  zmq::socket_t d(ctx, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.set(zmq::sockopt::routing_id, "intruder");
  d.connect(cp->rpc_endpoint());
  d.send(zmq::str_buffer("\x08\x96\x01 definitely not protobuf \xff\xff"), zmq::send_flags::none);
  d.send(zmq::str_buffer("two"), zmq::send_flags::sndmore);  // two frames
  d.send(zmq::str_buffer("frames"), zmq::send_flags::none);
  proto::Envelope wrong_version;
  wrong_version.mutable_heartbeat()->set_worker_id("intruder");
  std::string bytes = rpc::Pack(wrong_version);
  proto::Envelope parsed;
  parsed.ParseFromString(bytes);
  parsed.set_protocol(99);
  std::string v99;
  parsed.SerializeToString(&v99);
  d.send(zmq::buffer(v99), zmq::send_flags::none);
  // Well-formed, but from a worker that never registered.
  d.send(zmq::buffer(bytes), zmq::send_flags::none);
  ASSERT_TRUE(Eventually([&] { return cp->Cluster().malformed_messages == 4; }))
      << cp->Cluster().malformed_messages;
  EXPECT_TRUE(cp->Cluster().workers.empty());
}

TEST(ControlPlaneTest, RegistrationIsCheckedAndAcknowledged) {
  auto cp = StartPlane();
  zmq::context_t ctx;
  zmq::socket_t d(ctx, zmq::socket_type::dealer);
  d.set(zmq::sockopt::linger, 0);
  d.set(zmq::sockopt::routing_id, "w1");
  d.connect(cp->rpc_endpoint());
  auto send_and_receive = [&](proto::Envelope e) {
    d.send(zmq::buffer(rpc::Pack(e)), zmq::send_flags::none);
    zmq::message_t m;
    d.set(zmq::sockopt::rcvtimeo, 5000);
    EXPECT_TRUE(d.recv(m));
    auto r = rpc::Unpack(std::string_view(static_cast<const char*>(m.data()), m.size()));
    EXPECT_TRUE(r.ok());
    return r.ok() ? r->register_ack() : proto::RegisterAck();
  };
  proto::Envelope e;
  auto* r = e.mutable_register_worker();
  r->set_worker_id("someone-else");
  r->set_slots(2);
  r->set_data_endpoint("tcp://127.0.0.1:1");
  auto ack = send_and_receive(e);
  EXPECT_FALSE(ack.accepted());
  EXPECT_NE(ack.error().find("does not match"), std::string::npos);
  r->set_worker_id("w1");
  r->set_slots(0);
  EXPECT_FALSE(send_and_receive(e).accepted());
  r->set_slots(2);
  ack = send_and_receive(e);
  EXPECT_TRUE(ack.accepted());
  EXPECT_GT(ack.heartbeat_interval_ms(), 0);
  auto c = cp->Cluster();
  ASSERT_EQ(c.workers.size(), 1u);
  EXPECT_EQ(c.slots_total, 2);
  EXPECT_EQ(c.slots_free, 2);
}

TEST(ControlPlaneTest, BadJobSpecIsRejectedAtSubmission) {
  auto cp = StartPlane();
  JobSubmission s;
  s.spec_text = "name: x\nsources: []\nsinks: 3\n";
  s.spec_file = "bad.yaml";
  auto id = cp->Submit(s);
  ASSERT_FALSE(id.ok());
  EXPECT_NE(id.status().message().find("bad.yaml"), std::string::npos);
  s.spec_text = R"(name: x
restartStrategy: {type: maybe}
sources:
  - {name: g, generator: {fields: {n: "n"}, count: 10}, schema: {n: int64}}
sinks:
  - {name: out, from: g, print: {}}
)";
  auto bad = cp->Submit(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("maybe"), std::string::npos);
}

TEST(ControlPlaneTest, JobWaitingForSlotsFailsAfterTheSlotRequestTimeout) {
  ControlPlaneOptions o;
  o.rpc_bind_host = "127.0.0.1";
  o.rpc_port = 0;
  o.verbose = false;
  o.slot_request_timeout_ms = 200;
  auto cp = ControlPlane::Start(std::move(o));
  ASSERT_TRUE(cp.ok());
  JobSubmission s;
  s.spec_text = R"(name: lonely
sources:
  - {name: g, generator: {fields: {n: "n"}, count: 10}, schema: {n: int64}}
sinks:
  - {name: out, from: g, print: {}}
)";
  auto id = (*cp)->Submit(s);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  auto info = (*cp)->WaitForJob(*id, 10000);
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->state, JobState::kFailed);
  EXPECT_NE(info->failure.find("could not get 1 slots"), std::string::npos) << info->failure;
}

TEST(ControlPlaneTest, AGivenJobIdNamesTheJobAndItsCheckpointDirectory) {
  auto cp = StartPlane();
  JobSubmission s;
  s.spec_text = R"({"name": "named", "savepointDir": "file:///tmp/eddy-sp",
    "checkpointing": {"interval": "1s", "storage": "file:///tmp/eddy-ck"},
    "sources": [{"name": "g", "generator": {"fields": {"n": "n"}, "count": 10}}],
    "sinks": [{"name": "out", "from": "g", "print": {}}]})";
  s.job_id = "0123456789abcdef0123456789abcdef";
  auto id = cp->Submit(s);
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  EXPECT_EQ(*id, s.job_id);
  auto info = cp->Job(*id);
  ASSERT_TRUE(info.has_value());
  // The operator writes these to the FlinkJob status before the job runs: they must be the
  // JobMaster's own.
  auto [checkpoint_dir, savepoint_dir] = JobSnapshotDirs(s.spec_text, s.job_id);
  EXPECT_EQ(info->checkpoint_dir, checkpoint_dir);
  EXPECT_EQ(info->checkpoint_config.savepoint_dir, savepoint_dir);
  auto again = cp->Submit(s);
  EXPECT_FALSE(again.ok());
  s.job_id = "not-hex";
  auto bad = cp->Submit(s);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("not-hex"), std::string::npos);
  (void)cp->Cancel(*id);
}

}  // namespace
}  // namespace eddy::control
