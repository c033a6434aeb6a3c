#include "common/src/storage/s3/s3_config.h"

#include "common/src/storage/s3/sigv4.h"

namespace eddy::storage::s3 {

std::string S3Location::FullKey(std::string_view key) const {
  if (prefix.empty()) return std::string(key);
  return prefix + "/" + std::string(key);
}

std::optional<std::string> S3Location::RelativeKey(std::string_view full_key) const {
  if (prefix.empty()) return std::string(full_key);
  if (full_key.size() <= prefix.size() + 1 || !full_key.starts_with(prefix) ||
      full_key[prefix.size()] != '/') {
    return std::nullopt;
  }
  return std::string(full_key.substr(prefix.size() + 1));
}

Result<S3Location> ParseS3Uri(std::string_view uri) {
  if (!uri.starts_with("s3://")) {
    return Status::InvalidArgument("'" + std::string(uri) + "' is not an s3:// URI");
  }
  std::string_view rest = uri.substr(5);
  size_t slash = rest.find('/');
  S3Location loc;
  loc.bucket = std::string(rest.substr(0, slash));
  std::string_view prefix = slash == std::string_view::npos ? "" : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  bool bucket_ok = loc.bucket.size() >= 3 && loc.bucket.size() <= 63;
  for (char c : loc.bucket) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_';
    bucket_ok = bucket_ok && ok;
  }
  if (!bucket_ok) {
    return Status::InvalidArgument("'" + std::string(uri) +
                                   "' does not name a valid S3 bucket: s3://bucket[/prefix] with "
                                   "a bucket name of 3-63 letters, digits, '.', '-'");
  }
  if (!prefix.empty()) {
    Status s = ValidateKey(prefix);
    if (!s.ok()) {
      return Status::InvalidArgument("bad prefix in '" + std::string(uri) + "': " + s.message());
    }
  }
  loc.prefix = std::string(prefix);
  loc.root_uri = "s3://" + loc.bucket + (loc.prefix.empty() ? "" : "/" + loc.prefix);
  return loc;
}

bool BucketFitsVirtualHost(std::string_view bucket, std::string_view scheme) {
  if (bucket.empty() || bucket.front() == '-' || bucket.back() == '-') return false;
  for (char c : bucket) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              (c == '.' && scheme == "http");
    if (!ok) return false;
  }
  return true;
}

std::string S3Endpoint::BaseUrl(std::string_view bucket) const {
  return url.scheme + "://" + HostHeader(bucket);
}

std::string S3Endpoint::HostHeader(std::string_view bucket) const {
  if (path_style) return url.Authority();
  return std::string(bucket) + "." + url.Authority();
}

std::string S3Endpoint::EncodedPath(std::string_view bucket, std::string_view full_key) const {
  std::string path = "/";
  if (path_style) {
    path += UriEncode(bucket, false);
    if (full_key.empty()) return path;
    path += '/';
  }
  path += UriEncode(full_key, true);
  return path;
}

Result<S3Config> ResolveS3Config(std::string_view uri, const ObjectStoreOptions& options,
                                 const EnvLookup& env) {
  S3Config config;
  EDDY_ASSIGN_OR_RETURN(config.location, ParseS3Uri(uri));

  std::string region = options.s3_region;
  if (region.empty()) region = env("AWS_REGION").value_or("");
  if (region.empty()) region = env("AWS_DEFAULT_REGION").value_or("");
  if (region.empty()) region = "us-east-1";
  config.endpoint.region = region;

  std::string endpoint = options.s3_endpoint;
  if (endpoint.empty()) endpoint = env("AWS_ENDPOINT_URL_S3").value_or("");
  if (endpoint.empty()) endpoint = env("AWS_ENDPOINT_URL").value_or("");
  bool custom_endpoint = !endpoint.empty();
  if (!custom_endpoint) {
    endpoint = "https://s3." + region + ".amazonaws.com" + (region.starts_with("cn-") ? ".cn" : "");
  }
  auto url = ParseHttpUrl(endpoint);
  if (!url.ok()) {
    return Status::InvalidArgument("bad S3 endpoint: " + url.status().message());
  }
  if (url->path_and_query != "/") {
    return Status::InvalidArgument("S3 endpoint '" + endpoint +
                                   "' must not have a path or query: scheme://host[:port]");
  }
  config.endpoint.url = *url;
  config.endpoint.path_style = options.s3_path_style.value_or(custom_endpoint) ||
                               !BucketFitsVirtualHost(config.location.bucket, url->scheme);

  if (options.max_attempts < 1) {
    return Status::InvalidArgument("S3 max_attempts must be at least 1, not " +
                                   std::to_string(options.max_attempts));
  }
  if (options.retry_base_ms < 0 || options.retry_max_ms < 0) {
    return Status::InvalidArgument("S3 retry_base_ms and retry_max_ms must not be negative");
  }
  if (options.request_timeout_ms <= 0) {
    return Status::InvalidArgument("S3 request_timeout_ms must be positive, not " +
                                   std::to_string(options.request_timeout_ms));
  }
  config.retry = {options.max_attempts, options.retry_base_ms, options.retry_max_ms};
  config.request_timeout = std::chrono::milliseconds(options.request_timeout_ms);
  return config;
}

}  // namespace eddy::storage::s3
