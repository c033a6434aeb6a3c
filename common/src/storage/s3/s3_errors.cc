#include "common/src/storage/s3/s3_errors.h"

#include <string>

namespace eddy::storage::s3 {

namespace {

std::string Describe(const CallContext& ctx, int http_status, const S3Error& error) {
  std::string msg = "S3 " + std::string(ctx.op) + " of " + std::string(ctx.uri) + " failed: HTTP " +
                    std::to_string(http_status);
  if (!error.code.empty()) msg += " " + error.code;
  if (!error.message.empty()) msg += ": " + error.message;
  if (!error.request_id.empty()) msg += " (request id " + error.request_id + ")";
  return msg;
}

bool IsOneOf(std::string_view code, std::initializer_list<std::string_view> codes) {
  for (auto c : codes) {
    if (code == c) return true;
  }
  return false;
}

}  // namespace

Status StatusForS3Error(const CallContext& ctx, int http_status, const S3Error& error) {
  std::string msg = Describe(ctx, http_status, error);
  const std::string& code = error.code;
  std::string creds = "the credentials from " + std::string(ctx.credentials_source);

  if (code == "NoSuchBucket") {
    return Status::NotFound("S3 bucket '" + std::string(ctx.bucket) + "' does not exist at " +
                            std::string(ctx.endpoint) + " (" + msg + ")");
  }
  if (code == "NoSuchKey" || code == "NoSuchUpload" || (code.empty() && http_status == 404)) {
    return Status::NotFound(msg);
  }
  if (code == "InvalidAccessKeyId") {
    return Status::InvalidArgument(msg + " — the access key id from " +
                                   std::string(ctx.credentials_source) + " is not known to " +
                                   std::string(ctx.endpoint));
  }
  if (code == "SignatureDoesNotMatch") {
    return Status::InvalidArgument(msg + " — the secret key from " +
                                   std::string(ctx.credentials_source) +
                                   " does not belong to the access key id (or a proxy altered "
                                   "the request)");
  }
  if (IsOneOf(code, {"ExpiredToken", "InvalidToken", "TokenRefreshRequired"})) {
    return Status::InvalidArgument(msg + " — the session token of " + creds +
                                   " is expired or invalid");
  }
  if (code == "RequestTimeTooSkewed") {
    return Status::InvalidArgument(msg + " — this machine's clock is off; synchronize it (NTP)");
  }
  if (IsOneOf(code, {"AuthorizationHeaderMalformed", "PermanentRedirect", "TemporaryRedirect",
                     "IllegalLocationConstraintException"}) ||
      http_status == 301 || http_status == 307) {
    return Status::InvalidArgument(
        msg + " — bucket '" + std::string(ctx.bucket) + "' is probably in another region than '" +
        std::string(ctx.region) + "'; set the S3 region (or AWS_REGION) or the endpoint");
  }
  if (code == "AccessDenied" || code == "AllAccessDisabled" || http_status == 403) {
    return Status::InvalidArgument(msg + " — " + creds + " may not " + std::string(ctx.op) +
                                   " in bucket '" + std::string(ctx.bucket) +
                                   "' (check the access key, the secret key and the bucket "
                                   "policy)");
  }
  if (http_status == 416) return Status::OutOfRange(msg);
  if (http_status == 501 || code == "NotImplemented") return Status::Unimplemented(msg);
  if (http_status >= 400 && http_status < 500) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

Status RetriesExhausted(const CallContext& ctx, int attempts, const Status& last) {
  std::string msg = "S3 " + std::string(ctx.op) + " of " + std::string(ctx.uri) + " failed after " +
                    std::to_string(attempts) + (attempts == 1 ? " attempt" : " attempts") +
                    " (endpoint " + std::string(ctx.endpoint) + "): " + last.message();
  StatusCode code = last.IsRetryable() ? last.code() : StatusCode::kIOError;
  return Status(code, std::move(msg));
}

}  // namespace eddy::storage::s3
