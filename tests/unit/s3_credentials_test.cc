#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "common/src/storage/s3/credentials.h"
#include "common/src/storage/s3/retry.h"
#include "common/src/storage/s3/s3_config.h"

namespace eddy::storage::s3 {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

EnvLookup MapEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

/// Answers every request with the next canned response (the last one repeats) and records the
/// requests.
class CannedTransport : public HttpTransport {
 public:
  explicit CannedTransport(std::vector<Result<HttpResponse>> answers)
      : answers_(std::move(answers)) {}
  Result<HttpResponse> Send(const HttpRequest& request) override {
    std::lock_guard<std::mutex> lock(mu_);
    requests.push_back(request);
    auto& a = answers_[std::min(next_, answers_.size() - 1)];
    ++next_;
    return a;
  }
  std::vector<HttpRequest> requests;

 private:
  std::mutex mu_;
  std::vector<Result<HttpResponse>> answers_;
  size_t next_ = 0;
};

HttpResponse Json(int status, const std::string& body) {
  HttpResponse r;
  r.status = status;
  r.body = body;
  return r;
}

std::string CredsJson(const std::string& key, const std::string& expiration) {
  return "{\"AccessKeyId\":\"" + key +
         "\",\"SecretAccessKey\":\"secret\",\"Token\":\"tok\",\"Expiration\":\"" + expiration +
         "\"}";
}

TEST(SharedCredentialsTest, ParsesProfiles) {
  const char* text =
      "# comment\n"
      "[default]\n"
      "aws_access_key_id = AKIADEFAULT\n"
      "aws_secret_access_key=secret/default+\n"
      "\n"
      "[profile eddy]\r\n"
      "  AWS_ACCESS_KEY_ID = AKIAEDDY  \r\n"
      "; another comment\n"
      "aws_secret_access_key = s=e=c\n"
      "aws_session_token = tok\n"
      "region = eu-west-1\n"
      "[role]\n"
      "role_arn = arn:aws:iam::1:role/x\n"
      "source_profile = default\n";
  auto d = ParseSharedCredentials(text, "default", "/f");
  ASSERT_TRUE(d.ok() && d->has_value());
  EXPECT_EQ((*d)->key.access_key_id, "AKIADEFAULT");
  EXPECT_EQ((*d)->key.secret_access_key, "secret/default+");
  EXPECT_EQ((*d)->key.session_token, "");
  EXPECT_EQ((*d)->source, "profile 'default' of /f");

  auto e = ParseSharedCredentials(text, "eddy", "/f");
  ASSERT_TRUE(e.ok() && e->has_value());
  EXPECT_EQ((*e)->key.access_key_id, "AKIAEDDY");
  EXPECT_EQ((*e)->key.secret_access_key, "s=e=c");
  EXPECT_EQ((*e)->key.session_token, "tok");

  auto missing = ParseSharedCredentials(text, "nope", "/f");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());

  auto role = ParseSharedCredentials(text, "role", "/f");
  EXPECT_EQ(role.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(role.status().message().find("role_arn"), std::string::npos);

  // Garbage is not a crash.
  auto garbage = ParseSharedCredentials("[\n=\n[[]]\naws_access_key_id\n\0\xff", "default", "/f");
  EXPECT_TRUE(garbage.ok());
}

TEST(ContainerCredentialsTest, ParsesTheEndpointJson) {
  auto c = ParseContainerCredentials(CredsJson("ASIA1", "2030-01-02T03:04:05Z"));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->key.access_key_id, "ASIA1");
  EXPECT_EQ(c->key.secret_access_key, "secret");
  EXPECT_EQ(c->key.session_token, "tok");
  ASSERT_TRUE(c->expiration.has_value());
  EXPECT_EQ(std::chrono::system_clock::to_time_t(*c->expiration), 1893553445);

  EXPECT_FALSE(ParseContainerCredentials("").ok());
  EXPECT_FALSE(ParseContainerCredentials("[1]").ok());
  EXPECT_FALSE(ParseContainerCredentials("{\"AccessKeyId\":1}").ok());
  EXPECT_FALSE(ParseContainerCredentials("{\"AccessKeyId\":\"a\",\"SecretAccessKey\":\"b\","
                                         "\"Expiration\":\"soon\"}")
                   .ok());
  EXPECT_FALSE(ParseContainerCredentials("{\"AccessKeyId\":\"a\",\"Secre").ok());
}

