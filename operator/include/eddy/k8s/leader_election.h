#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "eddy/k8s/kube_client.h"

namespace eddy::k8s {

struct LeaderElectionOptions {
  std::string lease_namespace;
  std::string lease_name = "eddy-operator";
  std::string identity;  ///< this replica (the pod name plus a random suffix)
  /// client-go's defaults: a leader that has not renewed for 15 s can be replaced; it gives up
  /// itself when it could not renew for 10 s; everyone retries every 2 s.
  int64_t lease_duration_ms = 15000;
  int64_t renew_deadline_ms = 10000;
  int64_t retry_period_ms = 2000;
};

/// Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection does:
/// a replica takes the Lease when it does not exist, is its own, or its holder has not renewed
/// it for `lease_duration` as observed on the local clock (no clock-skew assumptions); the
/// leader renews every `retry_period` and considers itself deposed when renewing failed for
/// `renew_deadline`. Writes use the Lease's resourceVersion, so two replicas never both win.
class LeaderElector {
 public:
  LeaderElector(std::shared_ptr<KubeClient> client, LeaderElectionOptions options);
  /// Blocks until this replica leads (true) or `stop` (false).
  bool Acquire(const std::atomic<bool>& stop);
  /// One renewal round; false once the renew deadline passed without a successful renewal.
  bool Renew();
  /// Gives the Lease up (holder cleared, duration 1 s) so a standby takes over at once.
  void Release();
  bool leading() const { return leading_; }
  const std::string& identity() const { return o_.identity; }
  /// The current holder as last seen ("" when none). Any thread.
  std::string holder() const {
    std::lock_guard<std::mutex> lock(holder_mu_);
    return holder_;
  }

 private:
  /// One attempt to take or renew the Lease: true when we hold it afterwards.
  bool TryAcquireOrRenew();

  std::shared_ptr<KubeClient> client_;
  LeaderElectionOptions o_;
  bool leading_ = false;
  void SetHolder(std::string h) {
    std::lock_guard<std::mutex> lock(holder_mu_);
    holder_ = std::move(h);
  }
  mutable std::mutex holder_mu_;
  std::string holder_;          // guarded by holder_mu_
  std::string observed_rv_;     // the Lease's resourceVersion as last read
  int64_t observed_at_ms_ = 0;  // steady time it last changed
  int64_t last_renew_ms_ = 0;   // steady time of our last successful write
};

}  // namespace eddy::k8s
