#include "eddy/k8s/kube_client.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>
#include <type_traits>
#include <utility>

namespace eddy::k8s {

namespace {

namespace http = web::http;
namespace client = web::http::client;
using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

bool IsIdempotent(std::string_view method) {
  return method != "POST";
}

}  // namespace

std::string KubeResponse::reason() const {
  if (body.is_object() && body.contains("reason") && body["reason"].is_string())
    return body["reason"].get<std::string>();
  return {};
}

std::string KubeResponse::message() const {
  if (body.is_object() && body.contains("message") && body["message"].is_string())
    return body["message"].get<std::string>();
  return "HTTP " + std::to_string(http_status);
}

Status ResponseStatus(const KubeResponse& r, const std::string& what) {
  std::string m = what + ": " + std::to_string(r.http_status) +
                  (r.reason().empty() ? "" : " " + r.reason()) + ": " + r.message();
  switch (r.http_status) {
    case 404:
      return Status::NotFound(m);
    case 409:
      return r.reason() == "AlreadyExists" ? Status::AlreadyExists(m) : Status::Unavailable(m);
    case 410:
      return Status::OutOfRange(m);
    case 400:
    case 401:
    case 403:
    case 422:
      return Status::InvalidArgument(m);
    case 429:
      return Status::Unavailable(m);
    default:
      return r.http_status >= 500 ? Status::Unavailable(m) : Status::Internal(m);
  }
}

std::string QueryEscape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct KubeClient::Impl {
  KubeConfig config;
  KubeClientOptions options;
  std::unique_ptr<client::http_client> http;  // plain requests (request timeout)
  std::mutex token_mu;
  std::string token;
  Clock::time_point token_read = Clock::now();

  client::http_client_config HttpConfig(std::chrono::milliseconds timeout) const {
    client::http_client_config c;
    c.set_timeout(timeout);
    c.set_validate_certificates(!config.insecure_skip_tls_verify);
    KubeConfig k = config;  // the callback outlives nothing but needs its own copy
    c.set_ssl_context_callback([k](boost::asio::ssl::context& ctx) {
      if (!k.ca_pem.empty()) ctx.add_certificate_authority(boost::asio::buffer(k.ca_pem));
      if (!k.client_cert_pem.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(k.client_cert_pem));
        ctx.use_private_key(boost::asio::buffer(k.client_key_pem), boost::asio::ssl::context::pem);
      }
    });
    return c;
  }

  std::string Token() {
    std::lock_guard<std::mutex> lock(token_mu);
    if (!config.token_file.empty() && Clock::now() - token_read > std::chrono::minutes(1)) {
      std::ifstream in(config.token_file);
      std::string t;
      if (in && std::getline(in, t) && !t.empty()) token = t;
      token_read = Clock::now();
    }
    return token;
  }

  http::http_request Build(std::string_view method, const std::string& path, const Json* body,
                           std::string_view content_type) {
    http::http_request req{http::method(std::string(method))};
    req.set_request_uri(path);
    req.headers().add("Accept", "application/json");
    req.headers().add("User-Agent", options.user_agent);
    if (std::string t = Token(); !t.empty()) req.headers().add("Authorization", "Bearer " + t);
    // Invalid UTF-8 (a cut failure message) is replaced rather than thrown.
    if (body) {
      req.set_body(body->dump(-1, ' ', false, Json::error_handler_t::replace),
                   std::string(content_type));
    }
    return req;
  }

  void Observe(std::string_view method, int status, Clock::time_point t0) const {
    if (options.observer) options.observer(method, status, SecondsSince(t0));
  }
};

