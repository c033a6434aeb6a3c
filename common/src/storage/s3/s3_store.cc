#include "common/src/storage/s3/s3_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <random>
#include <thread>
#include <tuple>

#include "common/src/storage/s3/s3_errors.h"
#include "common/src/storage/s3/s3_xml.h"
#include "common/src/storage/s3/sigv4.h"

namespace eddy::storage::s3 {

namespace {

constexpr uint64_t kMaxParts = 10000;  // S3's limit per multipart upload
constexpr size_t kMaxDeleteBatch = 1000;

Status Errno(const std::string& what, const std::string& path) {
  int e = errno;
  std::string msg = what + " '" + path + "': " + std::strerror(e);
  if (e == ENOENT) return Status::NotFound(msg);
  if (e == EACCES || e == EPERM || e == EROFS || e == EISDIR) {
    return Status::InvalidArgument(msg);
  }
  return Status::IOError(msg);
}

/// Reads up to `n` bytes at `offset`; the count read, short only at the end of the file.
Result<size_t> ReadAt(int fd, char* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t done = 0;
  while (done < n) {
    ssize_t r = ::pread(fd, buf + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Errno("cannot read local file", path);
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return done;
}

bool Is2xx(int status) {
  return status >= 200 && status < 300;
}

/// S3's error code in an error answer, empty when the body has none.
std::string ErrorCode(const HttpResponse& r) {
  auto e = ParseS3Error(r.body);
  return e.ok() ? e->code : std::string();
}

std::string TempSuffix() {
  static std::atomic<uint64_t> counter{0};
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) + "-" +
         std::to_string(rng() & 0xffffff);
}

}  // namespace

/// One S3 API call: what to send, and how to check a 2xx answer (a failing check counts as a
/// transient failure: garbage and truncated bodies are retried, then reported as IOError).
struct S3Store::Call {
  const char* op = "";
  std::string method;
  std::string full_key;  ///< empty for bucket-level calls
  NameValues query;
  std::string_view body;
  std::string content_type;
  bool content_md5 = false;   ///< send (and sign) Content-MD5 of the body
  std::string response_file;  ///< stream a 2xx body into this file
  std::string uri;            ///< for messages; default: the object's URI
  std::function<Status(const HttpResponse&)> check;
};

std::unique_ptr<S3Store> S3Store::Make(S3Config config,
                                       std::shared_ptr<CredentialsProvider> credentials,
                                       std::unique_ptr<HttpTransport> transport, Sleep sleep) {
  std::unique_ptr<S3Store> store(new S3Store());
  store->config_ = std::move(config);
  store->credentials_ = std::move(credentials);
  store->transport_ = std::move(transport);
  store->sleep_ = sleep
                      ? std::move(sleep)
                      : Sleep([](std::chrono::milliseconds d) { std::this_thread::sleep_for(d); });
  return store;
}

std::string S3Store::UriOf(std::string_view full_key) const {
  return "s3://" + config_.location.bucket + "/" + std::string(full_key);
}

Result<HttpResponse> S3Store::Execute(const Call& call) {
  const S3Endpoint& ep = config_.endpoint;
  const std::string& bucket = config_.location.bucket;
  std::string uri = call.uri.empty() ? UriOf(call.full_key) : call.uri;
  std::string base = ep.BaseUrl(bucket);
  CallContext ctx{call.op, uri, bucket, base, ep.region, credentials_->source()};

  std::string path = ep.EncodedPath(bucket, call.full_key);
  std::string query = CanonicalQueryString(call.query);
  std::string path_and_query = query.empty() ? path : path + "?" + query;
  std::string payload_hash = Sha256Hex(call.body);
  std::string md5 = call.content_md5 ? Md5Base64(call.body) : std::string();
  std::string host = ep.HostHeader(bucket);

  int attempts = config_.retry.max_attempts;
  bool refreshed_credentials = false;
  Status last;
  int attempt = 0;
  while (attempt < attempts) {
    ++attempt;
    if (attempt > 1) {
      probe_.retries.fetch_add(1, std::memory_order_relaxed);
      sleep_(config_.retry.Backoff(attempt - 1, JitterSample()));
    }
    auto creds = credentials_->Get();
    if (!creds.ok()) {
      if (!creds.status().IsRetryable()) {
        return Status(creds.status().code(), "S3 " + std::string(call.op) + " of " + uri + ": " +
                                                 creds.status().message());
      }
      last = creds.status();
      continue;
    }

    SigningRequest sreq;
    sreq.method = call.method;
    sreq.encoded_path = path;
    sreq.query = call.query;
    sreq.headers.emplace_back("host", host);
    if (!md5.empty()) sreq.headers.emplace_back("content-md5", md5);
    sreq.payload_sha256_hex = payload_hash;
    SignedRequest signed_req =
        SignV4(sreq, creds->key, ep.region, "s3", AmzDate(std::chrono::system_clock::now()));

    HttpRequest req;
    req.method = call.method;
    req.path_and_query = path_and_query;
    req.headers.emplace_back("Host", host);
    if (!md5.empty()) req.headers.emplace_back("Content-MD5", md5);
    for (const auto& h : signed_req.added_headers) req.headers.push_back(h);
    req.body = call.body;
    req.content_type = call.content_type;
    req.response_file = call.response_file;

    probe_.requests.fetch_add(1, std::memory_order_relaxed);
    probe_.bytes_sent.fetch_add(call.body.size(), std::memory_order_relaxed);
    auto resp = transport_->Send(req);
    if (!resp.ok()) {
      if (!resp.status().IsRetryable()) {
        return Status(resp.status().code(),
                      "S3 " + std::string(call.op) + " of " + uri + ": " + resp.status().message());
      }
      last = resp.status();
      continue;
    }
    probe_.bytes_received.fetch_add(resp->body.size() + resp->file_bytes,
                                    std::memory_order_relaxed);

    if (Is2xx(resp->status)) {
      Status checked = call.check ? call.check(*resp) : Status::Ok();
      if (checked.ok()) return resp;
      last = Status::IOError("HTTP " + std::to_string(resp->status) +
                             " with a bad answer: " + checked.message());
      continue;
    }
    auto error = ParseS3Error(resp->body);
    std::string code = error.ok() ? error->code : std::string();
    if (IsRetryableHttp(resp->status, code)) {
      std::string cause = "HTTP " + std::to_string(resp->status);
      if (!code.empty()) cause += " " + code;
      if (error.ok() && !error->message.empty()) cause += ": " + error->message;
      last = resp->status == 503 || resp->status == 429 ? Status::Unavailable(cause)
                                                        : Status::IOError(cause);
      continue;
    }
    if (!refreshed_credentials && credentials_->refreshable() &&
        (code == "ExpiredToken" || code == "InvalidToken" || code == "TokenRefreshRequired")) {
      // Temporary credentials expired earlier than announced: fetch new ones, once, at no cost
      // to the attempt budget.
      refreshed_credentials = true;
      credentials_->Invalidate();
      --attempt;
      continue;
    }
    return resp;
  }
  probe_.failed_calls.fetch_add(1, std::memory_order_relaxed);
  return RetriesExhausted(ctx, attempts, last);
}

Status S3Store::ErrorFor(const Call& call, const HttpResponse& response) const {
  const S3Endpoint& ep = config_.endpoint;
  const std::string& bucket = config_.location.bucket;
  std::string uri = call.uri.empty() ? UriOf(call.full_key) : call.uri;
  std::string base = ep.BaseUrl(bucket);
  CallContext ctx{call.op, uri, bucket, base, ep.region, credentials_->source()};
  auto error = ParseS3Error(response.body);
  S3Error e = error.ok() ? *error : S3Error{};
  if (!error.ok() && !response.body.empty()) e.message = response.body.substr(0, 200);
  return StatusForS3Error(ctx, response.status, e);
}

Status S3Store::Put(std::string_view key, std::string_view data) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  Call call;
  call.op = "PutObject";
  call.method = "PUT";
  call.full_key = config_.location.FullKey(key);
  call.body = data;
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  return Is2xx(resp.status) ? Status::Ok() : ErrorFor(call, resp);
}

uint64_t S3Store::PartSizeFor(uint64_t size) const {
  uint64_t part = std::max<uint64_t>(config_.tuning.part_size, 1);
  if (size / part >= kMaxParts) part = (size + kMaxParts - 1) / kMaxParts;
  return part;
}

Status S3Store::PutFile(std::string_view key, const std::string& local_path) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  int fd = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open local file", local_path);
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return Errno("cannot stat local file", local_path);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("'" + local_path + "' is not a regular file");
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);

  if (size <= config_.tuning.multipart_threshold) {
    std::string data(size, '\0');
    EDDY_ASSIGN_OR_RETURN(size_t n, ReadAt(fd, data.data(), data.size(), 0, local_path));
    data.resize(n);
    return Put(key, data);
  }

  std::string full_key = config_.location.FullKey(key);
  EDDY_ASSIGN_OR_RETURN(std::string upload_id, CreateUpload(full_key));
  uint64_t part_size = PartSizeFor(size);
  std::string buf(part_size, '\0');
  std::vector<std::string> etags;
  Status s;
  for (uint64_t offset = 0; offset < size && s.ok(); offset += part_size) {
    auto n = ReadAt(fd, buf.data(), std::min(part_size, size - offset), offset, local_path);
    if (!n.ok()) {
      s = n.status();
      break;
    }
    if (*n == 0) break;  // the file shrank while we read it
    auto etag = UploadPart(full_key, upload_id, static_cast<int>(etags.size() + 1),
                           std::string_view(buf.data(), *n));
    if (!etag.ok()) {
      s = etag.status();
      break;
    }
    etags.push_back(std::move(*etag));
  }
  if (s.ok()) s = CompleteUpload(full_key, upload_id, etags);
  if (!s.ok()) (void)AbortUpload(full_key, upload_id);  // best effort; `s` says what failed
  return s;
}

