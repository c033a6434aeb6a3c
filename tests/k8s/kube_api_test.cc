// The Kubernetes client, informer and leader election against a real kube-apiserver: run by
// e2e/tests/test_kube_client.py with EDDY_TEST_KUBECONFIG (client certificate) and
// EDDY_TEST_SERVER / EDDY_TEST_TOKEN / EDDY_TEST_CA (bearer token) of the harness's control plane.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <cpprest/http_client.h>

#include "eddy/clock.h"
#include "eddy/k8s/informer.h"
#include "eddy/k8s/kube_client.h"
#include "eddy/k8s/kube_config.h"
#include "eddy/k8s/leader_election.h"

namespace eddy::k8s {
namespace {

std::string Env(const char* n) {
  const char* v = std::getenv(n);
  return v ? v : "";
}

bool WaitFor(const std::function<bool()>& pred, int64_t timeout_ms) {
  int64_t end = SteadyMillis() + timeout_ms;
  while (SteadyMillis() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

class KubeApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string kc = Env("EDDY_TEST_KUBECONFIG");
    ASSERT_FALSE(kc.empty()) << "EDDY_TEST_KUBECONFIG is not set (run through e2e/tests)";
    auto cfg = LoadKubeconfig(kc);
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto c = KubeClient::Make(*cfg);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = *c;
    ns_ = "kube-api-" + std::to_string(::getpid());
    auto r = client_->Create(
        "/api/v1/namespaces",
        Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns_}}}});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  static void TearDownTestSuite() {
    if (client_) (void)client_->Delete("/api/v1/namespaces/" + ns_);
    client_.reset();
  }
  static std::string Cms() { return "/api/v1/namespaces/" + ns_ + "/configmaps"; }
  static Json ConfigMap(const std::string& name, const std::string& value,
                        const std::string& label = "t") {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"labels", {{"suite", label}}}}},
            {"data", {{"v", value}}}};
  }
  static std::shared_ptr<KubeClient> client_;
  static std::string ns_;
};

std::shared_ptr<KubeClient> KubeApiTest::client_;
std::string KubeApiTest::ns_;

TEST_F(KubeApiTest, CreateGetPatchApplyReplaceDeleteAndTheirErrors) {
  auto created = client_->Create(Cms(), ConfigMap("crud", "1"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(client_->Create(Cms(), ConfigMap("crud", "1")).status().code(),
            StatusCode::kAlreadyExists);

  auto got = client_->Get(Cms() + "/crud");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["data"]["v"], "1");

  auto patched = client_->MergePatch(Cms() + "/crud", Json{{"data", {{"w", "2"}}}});
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ((*patched)["data"]["v"], "1");
  EXPECT_EQ((*patched)["data"]["w"], "2");

  auto applied = client_->Apply(Cms() + "/crud", ConfigMap("crud", "3"), "kube-api-test");
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
  EXPECT_EQ((*applied)["data"]["v"], "3");

  // Optimistic locking: a replace with a stale resourceVersion is a Conflict (retryable).
  Json stale = *got;
  stale["data"]["v"] = "stale";
  auto conflict = client_->Replace(Cms() + "/crud", stale);
  EXPECT_EQ(conflict.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(conflict.status().message().find("Conflict"), std::string::npos);

  // Invalid object: 422 naming the field.
  auto invalid = client_->Create(Cms(), ConfigMap("Not_A_Valid_Name", "x"));
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(invalid.status().message().find("metadata.name"), std::string::npos);

  EXPECT_TRUE(client_->Delete(Cms() + "/crud").ok());
  EXPECT_TRUE(client_->Delete(Cms() + "/crud").ok());  // already gone is fine
  EXPECT_EQ(client_->Get(Cms() + "/crud").status().code(), StatusCode::kNotFound);
}

TEST_F(KubeApiTest, InformerListsEveryObjectThenFollowsChanges) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client_->Create(Cms(), ConfigMap("inf-" + std::to_string(i), "0", "inf")).ok());
  }
  ASSERT_TRUE(client_->Create(Cms(), ConfigMap("other", "0", "other")).ok());
  std::mutex mu;
  std::vector<std::string> events;
  Informer::Options o;
  o.path = Cms() + "?labelSelector=" + QueryEscape("suite=inf");
  o.watch_timeout_seconds = 5;  // the watch is re-opened several times during the test
  o.on_event = [&](const std::string& type, const Json& obj) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(type + " " + obj["metadata"].value("name", ""));
  };
  Informer inf(client_, o);
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(10000));
  EXPECT_EQ(inf.List().size(), 5u);  // every listed object, not only the last one
  ASSERT_TRUE(inf.Get(ns_ + "/inf-3").has_value());
  EXPECT_FALSE(inf.Get(ns_ + "/other").has_value());

  ASSERT_TRUE(client_->MergePatch(Cms() + "/inf-1", Json{{"data", {{"v", "1"}}}}).ok());
  ASSERT_TRUE(client_->Delete(Cms() + "/inf-2").ok());
  ASSERT_TRUE(client_->Create(Cms(), ConfigMap("inf-9", "0", "inf")).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto one = inf.Get(ns_ + "/inf-1");
        return one && (*one)["data"]["v"] == "1" && !inf.Get(ns_ + "/inf-2") &&
               inf.Get(ns_ + "/inf-9");
      },
      10000));
  // Survives the server ending the watch (timeoutSeconds 5): later changes still arrive.
  std::this_thread::sleep_for(std::chrono::milliseconds(6000));
  ASSERT_TRUE(client_->MergePatch(Cms() + "/inf-4", Json{{"data", {{"v", "late"}}}}).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto four = inf.Get(ns_ + "/inf-4");
        return four && (*four)["data"]["v"] == "late";
      },
      10000));
  inf.Stop();
  std::lock_guard<std::mutex> lock(mu);
  auto has = [&](const std::string& e) {
    return std::find(events.begin(), events.end(), e) != events.end();
  };
  EXPECT_TRUE(has("ADDED inf-0"));
  EXPECT_TRUE(has("ADDED inf-4"));
  EXPECT_TRUE(has("MODIFIED inf-1"));
  EXPECT_TRUE(has("DELETED inf-2"));
  EXPECT_TRUE(has("ADDED inf-9"));
  EXPECT_TRUE(has("MODIFIED inf-4"));
}