TEST(ContainerCredentialsTest, Iso8601) {
  auto t = [](const char* s) {
    auto r = ParseIso8601(s);
    return r.ok() ? std::chrono::system_clock::to_time_t(*r) : -1;
  };
  EXPECT_EQ(t("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(t("2030-01-02T03:04:05Z"), 1893553445);
  EXPECT_EQ(t("2030-01-02T03:04:05.123456Z"), 1893553445);
  EXPECT_EQ(t("2030-01-02T05:04:05+02:00"), 1893553445);
  EXPECT_EQ(t("2030-01-02T03:04:05"), -1);
  EXPECT_EQ(t("2030-13-02T03:04:05Z"), -1);
  EXPECT_EQ(t("yesterday"), -1);
  EXPECT_EQ(t(""), -1);
}

class ProviderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("eddy-creds-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  Result<std::shared_ptr<CredentialsProvider>> Make(std::map<std::string, std::string> env,
                                                    const ObjectStoreOptions& options = {}) {
    return CredentialsProvider::Make(
        options, MapEnv(std::move(env)),
        [this](const std::string& base) -> Result<std::unique_ptr<HttpTransport>> {
          bases.push_back(base);
          return std::unique_ptr<HttpTransport>(std::make_unique<Forward>(transport.get()));
        },
        RetryPolicy{3, 0, 0}, [this] { return now; });
  }
  /// Hands requests to the test's transport (which outlives the provider's copy).
  struct Forward : HttpTransport {
    explicit Forward(HttpTransport* t) : t(t) {}
    Result<HttpResponse> Send(const HttpRequest& r) override { return t->Send(r); }
    HttpTransport* t;
  };

  fs::path dir_;
  std::vector<std::string> bases;
  std::unique_ptr<CannedTransport> transport;
  std::chrono::system_clock::time_point now =
      std::chrono::system_clock::from_time_t(1893553445) - 1h;  // 2030-01-02T02:04:05Z
};

TEST_F(ProviderTest, ChainOrder) {
  std::string file = Write("credentials",
                           "[default]\naws_access_key_id=FILE\n"
                           "aws_secret_access_key=fs\n[p2]\naws_access_key_id=P2\n"
                           "aws_secret_access_key=p2s\n");
  std::map<std::string, std::string> env = {
      {"AWS_ACCESS_KEY_ID", "ENV"},
      {"AWS_SECRET_ACCESS_KEY", "es"},
      {"AWS_SESSION_TOKEN", "et"},
      {"AWS_SHARED_CREDENTIALS_FILE", file},
      {"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/creds"}};
  ObjectStoreOptions options;
  options.s3_access_key = "OPT";
  options.s3_secret_key = "os";
  auto p = Make(env, options);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Get()->key.access_key_id, "OPT");
  EXPECT_EQ((*p)->source(), "the store options");

  p = Make(env);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Get()->key.access_key_id, "ENV");
  EXPECT_EQ((*p)->Get()->key.session_token, "et");
  EXPECT_FALSE((*p)->refreshable());

  env.erase("AWS_ACCESS_KEY_ID");  // half of a pair is ignored
  p = Make(env);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Get()->key.access_key_id, "FILE");
  EXPECT_EQ((*p)->source(), "profile 'default' of " + file);

  env["AWS_PROFILE"] = "p2";
  p = Make(env);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->Get()->key.access_key_id, "P2");

  env["AWS_PROFILE"] = "absent";
  EXPECT_EQ(Make(env).status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(Make(env).status().message().find("'absent'"), std::string::npos);

  env.erase("AWS_PROFILE");
  env["AWS_SHARED_CREDENTIALS_FILE"] = (dir_ / "none").string();
  p = Make(env);
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE((*p)->refreshable());
  EXPECT_NE((*p)->source().find("http://127.0.0.1:1/creds"), std::string::npos);

  env.erase("AWS_CONTAINER_CREDENTIALS_FULL_URI");
  auto none = Make(env);
  EXPECT_EQ(none.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(none.status().message().find("no AWS credentials found"), std::string::npos);
  EXPECT_NE(none.status().message().find("AWS_ACCESS_KEY_ID"), std::string::npos);

  ObjectStoreOptions half;
  half.s3_access_key = "only";
  EXPECT_EQ(Make({}, half).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(ProviderTest, HomeCredentialsFile) {
  fs::create_directories(dir_ / ".aws");
  Write(".aws/credentials", "[default]\naws_access_key_id=HOME\naws_secret_access_key=h\n");
  auto p = Make({{"HOME", dir_.string()}});
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ((*p)->Get()->key.access_key_id, "HOME");
}

TEST_F(ProviderTest, ContainerUriRules) {
  transport = std::make_unique<CannedTransport>(
      std::vector<Result<HttpResponse>>{Json(200, CredsJson("A", "2030-01-02T03:04:05Z"))});
  auto rel = Make({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds?id=1"}});
  ASSERT_TRUE(rel.ok());
  ASSERT_TRUE((*rel)->Get().ok());
  EXPECT_EQ(bases.back(), "http://169.254.170.2");
  EXPECT_EQ(transport->requests.back().path_and_query, "/v2/creds?id=1");

  // Plain http only to loopback and the agents; https anywhere.
  EXPECT_EQ(
      Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://evil.example/creds"}}).status().code(),
      StatusCode::kInvalidArgument);
  EXPECT_TRUE(Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.example/x"}}).ok());
  EXPECT_TRUE(Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1"}}).ok());
  EXPECT_EQ(Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "ftp://x/"}}).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(ProviderTest, ContainerTokenAndRefreshBeforeExpiry) {
  transport = std::make_unique<CannedTransport>(
      std::vector<Result<HttpResponse>>{Json(200, CredsJson("FIRST", "2030-01-02T03:04:05Z")),
                                        Json(200, CredsJson("SECOND", "2030-01-02T04:04:05Z"))});
  std::string token_file = Write("token", "file-token\n");
  auto p = Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"},
                 {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "env-token"},
                 {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file}});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(transport->requests.empty());  // nothing fetched before the first use
  auto c = (*p)->Get();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->key.access_key_id, "FIRST");
  EXPECT_EQ(bases.back(), "http://127.0.0.1:8080");
  ASSERT_EQ(transport->requests.size(), 1u);
  EXPECT_EQ(transport->requests[0].path_and_query, "/creds");
  ASSERT_EQ(transport->requests[0].headers.size(), 1u);
  EXPECT_EQ(transport->requests[0].headers[0],
            (std::pair<std::string, std::string>{"Authorization", "file-token"}));

  // Cached while more than the margin is left.
  now += 50min;
  EXPECT_EQ((*p)->Get()->key.access_key_id, "FIRST");
  EXPECT_EQ(transport->requests.size(), 1u);
  // Refreshed within the margin of the expiration.
  now += 6min;  // 4 minutes left
  EXPECT_EQ((*p)->Get()->key.access_key_id, "SECOND");
  EXPECT_EQ(transport->requests.size(), 2u);
  // Invalidate forces a fetch.
  (*p)->Invalidate();
  EXPECT_EQ((*p)->Get()->key.access_key_id, "SECOND");
  EXPECT_EQ(transport->requests.size(), 3u);
}

TEST_F(ProviderTest, ContainerFailures) {
  // Unreachable endpoint: retried, then a retryable error naming the endpoint.
  transport = std::make_unique<CannedTransport>(
      std::vector<Result<HttpResponse>>{Status::Unavailable("cannot connect: refused")});
  auto p = Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"}});
  ASSERT_TRUE(p.ok());
  auto c = (*p)->Get();
  EXPECT_EQ(c.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(c.status().message().find("http://127.0.0.1:8080/creds"), std::string::npos);
  EXPECT_NE(c.status().message().find("3 attempts"), std::string::npos);
  EXPECT_EQ(transport->requests.size(), 3u);

  // A refusal is not retried.
  transport =
      std::make_unique<CannedTransport>(std::vector<Result<HttpResponse>>{Json(401, "bad token")});
  p = Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"}});
  c = (*p)->Get();
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(transport->requests.size(), 1u);

  // Garbage JSON: retryable, no crash.
  transport = std::make_unique<CannedTransport>(
      std::vector<Result<HttpResponse>>{Json(200, "{\"AccessKeyId\": tru")});
  p = Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"}});
  EXPECT_EQ((*p)->Get().status().code(), StatusCode::kIOError);

  // A failed refresh keeps using credentials that have not expired yet.
  transport = std::make_unique<CannedTransport>(std::vector<Result<HttpResponse>>{
      Json(200, CredsJson("OLD", "2030-01-02T03:04:05Z")), Status::Timeout("slow")});
  p = Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"}});
  EXPECT_EQ((*p)->Get()->key.access_key_id, "OLD");
  now += 58min;  // 2 minutes left: refresh fails, old ones still valid
  EXPECT_EQ((*p)->Get()->key.access_key_id, "OLD");
  now += 3min;  // expired
  EXPECT_EQ((*p)->Get().status().code(), StatusCode::kTimeout);
}

TEST_F(ProviderTest, ConcurrentGetsFetchOnce) {
  transport = std::make_unique<CannedTransport>(
      std::vector<Result<HttpResponse>>{Json(200, CredsJson("A", "2030-01-02T03:04:05Z"))});
  auto p = Make({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:8080/creds"}});
  ASSERT_TRUE(p.ok());
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  threads.reserve(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 100; ++j) ok += (*p)->Get().ok() ? 1 : 0;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 800);
  EXPECT_EQ(transport->requests.size(), 1u);
}

TEST(RetryPolicyTest, ExponentialBackoffWithFullJitter) {
  RetryPolicy p{5, 100, 1000};
  EXPECT_EQ(p.BackoffCap(1).count(), 100);
  EXPECT_EQ(p.BackoffCap(2).count(), 200);
  EXPECT_EQ(p.BackoffCap(4).count(), 800);
  EXPECT_EQ(p.BackoffCap(5).count(), 1000);
  EXPECT_EQ(p.BackoffCap(60).count(), 1000);  // no overflow
  EXPECT_EQ(p.Backoff(3, 0.0).count(), 0);
  EXPECT_EQ(p.Backoff(3, 0.5).count(), 200);
  EXPECT_EQ(p.Backoff(3, 0.999999).count(), 400);
  EXPECT_EQ(p.Backoff(3, 7.0).count(), 400);  // clamped
  for (int i = 0; i < 1000; ++i) {
    double u = JitterSample();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    auto d = p.Backoff(2, u).count();
    ASSERT_GE(d, 0);
    ASSERT_LE(d, 200);
  }
  EXPECT_EQ((RetryPolicy{5, 0, 0}).Backoff(3, 0.9).count(), 0);
}

TEST(RetryPolicyTest, WhatIsRetryable) {
  EXPECT_TRUE(IsRetryableHttp(500, ""));
  EXPECT_TRUE(IsRetryableHttp(502, ""));
  EXPECT_TRUE(IsRetryableHttp(503, "SlowDown"));
  EXPECT_TRUE(IsRetryableHttp(429, ""));
  EXPECT_TRUE(IsRetryableHttp(400, "RequestTimeout"));
  EXPECT_TRUE(IsRetryableHttp(200, "InternalError"));
  EXPECT_FALSE(IsRetryableHttp(501, ""));
  EXPECT_FALSE(IsRetryableHttp(404, "NoSuchKey"));
  EXPECT_FALSE(IsRetryableHttp(403, "AccessDenied"));
  EXPECT_FALSE(IsRetryableHttp(400, "InvalidArgument"));
}

TEST(S3ConfigTest, UrisAndDefaults) {
  auto c = ResolveS3Config("s3://my-bucket/a/b/", {}, MapEnv({}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->location.bucket, "my-bucket");
  EXPECT_EQ(c->location.prefix, "a/b");
  EXPECT_EQ(c->location.root_uri, "s3://my-bucket/a/b");
  EXPECT_EQ(c->location.FullKey("k"), "a/b/k");
  EXPECT_EQ(c->location.RelativeKey("a/b/k/x"), "k/x");
  EXPECT_EQ(c->location.RelativeKey("a/bc/k"), std::nullopt);
  EXPECT_EQ(c->endpoint.region, "us-east-1");
  // AWS: virtual-hosted.
  EXPECT_FALSE(c->endpoint.path_style);
  EXPECT_EQ(c->endpoint.BaseUrl("my-bucket"), "https://my-bucket.s3.us-east-1.amazonaws.com");
  EXPECT_EQ(c->endpoint.HostHeader("my-bucket"), "my-bucket.s3.us-east-1.amazonaws.com");
  EXPECT_EQ(c->endpoint.EncodedPath("my-bucket", "a/b/k x"), "/a/b/k%20x");
  EXPECT_EQ(c->endpoint.EncodedPath("my-bucket", ""), "/");
  EXPECT_EQ(c->retry.max_attempts, 5);
  EXPECT_EQ(c->request_timeout.count(), 30000);

  auto root = ResolveS3Config("s3://bkt", {}, MapEnv({{"AWS_DEFAULT_REGION", "eu-west-3"}}));
  ASSERT_TRUE(root.ok());
  EXPECT_EQ(root->location.prefix, "");
  EXPECT_EQ(root->location.root_uri, "s3://bkt");
  EXPECT_EQ(root->location.FullKey("k"), "k");
  EXPECT_EQ(root->endpoint.region, "eu-west-3");
  EXPECT_EQ(root->endpoint.BaseUrl("bkt"), "https://bkt.s3.eu-west-3.amazonaws.com");
  auto cn = ResolveS3Config("s3://bkt", {}, MapEnv({{"AWS_REGION", "cn-north-1"}}));
  EXPECT_EQ(cn->endpoint.BaseUrl("bkt"), "https://bkt.s3.cn-north-1.amazonaws.com.cn");

  for (const char* bad : {"s3://", "s3:///x", "s3://ab", "s3://bad_bücket", "s3://b!b/x",
                          "s3://bkt/a//b", "s3://bkt/../x", "file:///x"}) {
    EXPECT_EQ(ResolveS3Config(bad, {}, MapEnv({})).status().code(), StatusCode::kInvalidArgument)
        << bad;
  }
}

TEST(S3ConfigTest, EndpointsAndAddressing) {
  ObjectStoreOptions o;
  o.s3_endpoint = "http://127.0.0.1:9000/";
  o.s3_region = "eu-central-1";
  auto c = ResolveS3Config("s3://bkt/p", o, MapEnv({{"AWS_REGION", "ignored"}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->endpoint.path_style);  // default with an endpoint
  EXPECT_EQ(c->endpoint.region, "eu-central-1");
  EXPECT_EQ(c->endpoint.BaseUrl("bkt"), "http://127.0.0.1:9000");
  EXPECT_EQ(c->endpoint.HostHeader("bkt"), "127.0.0.1:9000");
  EXPECT_EQ(c->endpoint.EncodedPath("bkt", "p/a b/\xC3\xBC+="), "/bkt/p/a%20b/%C3%BC%2B%3D");
  EXPECT_EQ(c->endpoint.EncodedPath("bkt", ""), "/bkt");

  o.s3_path_style = false;  // virtual-hosted on a custom endpoint
  o.s3_endpoint = "https://storage.example.com:8443";
  c = ResolveS3Config("s3://bkt/p", o, MapEnv({}));
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->endpoint.path_style);
  EXPECT_EQ(c->endpoint.BaseUrl("bkt"), "https://bkt.storage.example.com:8443");
  EXPECT_EQ(c->endpoint.HostHeader("bkt"), "bkt.storage.example.com:8443");
  EXPECT_EQ(c->endpoint.EncodedPath("bkt", "p/k"), "/p/k");

  // Bucket names that cannot be a host name under https fall back to path style.
  c = ResolveS3Config("s3://my.dotted.bucket/p", o, MapEnv({}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->endpoint.path_style);
  c = ResolveS3Config("s3://Upper_Case/p", o, MapEnv({}));
  EXPECT_TRUE(c->endpoint.path_style);
  o.s3_endpoint = "http://minio:9000";
  c = ResolveS3Config("s3://my.dotted.bucket/p", o, MapEnv({}));
  EXPECT_FALSE(c->endpoint.path_style);  // no certificate over plain http

  // Endpoint from the environment; default port left out of the Host header.
  c = ResolveS3Config("s3://bkt", {}, MapEnv({{"AWS_ENDPOINT_URL_S3", "http://[::1]:80"}}));
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->endpoint.path_style);
  EXPECT_EQ(c->endpoint.HostHeader("bkt"), "[::1]");
  c = ResolveS3Config("s3://bkt", {}, MapEnv({{"AWS_ENDPOINT_URL", "minio.local:9000"}}));
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->endpoint.BaseUrl("bkt"), "https://minio.local:9000");

  ObjectStoreOptions bad;
  for (const char* e : {"ftp://x", "http://", "http://h:0", "http://h:99999", "http://h:1x",
                        "http://h/path", "http://u@h"}) {
    bad.s3_endpoint = e;
    EXPECT_EQ(ResolveS3Config("s3://bkt", bad, MapEnv({})).status().code(),
              StatusCode::kInvalidArgument)
        << e;
  }
  ObjectStoreOptions attempts;
  attempts.max_attempts = 0;
  EXPECT_EQ(ResolveS3Config("s3://bkt", attempts, MapEnv({})).status().code(),
            StatusCode::kInvalidArgument);
  ObjectStoreOptions timeout;
  timeout.request_timeout_ms = 0;
  EXPECT_EQ(ResolveS3Config("s3://bkt", timeout, MapEnv({})).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eddy::storage::s3