Result<std::string> S3Store::Get(std::string_view key) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  Call call;
  call.op = "GetObject";
  call.method = "GET";
  call.full_key = config_.location.FullKey(key);
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  if (!Is2xx(resp.status)) return ErrorFor(call, resp);
  return std::move(resp.body);
}

Status S3Store::GetToFile(std::string_view key, const std::string& local_path) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  // Downloaded beside the target and renamed over it, so that the target is never partial.
  size_t slash = local_path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : local_path.substr(0, slash + 1);
  std::string name = slash == std::string::npos ? local_path : local_path.substr(slash + 1);
  std::string tmp = dir + "." + name + ".tmp-" + TempSuffix();
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create local file", tmp);
  ::close(fd);

  Call call;
  call.op = "GetObject";
  call.method = "GET";
  call.full_key = config_.location.FullKey(key);
  call.response_file = tmp;
  auto resp = Execute(call);
  Status s = !resp.ok()             ? resp.status()
             : !Is2xx(resp->status) ? ErrorFor(call, *resp)
                                    : Status::Ok();
  if (s.ok() && ::rename(tmp.c_str(), local_path.c_str()) != 0) {
    s = Errno("cannot rename the download to", local_path);
  }
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

Result<std::optional<ObjectInfo>> S3Store::Stat(std::string_view key) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  Call call;
  call.op = "HeadObject";
  call.method = "HEAD";
  call.full_key = config_.location.FullKey(key);
  uint64_t size = 0;
  call.check = [&size](const HttpResponse& r) -> Status {
    auto length = r.Header("content-length");
    if (!length) return Status::ParseError("no Content-Length");
    auto [ptr, ec] = std::from_chars(length->data(), length->data() + length->size(), size);
    if (ec != std::errc() || ptr != length->data() + length->size()) {
      return Status::ParseError("bad Content-Length '" + *length + "'");
    }
    return Status::Ok();
  };
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  // HEAD answers have no body: a 404 cannot tell a missing key from a missing bucket.
  if (resp.status == 404) return std::optional<ObjectInfo>();
  if (!Is2xx(resp.status)) return ErrorFor(call, resp);
  return std::optional<ObjectInfo>(ObjectInfo{std::string(key), size});
}