/// etcd's JSON gateway (the harness's etcd, EDDY_TEST_ETCD): POST `path`, the decoded answer.
Json Etcd(const std::string& path, const Json& body) {
  web::http::client::http_client c(Env("EDDY_TEST_ETCD"));
  auto resp = c.request(web::http::methods::POST, path, body.dump(), "application/json").get();
  return Json::parse(resp.extract_utf8string(true).get(), nullptr, false);
}

TEST_F(KubeApiTest, InformerRelistsWhenItsResourceVersionWasCompacted) {
  if (Env("EDDY_TEST_ETCD").empty()) GTEST_SKIP() << "needs the harness's etcd (EDDY_TEST_ETCD)";
  // The harness's API server watches PodTemplates straight from etcd (no watch cache), so a
  // watch from a compacted resourceVersion gets 410 Gone.
  const std::string pts = "/api/v1/namespaces/" + ns_ + "/podtemplates";
  auto pt = [](const std::string& name, const std::string& v) {
    return Json{
        {"apiVersion", "v1"},
        {"kind", "PodTemplate"},
        {"metadata", {{"name", name}, {"labels", {{"v", v}}}}},
        {"template", {{"spec", {{"containers", Json::array({{{"name", "c"}, {"image", "x"}}})}}}}}};
  };
  ASSERT_TRUE(client_->Create(pts, pt("a", "0")).ok());
  ASSERT_TRUE(client_->Create(pts, pt("b", "0")).ok());
  std::atomic<int> gone{0};
  Informer::Options o;
  o.path = pts;
  o.watch_timeout_seconds = 2;  // re-watches from its resourceVersion every 2 s
  o.on_error = [&](const Status& s) {
    if (s.code() == StatusCode::kOutOfRange) ++gone;
  };
  Informer inf(client_, o);
  inf.Start();
  ASSERT_TRUE(inf.WaitForSync(10000));
  EXPECT_EQ(inf.lists(), 1u);
  // Other objects move etcd's revision past the informer's, then etcd compacts up to there.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client_->Create(Cms(), ConfigMap("compact-" + std::to_string(i), "0")).ok());
  }
  Json head = Etcd("/v3/kv/range", Json{{"key", "Lw=="}});  // base64("/")
  ASSERT_TRUE(head.is_object() && head.contains("header")) << head.dump();
  Json rev = head["header"]["revision"];
  Json compacted = Etcd("/v3/kv/compaction", Json{{"revision", rev}, {"physical", true}});
  ASSERT_TRUE(compacted.is_object() && !compacted.contains("error")) << compacted.dump();
  EXPECT_TRUE(WaitFor([&] { return inf.lists() >= 2; }, 15000))
      << "no re-list after the compaction (410 answers seen: " << gone.load() << ")";
  EXPECT_GE(gone.load(), 1);
  // And it keeps following changes from the new list's resourceVersion.
  ASSERT_TRUE(client_->Delete(pts + "/b").ok());
  ASSERT_TRUE(client_->MergePatch(pts + "/a", Json{{"metadata", {{"labels", {{"v", "1"}}}}}}).ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        auto a = inf.Get(ns_ + "/a");
        return a && (*a)["metadata"]["labels"]["v"] == "1" && !inf.Get(ns_ + "/b");
      },
      10000));
  inf.Stop();
}

