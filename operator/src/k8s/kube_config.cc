#include "eddy/k8s/kube_config.h"

#include <cpprest/asyncrt_utils.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace eddy::k8s {

namespace {

namespace fs = std::filesystem;

Result<std::string> ReadFile(const fs::path& p, const char* what) {
  std::ifstream in(p, std::ios::binary);
  if (!in) return Status::NotFound(std::string(what) + " " + p.string() + " cannot be read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::string> DecodeBase64(const std::string& b64, const std::string& field) {
  try {
    std::vector<unsigned char> bytes = utility::conversions::from_base64(b64);
    return std::string(bytes.begin(), bytes.end());
  } catch (const std::exception&) {
    return Status::InvalidArgument(field + " is not valid base64");
  }
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

/// `<key>-data` (base64) wins over `<key>` (a file relative to `dir`).
Status ReadMaterial(const YAML::Node& n, const std::string& key, const fs::path& dir,
                    const std::string& where, std::string& out) {
  if (n[key + "-data"] && !n[key + "-data"].as<std::string>().empty()) {
    EDDY_ASSIGN_OR_RETURN(
        out, DecodeBase64(n[key + "-data"].as<std::string>(), where + "." + key + "-data"));
    return Status::Ok();
  }
  if (n[key] && !n[key].as<std::string>().empty()) {
    fs::path p = n[key].as<std::string>();
    if (p.is_relative()) p = dir / p;
    EDDY_ASSIGN_OR_RETURN(out, ReadFile(p, (where + "." + key).c_str()));
  }
  return Status::Ok();
}

YAML::Node Named(const YAML::Node& list, const std::string& name, const char* inner) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& e : list) {
    if (e["name"] && e["name"].as<std::string>() == name) return e[inner];
  }
  return YAML::Node();
}

}  // namespace

Result<KubeConfig> LoadInClusterConfig() {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (!host || !*host || !port || !*port) {
    return Status::NotFound(
        "not running in a pod: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set");
  }
  const char* dir_env = std::getenv("EDDY_SERVICE_ACCOUNT_DIR");
  fs::path dir = dir_env && *dir_env ? dir_env : "/var/run/secrets/kubernetes.io/serviceaccount";
  KubeConfig c;
  std::string h = host;
  if (h.find(':') != std::string::npos) h = "[" + h + "]";  // IPv6
  c.server = "https://" + h + ":" + port;
  c.token_file = (dir / "token").string();
  EDDY_ASSIGN_OR_RETURN(std::string token, ReadFile(c.token_file, "service-account token"));
  c.token = Trim(token);
  EDDY_ASSIGN_OR_RETURN(c.ca_pem, ReadFile(dir / "ca.crt", "service-account CA"));
  auto ns = ReadFile(dir / "namespace", "namespace file");
  if (ns.ok() && !Trim(*ns).empty()) c.default_namespace = Trim(*ns);
  c.source = "in-cluster (" + dir.string() + ")";
  return c;
}

Result<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return Status::InvalidArgument("kubeconfig " + path + ": " + e.what());
  }
  try {
    std::string ctx_name = context;
    if (ctx_name.empty() && root["current-context"]) {
      ctx_name = root["current-context"].as<std::string>();
    }
    if (ctx_name.empty()) {
      return Status::InvalidArgument("kubeconfig " + path + " has no current-context");
    }
    YAML::Node ctx = Named(root["contexts"], ctx_name, "context");
    if (!ctx || !ctx.IsMap()) {
      return Status::InvalidArgument("kubeconfig " + path + ": no context named " + ctx_name);
    }
    std::string cluster_name = ctx["cluster"] ? ctx["cluster"].as<std::string>() : "";
    std::string user_name = ctx["user"] ? ctx["user"].as<std::string>() : "";
    YAML::Node cluster = Named(root["clusters"], cluster_name, "cluster");
    if (!cluster || !cluster.IsMap() || !cluster["server"]) {
      return Status::InvalidArgument("kubeconfig " + path + ": cluster " + cluster_name +
                                     " of context " + ctx_name + " has no server");
    }
    fs::path dir = fs::path(path).parent_path();
    KubeConfig c;
    c.server = cluster["server"].as<std::string>();
    while (!c.server.empty() && c.server.back() == '/') c.server.pop_back();
    c.insecure_skip_tls_verify =
        cluster["insecure-skip-tls-verify"] && cluster["insecure-skip-tls-verify"].as<bool>();
    EDDY_RETURN_NOT_OK(ReadMaterial(cluster, "certificate-authority", dir,
                                    "clusters[" + cluster_name + "]", c.ca_pem));
    if (ctx["namespace"]) c.default_namespace = ctx["namespace"].as<std::string>();
    YAML::Node user = Named(root["users"], user_name, "user");
    if (user && user.IsMap()) {
      if (user["exec"] || user["auth-provider"]) {
        return Status::InvalidArgument("kubeconfig " + path + ": user " + user_name +
                                       " uses an exec/auth-provider plugin, which eddy-operator "
                                       "does not run; use a token or client certificate");
      }
      std::string where = "users[" + user_name + "]";
      EDDY_RETURN_NOT_OK(ReadMaterial(user, "client-certificate", dir, where, c.client_cert_pem));
      EDDY_RETURN_NOT_OK(ReadMaterial(user, "client-key", dir, where, c.client_key_pem));
      if (user["token"]) c.token = user["token"].as<std::string>();
      if (c.token.empty() && user["tokenFile"]) {
        fs::path p = user["tokenFile"].as<std::string>();
        if (p.is_relative()) p = dir / p;
        c.token_file = p.string();
        EDDY_ASSIGN_OR_RETURN(std::string t, ReadFile(p, (where + ".tokenFile").c_str()));
        c.token = Trim(t);
      }
      if (c.client_cert_pem.empty() != c.client_key_pem.empty()) {
        return Status::InvalidArgument("kubeconfig " + path + ": user " + user_name +
                                       " has a client certificate without its key or the other "
                                       "way round");
      }
    }
    c.source = "kubeconfig " + path + ", context " + ctx_name;
    return c;
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument("kubeconfig " + path + ": " + e.what());
  }
}

Result<KubeConfig> LoadDefaultConfig(const std::string& kubeconfig_flag) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(kubeconfig_flag);
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    std::stringstream list(env);
    std::string item;
    while (std::getline(list, item, ':')) {
      if (!item.empty() && fs::exists(item)) return LoadKubeconfig(item);
    }
    return Status::NotFound(std::string("none of the files in KUBECONFIG=") + env + " exists");
  }
  if (const char* host = std::getenv("KUBERNETES_SERVICE_HOST"); host && *host) {
    return LoadInClusterConfig();
  }
  const char* home = std::getenv("HOME");
  fs::path p = fs::path(home ? home : "/") / ".kube" / "config";
  if (fs::exists(p)) return LoadKubeconfig(p.string());
  return Status::NotFound(
      "no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, run in a pod, or create "
      "~/.kube/config");
}

}  // namespace eddy::k8s
