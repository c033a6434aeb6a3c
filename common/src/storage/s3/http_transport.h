#pragma once

// The HTTP seam of the S3 store: one request in, one response (or a transport failure) out. The
// real implementation uses cpprestsdk; tests substitute canned responses. No retries here — the
// store's request loop decides what to retry.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/src/storage/s3/sigv4.h"
#include "eddy/status.h"

namespace eddy::storage::s3 {

struct HttpRequest {
  std::string method;          ///< GET, PUT, POST, DELETE, HEAD
  std::string path_and_query;  ///< already encoded: `/bucket/key?uploadId=...`
  NameValues headers;          ///< sent as given (including `Host` and `Authorization`)
  std::string_view body;       ///< valid until Send returns
  std::string content_type;    ///< of `body`; empty = application/octet-stream
  /// When set and the answer is 2xx, the body is streamed into this file (created or truncated)
  /// instead of HttpResponse::body; error bodies are always read into HttpResponse::body.
  std::string response_file;
};

struct HttpResponse {
  int status = 0;
  NameValues headers;  ///< names lower-cased
  std::string body;
  uint64_t file_bytes = 0;  ///< bytes written to HttpRequest::response_file

  /// The value of header `lower_name`, or nullopt.
  std::optional<std::string> Header(std::string_view lower_name) const;
};

/// The parts of an `http://` or `https://` URL.
struct HttpUrl {
  std::string scheme;          ///< http or https
  std::string host;            ///< without brackets for IPv6 literals
  int port = 0;                ///< 0 = the scheme's default
  std::string path_and_query;  ///< "/" when the URL has none

  /// `scheme://host[:port]` (IPv6 literals bracketed, default ports left out).
  std::string Base() const;
  /// `host[:port]`: the Host header.
  std::string Authority() const;
};

/// Splits `url`; a URL without scheme is taken as https. InvalidArgument for another scheme, an
/// empty host, a bad port, or user info.
Result<HttpUrl> ParseHttpUrl(std::string_view url);

/// Sends requests to one server (`scheme://host[:port]`).
///
/// Errors (all retryable): Timeout when a send or receive step exceeded the timeout, Unavailable
/// when no connection could be made (refused, unreachable, name not resolved), IOError for a
/// connection lost mid-request or a body shorter than its Content-Length.
///
/// Threading: Send may be called from any thread concurrently.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
};

/// A cpprestsdk client for `base_url` (`http://127.0.0.1:9000`, `https://s3.eu-west-1...`).
/// `timeout` bounds every send and receive step (connect, writing the request, waiting for the
/// status line, each read of the body) — not the whole transfer, so that large objects can take
/// longer than it. InvalidArgument for a URL cpprestsdk rejects.
Result<std::unique_ptr<HttpTransport>> MakeCppRestTransport(const std::string& base_url,
                                                            std::chrono::milliseconds timeout);

}  // namespace eddy::storage::s3