Result<std::shared_ptr<KubeClient>> KubeClient::Make(KubeConfig config, KubeClientOptions options) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return Status::InvalidArgument("API server URL must start with https:// or http://, got '" +
                                   config.server + "'");
  }
  std::shared_ptr<KubeClient> c(new KubeClient());
  c->impl_ = std::make_unique<Impl>();
  auto& impl = *c->impl_;
  impl.token = config.token;
  impl.config = std::move(config);
  impl.options = std::move(options);
  try {
    impl.http = std::make_unique<client::http_client>(
        impl.config.server,
        impl.HttpConfig(std::chrono::milliseconds(impl.options.request_timeout_ms)));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("API server URL '" + impl.config.server + "': " + e.what());
  }
  return c;
}

KubeClient::~KubeClient() = default;

const KubeConfig& KubeClient::config() const {
  return impl_->config;
}

Result<KubeResponse> KubeClient::Request(std::string_view method, const std::string& path,
                                         const Json* body, std::string_view content_type) {
  auto& impl = *impl_;
  const std::string what = std::string(method) + " " + path;
  int64_t backoff_ms = 200;
  std::string last_error;
  for (int attempt = 1; attempt <= std::max(1, impl.options.max_attempts); ++attempt) {
    auto t0 = Clock::now();
    int64_t wait_ms = backoff_ms;
    try {
      http::http_response resp =
          impl.http->request(impl.Build(method, path, body, content_type)).get();
      std::string text = resp.extract_utf8string(true).get();
      KubeResponse r;
      r.http_status = resp.status_code();
      impl.Observe(method, r.http_status, t0);
      if (!text.empty()) {
        r.body = Json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (r.body.is_discarded()) r.body = Json{{"message", text.substr(0, 512)}};
      }
      bool retry = r.http_status == 429 || r.http_status == 503 ||
                   (r.http_status >= 500 && IsIdempotent(method));
      if (!retry || attempt == impl.options.max_attempts) return r;
      if (r.http_status == 429 && resp.headers().has("Retry-After")) {
        try {
          wait_ms =
              std::clamp<int64_t>(std::stoll(resp.headers()["Retry-After"]) * 1000, 100, 10000);
        } catch (const std::exception&) {
        }
      }
      last_error = ResponseStatus(r, what).message();
    } catch (const http::http_exception& e) {
      impl.Observe(method, 0, t0);
      last_error = what + ": " + e.what();
      // A create that may have reached the server is not repeated blindly.
      if (!IsIdempotent(method) && e.error_code().value() != ECONNREFUSED) break;
    } catch (const std::exception& e) {
      impl.Observe(method, 0, t0);
      last_error = what + ": " + e.what();
      if (!IsIdempotent(method)) break;
    }
    if (attempt < impl.options.max_attempts) {
      std::this_thread::sleep_for(std::chrono::milliseconds(wait_ms));
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
    }
  }
  return Status::Unavailable("Kubernetes API server " + impl.config.server +
                             " unreachable: " + last_error);
}

namespace {

Result<Json> BodyOf(Result<KubeResponse> r, const std::string& what) {
  if (!r.ok()) return r.status();
  if (!r->ok()) return ResponseStatus(*r, what);
  return std::move(r->body);
}

}  // namespace

Result<Json> KubeClient::Get(const std::string& path) {
  return BodyOf(Request("GET", path), "GET " + path);
}

Result<Json> KubeClient::Create(const std::string& collection_path, const Json& object) {
  return BodyOf(Request("POST", collection_path, &object), "POST " + collection_path);
}

Result<Json> KubeClient::Replace(const std::string& path, const Json& object) {
  return BodyOf(Request("PUT", path, &object), "PUT " + path);
}

Result<Json> KubeClient::MergePatch(const std::string& path, const Json& patch) {
  return BodyOf(Request("PATCH", path, &patch, "application/merge-patch+json"), "PATCH " + path);
}

Result<Json> KubeClient::Apply(const std::string& path, const Json& object,
                               const std::string& field_manager, bool force) {
  std::string p = path + (path.find('?') == std::string::npos ? "?" : "&") +
                  "fieldManager=" + QueryEscape(field_manager) + (force ? "&force=true" : "");
  return BodyOf(Request("PATCH", p, &object, "application/apply-patch+yaml"), "PATCH " + p);
}

