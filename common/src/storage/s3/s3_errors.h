#pragma once

// S3 answers as Eddy Status values: which code (the JobMaster's restart policy reads it) and a
// message that says which call, which object, what S3 said, and what to check.

#include <string_view>

#include "common/src/storage/s3/s3_xml.h"
#include "eddy/status.h"

namespace eddy::storage::s3 {

/// What a failed call was doing, for the message.
struct CallContext {
  std::string_view op;   ///< S3 API name: GetObject, ListObjectsV2, ...
  std::string_view uri;  ///< s3://bucket/key of the object (or the listed prefix)
  std::string_view bucket;
  std::string_view endpoint;  ///< scheme://host[:port]
  std::string_view region;
  std::string_view credentials_source;
};

/// The Status of a final, non-retried HTTP error answer (`error` parsed from its body, or with an
/// empty code when there was none): NotFound for NoSuchKey / NoSuchBucket / NoSuchUpload / 404;
/// InvalidArgument with a hint for credential, permission, region and clock errors and other 4xx;
/// OutOfRange for 416; Unimplemented for 501; IOError for anything else.
Status StatusForS3Error(const CallContext& ctx, int http_status, const S3Error& error);

/// The Status after `attempts` attempts that all failed transiently, the last with `last`:
/// keeps a retryable code (Timeout, Unavailable for unreachable servers and 503, IOError
/// otherwise).
Status RetriesExhausted(const CallContext& ctx, int attempts, const Status& last);

}  // namespace eddy::storage::s3
