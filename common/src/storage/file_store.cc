#include "storage/file_store.h"
#include "common/src/storage/posix_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace eddy::storage {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kStagedMarker = ".inprogress.";

Status Errno(const std::string& what, const std::string& path) {
  int e = errno;
  std::string msg = what + " '" + path + "': " + std::strerror(e);
  if (e == ENOENT) return Status::NotFound(msg);
  if (e == EACCES || e == EPERM || e == EROFS) return Status::InvalidArgument(msg);
  return Status::IOError(msg);
}

std::string RandomSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "%d-%llx-%llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)),
                static_cast<unsigned long long>(rng() & 0xffffffffu));
  return buf;
}

/// Fsyncs a directory so that a rename in it survives a crash (best effort).
void SyncDir(const fs::path& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)::fsync(fd);
    ::close(fd);
  }
}

class FileStore final : public ObjectStore {
 public:
  explicit FileStore(std::string root)
      : root_dir_(std::move(root)), root_uri_("file://" + root_dir_) {}

  const std::string& root() const override { return root_uri_; }

  Status Put(std::string_view key, std::string_view data) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    fs::path target = PathOf(key);
    return WriteAtomically(target, TmpPath(target),
                           [&](int fd) { return WriteAll(fd, data.data(), data.size()); });
  }

  Status PutFile(std::string_view key, const std::string& local_path) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    int in = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Errno("cannot open local file", local_path);
    fs::path target = PathOf(key);
    Status s = WriteAtomically(target, TmpPath(target), [&](int fd) { return CopyFd(in, fd); });
    ::close(in);
    return s;
  }

  Result<std::string> Get(std::string_view key) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    std::string path = PathOf(key).string();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("cannot read object", path);
    std::string out;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
    char buf[1 << 16];
    for (;;) {
      ssize_t r = ::read(fd, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        Status s = Errno("cannot read object", path);
        ::close(fd);
        return s;
      }
      if (r == 0) break;
      out.append(buf, static_cast<size_t>(r));
    }
    ::close(fd);
    return out;
  }

  Status GetToFile(std::string_view key, const std::string& local_path) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    std::string path = PathOf(key).string();
    int in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in < 0) return Errno("cannot read object", path);
    int out = ::open(local_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0) {
      Status s = Errno("cannot create local file", local_path);
      ::close(in);
      return s;
    }
    bool ok = CopyFd(in, out);
    Status s = ok ? Status::Ok() : Errno("cannot copy object to", local_path);
    ::close(in);
    if (::close(out) != 0 && s.ok()) s = Errno("cannot write local file", local_path);
    return s;
  }

  Result<std::optional<ObjectInfo>> Stat(std::string_view key) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    std::string path = PathOf(key).string();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
      if (errno == ENOENT || errno == ENOTDIR) return std::optional<ObjectInfo>();
      return Errno("cannot stat object", path);
    }
    if (!S_ISREG(st.st_mode)) return std::optional<ObjectInfo>();
    return std::optional<ObjectInfo>(
        ObjectInfo{std::string(key), static_cast<uint64_t>(st.st_size)});
  }

  Result<std::vector<ObjectInfo>> List(std::string_view prefix) override {
    std::vector<ObjectInfo> out;
    EDDY_RETURN_NOT_OK(Walk(prefix, [&](const std::string& key, const fs::directory_entry& e) {
      std::string_view name = std::string_view(key).substr(key.rfind('/') + 1);
      if (IsHidden(name)) return;
      std::error_code ec;
      uint64_t size = e.file_size(ec);
      out.push_back({key, ec ? 0 : size});
    }));
    std::sort(out.begin(), out.end(),
              [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
    return out;
  }

  Status Delete(std::string_view key) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    fs::path p = PathOf(key);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
      return Errno("cannot delete object", p.string());
    }
    PruneEmptyParents(p.parent_path());
    return Status::Ok();
  }

  Status DeletePrefix(std::string_view prefix) override {
    std::vector<fs::path> files;
    EDDY_RETURN_NOT_OK(Walk(prefix, [&](const std::string&, const fs::directory_entry& e) {
      files.push_back(e.path());
    }));
    for (const auto& f : files) {
      if (::unlink(f.c_str()) != 0 && errno != ENOENT) return Errno("cannot delete object", f);
    }
    // Remove the directories the prefix covered, deepest first.
    std::vector<fs::path> dirs;
    for (const auto& f : files) {
      for (fs::path d = f.parent_path(); d.string().size() > root_dir_.size();
           d = d.parent_path()) {
        dirs.push_back(d);
      }
    }
    std::sort(dirs.begin(), dirs.end(), [](const fs::path& a, const fs::path& b) {
      return a.string().size() > b.string().size();
    });
    for (const auto& d : dirs) ::rmdir(d.c_str());  // fails harmlessly when not empty
    return Status::Ok();
  }

  Result<StagedObject> Stage(std::string_view key, std::string_view data) override {
    EDDY_RETURN_NOT_OK(ValidateKey(key));
    fs::path target = PathOf(key);
    std::string staged_name =
        "." + target.filename().string() + std::string(kStagedMarker) + RandomSuffix();
    fs::path staged = target.parent_path() / staged_name;
    // Written and synced under a temporary name first so that a crash never leaves a partial
    // staging file that a later commit would publish.
    EDDY_RETURN_NOT_OK(WriteAtomically(staged, fs::path(staged).concat(".tmp"), [&](int fd) {
      return WriteAll(fd, data.data(), data.size());
    }));
    StagedObject s;
    s.key = std::string(key);
    s.upload_id = RelativeKey(staged);
    s.size = data.size();
    return s;
  }

  Status CommitStaged(const StagedObject& staged) override {
    EDDY_RETURN_NOT_OK(ValidateKey(staged.key));
    EDDY_RETURN_NOT_OK(ValidateKey(staged.upload_id));
    fs::path from = PathOf(staged.upload_id);
    fs::path to = PathOf(staged.key);
    if (::rename(from.c_str(), to.c_str()) == 0) {
      SyncDir(to.parent_path());
      return Status::Ok();
    }
    if (errno == ENOENT) {
      struct stat st {};
      if (::stat(to.c_str(), &st) == 0) return Status::Ok();  // committed before
      return Status::NotFound("staged object for '" + staged.key + "' is gone and '" + to.string() +
                              "' does not exist");
    }
    return Errno("cannot commit staged object", to.string());
  }

  Status AbortStaged(const StagedObject& staged) override {
    EDDY_RETURN_NOT_OK(ValidateKey(staged.upload_id));
    fs::path p = PathOf(staged.upload_id);
    if (::unlink(p.c_str()) != 0 && errno != ENOENT && errno != ENOTDIR) {
      return Errno("cannot abort staged object", p.string());
    }
    return Status::Ok();
  }

  Result<std::vector<StagedObject>> ListStaged(std::string_view prefix) override {
    std::vector<StagedObject> out;
    // A staged file lives beside its final key, so walk the prefix's directory and match the
    // final key against the prefix.
    std::string_view dir_prefix = prefix.substr(0, prefix.rfind('/') + 1);
    EDDY_RETURN_NOT_OK(Walk(dir_prefix, [&](const std::string& key, const fs::directory_entry& e) {
      size_t slash = key.rfind('/') + 1;
      std::string_view name = std::string_view(key).substr(slash);
      size_t mark = name.find(kStagedMarker);
      if (name.empty() || name.front() != '.' || mark == std::string_view::npos ||
          name.ends_with(".tmp")) {
        return;
      }
      std::string final_key = key.substr(0, slash) + std::string(name.substr(1, mark - 1));
      if (!final_key.starts_with(prefix)) return;
      std::error_code ec;
      uint64_t size = e.file_size(ec);
      out.push_back({final_key, key, {}, ec ? 0 : size});
    }));
    std::sort(out.begin(), out.end(), [](const StagedObject& a, const StagedObject& b) {
      return a.upload_id < b.upload_id;
    });
    return out;
  }

 private:
  fs::path PathOf(std::string_view key) const { return fs::path(root_dir_) / std::string(key); }

  std::string RelativeKey(const fs::path& p) const {
    return p.string().substr(root_dir_.size() + (root_dir_ == "/" ? 0 : 1));
  }

  /// A hidden temporary name beside `target` (never listed).
  static fs::path TmpPath(const fs::path& target) {
    return target.parent_path() / ("." + target.filename().string() + ".tmp-" + RandomSuffix());
  }

  static bool IsHidden(std::string_view name) {
    return !name.empty() && name.front() == '.' &&
           (name.find(kStagedMarker) != std::string_view::npos ||
            name.find(".tmp-") != std::string_view::npos || name.ends_with(".tmp"));
  }

  static bool CopyFd(int in, int out) {
    char buf[1 << 16];
    for (;;) {
      ssize_t r = ::read(in, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return false;
      if (r == 0) return true;
      if (!WriteAll(out, buf, static_cast<size_t>(r))) return false;
    }
  }

  template <class Fill>
  Status WriteAtomically(const fs::path& target, const fs::path& tmp, Fill fill) {
    std::error_code ec;
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      return Status::IOError("cannot create directory '" + target.parent_path().string() +
                             "': " + ec.message());
    }
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Errno("cannot create", tmp.string());
    bool ok = fill(fd) && ::fsync(fd) == 0;
    Status s = ok ? Status::Ok() : Errno("cannot write", tmp.string());
    if (::close(fd) != 0 && s.ok()) s = Errno("cannot write", tmp.string());
    if (s.ok() && ::rename(tmp.c_str(), target.c_str()) != 0) {
      s = Errno("cannot rename into place", target.string());
    }
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s;
    }
    SyncDir(target.parent_path());
    return Status::Ok();
  }

  /// Calls f(key, entry) for every regular file whose key starts with `prefix`.
  template <class F>
  Status Walk(std::string_view prefix, F f) {
    // Start at the deepest directory the prefix names completely.
    std::string_view dir_part =
        prefix.substr(0, prefix.rfind('/') == std::string_view::npos ? 0 : prefix.rfind('/'));
    fs::path start = dir_part.empty() ? fs::path(root_dir_) : PathOf(dir_part);
    std::error_code ec;
    if (!fs::is_directory(start, ec)) return Status::Ok();
    fs::recursive_directory_iterator it(start, fs::directory_options::skip_permission_denied, ec);
    if (ec) return Status::IOError("cannot list '" + start.string() + "': " + ec.message());
    for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) return Status::IOError("cannot list '" + start.string() + "': " + ec.message());
      if (!it->is_regular_file(ec)) continue;
      std::string key = RelativeKey(it->path());
      if (key.starts_with(prefix)) f(key, *it);
    }
    return Status::Ok();
  }

  void PruneEmptyParents(fs::path dir) const {
    while (dir.string().size() > root_dir_.size() && ::rmdir(dir.c_str()) == 0) {
      dir = dir.parent_path();
    }
  }

  std::string root_dir_;
  std::string root_uri_;
};

}  // namespace

std::unique_ptr<ObjectStore> MakeFileStore(std::string root_dir) {
  return std::make_unique<FileStore>(std::move(root_dir));
}

}  // namespace eddy::storage
