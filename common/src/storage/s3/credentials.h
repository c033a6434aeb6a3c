#pragma once

// AWS credentials for the S3 store: the lookup chain (options, environment, shared credentials
// file, container credentials endpoint), the file and JSON formats, and the refresh of temporary
// credentials before they expire.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/src/storage/s3/http_transport.h"
#include "common/src/storage/s3/retry.h"
#include "common/src/storage/s3/sigv4.h"
#include "eddy/status.h"
#include "eddy/storage/object_store.h"

namespace eddy::storage::s3 {

/// Looks up an environment variable; nullopt when unset. The store uses ProcessEnvironment();
/// tests pass a map.
using EnvLookup = std::function<std::optional<std::string>(std::string_view name)>;
/// getenv(3). Empty values count as unset.
EnvLookup ProcessEnvironment();

/// A key pair, and when temporary credentials stop working.
struct Credentials {
  SigningCredentials key;
  std::optional<std::chrono::system_clock::time_point> expiration;  ///< nullopt = never
  std::string source;  ///< where they came from, for error messages
};

/// The keys of profile `profile` in an AWS shared credentials (or config) file: `[name]` or
/// `[profile name]` sections of `aws_access_key_id`, `aws_secret_access_key` and optionally
/// `aws_session_token`. nullopt when the profile is absent; InvalidArgument when it is there but
/// lacks a key (role, SSO and credential_process profiles are not supported).
Result<std::optional<Credentials>> ParseSharedCredentials(std::string_view text,
                                                          std::string_view profile,
                                                          std::string_view file_for_messages);

/// The JSON of a container credentials endpoint: AccessKeyId, SecretAccessKey, Token and
/// Expiration (ISO 8601). ParseError when a key is missing or malformed.
Result<Credentials> ParseContainerCredentials(std::string_view json);

/// `2024-05-01T12:34:56Z`, with optional fractional seconds and a `Z` or `±hh:mm` offset.
Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text);

/// Temporary credentials are fetched again this long before they expire.
inline constexpr std::chrono::minutes kCredentialsRefreshMargin{5};

/// Hands out the credentials to sign with.
///
/// Lifecycle: Make() decides, from the options and the environment at that moment, where
/// credentials come from; static ones (options, environment, file) are read there and then, the
/// container endpoint is first asked by the first Get(). Threading: Get() and Invalidate() from
/// any thread; one mutex serializes refreshes, so concurrent callers wait for one fetch.
class CredentialsProvider {
 public:
  /// Opens an HTTP client for the container endpoint's `scheme://host[:port]`.
  using TransportFactory =
      std::function<Result<std::unique_ptr<HttpTransport>>(const std::string& base_url)>;
  using Clock = std::function<std::chrono::system_clock::time_point()>;

  /// The first of: `options.s3_access_key`/`s3_secret_key` (+ `s3_session_token`);
  /// AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN); profile AWS_PROFILE (default
  /// `default`) of AWS_SHARED_CREDENTIALS_FILE (default `$HOME/.aws/credentials`);
  /// AWS_CONTAINER_CREDENTIALS_FULL_URI, or http://169.254.170.2 +
  /// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI, with the Authorization header from
  /// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN. InvalidArgument
  /// naming every place looked at when none has credentials.
  static Result<std::shared_ptr<CredentialsProvider>> Make(const ObjectStoreOptions& options,
                                                           const EnvLookup& env,
                                                           TransportFactory transports,
                                                           RetryPolicy retry, Clock clock = {});

  /// Credentials valid for at least kCredentialsRefreshMargin when the source can say so.
  /// Retryable errors when the container endpoint cannot be reached (after retries) and no
  /// unexpired credentials are cached.
  Result<Credentials> Get();
  /// Forgets cached temporary credentials (after S3 answered ExpiredToken); no-op for static ones.
  void Invalidate();
  /// Whether credentials come from an endpoint and can be fetched again.
  bool refreshable() const { return !endpoint_base_.empty(); }
  /// Where the credentials come from, for messages.
  const std::string& source() const { return source_; }

 private:
  CredentialsProvider() = default;
  Result<Credentials> Fetch();

  // Set once by Make().
  std::string source_;
  std::optional<Credentials> static_;
  std::string endpoint_base_;  // scheme://host[:port] of the container endpoint
  std::string endpoint_path_;
  std::string token_;
  std::string token_file_;
  TransportFactory transports_;
  RetryPolicy retry_;
  Clock clock_;

  std::mutex mu_;  // guards the members below
  std::unique_ptr<HttpTransport> transport_;
  std::optional<Credentials> cached_;
};

}  // namespace eddy::storage::s3
