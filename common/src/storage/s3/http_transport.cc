#include "common/src/storage/s3/http_transport.h"
#include "common/src/storage/posix_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <system_error>
#include <vector>

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

namespace eddy::storage::s3 {

std::optional<std::string> HttpResponse::Header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return std::nullopt;
}

std::string HttpUrl::Authority() const {
  std::string out = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  bool default_port =
      port == 0 || (scheme == "http" && port == 80) || (scheme == "https" && port == 443);
  if (!default_port) out += ":" + std::to_string(port);
  return out;
}

std::string HttpUrl::Base() const {
  return scheme + "://" + Authority();
}

Result<HttpUrl> ParseHttpUrl(std::string_view url) {
  HttpUrl out;
  std::string_view rest = url;
  size_t sep = rest.find("://");
  if (sep == std::string_view::npos) {
    out.scheme = "https";
  } else {
    for (char c : rest.substr(0, sep)) {
      out.scheme += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    rest.remove_prefix(sep + 3);
  }
  if (out.scheme != "http" && out.scheme != "https") {
    return Status::InvalidArgument("URL '" + std::string(url) + "' must be http:// or https://");
  }
  size_t path_start = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, path_start);
  out.path_and_query =
      path_start == std::string_view::npos ? "/" : std::string(rest.substr(path_start));
  if (out.path_and_query.front() == '?') out.path_and_query.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) {
    return Status::InvalidArgument("URL '" + std::string(url) + "' must not carry user info");
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      return Status::InvalidArgument("URL '" + std::string(url) + "' has a bad IPv6 address");
    }
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        return Status::InvalidArgument("URL '" + std::string(url) + "' has a bad host");
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out.host.empty()) {
    return Status::InvalidArgument("URL '" + std::string(url) + "' has no host");
  }
  if (!port.empty() || authority.ends_with(":")) {
    auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || ptr != port.data() + port.size() || out.port <= 0 ||
        out.port > 65535) {
      return Status::InvalidArgument("URL '" + std::string(url) + "' has a bad port");
    }
  }
  return out;
}

namespace {

namespace http = web::http;

std::string ToLower(std::string s) {
  for (char& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

/// Maps a cpprestsdk failure to a retryable Status; `what` is its message.
Status TransportError(const std::error_code& ec, const std::string& what,
                      std::chrono::milliseconds timeout) {
  std::string msg = what;
  if (ec) msg += " (" + ec.message() + ")";
  if (ec == std::errc::timed_out) {
    return Status::Timeout("no answer within " + std::to_string(timeout.count()) + " ms: " + msg);
  }
  if (ec == std::errc::connection_refused || ec == std::errc::host_unreachable ||
      ec == std::errc::network_unreachable || ec == std::errc::network_down ||
      what.find("resolve") != std::string::npos ||
      what.find("Failed to connect") != std::string::npos) {
    return Status::Unavailable("cannot connect: " + msg);
  }
  return Status::IOError("connection failed: " + msg);
}

class CppRestTransport final : public HttpTransport {
 public:
  CppRestTransport(std::unique_ptr<http::client::http_client> client,
                   std::chrono::milliseconds timeout)
      : client_(std::move(client)), timeout_(timeout) {}

  Result<HttpResponse> Send(const HttpRequest& request) override {
    try {
      return SendOrThrow(request);
    } catch (const http::http_exception& e) {
      return TransportError(e.error_code(), e.what(), timeout_);
    } catch (const std::system_error& e) {
      return TransportError(e.code(), e.what(), timeout_);
    } catch (const std::exception& e) {
      return TransportError({}, e.what(), timeout_);
    } catch (...) {
      return Status::IOError("unknown failure in the HTTP client");
    }
  }

 private:
  Result<HttpResponse> SendOrThrow(const HttpRequest& request) {
    http::http_request req{http::method(request.method)};
    req.set_request_uri(web::uri(request.path_and_query));
    for (const auto& [name, value] : request.headers) req.headers().add(name, value);
    bool has_body = !request.body.empty() || request.method == "PUT" || request.method == "POST";
    if (has_body) {
      // cpprestsdk may read the body stream after a timeout has returned control to the caller,
      // so it gets its own copy rather than a view of the caller's buffer.
      std::string copy(request.body);
      size_t length = copy.size();
      req.set_body(
          concurrency::streams::bytestream::open_istream(std::move(copy)), length,
          request.content_type.empty() ? "application/octet-stream" : request.content_type);
    }

    http::http_response resp = client_->request(req).get();
    HttpResponse out;
    out.status = resp.status_code();
    for (const auto& [name, value] : resp.headers()) out.headers.emplace_back(ToLower(name), value);
    if (request.method == "HEAD") return out;

    bool to_file = !request.response_file.empty() && out.status >= 200 && out.status < 300;
    int fd = -1;
    if (to_file) {
      fd = ::open(request.response_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd < 0) {
        return Status::IOError("cannot create local file '" + request.response_file +
                               "': " + std::strerror(errno));
      }
    }
    uint64_t received = 0;
    Status read_status = ReadBody(resp, [&](const char* data, size_t n) {
      received += n;
      if (!to_file) {
        out.body.append(data, n);
        return true;
      }
      return WriteAll(fd, data, n);
    });
    if (fd >= 0 && ::close(fd) != 0 && read_status.ok()) {
      read_status = Status::IOError("cannot write local file '" + request.response_file +
                                    "': " + std::strerror(errno));
    }
    EDDY_RETURN_NOT_OK(read_status);
    if (to_file) out.file_bytes = received;

    if (auto length = out.Header("content-length"); length && out.status != 204) {
      uint64_t expected = 0;
      auto [ptr, ec] = std::from_chars(length->data(), length->data() + length->size(), expected);
      if (ec == std::errc() && received != expected) {
        return Status::IOError("response body truncated: " + std::to_string(received) + " of " +
                               std::to_string(expected) + " bytes");
      }
    }
    return out;
  }

  /// Feeds the response body to `sink` in chunks; `sink` returns false on a local write error.
  template <class Sink>
  static Status ReadBody(http::http_response& resp, Sink sink) {
    auto buf = resp.body().streambuf();
    std::vector<uint8_t> chunk(1 << 16);
    for (;;) {
      size_t n = buf.getn(chunk.data(), chunk.size()).get();
      if (n == 0) return Status::Ok();
      if (!sink(reinterpret_cast<const char*>(chunk.data()), n)) {
        return Status::IOError(std::string("cannot write the response body: ") +
                               std::strerror(errno));
      }
    }
  }

  std::unique_ptr<http::client::http_client> client_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

Result<std::unique_ptr<HttpTransport>> MakeCppRestTransport(const std::string& base_url,
                                                            std::chrono::milliseconds timeout) {
  try {
    http::client::http_client_config config;
    config.set_timeout(timeout);
    auto client = std::make_unique<http::client::http_client>(web::uri(base_url), config);
    return std::unique_ptr<HttpTransport>(
        std::make_unique<CppRestTransport>(std::move(client), timeout));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("bad S3 endpoint URL '" + base_url + "': " + e.what());
  }
}

}  // namespace eddy::storage::s3
