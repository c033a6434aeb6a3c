#include "eddy/k8s/informer.h"

#include <algorithm>
#include <chrono>
#include <set>
#include <utility>

namespace eddy::k8s {

Informer::Informer(std::shared_ptr<KubeClient> client, Options options)
    : client_(std::move(client)), o_(std::move(options)) {}

Informer::~Informer() {
  Stop();
}

void Informer::Start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  {
    // Under the mutex: a Run() between checking stop_ and waiting must not miss the wakeup.
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Informer::WaitForSync(int64_t timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] {
    return synced_.load() || stop_.load();
  }) && synced_.load();
}

std::string Informer::KeyOf(const Json& object) {
  const Json& md = object.contains("metadata") ? object["metadata"] : Json::object();
  std::string name = md.value("name", "");
  std::string ns = md.value("namespace", "");
  return ns.empty() ? name : ns + "/" + name;
}

std::optional<Json> Informer::Get(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Informer::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<Json> out;
  out.reserve(cache_.size());
  for (const auto& [k, v] : cache_) out.push_back(v);
  return out;
}

void Informer::Apply(const std::string& type, const Json& object) {
  std::string key = KeyOf(object);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (type == "DELETED") {
      cache_.erase(key);
    } else {
      cache_[key] = object;
    }
  }
  if (o_.on_event) o_.on_event(type, object);
}

Status Informer::ListAll(std::string& resource_version) {
  std::map<std::string, Json> fresh;
  std::string cont;
  const char* sep = o_.path.find('?') == std::string::npos ? "?" : "&";
  do {
    std::string p = o_.path + sep + "limit=500";
    if (!cont.empty()) p += "&continue=" + QueryEscape(cont);
    EDDY_ASSIGN_OR_RETURN(Json list, client_->Get(p));
    const Json& md = list.contains("metadata") ? list["metadata"] : Json::object();
    resource_version = md.value("resourceVersion", "");
    cont = md.value("continue", "");
    if (list.contains("items") && list["items"].is_array()) {
      for (auto& item : list["items"]) {
        // The key first: `fresh[KeyOf(item)] = std::move(item)` may move before it reads.
        std::string key = KeyOf(item);
        fresh[key] = std::move(item);
      }
    }
  } while (!cont.empty() && !stop_.load());
  std::vector<Json> gone;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [k, v] : cache_) {
      if (!fresh.count(k)) gone.push_back(v);
    }
  }
  for (const auto& g : gone) Apply("DELETED", g);
  for (const auto& [k, v] : fresh) {
    std::optional<Json> old = Get(k);
    if (!old) {
      Apply("ADDED", v);
    } else if ((*old)["metadata"].value("resourceVersion", "") !=
               v["metadata"].value("resourceVersion", "")) {
      Apply("MODIFIED", v);
    }
  }
  lists_.fetch_add(1);
  if (!synced_.exchange(true)) cv_.notify_all();
  return Status::Ok();
}

void Informer::Run() {
  std::string rv;
  bool need_list = true;
  int64_t backoff_ms = 1000;
  auto pause = [&](int64_t ms) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stop_.load(); });
  };
  while (!stop_.load()) {
    if (need_list) {
      Status s = ListAll(rv);
      if (!s.ok()) {
        if (o_.on_error) o_.on_error(s);
        pause(backoff_ms);
        backoff_ms = std::min<int64_t>(backoff_ms * 2, 30000);
        continue;
      }
      need_list = false;
      backoff_ms = 1000;
    }
    Status s = client_->Watch(
        o_.path, rv, o_.watch_timeout_seconds,
        [&](const std::string& type, const Json& obj) {
          if (obj.contains("metadata") && obj["metadata"].contains("resourceVersion"))
            rv = obj["metadata"].value("resourceVersion", rv);
          if (type == "BOOKMARK") return;
          Apply(type, obj);
          backoff_ms = 1000;
        },
        stop_);
    if (s.ok() || s.code() == StatusCode::kCancelled) continue;  // server timeout: re-watch
    if (o_.on_error) o_.on_error(s);
    if (s.code() == StatusCode::kOutOfRange) {
      need_list = true;  // 410 Gone: our resourceVersion was compacted away
      continue;
    }
    pause(backoff_ms);
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 30000);
  }
}

}  // namespace eddy::k8s