Result<std::vector<ObjectInfo>> S3Store::ListFull(const std::string& full_prefix) {
  std::vector<ObjectInfo> out;
  std::string token;
  for (;;) {
    Call call;
    call.op = "ListObjectsV2";
    call.method = "GET";
    call.uri = UriOf(full_prefix) + "*";
    call.query = {{"list-type", "2"},
                  {"prefix", full_prefix},
                  {"max-keys", std::to_string(config_.tuning.list_page_size)}};
    if (!token.empty()) call.query.emplace_back("continuation-token", token);
    ListObjectsPage page;
    call.check = [&page, &token](const HttpResponse& r) -> Status {
      auto parsed = ParseListObjectsV2(r.body);
      if (!parsed.ok()) return parsed.status();
      if (parsed->is_truncated && parsed->next_continuation_token == token) {
        return Status::ParseError("the continuation token did not advance");
      }
      page = std::move(*parsed);
      return Status::Ok();
    };
    EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
    if (!Is2xx(resp.status)) return ErrorFor(call, resp);
    for (auto& o : page.objects) out.push_back({std::move(o.key), o.size});
    if (!page.is_truncated) break;
    token = page.next_continuation_token;
  }
  return out;
}

Result<std::vector<ObjectInfo>> S3Store::List(std::string_view prefix) {
  std::string full_prefix = config_.location.prefix.empty()
                                ? std::string(prefix)
                                : config_.location.prefix + "/" + std::string(prefix);
  EDDY_ASSIGN_OR_RETURN(auto full, ListFull(full_prefix));
  std::vector<ObjectInfo> out;
  out.reserve(full.size());
  for (auto& o : full) {
    auto rel = config_.location.RelativeKey(o.key);
    // Keys ending in '/' are "folder" markers of S3 consoles, not objects of this store.
    if (!rel || rel->empty() || rel->back() == '/') continue;
    out.push_back({std::move(*rel), o.size});
  }
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status S3Store::DeleteOne(const std::string& full_key) {
  Call call;
  call.op = "DeleteObject";
  call.method = "DELETE";
  call.full_key = full_key;
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  if (Is2xx(resp.status)) return Status::Ok();
  // Deleting what is not there is fine; a missing bucket is not.
  if (resp.status == 404 && ErrorCode(resp) != "NoSuchBucket") return Status::Ok();
  return ErrorFor(call, resp);
}

Status S3Store::Delete(std::string_view key) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  return DeleteOne(config_.location.FullKey(key));
}

