#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/status.h"

namespace eddy::storage {

/// One object of a listing.
struct ObjectInfo {
  std::string key;    ///< relative to the store's root
  uint64_t size = 0;  ///< bytes
};

/// An object written completely but not yet visible under its key (two-phase commit): a
/// `.inprogress` file for `file://`, an open multipart upload for `s3://`. Everything needed to
/// commit or abort it, also from another process after a restart, is in these fields, so sinks keep
/// it in their checkpointed state.
struct StagedObject {
  std::string key;        ///< final key, relative to the root
  std::string upload_id;  ///< file://: the staging file's key; s3://: the multipart upload id
  std::vector<std::string> part_etags;  ///< s3:// only: ETag of each uploaded part, in order
  uint64_t size = 0;                    ///< bytes
};

/// A flat space of immutable objects under one root URI (`file:///dir` or `s3://bucket/prefix`).
/// Keys are relative to the root, '/'-separated, without `..` segments or a leading '/'. A write is
/// atomic: readers see the old object or the whole new one, never a part.
///
/// Errors: NotFound for a missing object where one is required; IOError/Unavailable/Timeout
/// (retryable) when the store cannot be reached or fails transiently — implementations retry
/// those with backoff before giving up; InvalidArgument for a bad key or URI; other codes name
/// what the store refused (permissions, missing bucket).
///
/// Threading: every method may be called from any thread, concurrently.
class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  /// The root URI this store was opened with, normalized (no trailing '/').
  virtual const std::string& root() const = 0;
  /// `root()/key`: the URI of one object.
  std::string Uri(std::string_view key) const;

  /// Writes `data` as object `key`, replacing any previous one.
  virtual Status Put(std::string_view key, std::string_view data) = 0;
  /// Writes the local file `local_path` as object `key` (s3://: multipart above 16 MiB).
  virtual Status PutFile(std::string_view key, const std::string& local_path) = 0;
  /// The whole object; NotFound when absent.
  virtual Result<std::string> Get(std::string_view key) = 0;
  /// Downloads object `key` to `local_path` (replacing it); NotFound when absent.
  virtual Status GetToFile(std::string_view key, const std::string& local_path) = 0;
  /// Size of object `key`, nullopt when absent.
  virtual Result<std::optional<ObjectInfo>> Stat(std::string_view key) = 0;
  /// Every object whose key starts with `prefix` (any depth), sorted by key. Staged objects are
  /// not listed.
  virtual Result<std::vector<ObjectInfo>> List(std::string_view prefix) = 0;
  /// Removes object `key`; Ok when it is absent.
  virtual Status Delete(std::string_view key) = 0;
  /// Removes every object whose key starts with `prefix`; Ok when there is none.
  virtual Status DeletePrefix(std::string_view prefix) = 0;

  /// Writes `data` so that it becomes object `key` only on CommitStaged (two-phase commit).
  virtual Result<StagedObject> Stage(std::string_view key, std::string_view data) = 0;
  /// Makes a staged object visible under its key. Idempotent: Ok when it was committed before
  /// (the staging is gone and the object exists). NotFound when neither exists.
  virtual Status CommitStaged(const StagedObject& staged) = 0;
  /// Drops a staged object; Ok when it is already gone.
  virtual Status AbortStaged(const StagedObject& staged) = 0;
  /// Staged, uncommitted objects whose final key starts with `prefix` (to abort the leftovers of a
  /// failed attempt). `part_etags` may be empty in the result; AbortStaged does not need them.
  virtual Result<std::vector<StagedObject>> ListStaged(std::string_view prefix) = 0;
};

/// Settings of the object stores a process opens (Flink's `s3.*` options). Every field may be
/// left empty: the environment (AWS_* variables, ~/.aws/credentials) fills in the rest. Read once
/// when a store is opened; changing them later does not affect open stores. docs/object-storage.md
/// has the details.
struct ObjectStoreOptions {
  /// S3 endpoint URL, e.g. `http://127.0.0.1:9000` (MinIO). Default: AWS_ENDPOINT_URL_S3, then
  /// AWS_ENDPOINT_URL, else AWS's endpoint for `region`.
  std::string s3_endpoint;
  /// Default: AWS_REGION, then AWS_DEFAULT_REGION, then `us-east-1`.
  std::string s3_region;
  /// true = `endpoint/bucket/key` (MinIO, moto), false = `bucket.endpoint/key`. Default: path
  /// style when an endpoint is set, virtual-hosted for AWS. Bucket names that cannot be a host
  /// name always use path style.
  std::optional<bool> s3_path_style;
  /// Static credentials (both keys or neither); default: AWS_ACCESS_KEY_ID /
  /// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, then profile AWS_PROFILE (default `default`) of
  /// AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, then the container credentials endpoint
  /// (AWS_CONTAINER_CREDENTIALS_FULL_URI / _RELATIVE_URI, refreshed before expiry).
  std::string s3_access_key;
  std::string s3_secret_key;
  std::string s3_session_token;
  /// Attempts per request on 5xx, 429, timeouts and connection errors (default 5, at least 1),
  /// with exponential backoff and full jitter from `retry_base_ms` (default 100) capped at
  /// `retry_max_ms` (5000).
  int max_attempts = 5;
  int retry_base_ms = 100;
  int retry_max_ms = 5000;
  /// Longest wait for any single step of a request (connect, send, status line, each read of
  /// the body), ms (default 30000). A transfer that keeps moving may take longer in total.
  int request_timeout_ms = 30000;
};

/// Opens the store for `uri`: `file:///abs/dir`, a plain local path (relative paths resolve
/// against the working directory), or `s3://bucket[/prefix]`. InvalidArgument for another scheme
/// or a malformed URI. Opening does not touch the store; the first operation does.
Result<std::unique_ptr<ObjectStore>> OpenObjectStore(std::string_view uri,
                                                     const ObjectStoreOptions& options = {});

/// Joins URI or key parts with single '/' separators: JoinKey("s3://b/x/", "/chk-1") ==
/// "s3://b/x/chk-1".
std::string JoinKey(std::string_view a, std::string_view b);

/// InvalidArgument unless `key` is a usable object key (non-empty, relative, no `.`/`..`
/// segments, no empty segments, no NUL).
Status ValidateKey(std::string_view key);

}  // namespace eddy::storage
