#include "eddy/k8s/leader_election.h"

#include <chrono>
#include <ctime>
#include <thread>
#include <utility>

#include "eddy/clock.h"

namespace eddy::k8s {

namespace {

/// RFC 3339 with microseconds, the MicroTime format Leases use.
std::string MicroTimeNow() {
  auto now = std::chrono::system_clock::now();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count();
  std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%s.%06lldZ", buf, static_cast<long long>(us % 1000000));
  return out;
}

}  // namespace

LeaderElector::LeaderElector(std::shared_ptr<KubeClient> client, LeaderElectionOptions options)
    : client_(std::move(client)), o_(std::move(options)) {}

bool LeaderElector::TryAcquireOrRenew() {
  const std::string path =
      "/apis/coordination.k8s.io/v1/namespaces/" + o_.lease_namespace + "/leases/" + o_.lease_name;
  const int duration_s = static_cast<int>((o_.lease_duration_ms + 999) / 1000);
  const std::string now = MicroTimeNow();
  auto got = client_->Get(path);
  if (!got.ok() && got.status().code() == StatusCode::kNotFound) {
    Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", o_.lease_name}, {"namespace", o_.lease_namespace}}},
                  {"spec",
                   {{"holderIdentity", o_.identity},
                    {"leaseDurationSeconds", duration_s},
                    {"acquireTime", now},
                    {"renewTime", now},
                    {"leaseTransitions", 0}}}};
    auto r = client_->Create(
        "/apis/coordination.k8s.io/v1/namespaces/" + o_.lease_namespace + "/leases", lease);
    if (!r.ok()) return false;
    SetHolder(o_.identity);
    observed_rv_ = (*r)["metadata"].value("resourceVersion", "");
    observed_at_ms_ = SteadyMillis();
    return true;
  }
  if (!got.ok()) return false;
  Json lease = std::move(*got);
  Json& spec = lease["spec"];
  std::string holder = spec.value("holderIdentity", "");
  std::string rv = lease["metadata"].value("resourceVersion", "");
  if (rv != observed_rv_) {
    observed_rv_ = rv;
    observed_at_ms_ = SteadyMillis();
  }
  SetHolder(holder);
  int64_t their_duration_ms = spec.value("leaseDurationSeconds", duration_s) * 1000LL;
  bool expired = SteadyMillis() - observed_at_ms_ > their_duration_ms;
  if (!holder.empty() && holder != o_.identity && !expired) return false;
  if (holder != o_.identity) {
    spec["acquireTime"] = now;
    spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  spec["holderIdentity"] = o_.identity;
  spec["leaseDurationSeconds"] = duration_s;
  spec["renewTime"] = now;
  auto r = client_->Replace(path, lease);  // resourceVersion in metadata: optimistic locking
  if (!r.ok()) return false;
  SetHolder(o_.identity);
  observed_rv_ = (*r)["metadata"].value("resourceVersion", "");
  observed_at_ms_ = SteadyMillis();
  return true;
}

bool LeaderElector::Acquire(const std::atomic<bool>& stop) {
  while (!stop.load()) {
    if (TryAcquireOrRenew()) {
      leading_ = true;
      last_renew_ms_ = SteadyMillis();
      return true;
    }
    for (int64_t waited = 0; waited < o_.retry_period_ms && !stop.load(); waited += 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return false;
}

bool LeaderElector::Renew() {
  if (!leading_) return false;
  if (TryAcquireOrRenew()) {
    last_renew_ms_ = SteadyMillis();
    return true;
  }
  std::string h = holder();
  if (h != o_.identity && !h.empty()) leading_ = false;  // someone else holds it
  if (SteadyMillis() - last_renew_ms_ > o_.renew_deadline_ms) leading_ = false;
  return leading_;
}

void LeaderElector::Release() {
  if (!leading_) return;
  const std::string path =
      "/apis/coordination.k8s.io/v1/namespaces/" + o_.lease_namespace + "/leases/" + o_.lease_name;
  auto got = client_->Get(path);
  if (got.ok() && (*got)["spec"].value("holderIdentity", "") == o_.identity) {
    Json lease = std::move(*got);
    lease["spec"]["holderIdentity"] = "";
    lease["spec"]["leaseDurationSeconds"] = 1;
    lease["spec"]["renewTime"] = MicroTimeNow();
    (void)client_->Replace(path, lease);
  }
  leading_ = false;
}

}  // namespace eddy::k8s