Status S3Store::DeleteBatch(const std::vector<std::string>& full_keys) {
  if (!multi_delete_unsupported_.load(std::memory_order_relaxed)) {
    std::string body = DeleteObjectsXml(full_keys);
    Call call;
    call.op = "DeleteObjects";
    call.method = "POST";
    call.uri =
        UriOf(full_keys.front()) + " (and " + std::to_string(full_keys.size() - 1) + " more)";
    call.query = {{"delete", ""}};
    call.body = body;
    call.content_type = "application/xml";
    call.content_md5 = true;
    std::vector<DeleteFailure> failures;
    call.check = [&failures](const HttpResponse& r) -> Status {
      auto parsed = ParseDeleteResult(r.body);
      if (!parsed.ok()) return parsed.status();
      failures = std::move(*parsed);
      return Status::Ok();
    };
    EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
    if (Is2xx(resp.status)) {
      if (failures.empty()) return Status::Ok();
      const DeleteFailure& f = failures.front();
      std::string msg = "S3 DeleteObjects could not delete " + std::to_string(failures.size()) +
                        " of " + std::to_string(full_keys.size()) + " objects; first " +
                        UriOf(f.key) + ": " + f.code + ": " + f.message;
      if (f.code == "AccessDenied") return Status::InvalidArgument(msg);
      return Status::IOError(msg);
    }
    Status s = ErrorFor(call, resp);
    if (s.code() != StatusCode::kUnimplemented) return s;
    // Some S3-compatible stores lack DeleteObjects: delete one by one from now on.
    multi_delete_unsupported_.store(true, std::memory_order_relaxed);
  }
  for (const auto& k : full_keys) EDDY_RETURN_NOT_OK(DeleteOne(k));
  return Status::Ok();
}

Status S3Store::DeletePrefix(std::string_view prefix) {
  std::string full_prefix = config_.location.prefix.empty()
                                ? std::string(prefix)
                                : config_.location.prefix + "/" + std::string(prefix);
  EDDY_ASSIGN_OR_RETURN(auto objects, ListFull(full_prefix));
  std::vector<std::string> batch;
  for (size_t i = 0; i < objects.size(); ++i) {
    batch.push_back(std::move(objects[i].key));
    if (batch.size() == kMaxDeleteBatch || i + 1 == objects.size()) {
      EDDY_RETURN_NOT_OK(DeleteBatch(batch));
      batch.clear();
    }
  }
  return Status::Ok();
}

