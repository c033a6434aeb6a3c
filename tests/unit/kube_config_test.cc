#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "eddy/control/flinkjob_operator.h"
#include "eddy/k8s/kube_client.h"
#include "eddy/k8s/kube_config.h"
#include "operator/src/flinkjob_resources.h"

namespace eddy::k8s {
namespace {

namespace fs = std::filesystem;

class KubeConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("eddy-kubeconfig-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name) << text;
    return (dir_ / name).string();
  }
  fs::path dir_;
};

TEST_F(KubeConfigTest, ReadsTheCurrentContextWithFilesRelativeToTheKubeconfig) {
  Write("ca.crt", "CA PEM\n");
  Write("admin.crt", "CERT PEM\n");
  Write("admin.key", "KEY PEM\n");
  std::string path = Write("config", R"(
apiVersion: v1
kind: Config
current-context: b
clusters:
- name: one
  cluster: {server: "https://10.0.0.1:6443/", certificate-authority: ca.crt}
- name: two
  cluster: {server: "https://127.0.0.1:1234", insecure-skip-tls-verify: true}
users:
- name: admin
  user: {client-certificate: admin.crt, client-key: admin.key}
- name: robot
  user: {token: "s3cr3t"}
contexts:
- name: a
  context: {cluster: one, user: admin, namespace: team-a}
- name: b
  context: {cluster: two, user: robot}
)");
  auto b = LoadKubeconfig(path);
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->server, "https://127.0.0.1:1234");
  EXPECT_TRUE(b->insecure_skip_tls_verify);
  EXPECT_EQ(b->token, "s3cr3t");
  EXPECT_TRUE(b->client_cert_pem.empty());
  EXPECT_EQ(b->default_namespace, "default");

  auto a = LoadKubeconfig(path, "a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->server, "https://10.0.0.1:6443");  // trailing slash dropped
  EXPECT_EQ(a->ca_pem, "CA PEM\n");
  EXPECT_EQ(a->client_cert_pem, "CERT PEM\n");
  EXPECT_EQ(a->client_key_pem, "KEY PEM\n");
  EXPECT_EQ(a->default_namespace, "team-a");
  EXPECT_NE(a->source.find("context a"), std::string::npos);
}

TEST_F(KubeConfigTest, InlineDataIsBase64Decoded) {
  // "hello" and "world" in base64.
  std::string path = Write("config", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority-data: aGVsbG8=}}]
users: [{name: u, user: {client-certificate-data: d29ybGQ=, client-key-data: aGVsbG8=}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  auto c = LoadKubeconfig(path);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->ca_pem, "hello");
  EXPECT_EQ(c->client_cert_pem, "world");
  EXPECT_EQ(c->client_key_pem, "hello");
}

TEST_F(KubeConfigTest, ProblemsAreNamed) {
  auto missing = LoadKubeconfig((dir_ / "nope").string());
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);

  std::string no_ctx = Write("a", "clusters: []\n");
  EXPECT_NE(LoadKubeconfig(no_ctx).status().message().find("no current-context"),
            std::string::npos);

  std::string unknown = Write("b", "current-context: x\ncontexts: []\n");
  EXPECT_NE(LoadKubeconfig(unknown).status().message().find("no context named x"),
            std::string::npos);

  std::string exec = Write("c", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {exec: {command: aws}}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  auto e = LoadKubeconfig(exec);
  EXPECT_EQ(e.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(e.status().message().find("exec"), std::string::npos);

  std::string half = Write("d", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1"}}]
users: [{name: u, user: {client-certificate-data: aGVsbG8=}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
)");
  EXPECT_NE(LoadKubeconfig(half).status().message().find("without its key"), std::string::npos);

  std::string bad_ca = Write("e", R"(
current-context: c
clusters: [{name: k, cluster: {server: "https://h:1", certificate-authority: missing.crt}}]
contexts: [{name: c, context: {cluster: k}}]
)");
  auto ca = LoadKubeconfig(bad_ca);
  EXPECT_EQ(ca.status().code(), StatusCode::kNotFound);
  EXPECT_NE(ca.status().message().find("missing.crt"), std::string::npos);

  std::string garbage = Write("f", "{{{: not yaml");
  EXPECT_EQ(LoadKubeconfig(garbage).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(KubeConfigTest, InClusterReadsTheServiceAccountDirectory) {
  Write("token", "tok\n");
  Write("ca.crt", "CA");
  Write("namespace", "jobs");
  ::setenv("EDDY_SERVICE_ACCOUNT_DIR", dir_.c_str(), 1);
  ::setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  ::setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = LoadInClusterConfig();
  ::unsetenv("KUBERNETES_SERVICE_HOST");
  ::unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://10.96.0.1:443");
  EXPECT_EQ(c->token, "tok");
  EXPECT_EQ(c->token_file, (dir_ / "token").string());
  EXPECT_EQ(c->ca_pem, "CA");
  EXPECT_EQ(c->default_namespace, "jobs");

  // Outside a pod: a clear NotFound.
  auto outside = LoadInClusterConfig();
  ::unsetenv("EDDY_SERVICE_ACCOUNT_DIR");
  EXPECT_EQ(outside.status().code(), StatusCode::kNotFound);
  EXPECT_NE(outside.status().message().find("KUBERNETES_SERVICE_HOST"), std::string::npos);
}

TEST(KubeClientTest, ResponsesMapToStatusCodes) {
  auto status_of = [](int code, const std::string& reason) {
    KubeResponse r;
    r.http_status = code;
    r.body = {{"kind", "Status"}, {"reason", reason}, {"message", "m"}};
    return ResponseStatus(r, "GET /x");
  };
  EXPECT_EQ(status_of(404, "NotFound").code(), StatusCode::kNotFound);
  EXPECT_EQ(status_of(409, "AlreadyExists").code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(status_of(409, "Conflict").code(), StatusCode::kUnavailable);
  EXPECT_EQ(status_of(410, "Expired").code(), StatusCode::kOutOfRange);
  EXPECT_EQ(status_of(422, "Invalid").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status_of(403, "Forbidden").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(status_of(429, "TooManyRequests").code(), StatusCode::kUnavailable);
  EXPECT_EQ(status_of(503, "ServiceUnavailable").code(), StatusCode::kUnavailable);
  EXPECT_EQ(status_of(418, "").code(), StatusCode::kInternal);
  Status s = status_of(403, "Forbidden");
  EXPECT_EQ(s.message(), "GET /x: 403 Forbidden: m");
  KubeResponse empty;
  empty.http_status = 500;
  EXPECT_EQ(ResponseStatus(empty, "PUT /y").message(), "PUT /y: 500: HTTP 500");
}

TEST(KubeClientTest, QueryEscapeAndClientRefusesBadUrls) {
  EXPECT_EQ(QueryEscape("eddy.dev/job=a,b c"), "eddy.dev%2Fjob%3Da%2Cb%20c");
  KubeConfig c;
  c.server = "ftp://x";
  EXPECT_EQ(KubeClient::Make(c).status().code(), StatusCode::kInvalidArgument);
  c.server = "https://127.0.0.1:1";
  EXPECT_TRUE(KubeClient::Make(c).ok());
}

TEST(FlinkJobOperatorTest, Rfc3339) {
  EXPECT_EQ(control::Rfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(control::Rfc3339(1735689660123), "2025-01-01T00:01:00Z");
}

}  // namespace
}  // namespace eddy::k8s
