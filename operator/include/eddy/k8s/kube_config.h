#pragma once

#include <string>

#include "eddy/status.h"

namespace eddy::k8s {

/// How to reach and authenticate to a Kubernetes API server: what client-go's rest.Config holds,
/// reduced to what Eddy uses (TLS with a CA bundle, client certificates, bearer tokens).
struct KubeConfig {
  std::string server;  ///< "https://10.0.0.1:443"
  std::string ca_pem;  ///< CA bundle (PEM); empty = the system's roots
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem, client_key_pem;  ///< client certificate authentication
  std::string token;                            ///< bearer token
  /// Re-read every minute when set: projected service-account tokens rotate.
  std::string token_file;
  std::string default_namespace = "default";  ///< the context's or the pod's namespace
  std::string source;                         ///< "in-cluster", "kubeconfig PATH, context C"
};

/// The pod's service account: $KUBERNETES_SERVICE_HOST/_PORT and the token, CA and namespace
/// files in /var/run/secrets/kubernetes.io/serviceaccount. $EDDY_SERVICE_ACCOUNT_DIR overrides
/// that directory (the e2e node agent runs pods as local processes and cannot mount it there).
Result<KubeConfig> LoadInClusterConfig();

/// A kubeconfig file (YAML): the `context` given, else its current-context. File references
/// (certificate-authority, client-certificate, client-key, tokenFile) resolve against the
/// file's directory; exec and auth-provider plugins are not supported (InvalidArgument).
Result<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

/// What a controller does without being told: `kubeconfig_flag` when given, else the first
/// file of $KUBECONFIG, else in-cluster when $KUBERNETES_SERVICE_HOST is set, else
/// ~/.kube/config.
Result<KubeConfig> LoadDefaultConfig(const std::string& kubeconfig_flag);

}  // namespace eddy::k8s