TEST_F(KubeApiTest, WatchStopsPromptlyWhenAsked) {
  auto list = client_->Get(Cms());
  ASSERT_TRUE(list.ok());
  std::string rv = (*list)["metadata"].value("resourceVersion", "");
  std::atomic<bool> stop{false};
  Status result;
  int64_t t0 = SteadyMillis();
  std::thread t([&] {
    result = client_->Watch(
        Cms(), rv, 60, [](const std::string&, const Json&) {}, stop);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  stop = true;
  t.join();
  EXPECT_EQ(result.code(), StatusCode::kCancelled) << result.ToString();
  EXPECT_LT(SteadyMillis() - t0, 3000);
  // The abandoned read ends later with an exception that must not abort the process.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
}

TEST_F(KubeApiTest, BearerTokenAndABadOne) {
  KubeConfig c;
  c.server = Env("EDDY_TEST_SERVER");
  std::ifstream ca(Env("EDDY_TEST_CA"));
  std::stringstream s;
  s << ca.rdbuf();
  c.ca_pem = s.str();
  c.token = Env("EDDY_TEST_TOKEN");
  ASSERT_FALSE(c.server.empty());
  auto good = KubeClient::Make(c);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE((*good)->Get("/api/v1/namespaces/" + ns_).ok());
  c.token = "not-a-token";
  KubeClientOptions o;
  o.max_attempts = 1;
  auto bad = KubeClient::Make(c, o);
  ASSERT_TRUE(bad.ok());
  auto r = (*bad)->Get("/api/v1/namespaces/" + ns_);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find("401"), std::string::npos);
  // A CA that did not sign the server's certificate: the TLS handshake fails.
  c.token = Env("EDDY_TEST_TOKEN");
  c.ca_pem.clear();
  auto untrusted = KubeClient::Make(c, o);
  ASSERT_TRUE(untrusted.ok());
  EXPECT_EQ((*untrusted)->Get("/api/v1/namespaces").status().code(), StatusCode::kUnavailable);
}

TEST_F(KubeApiTest, LeaderElectionOnALease) {
  LeaderElectionOptions o;
  o.lease_namespace = ns_;
  o.lease_name = "leader";
  o.lease_duration_ms = 2000;
  o.renew_deadline_ms = 1500;
  o.retry_period_ms = 200;
  LeaderElectionOptions oa = o, ob = o;
  oa.identity = "a";
  ob.identity = "b";
  LeaderElector a(client_, oa), b(client_, ob);
  std::atomic<bool> stop{false};
  ASSERT_TRUE(a.Acquire(stop));
  EXPECT_TRUE(a.leading());

  // b waits while a renews.
  std::atomic<bool> b_leads{false};
  std::thread tb([&] { b_leads = b.Acquire(stop); });
  for (int i = 0; i < 10; ++i) {
    EXPECT_TRUE(a.Renew());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_FALSE(b_leads.load());
  auto lease = client_->Get("/apis/coordination.k8s.io/v1/namespaces/" + ns_ + "/leases/leader");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "a");

  // a stops renewing (hangs): b takes over once the lease expired, a notices it was deposed.
  int64_t t0 = SteadyMillis();
  tb.join();
  EXPECT_TRUE(b_leads.load());
  EXPECT_GE(SteadyMillis() - t0, 1500);
  EXPECT_FALSE(a.Renew());
  EXPECT_FALSE(a.leading());
  EXPECT_EQ(a.holder(), "b");

  // b releases: a third replica gets it at once.
  LeaderElectionOptions oc = o;
  oc.identity = "c";
  LeaderElector c(client_, oc);
  b.Release();
  t0 = SteadyMillis();
  ASSERT_TRUE(c.Acquire(stop));
  EXPECT_LT(SteadyMillis() - t0, 1500);
  lease = client_->Get("/apis/coordination.k8s.io/v1/namespaces/" + ns_ + "/leases/leader");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], "c");
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 2);
}

// Here rather than in the unit tests: cpprestsdk leaks a few internal objects of a request whose
// connection is refused, which LeakSanitizer (the unit tests' ASan run) reports.
TEST(KubeClientTest, UnreachableServerIsUnavailableAfterRetries) {
  KubeConfig c;
  c.server = "http://127.0.0.1:1";  // nothing listens on port 1
  KubeClientOptions o;
  o.max_attempts = 2;
  o.request_timeout_ms = 2000;
  int observed = 0;
  o.observer = [&](std::string_view verb, int code, double) {
    EXPECT_EQ(verb, "GET");
    EXPECT_EQ(code, 0);
    ++observed;
  };
  auto client = KubeClient::Make(c, o);
  ASSERT_TRUE(client.ok());
  auto r = (*client)->Get("/api/v1/namespaces");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("unreachable"), std::string::npos);
  EXPECT_EQ(observed, 2);
}

}  // namespace
}  // namespace eddy::k8s