Result<std::string> S3Store::CreateUpload(const std::string& full_key) {
  Call call;
  call.op = "CreateMultipartUpload";
  call.method = "POST";
  call.full_key = full_key;
  call.query = {{"uploads", ""}};
  std::string upload_id;
  call.check = [&upload_id](const HttpResponse& r) -> Status {
    auto parsed = ParseInitiateMultipartUpload(r.body);
    if (!parsed.ok()) return parsed.status();
    upload_id = std::move(*parsed);
    return Status::Ok();
  };
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  if (!Is2xx(resp.status)) return ErrorFor(call, resp);
  return upload_id;
}

Result<std::string> S3Store::UploadPart(const std::string& full_key, const std::string& upload_id,
                                        int part_number, std::string_view data) {
  Call call;
  call.op = "UploadPart";
  call.method = "PUT";
  call.full_key = full_key;
  call.query = {{"partNumber", std::to_string(part_number)}, {"uploadId", upload_id}};
  call.body = data;
  std::string etag;
  call.check = [&etag](const HttpResponse& r) -> Status {
    auto e = r.Header("etag");
    if (!e || e->empty()) return Status::ParseError("no ETag header");
    etag = *e;
    return Status::Ok();
  };
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  if (!Is2xx(resp.status)) return ErrorFor(call, resp);
  return etag;
}

Status S3Store::CompleteUpload(const std::string& full_key, const std::string& upload_id,
                               const std::vector<std::string>& etags, bool* no_such_upload) {
  std::string body = CompleteMultipartUploadXml(etags);
  Call call;
  call.op = "CompleteMultipartUpload";
  call.method = "POST";
  call.full_key = full_key;
  call.query = {{"uploadId", upload_id}};
  call.body = body;
  call.content_type = "application/xml";
  // S3 may answer 200 and still fail (the error is in the body, sent after the status line).
  call.check = [](const HttpResponse& r) -> Status {
    auto error = ParseS3Error(r.body);
    if (error.ok()) return Status::IOError(error->code + ": " + error->message);
    return Status::Ok();
  };
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  if (Is2xx(resp.status)) return Status::Ok();
  if (no_such_upload != nullptr) *no_such_upload = ErrorCode(resp) == "NoSuchUpload";
  return ErrorFor(call, resp);
}

Status S3Store::AbortUpload(const std::string& full_key, const std::string& upload_id) {
  Call call;
  call.op = "AbortMultipartUpload";
  call.method = "DELETE";
  call.full_key = full_key;
  call.query = {{"uploadId", upload_id}};
  EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
  if (Is2xx(resp.status)) return Status::Ok();
  if (resp.status == 404 && ErrorCode(resp) != "NoSuchBucket") {
    return Status::Ok();  // already aborted or completed
  }
  return ErrorFor(call, resp);
}

Result<StagedObject> S3Store::Stage(std::string_view key, std::string_view data) {
  EDDY_RETURN_NOT_OK(ValidateKey(key));
  std::string full_key = config_.location.FullKey(key);
  EDDY_ASSIGN_OR_RETURN(std::string upload_id, CreateUpload(full_key));
  StagedObject staged;
  staged.key = std::string(key);
  staged.upload_id = upload_id;
  staged.size = data.size();
  uint64_t part_size = PartSizeFor(data.size());
  size_t offset = 0;
  // At least one part, so that an empty object can be staged too.
  do {
    size_t n = static_cast<size_t>(std::min<uint64_t>(part_size, data.size() - offset));
    auto etag = UploadPart(full_key, upload_id, static_cast<int>(staged.part_etags.size() + 1),
                           data.substr(offset, n));
    if (!etag.ok()) {
      (void)AbortUpload(full_key, upload_id);  // best effort
      return etag.status();
    }
    staged.part_etags.push_back(std::move(*etag));
    offset += n;
  } while (offset < data.size());
  return staged;
}

Status S3Store::CommitStaged(const StagedObject& staged) {
  EDDY_RETURN_NOT_OK(ValidateKey(staged.key));
  if (staged.upload_id.empty()) {
    return Status::InvalidArgument("staged object for '" + staged.key + "' has no upload id");
  }
  if (staged.part_etags.empty()) {
    return Status::InvalidArgument("staged object for '" + staged.key +
                                   "' has no part ETags (keep the StagedObject that Stage "
                                   "returned; ListStaged results can only be aborted)");
  }
  std::string full_key = config_.location.FullKey(staged.key);
  bool no_such_upload = false;
  Status s = CompleteUpload(full_key, staged.upload_id, staged.part_etags, &no_such_upload);
  if (s.ok() || !no_such_upload) return s;
  // The upload is gone: committed before (a retry after a restart) if the object is there.
  EDDY_ASSIGN_OR_RETURN(auto info, Stat(staged.key));
  if (info) return Status::Ok();
  return Status::NotFound("staged object for " + UriOf(full_key) + " is gone (upload " +
                          staged.upload_id + " no longer exists) and the object does not exist");
}

