#include "operator/src/flinkjob_resources.h"

#include <algorithm>
#include <ctime>

namespace eddy::control {

int64_t IntOr(const Json& o, const char* key, int64_t dflt) {
  return o.is_object() && o.contains(key) && o[key].is_number_integer() ? o[key].get<int64_t>()
                                                                        : dflt;
}

std::string StrOr(const Json& o, const char* key, const std::string& dflt) {
  return o.is_object() && o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : dflt;
}

Json EffectiveJob(const Json& spec) {
  Json job = spec.contains("job") && spec["job"].is_object() ? spec["job"] : Json::object();
  for (const char* k :
       {"parallelism", "maxParallelism", "stateBackend", "savepointDir", "restartStrategy"}) {
    if (spec.contains(k) && !spec[k].is_null()) job[k] = spec[k];
  }
  if (spec.contains("checkpointing") && spec["checkpointing"].is_object()) {
    if (!job.contains("checkpointing") || !job["checkpointing"].is_object())
      job["checkpointing"] = Json::object();
    for (const auto& [k, v] : spec["checkpointing"].items()) job["checkpointing"][k] = v;
  }
  return job;
}

std::string UpgradeKey(const Json& spec) {
  Json s = spec;
  for (const char* k : {"state", "savepointTriggerNonce", "checkpointTriggerNonce"}) s.erase(k);
  return s.dump();
}

int Slots(const Json& spec) {
  return static_cast<int>(IntOr(spec.value("taskManager", Json::object()), "slots", 1));
}

int Replicas(const Json& spec) {
  const Json tm = spec.value("taskManager", Json::object());
  int64_t r = IntOr(tm, "replicas", 0);
  if (r > 0) return static_cast<int>(r);
  int64_t p = IntOr(spec, "parallelism", 1);
  int slots = std::max(1, Slots(spec));
  return static_cast<int>((p + slots - 1) / slots);
}

std::string FlinkJobPath(const std::string& ns, const std::string& name) {
  std::string p =
      std::string("/apis/") + kFlinkJobGroupVersion + "/namespaces/" + ns + "/flinkjobs";
  return name.empty() ? p : p + "/" + name;
}

Status ValidatePodTemplate(const Json& spec) {
  if (!spec.contains("taskManager") || !spec["taskManager"].is_object()) return Status::Ok();
  const Json& tm = spec["taskManager"];
  if (!tm.contains("podTemplate")) return Status::Ok();
  const std::string at = "spec.taskManager.podTemplate";
  const Json& t = tm["podTemplate"];
  if (!t.is_object()) return Status::InvalidArgument(at + " must be an object (a PodTemplateSpec)");
  if (t.contains("metadata")) {
    const Json& md = t["metadata"];
    if (!md.is_object()) return Status::InvalidArgument(at + ".metadata must be an object");
    for (const char* k : {"labels", "annotations"}) {
      if (!md.contains(k)) continue;
      if (!md[k].is_object())
        return Status::InvalidArgument(at + ".metadata." + k + " must be a map");
      for (const auto& [name, v] : md[k].items()) {
        if (!v.is_string()) {
          return Status::InvalidArgument(at + ".metadata." + k + "." + name + " must be a string");
        }
      }
    }
  }
  if (!t.contains("spec")) return Status::Ok();
  const Json& ps = t["spec"];
  if (!ps.is_object()) return Status::InvalidArgument(at + ".spec must be an object (a PodSpec)");
  if (!ps.contains("containers")) return Status::Ok();
  if (!ps["containers"].is_array()) {
    return Status::InvalidArgument(at + ".spec.containers must be a list");
  }
  for (size_t i = 0; i < ps["containers"].size(); ++i) {
    const Json& c = ps["containers"][i];
    std::string ci = at + ".spec.containers[" + std::to_string(i) + "]";
    if (!c.is_object()) return Status::InvalidArgument(ci + " must be an object (a Container)");
    if (c.contains("args") && !c["args"].is_array()) {
      return Status::InvalidArgument(ci + ".args must be a list of strings");
    }
    if (c.contains("env") && !c["env"].is_array()) {
      return Status::InvalidArgument(ci + ".env must be a list");
    }
  }
  return Status::Ok();
}

Json OwnerReference(const Json& fj) {
  return Json::array({{{"apiVersion", kFlinkJobGroupVersion},
                       {"kind", "FlinkJob"},
                       {"name", fj["metadata"].value("name", "")},
                       {"uid", fj["metadata"].value("uid", "")},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}});
}

Json WorkerPodTemplate(const Json& fj, const std::string& run_id,
                       const WorkerPodDefaults& defaults) {
  const Json& spec = fj["spec"];
  const std::string name = fj["metadata"].value("name", "");
  const Json tm = spec.value("taskManager", Json::object());
  Json pod = tm.contains("podTemplate") && tm["podTemplate"].is_object() ? tm["podTemplate"]
                                                                         : Json::object();
  if (!pod.contains("metadata") || !pod["metadata"].is_object()) pod["metadata"] = Json::object();
  if (!pod.contains("spec") || !pod["spec"].is_object()) pod["spec"] = Json::object();
  Json& md = pod["metadata"];
  md.erase("name");
  md.erase("generateName");
  md["labels"]["app.kubernetes.io/name"] = "eddy-worker";
  md["labels"]["app.kubernetes.io/instance"] = name;
  md["labels"]["app.kubernetes.io/component"] = "taskmanager";
  md["labels"]["app.kubernetes.io/managed-by"] = "eddy-operator";
  md["labels"][kJobLabel] = name;
  md["labels"][kRunLabel] = run_id;
  md["annotations"]["prometheus.io/scrape"] = "true";
  md["annotations"]["prometheus.io/port"] = std::to_string(kWorkerMetricsPort);
  md["annotations"]["prometheus.io/path"] = "/metrics";
  md["ownerReferences"] = OwnerReference(fj);
  Json& ps = pod["spec"];
  ps["restartPolicy"] = "Never";
  ps["subdomain"] = name + "-taskmanager";
  if (spec.contains("serviceAccount")) {
    ps["serviceAccountName"] = spec["serviceAccount"];
  } else if (!defaults.service_account.empty()) {
    ps["serviceAccountName"] = defaults.service_account;
  }
  if (!ps.contains("containers") || !ps["containers"].is_array()) ps["containers"] = Json::array();
  Json* c = nullptr;
  for (auto& x : ps["containers"]) {
    if (x.value("name", "") == "eddy-worker") c = &x;
  }
  if (!c) {
    ps["containers"].push_back({{"name", "eddy-worker"}});
    c = &ps["containers"].back();
  }
  (*c)["image"] = StrOr(spec, "image", defaults.image);
  if (spec.contains("imagePullPolicy")) (*c)["imagePullPolicy"] = spec["imagePullPolicy"];
  Json args = Json::array({"--bind", "$(POD_IP)", "--advertise", "$(POD_IP)", "--data-port",
                           std::to_string(kWorkerDataPort), "--metrics-bind", "$(POD_IP)",
                           "--metrics-port", std::to_string(kWorkerMetricsPort)});
  if (c->contains("args")) {
    for (const auto& a : (*c)["args"]) args.push_back(a);
  }
  (*c)["args"] = std::move(args);
  Json env = Json::array(
      {{{"name", "POD_IP"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "status.podIP"}}}}}},
       {{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}},
       {{"name", "POD_NAMESPACE"},
        {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}});
  const Json s3 = spec.value("s3", Json::object());
  if (s3.contains("endpoint"))
    env.push_back({{"name", "AWS_ENDPOINT_URL_S3"}, {"value", s3["endpoint"]}});
  if (s3.contains("region")) env.push_back({{"name", "AWS_REGION"}, {"value", s3["region"]}});
  if (s3.contains("credentialsSecret") && s3["credentialsSecret"].is_object()) {
    const Json& cs = s3["credentialsSecret"];
    std::string secret = StrOr(cs, "name");
    auto ref = [&](const char* var, const std::string& key, bool optional) {
      env.push_back(
          {{"name", var},
           {"valueFrom",
            {{"secretKeyRef", {{"name", secret}, {"key", key}, {"optional", optional}}}}}});
    };
    ref("AWS_ACCESS_KEY_ID", StrOr(cs, "accessKeyIdKey", "AWS_ACCESS_KEY_ID"), false);
    ref("AWS_SECRET_ACCESS_KEY", StrOr(cs, "secretAccessKeyKey", "AWS_SECRET_ACCESS_KEY"), false);
    if (cs.contains("sessionTokenKey"))
      ref("AWS_SESSION_TOKEN", StrOr(cs, "sessionTokenKey"), true);
  }
  if (c->contains("env")) {
    for (const auto& e : (*c)["env"]) env.push_back(e);
  }
  (*c)["env"] = std::move(env);
  (*c)["ports"] = Json::array({{{"name", "data"}, {"containerPort", kWorkerDataPort}},
                               {{"name", "metrics"}, {"containerPort", kWorkerMetricsPort}}});
  const Json res = tm.value("resources", Json::object());
  Json q = Json::object();
  for (const char* k : {"cpu", "memory"}) {
    if (!res.contains(k)) continue;
    q[k] = res[k].is_string() ? res[k] : Json(res[k].dump());
  }
  if (!q.empty()) (*c)["resources"] = {{"requests", q}, {"limits", q}};
  return pod;
}

Json TaskManagerService(const Json& fj) {
  const std::string name = fj["metadata"].value("name", "");
  const std::string ns = fj["metadata"].value("namespace", "");
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata",
           {{"name", name + "-taskmanager"},
            {"namespace", ns},
            {"labels",
             {{"app.kubernetes.io/name", "eddy-worker"},
              {"app.kubernetes.io/instance", name},
              {"app.kubernetes.io/managed-by", "eddy-operator"},
              {kJobLabel, name}}},
            {"ownerReferences", OwnerReference(fj)}}},
          {"spec",
           {{"clusterIP", "None"},
            {"publishNotReadyAddresses", true},
            {"selector", {{kJobLabel, name}}},
            {"ports", Json::array({{{"name", "data"}, {"port", kWorkerDataPort}},
                                   {{"name", "metrics"}, {"port", kWorkerMetricsPort}}})}}}};
}

std::string Rfc3339(int64_t epoch_ms) {
  std::time_t t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace eddy::control
