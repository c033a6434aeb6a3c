#include "eddy/storage/object_store.h"

#include <filesystem>

#include "storage/file_store.h"

namespace eddy::storage {

std::string ObjectStore::Uri(std::string_view key) const {
  return JoinKey(root(), key);
}

std::string JoinKey(std::string_view a, std::string_view b) {
  while (!a.empty() && a.back() == '/' && !a.ends_with("://")) a.remove_suffix(1);
  while (!b.empty() && b.front() == '/') b.remove_prefix(1);
  if (a.empty()) return std::string(b);
  if (b.empty()) return std::string(a);
  std::string out(a);
  if (!out.ends_with('/')) out += '/';
  out += b;
  return out;
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return Status::InvalidArgument("object key is empty");
  if (key.front() == '/') {
    return Status::InvalidArgument("object key '" + std::string(key) + "' must be relative");
  }
  if (key.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument("object key contains a NUL byte");
  }
  size_t start = 0;
  while (start <= key.size()) {
    size_t end = key.find('/', start);
    if (end == std::string_view::npos) end = key.size();
    std::string_view seg = key.substr(start, end - start);
    if (seg.empty() && end != key.size()) {
      return Status::InvalidArgument("object key '" + std::string(key) + "' has an empty segment");
    }
    if (seg == "." || seg == "..") {
      return Status::InvalidArgument("object key '" + std::string(key) +
                                     "' must not contain '.' or '..' segments");
    }
    start = end + 1;
  }
  return Status::Ok();
}

Result<std::unique_ptr<ObjectStore>> OpenS3Store(std::string_view uri,
                                                 const ObjectStoreOptions& options);

Result<std::unique_ptr<ObjectStore>> OpenObjectStore(std::string_view uri,
                                                     const ObjectStoreOptions& options) {
  if (uri.empty()) return Status::InvalidArgument("object store URI is empty");
  if (uri.starts_with("s3://")) return OpenS3Store(uri, options);
  std::string path;
  if (uri.starts_with("file://")) {
    path = std::string(uri.substr(7));
    if (path.empty() || path.front() != '/') {
      return Status::InvalidArgument("file URI '" + std::string(uri) +
                                     "' must be absolute: file:///path/to/dir");
    }
  } else if (uri.find("://") != std::string_view::npos) {
    return Status::InvalidArgument("unsupported object store scheme in '" + std::string(uri) +
                                   "' (use file:// or s3://)");
  } else {
    std::error_code ec;
    path = std::filesystem::absolute(std::filesystem::path(uri), ec).lexically_normal().string();
    if (ec) return Status::InvalidArgument("bad local path '" + std::string(uri) + "'");
  }
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return MakeFileStore(std::move(path));
}

}  // namespace eddy::storage
