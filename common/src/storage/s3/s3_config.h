#pragma once

// Everything an S3 store needs to know before its first request, resolved once from the URI, the
// ObjectStoreOptions and the environment: bucket and root prefix, endpoint and addressing style,
// region, retry policy and transfer sizes. Also how a (bucket, key) pair becomes a URL.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/src/storage/s3/credentials.h"
#include "common/src/storage/s3/http_transport.h"
#include "common/src/storage/s3/retry.h"
#include "eddy/status.h"
#include "eddy/storage/object_store.h"

namespace eddy::storage::s3 {

/// `s3://bucket/prefix` split: keys of the store live under `prefix/` in `bucket`.
struct S3Location {
  std::string bucket;
  std::string prefix;    ///< no leading or trailing '/', may be empty
  std::string root_uri;  ///< normalized `s3://bucket[/prefix]`

  /// The full key in the bucket of store key `key`.
  std::string FullKey(std::string_view key) const;
  /// The store key of full key `full_key`; nullopt when it is not under the prefix.
  std::optional<std::string> RelativeKey(std::string_view full_key) const;
};

/// InvalidArgument unless `uri` is `s3://bucket[/prefix][/]` with a valid bucket name (3-63
/// characters of a-z 0-9 . - _, for compatibility also A-Z) and a prefix usable as a key.
Result<S3Location> ParseS3Uri(std::string_view uri);

/// Where requests go and how they address the bucket.
struct S3Endpoint {
  HttpUrl url;              ///< scheme, host and port of the service (path "/")
  std::string region;       ///< signing region
  bool path_style = false;  ///< `host/bucket/key` instead of `bucket.host/key`

  /// `scheme://host[:port]` of the server that serves `bucket`.
  std::string BaseUrl(std::string_view bucket) const;
  /// The Host header for `bucket`.
  std::string HostHeader(std::string_view bucket) const;
  /// The encoded path of object `full_key` in `bucket` (bucket-level requests: empty key).
  std::string EncodedPath(std::string_view bucket, std::string_view full_key) const;
};

/// Whether `bucket` can be a DNS label under `host` (virtual-hosted addressing): lower-case
/// letters, digits and '-', and no '.' over https (the wildcard certificate covers one label).
bool BucketFitsVirtualHost(std::string_view bucket, std::string_view scheme);

/// Transfer and paging sizes; only tests change them.
struct S3Tuning {
  int list_page_size = 1000;  ///< max-keys / max-uploads per listing request (1..1000)
  uint64_t multipart_threshold = 16ull << 20;  ///< PutFile above this many bytes: multipart
  uint64_t part_size = 16ull << 20;            ///< bytes per part (S3 minimum 5 MiB but the last)
};

struct S3Config {
  S3Location location;
  S3Endpoint endpoint;
  RetryPolicy retry;
  std::chrono::milliseconds request_timeout{30000};
  S3Tuning tuning;
};

/// Resolves `uri` and `options`; empty options come from the environment: endpoint from
/// AWS_ENDPOINT_URL_S3 then AWS_ENDPOINT_URL (else AWS's regional endpoint), region from
/// AWS_REGION then AWS_DEFAULT_REGION (else us-east-1). Path style defaults to true with an
/// explicit endpoint and false for AWS; virtual-hosted addressing falls back to path style for
/// bucket names that cannot be a host name.
Result<S3Config> ResolveS3Config(std::string_view uri, const ObjectStoreOptions& options,
                                 const EnvLookup& env);

}  // namespace eddy::storage::s3
