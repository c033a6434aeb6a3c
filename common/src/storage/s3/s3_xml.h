#pragma once

// S3's XML documents: the responses the store reads and the request bodies it writes. Parsers
// return ParseError for anything that is not the expected document (garbage, truncation, an
// `IsTruncated` page without a continuation token), so a bad response never loops or crashes.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/status.h"

namespace eddy::storage::s3 {

/// An `<Error>` document (any field may be empty: HEAD responses have no body at all).
struct S3Error {
  std::string code;  ///< e.g. NoSuchKey, SlowDown
  std::string message;
  std::string bucket;  ///< BucketName
  std::string key;     ///< Key
  std::string request_id;
};

/// Parses an `<Error>` document; ParseError when `body` is not one.
Result<S3Error> ParseS3Error(std::string_view body);

/// One object of a ListObjectsV2 page; `key` is the full key in the bucket.
struct ListedObject {
  std::string key;
  uint64_t size = 0;
};

/// A ListObjectsV2 page (`<ListBucketResult>`).
struct ListObjectsPage {
  std::vector<ListedObject> objects;
  bool is_truncated = false;
  std::string next_continuation_token;  ///< non-empty when is_truncated
};
Result<ListObjectsPage> ParseListObjectsV2(std::string_view body);

/// `<InitiateMultipartUploadResult>`: the UploadId.
Result<std::string> ParseInitiateMultipartUpload(std::string_view body);

/// One open multipart upload of a ListMultipartUploads page.
struct ListedUpload {
  std::string key;
  std::string upload_id;
};

/// A ListMultipartUploads page (`<ListMultipartUploadsResult>`).
struct ListUploadsPage {
  std::vector<ListedUpload> uploads;
  bool is_truncated = false;
  std::string next_key_marker;        ///< set when is_truncated
  std::string next_upload_id_marker;  ///< may be empty when is_truncated
};
Result<ListUploadsPage> ParseListMultipartUploads(std::string_view body);

/// The keys a DeleteObjects request failed to delete (`<DeleteResult>` `<Error>` entries).
struct DeleteFailure {
  std::string key;
  std::string code;
  std::string message;
};
Result<std::vector<DeleteFailure>> ParseDeleteResult(std::string_view body);

/// The `<CompleteMultipartUpload>` body for parts 1..n with these ETags.
std::string CompleteMultipartUploadXml(const std::vector<std::string>& part_etags);
/// The quiet `<Delete>` body of a DeleteObjects request for `keys` (at most 1000).
std::string DeleteObjectsXml(const std::vector<std::string>& keys);

}  // namespace eddy::storage::s3
