#pragma once

// The `s3://` ObjectStore: S3's REST API (SigV4-signed) over an HttpTransport, with retries.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/src/storage/s3/credentials.h"
#include "common/src/storage/s3/http_transport.h"
#include "common/src/storage/s3/s3_config.h"
#include "eddy/storage/object_store.h"

namespace eddy::storage::s3 {

/// Counters of one store (relaxed atomics; read them from any thread).
struct S3Probe {
  std::atomic<uint64_t> requests{0};        ///< HTTP requests sent, retries included
  std::atomic<uint64_t> retries{0};         ///< requests sent again after a transient failure
  std::atomic<uint64_t> failed_calls{0};    ///< S3 calls that gave up after all attempts
  std::atomic<uint64_t> bytes_sent{0};      ///< request body bytes
  std::atomic<uint64_t> bytes_received{0};  ///< response body bytes
};

/// An ObjectStore over one bucket and prefix.
///
/// Object keys map to `prefix/key` in the bucket. Put is one PutObject; PutFile uses a multipart
/// upload above `tuning.multipart_threshold`, reading one part at a time; Stage is an unfinished
/// multipart upload (StagedObject::upload_id, part_etags), CommitStaged completes it, AbortStaged
/// aborts it, ListStaged lists the open uploads under a prefix.
///
/// Every S3 call is retried on transport errors, timeouts, 5xx, 429 and S3's "try again" codes, up
/// to `retry.max_attempts` times with full-jitter exponential backoff; it then fails with a
/// retryable Status naming the call, the object's URI and the last cause. Other answers map to
/// NotFound (NoSuchKey, NoSuchBucket, NoSuchUpload) or InvalidArgument (credentials, permissions,
/// region, other 4xx) with S3's code and message.
///
/// Lifecycle: Make() does no I/O. Threading: every method from any thread, concurrently; the
/// transport and the credentials provider are thread-safe and the rest is immutable after Make().
class S3Store final : public ObjectStore {
 public:
  using Sleep = std::function<void(std::chrono::milliseconds)>;

  static std::unique_ptr<S3Store> Make(S3Config config,
                                       std::shared_ptr<CredentialsProvider> credentials,
                                       std::unique_ptr<HttpTransport> transport, Sleep sleep = {});

  const std::string& root() const override { return config_.location.root_uri; }
  Status Put(std::string_view key, std::string_view data) override;
  Status PutFile(std::string_view key, const std::string& local_path) override;
  Result<std::string> Get(std::string_view key) override;
  Status GetToFile(std::string_view key, const std::string& local_path) override;
  Result<std::optional<ObjectInfo>> Stat(std::string_view key) override;
  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override;
  Status Delete(std::string_view key) override;
  Status DeletePrefix(std::string_view prefix) override;
  Result<StagedObject> Stage(std::string_view key, std::string_view data) override;
  Status CommitStaged(const StagedObject& staged) override;
  Status AbortStaged(const StagedObject& staged) override;
  Result<std::vector<StagedObject>> ListStaged(std::string_view prefix) override;

  const S3Probe& probe() const { return probe_; }
  const S3Config& config() const { return config_; }

 private:
  struct Call;
  S3Store() = default;

  Result<HttpResponse> Execute(const Call& call);
  Status ErrorFor(const Call& call, const HttpResponse& response) const;
  std::string UriOf(std::string_view full_key) const;

  /// Every object under `full_prefix` (full keys), all pages.
  Result<std::vector<ObjectInfo>> ListFull(const std::string& full_prefix);
  Result<std::string> CreateUpload(const std::string& full_key);
  Result<std::string> UploadPart(const std::string& full_key, const std::string& upload_id,
                                 int part_number, std::string_view data);
  /// Sets `*no_such_upload` when S3 answered NoSuchUpload.
  Status CompleteUpload(const std::string& full_key, const std::string& upload_id,
                        const std::vector<std::string>& etags, bool* no_such_upload = nullptr);
  Status AbortUpload(const std::string& full_key, const std::string& upload_id);
  Status DeleteBatch(const std::vector<std::string>& full_keys);
  Status DeleteOne(const std::string& full_key);
  /// Part size for an upload of `size` bytes: tuning.part_size, grown to stay within 10000 parts.
  uint64_t PartSizeFor(uint64_t size) const;

  S3Config config_;
  std::shared_ptr<CredentialsProvider> credentials_;
  std::unique_ptr<HttpTransport> transport_;
  Sleep sleep_;
  S3Probe probe_;
  std::atomic<bool> multi_delete_unsupported_{false};  // set when DeleteObjects answers 501
};

/// Opens an S3 store with explicit tuning and environment (tests, tools); OpenObjectStore uses
/// default tuning and the process environment.
Result<std::unique_ptr<S3Store>> OpenS3Store(std::string_view uri,
                                             const ObjectStoreOptions& options,
                                             const S3Tuning& tuning, const EnvLookup& env);

}  // namespace eddy::storage::s3
