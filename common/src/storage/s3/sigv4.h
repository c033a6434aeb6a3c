#pragma once

// AWS Signature Version 4 for S3 requests (header authorization), and the hashing helpers it
// needs. Pure functions over strings: no I/O, no clock (the caller passes the timestamp), so that
// tests can check them against fixed vectors and against botocore's signer.

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace eddy::storage::s3 {

/// Header or query parameter list in request order; names are compared case-insensitively where
/// HTTP says so.
using NameValues = std::vector<std::pair<std::string, std::string>>;

/// Lower-case hexadecimal of `bytes`.
std::string HexEncode(std::string_view bytes);
/// Raw 32-byte SHA-256 digest.
std::string Sha256(std::string_view data);
/// Lower-case hex SHA-256: the `x-amz-content-sha256` of a payload.
std::string Sha256Hex(std::string_view data);
/// Raw 32-byte HMAC-SHA256 of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data);
/// Base64 of the MD5 digest: the `Content-MD5` header (DeleteObjects requires it).
std::string Md5Base64(std::string_view data);

/// S3's URI encoding: every byte except `A-Z a-z 0-9 - _ . ~` becomes `%XX` (upper-case hex, UTF-8
/// bytes as they are); '/' is kept when `keep_slash` (object key paths) and encoded otherwise
/// (query names and values).
std::string UriEncode(std::string_view s, bool keep_slash);

/// The canonical query string: names and values URI-encoded, sorted by encoded name then value,
/// joined as `a=1&b=2`. A parameter without value is `name=`. Also used as the query string of the
/// request URL, so the signed and the sent query are the same bytes.
std::string CanonicalQueryString(const NameValues& query);

/// `YYYYMMDDTHHMMSSZ` (UTC) of `t`: the `x-amz-date` header.
std::string AmzDate(std::chrono::system_clock::time_point t);

/// The key to sign with.
struct SigningCredentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  ///< empty unless temporary credentials
};

/// One request to sign. `encoded_path` is sent verbatim and signed verbatim (S3 neither
/// normalizes nor double-encodes paths): build it with UriEncode(..., keep_slash=true).
struct SigningRequest {
  std::string method;        ///< GET, PUT, ...
  std::string encoded_path;  ///< starts with '/'
  NameValues query;          ///< decoded names and values
  NameValues headers;        ///< headers to sign, at least `host`; values as sent
  std::string payload_sha256_hex;
};

/// What signing produced: the headers to add to the request, and the intermediate strings (for
/// tests and for debugging a SignatureDoesNotMatch).
struct SignedRequest {
  /// `x-amz-date`, `x-amz-content-sha256`, `x-amz-security-token` (with a session token) and
  /// `authorization`, to send in addition to `SigningRequest::headers`.
  NameValues added_headers;
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;  ///< lower-case hex
  std::string authorization;
};

/// Signs `request` for `service` (`s3`) in `region` at `amz_date` (see AmzDate). Every header in
/// `request.headers` plus the added `x-amz-*` headers is signed. Header names are lower-cased,
/// values trimmed with inner whitespace runs collapsed to one space, repeated names joined with
/// ','.
SignedRequest SignV4(const SigningRequest& request, const SigningCredentials& credentials,
                     std::string_view region, std::string_view service, std::string_view amz_date);

}  // namespace eddy::storage::s3