Status KubeClient::Delete(const std::string& path, std::string_view propagation,
                          int64_t grace_period_seconds) {
  Json opts = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (!propagation.empty()) opts["propagationPolicy"] = std::string(propagation);
  if (grace_period_seconds >= 0) opts["gracePeriodSeconds"] = grace_period_seconds;
  auto r = Request("DELETE", path, &opts);
  if (!r.ok()) return r.status();
  if (r->ok() || r->http_status == 404) return Status::Ok();
  return ResponseStatus(*r, "DELETE " + path);
}

Status KubeClient::Watch(const std::string& path, const std::string& resource_version,
                         int timeout_seconds, const WatchHandler& handler,
                         const std::atomic<bool>& stop) {
  auto& impl = *impl_;
  std::string p =
      path + (path.find('?') == std::string::npos ? "?" : "&") +
      "watch=1&allowWatchBookmarks=true&timeoutSeconds=" + std::to_string(timeout_seconds);
  if (!resource_version.empty()) p += "&resourceVersion=" + QueryEscape(resource_version);
  const std::string what = "WATCH " + p;
  pplx::cancellation_token_source cts;
  auto t0 = Clock::now();
  try {
    // Its own client: the read timeout must outlast the server's timeoutSeconds.
    client::http_client watch_client(impl.config.server,
                                     impl.HttpConfig(std::chrono::seconds(timeout_seconds + 30)));
    auto pending = watch_client.request(impl.Build("GET", p, nullptr, ""), cts.get_token());
    // Waits for a task while honouring `stop`; false = stopped. An abandoned task still ends
    // (with the cancellation's exception), and pplx aborts the process when a task's exception
    // is never observed: a continuation observes it.
    auto wait = [&](auto& task) {
      while (!task.is_done()) {
        if (stop.load()) {
          cts.cancel();
          task.then([](std::remove_reference_t<decltype(task)> t) {
            try {
              t.get();
            } catch (...) {
            }
          });
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      return true;
    };
    if (!wait(pending)) return Status::Cancelled("watch stopped");
    http::http_response resp = pending.get();
    impl.Observe("WATCH", resp.status_code(), t0);
    if (resp.status_code() != 200) {
      KubeResponse r;
      r.http_status = resp.status_code();
      std::string text = resp.extract_utf8string(true).get();
      r.body = Json::parse(text, nullptr, false);
      if (r.body.is_discarded()) r.body = Json::object();
      return ResponseStatus(r, what);
    }
    auto body = resp.body();
    while (true) {
      concurrency::streams::container_buffer<std::string> line;
      auto read = body.read_line(line);
      if (!wait(read)) return Status::Cancelled("watch stopped");
      size_t n = read.get();
      const std::string& text = line.collection();
      if (n == 0 && text.empty()) {
        if (body.is_eof()) return Status::Ok();
        continue;
      }
      Json ev = Json::parse(text, nullptr, false);
      if (ev.is_discarded() || !ev.is_object() || !ev.contains("type")) {
        return Status::Unavailable(what + ": undecodable watch event: " + text.substr(0, 200));
      }
      std::string type = ev["type"].is_string() ? ev["type"].get<std::string>() : "";
      const Json& obj = ev.contains("object") ? ev["object"] : Json::object();
      if (type == "ERROR") {
        KubeResponse r;
        r.http_status = obj.value("code", 500);
        r.body = obj;
        if (r.http_status == 410) return Status::OutOfRange(what + ": resource version too old");
        return ResponseStatus(r, what);
      }
      handler(type, obj);
    }
  } catch (const std::exception& e) {
    if (stop.load()) return Status::Cancelled("watch stopped");
    return Status::Unavailable(what + ": " + e.what());
  }
}

}  // namespace eddy::k8s