Status S3Store::AbortStaged(const StagedObject& staged) {
  EDDY_RETURN_NOT_OK(ValidateKey(staged.key));
  if (staged.upload_id.empty()) {
    return Status::InvalidArgument("staged object for '" + staged.key + "' has no upload id");
  }
  return AbortUpload(config_.location.FullKey(staged.key), staged.upload_id);
}

Result<std::vector<StagedObject>> S3Store::ListStaged(std::string_view prefix) {
  std::string full_prefix = config_.location.prefix.empty()
                                ? std::string(prefix)
                                : config_.location.prefix + "/" + std::string(prefix);
  std::vector<StagedObject> out;
  std::string key_marker, upload_id_marker;
  for (;;) {
    Call call;
    call.op = "ListMultipartUploads";
    call.method = "GET";
    call.uri = UriOf(full_prefix) + "*";
    call.query = {{"uploads", ""},
                  {"prefix", full_prefix},
                  {"max-uploads", std::to_string(config_.tuning.list_page_size)}};
    if (!key_marker.empty()) call.query.emplace_back("key-marker", key_marker);
    if (!upload_id_marker.empty()) call.query.emplace_back("upload-id-marker", upload_id_marker);
    ListUploadsPage page;
    call.check = [&](const HttpResponse& r) -> Status {
      auto parsed = ParseListMultipartUploads(r.body);
      if (!parsed.ok()) return parsed.status();
      if (parsed->is_truncated && parsed->next_key_marker == key_marker &&
          parsed->next_upload_id_marker == upload_id_marker) {
        return Status::ParseError("the upload listing markers did not advance");
      }
      page = std::move(*parsed);
      return Status::Ok();
    };
    EDDY_ASSIGN_OR_RETURN(HttpResponse resp, Execute(call));
    if (!Is2xx(resp.status)) return ErrorFor(call, resp);
    for (auto& u : page.uploads) {
      auto rel = config_.location.RelativeKey(u.key);
      if (!rel || !rel->starts_with(prefix)) continue;
      out.push_back({std::move(*rel), std::move(u.upload_id), {}, 0});
    }
    if (!page.is_truncated) break;
    key_marker = page.next_key_marker;
    upload_id_marker = page.next_upload_id_marker;
  }
  std::sort(out.begin(), out.end(), [](const StagedObject& a, const StagedObject& b) {
    return std::tie(a.key, a.upload_id) < std::tie(b.key, b.upload_id);
  });
  return out;
}

Result<std::unique_ptr<S3Store>> OpenS3Store(std::string_view uri,
                                             const ObjectStoreOptions& options,
                                             const S3Tuning& tuning, const EnvLookup& env) {
  EDDY_ASSIGN_OR_RETURN(S3Config config, ResolveS3Config(uri, options, env));
  config.tuning = tuning;
  auto timeout = config.request_timeout;
  EDDY_ASSIGN_OR_RETURN(auto credentials, CredentialsProvider::Make(
                                              options, env,
                                              [timeout](const std::string& base_url) {
                                                return MakeCppRestTransport(base_url, timeout);
                                              },
                                              config.retry));
  EDDY_ASSIGN_OR_RETURN(
      auto transport,
      MakeCppRestTransport(config.endpoint.BaseUrl(config.location.bucket), timeout));
  return S3Store::Make(std::move(config), std::move(credentials), std::move(transport));
}

}  // namespace eddy::storage::s3

namespace eddy::storage {

Result<std::unique_ptr<ObjectStore>> OpenS3Store(std::string_view uri,
                                                 const ObjectStoreOptions& options) {
  EDDY_ASSIGN_OR_RETURN(auto store,
                        s3::OpenS3Store(uri, options, s3::S3Tuning{}, s3::ProcessEnvironment()));
  return std::unique_ptr<ObjectStore>(std::move(store));
}

}  // namespace eddy::storage
