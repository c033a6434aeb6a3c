// The S3 store's request logic against a scripted HTTP transport: retries and backoff, error
// mapping, garbage answers, pagination, multipart and staging. The real server is exercised by
// tests/python/test_s3_store.py (moto).

#include "common/src/storage/s3/s3_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>

namespace eddy::storage::s3 {
namespace {

namespace fs = std::filesystem;

struct Recorded {
  std::string method;
  std::string path_and_query;
  NameValues headers;
  std::string body;

  std::string Header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
      if (n == name) return v;
    }
    return "";
  }
};

HttpResponse Answer(int status, std::string body = "", NameValues headers = {}) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  r.headers = std::move(headers);
  return r;
}

std::string ErrorXml(const std::string& code, const std::string& message = "msg") {
  return "<?xml version=\"1.0\"?><Error><Code>" + code + "</Code><Message>" + message +
         "</Message><RequestId>RID</RequestId></Error>";
}

/// A transport whose answers come from the test's handler; records every request.
class FakeS3 : public HttpTransport {
 public:
  using Handler = std::function<Result<HttpResponse>(const Recorded&)>;
  Handler handler;
  std::vector<Recorded> requests;

  Result<HttpResponse> Send(const HttpRequest& r) override {
    Recorded rec{r.method, r.path_and_query, r.headers, std::string(r.body)};
    Handler h;
    {
      std::lock_guard<std::mutex> lock(mu_);
      requests.push_back(rec);
      h = handler;
    }
    auto resp = h(rec);
    if (resp.ok() && !r.response_file.empty() && resp->status / 100 == 2) {
      std::ofstream(r.response_file, std::ios::binary) << resp->body;
      resp->file_bytes = resp->body.size();
      resp->body.clear();
    }
    return resp;
  }

 private:
  std::mutex mu_;
};

struct Forward : HttpTransport {
  explicit Forward(HttpTransport* t) : t(t) {}
  Result<HttpResponse> Send(const HttpRequest& r) override { return t->Send(r); }
  HttpTransport* t;
};

class S3StoreTest : public ::testing::Test {
 protected:
  std::unique_ptr<S3Store> MakeStore(S3Tuning tuning = {}, int max_attempts = 3) {
    ObjectStoreOptions o;
    o.s3_endpoint = "http://s3.test:9000";
    o.s3_access_key = "AKIDTEST";
    o.s3_secret_key = "secret";
    o.max_attempts = max_attempts;
    o.retry_base_ms = 100;
    o.retry_max_ms = 250;
    auto env = [](std::string_view) { return std::optional<std::string>(); };
    auto config = ResolveS3Config("s3://bkt/p", o, env);
    EXPECT_TRUE(config.ok());
    config->tuning = tuning;
    auto creds = CredentialsProvider::Make(o, env, nullptr, config->retry);
    EXPECT_TRUE(creds.ok());
    return S3Store::Make(*config, *creds, std::make_unique<Forward>(&fake_),
                         [this](std::chrono::milliseconds d) { sleeps_.push_back(d.count()); });
  }
  /// Answers by "METHOD path?query" prefix; unknown requests get a 500 (and fail the test).
  void Route(std::map<std::string, std::function<Result<HttpResponse>(const Recorded&)>> routes) {
    fake_.handler = [routes = std::move(routes)](const Recorded& r) -> Result<HttpResponse> {
      std::string line = r.method + " " + r.path_and_query;
      const std::function<Result<HttpResponse>(const Recorded&)>* best = nullptr;
      size_t best_len = 0;
      for (const auto& [prefix, fn] : routes) {
        if (line.starts_with(prefix) && prefix.size() >= best_len) {
          best = &fn;
          best_len = prefix.size();
        }
      }
      if (best == nullptr) {
        ADD_FAILURE() << "unexpected request " << line;
        return Answer(500);
      }
      return (*best)(r);
    };
  }
  size_t Count(const std::string& prefix) const {
    size_t n = 0;
    for (const auto& r : fake_.requests)
      n += (r.method + " " + r.path_and_query).starts_with(prefix);
    return n;
  }

  FakeS3 fake_;
  std::vector<int64_t> sleeps_;
};

TEST_F(S3StoreTest, SignedPathStyleRequests) {
  auto store = MakeStore();
  Route({{"PUT /bkt/p/dir/a%20b%2B%C3%BC", [](const Recorded&) { return Answer(200); }}});
  ASSERT_TRUE(store->Put("dir/a b+\xC3\xBC", "data").ok());
  ASSERT_EQ(fake_.requests.size(), 1u);
  const Recorded& r = fake_.requests[0];
  EXPECT_EQ(r.body, "data");
  EXPECT_EQ(r.Header("Host"), "s3.test:9000");
  EXPECT_EQ(r.Header("x-amz-content-sha256"), Sha256Hex("data"));
  EXPECT_EQ(r.Header("x-amz-date").size(), 16u);
  EXPECT_TRUE(r.Header("authorization").starts_with("AWS4-HMAC-SHA256 Credential=AKIDTEST/"))
      << r.Header("authorization");
  EXPECT_NE(r.Header("authorization")
                .find("/us-east-1/s3/aws4_request, SignedHeaders=host;"
                      "x-amz-content-sha256;x-amz-date, Signature="),
            std::string::npos);
  EXPECT_EQ(store->root(), "s3://bkt/p");
  EXPECT_EQ(store->Put("../x", "d").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(fake_.requests.size(), 1u);
}

TEST_F(S3StoreTest, RetriesTransientFailuresWithBackoff) {
  auto store = MakeStore({}, 5);
  int n = 0;
  Route({{"PUT /bkt/p/k", [&](const Recorded&) -> Result<HttpResponse> {
            switch (n++) {
              case 0:
                return Answer(500, ErrorXml("InternalError"));
              case 1:
                return Answer(503, ErrorXml("SlowDown"));
              case 2:
                return Status::Unavailable("cannot connect: refused");
              case 3:
                return Answer(400, ErrorXml("RequestTimeout"));
              default:
                return Answer(200);
            }
          }}});
  Status s = store->Put("k", "v");
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fake_.requests.size(), 5u);
  EXPECT_EQ(store->probe().requests.load(), 5u);
  EXPECT_EQ(store->probe().retries.load(), 4u);
  ASSERT_EQ(sleeps_.size(), 4u);
  const int64_t kCaps[] = {100, 200, 250, 250};  // base 100, doubled, capped at 250
  for (size_t i = 0; i < sleeps_.size(); ++i) {
    EXPECT_GE(sleeps_[i], 0);
    EXPECT_LE(sleeps_[i], kCaps[i]);
  }
}

TEST_F(S3StoreTest, GivesUpWithARetryableStatusNamingTheCall) {
  auto store = MakeStore();
  Route({{"PUT", [](const Recorded&) { return Answer(503, ErrorXml("SlowDown", "Reduce")); }},
         {"GET",
          [](const Recorded&) -> Result<HttpResponse> {
            return Status::Timeout("no answer within 30000 ms");
          }},
         {"HEAD", [](const Recorded&) { return Answer(502, "<html>Bad Gateway</html>"); }}});
  Status put = store->Put("a/k", "v");
  EXPECT_EQ(put.code(), StatusCode::kUnavailable);
  EXPECT_TRUE(put.IsRetryable());
  EXPECT_NE(put.message().find("S3 PutObject of s3://bkt/p/a/k failed after 3 attempts"),
            std::string::npos)
      << put.message();
  EXPECT_NE(put.message().find("SlowDown: Reduce"), std::string::npos);
  EXPECT_NE(put.message().find("http://s3.test:9000"), std::string::npos);

  auto get = store->Get("k");
  EXPECT_EQ(get.status().code(), StatusCode::kTimeout);
  EXPECT_NE(get.status().message().find("GetObject"), std::string::npos);

  auto stat = store->Stat("k");
  EXPECT_EQ(stat.status().code(), StatusCode::kIOError);
  EXPECT_NE(stat.status().message().find("HTTP 502"), std::string::npos);
  EXPECT_EQ(fake_.requests.size(), 9u);
  EXPECT_EQ(store->probe().failed_calls.load(), 3u);
}

TEST_F(S3StoreTest, MapsClientErrorsWithoutRetrying) {
  auto store = MakeStore();
  Route(
      {{"GET /bkt/p/missing", [](const Recorded&) { return Answer(404, ErrorXml("NoSuchKey")); }},
       {"GET /bkt/p/nobucket",
        [](const Recorded&) { return Answer(404, ErrorXml("NoSuchBucket")); }},
       {"GET /bkt/p/sig",
        [](const Recorded&) { return Answer(403, ErrorXml("SignatureDoesNotMatch")); }},
       {"GET /bkt/p/key",
        [](const Recorded&) { return Answer(403, ErrorXml("InvalidAccessKeyId")); }},
       {"GET /bkt/p/denied", [](const Recorded&) { return Answer(403, ErrorXml("AccessDenied")); }},
       {"GET /bkt/p/region",
        [](const Recorded&) { return Answer(400, ErrorXml("AuthorizationHeaderMalformed")); }},
       {"GET /bkt/p/html", [](const Recorded&) { return Answer(400, "<html>nope</html>"); }},
       {"GET /bkt/p/impl", [](const Recorded&) { return Answer(501, ErrorXml("NotImplemented")); }},
       {"HEAD /bkt/p/missing", [](const Recorded&) { return Answer(404); }},
       {"HEAD /bkt/p/denied", [](const Recorded&) { return Answer(403); }},
       {"DELETE /bkt/p/missing",
        [](const Recorded&) { return Answer(404, ErrorXml("NoSuchKey")); }},
       {"DELETE /bkt/p/nobucket",
        [](const Recorded&) { return Answer(404, ErrorXml("NoSuchBucket")); }}});
  auto code = [&](const char* key) { return store->Get(key).status(); };
  EXPECT_EQ(code("missing").code(), StatusCode::kNotFound);
  EXPECT_NE(code("missing").message().find("NoSuchKey"), std::string::npos);
  Status nb = code("nobucket");
  EXPECT_EQ(nb.code(), StatusCode::kNotFound);
  EXPECT_NE(nb.message().find("bucket 'bkt' does not exist"), std::string::npos) << nb.message();
  Status sig = code("sig");
  EXPECT_EQ(sig.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(sig.message().find("secret key from the store options"), std::string::npos);
  EXPECT_NE(code("key").message().find("access key id from the store options is not known"),
            std::string::npos);
  EXPECT_NE(code("denied").message().find("may not GetObject in bucket 'bkt'"), std::string::npos);
  EXPECT_NE(code("region").message().find("region"), std::string::npos);
  EXPECT_EQ(code("html").code(), StatusCode::kInvalidArgument);
  EXPECT_NE(code("html").message().find("<html>nope</html>"), std::string::npos);
  EXPECT_EQ(code("impl").code(), StatusCode::kUnimplemented);
  size_t before = fake_.requests.size();
  EXPECT_EQ(before, 10u);  // one request per call: nothing retried

  auto st = store->Stat("missing");
  ASSERT_TRUE(st.ok());
  EXPECT_FALSE(st->has_value());
  EXPECT_EQ(store->Stat("denied").status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(store->Delete("missing").ok());
  EXPECT_EQ(store->Delete("nobucket").code(), StatusCode::kNotFound);
}

TEST_F(S3StoreTest, GarbageAnswersAreRetriedThenReported) {
  auto store = MakeStore();
  const char* garbage[] = {"", "<ListBucketResult><Contents><Key>a", "\xff\xfe<<>>",
                           "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
                           "<Error><Code>InternalError</Code></Error>"};
  for (const char* g : garbage) {
    fake_.requests.clear();
    Route({{"GET /bkt?", [g](const Recorded&) { return Answer(200, g); }}});
    auto l = store->List("");
    EXPECT_EQ(l.status().code(), StatusCode::kIOError) << g;
    EXPECT_NE(l.status().message().find("ListObjectsV2"), std::string::npos);
    EXPECT_EQ(fake_.requests.size(), 3u);
  }
  // HEAD without a usable Content-Length.
  Route({{"HEAD", [](const Recorded&) { return Answer(200, "", {{"content-length", "12abc"}}); }}});
  EXPECT_EQ(store->Stat("k").status().code(), StatusCode::kIOError);
  // Multipart answers without an upload id or an ETag.
  Route({{"POST /bkt/p/k?uploads=", [](const Recorded&) { return Answer(200, "<nope/>"); }}});
  EXPECT_EQ(store->Stage("k", "x").status().code(), StatusCode::kIOError);
}

TEST_F(S3StoreTest, ListPaginatesStripsThePrefixAndSorts) {
  S3Tuning tuning;
  tuning.list_page_size = 2;
  auto store = MakeStore(tuning);
  Route({{"GET /bkt?", [](const Recorded& r) {
            if (r.path_and_query.find("continuation-token=") == std::string::npos) {
              return Answer(200,
                            "<ListBucketResult><IsTruncated>true</IsTruncated>"
                            "<Contents><Key>p/x/b</Key><Size>2</Size></Contents>"
                            "<Contents><Key>p/x/</Key><Size>0</Size></Contents>"
                            "<NextContinuationToken>t 1/+</NextContinuationToken>"
                            "</ListBucketResult>");
            }
            return Answer(200,
                          "<ListBucketResult><IsTruncated>false</IsTruncated>"
                          "<Contents><Key>p/x/a</Key><Size>1</Size></Contents>"
                          "<Contents><Key>other/x</Key><Size>1</Size></Contents>"
                          "</ListBucketResult>");
          }}});
  auto l = store->List("x/");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].key, "x/a");
  EXPECT_EQ((*l)[0].size, 1u);
  EXPECT_EQ((*l)[1].key, "x/b");
  ASSERT_EQ(fake_.requests.size(), 2u);
  EXPECT_EQ(fake_.requests[0].path_and_query, "/bkt?list-type=2&max-keys=2&prefix=p%2Fx%2F");
  EXPECT_EQ(fake_.requests[1].path_and_query,
            "/bkt?continuation-token=t%201%2F%2B&list-type=2&max-keys=2&prefix=p%2Fx%2F");
}

TEST_F(S3StoreTest, StageUploadsPartsAndCommitIsIdempotent) {
  S3Tuning tuning;
  tuning.part_size = 4;
  auto store = MakeStore(tuning);
  std::vector<std::string> parts;
  bool upload_open = true;
  bool object_exists = false;
  int complete_calls = 0;
  Route({{"POST /bkt/p/out/f?uploads=",
          [](const Recorded&) {
            return Answer(200,
                          "<InitiateMultipartUploadResult><UploadId>U1</UploadId>"
                          "</InitiateMultipartUploadResult>");
          }},
         {"PUT /bkt/p/out/f?partNumber=",
          [&](const Recorded& r) {
            parts.push_back(r.body);
            return Answer(200, "", {{"etag", "\"e" + std::to_string(parts.size()) + "\""}});
          }},
         {"POST /bkt/p/out/f?uploadId=U1",
          [&](const Recorded& r) {
            ++complete_calls;
            if (complete_calls == 1) {
              // A 200 whose body is an error: must be retried.
              return Answer(200, ErrorXml("InternalError"));
            }
            if (!upload_open) return Answer(404, ErrorXml("NoSuchUpload"));
            EXPECT_EQ(r.body,
                      "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1"
                      "&quot;</ETag></Part><Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;"
                      "</ETag></Part><Part><PartNumber>3</PartNumber><ETag>&quot;e3&quot;</ETag>"
                      "</Part></CompleteMultipartUpload>");
            upload_open = false;
            object_exists = true;
            return Answer(200, "<CompleteMultipartUploadResult/>");
          }},
         {"HEAD /bkt/p/out/f", [&](const Recorded&) {
            return object_exists ? Answer(200, "", {{"content-length", "10"}}) : Answer(404);
          }}});
  auto staged = store->Stage("out/f", "0123456789");
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  EXPECT_EQ(parts, (std::vector<std::string>{"0123", "4567", "89"}));
  EXPECT_EQ(staged->upload_id, "U1");
  EXPECT_EQ(staged->part_etags, (std::vector<std::string>{"\"e1\"", "\"e2\"", "\"e3\""}));
  EXPECT_EQ(staged->size, 10u);
  EXPECT_EQ(Count("PUT /bkt/p/out/f?partNumber=1&uploadId=U1"), 1u);

  Status first = store->CommitStaged(*staged);
  ASSERT_TRUE(first.ok()) << first.ToString();
  EXPECT_EQ(complete_calls, 2);
  ASSERT_TRUE(store->CommitStaged(*staged).ok());  // NoSuchUpload, but the object exists
  EXPECT_EQ(Count("HEAD /bkt/p/out/f"), 1u);

  object_exists = false;  // the object is gone too
  Status gone = store->CommitStaged(*staged);
  EXPECT_EQ(gone.code(), StatusCode::kNotFound);
  EXPECT_NE(gone.message().find("U1"), std::string::npos);

  StagedObject no_etags = *staged;
  no_etags.part_etags.clear();
  EXPECT_EQ(store->CommitStaged(no_etags).code(), StatusCode::kInvalidArgument);
}

TEST_F(S3StoreTest, StageOfNothingIsOneEmptyPartAndFailedStageAborts) {
  auto store = MakeStore();
  std::vector<std::string> parts;
  Route({{"POST /bkt/p/e?uploads=",
          [](const Recorded&) {
            return Answer(200,
                          "<InitiateMultipartUploadResult><UploadId>U</UploadId>"
                          "</InitiateMultipartUploadResult>");
          }},
         {"PUT /bkt/p/e?partNumber=",
          [&](const Recorded& r) {
            parts.push_back(r.body);
            return Answer(200, "", {{"etag", "\"x\""}});
          }},
         {"POST /bkt/p/bad?uploads=",
          [](const Recorded&) {
            return Answer(200,
                          "<InitiateMultipartUploadResult><UploadId>B</UploadId>"
                          "</InitiateMultipartUploadResult>");
          }},
         {"PUT /bkt/p/bad?partNumber=",
          [](const Recorded&) { return Answer(403, ErrorXml("AccessDenied")); }},
         {"DELETE /bkt/p/bad?uploadId=B", [](const Recorded&) { return Answer(204); }}});
  auto staged = store->Stage("e", "");
  ASSERT_TRUE(staged.ok());
  EXPECT_EQ(parts, (std::vector<std::string>{""}));
  EXPECT_EQ(store->Stage("bad", "x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Count("DELETE /bkt/p/bad?uploadId=B"), 1u);
}

TEST_F(S3StoreTest, AbortAndListStaged) {
  S3Tuning tuning;
  tuning.list_page_size = 1;
  auto store = MakeStore(tuning);
  Route({{"DELETE /bkt/p/k?uploadId=gone",
          [](const Recorded&) { return Answer(404, ErrorXml("NoSuchUpload")); }},
         {"DELETE /bkt/p/k?uploadId=live", [](const Recorded&) { return Answer(204); }},
         {"GET /bkt?max-uploads=1&prefix=p%2Fout%2F&uploads=",
          [](const Recorded&) {
            return Answer(200,
                          "<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                          "<NextKeyMarker>p/out/b</NextKeyMarker><NextUploadIdMarker>u2"
                          "</NextUploadIdMarker><Upload><Key>p/out/b</Key><UploadId>u2</UploadId>"
                          "</Upload></ListMultipartUploadsResult>");
          }},
         {"GET /bkt?key-marker=p%2Fout%2Fb&max-uploads=1&prefix=p%2Fout%2F&upload-id-marker=u2&"
          "uploads=",
          [](const Recorded&) {
            return Answer(200,
                          "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>"
                          "<Upload><Key>p/out/a</Key><UploadId>u1</UploadId></Upload>"
                          "</ListMultipartUploadsResult>");
          }}});
  EXPECT_TRUE(store->AbortStaged({"k", "gone", {}, 0}).ok());
  EXPECT_TRUE(store->AbortStaged({"k", "live", {}, 0}).ok());
  EXPECT_EQ(store->AbortStaged({"k", "", {}, 0}).code(), StatusCode::kInvalidArgument);
  auto l = store->ListStaged("out/");
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  ASSERT_EQ(l->size(), 2u);
  EXPECT_EQ((*l)[0].key, "out/a");
  EXPECT_EQ((*l)[0].upload_id, "u1");
  EXPECT_EQ((*l)[1].key, "out/b");
}

TEST_F(S3StoreTest, DeletePrefixBatchesAndFallsBackToSingleDeletes) {
  auto store = MakeStore();
  std::vector<size_t> batch_sizes;
  bool multi_supported = true;
  Route({{"GET /bkt?",
          [](const Recorded& r) {
            // 2500 keys in 3 pages.
            int page = r.path_and_query.find("continuation-token=2") != std::string::npos   ? 2
                       : r.path_and_query.find("continuation-token=1") != std::string::npos ? 1
                                                                                            : 0;
            std::string body = "<ListBucketResult><IsTruncated>" +
                               std::string(page < 2 ? "true" : "false") + "</IsTruncated>";
            for (int i = page * 1000; i < std::min(2500, (page + 1) * 1000); ++i) {
              body += "<Contents><Key>p/d/" + std::to_string(i) + "</Key><Size>1</Size></Contents>";
            }
            if (page < 2) {
              body +=
                  "<NextContinuationToken>" + std::to_string(page + 1) + "</NextContinuationToken>";
            }
            return Answer(200, body + "</ListBucketResult>");
          }},
         {"POST /bkt?delete=",
          [&](const Recorded& r) {
            if (!multi_supported) return Answer(501, ErrorXml("NotImplemented"));
            EXPECT_EQ(r.Header("Content-MD5"), Md5Base64(r.body));
            size_t n = 0;
            for (size_t pos = 0; (pos = r.body.find("<Object>", pos)) != std::string::npos; ++pos) {
              ++n;
            }
            batch_sizes.push_back(n);
            return Answer(200, "<DeleteResult/>");
          }},
         {"DELETE /bkt/p/d/", [](const Recorded&) { return Answer(204); }}});
  ASSERT_TRUE(store->DeletePrefix("d/").ok());
  EXPECT_EQ(batch_sizes, (std::vector<size_t>{1000, 1000, 500}));

  multi_supported = false;
  ASSERT_TRUE(store->DeletePrefix("d/").ok());
  EXPECT_EQ(Count("DELETE /bkt/p/d/"), 2500u);
  EXPECT_EQ(Count("POST /bkt?delete="), 4u);  // tried once, then never again
}

TEST_F(S3StoreTest, DeleteObjectsPartialFailureIsReported) {
  auto store = MakeStore();
  Route({{"GET /bkt?",
          [](const Recorded&) {
            return Answer(200,
                          "<ListBucketResult><Contents><Key>p/a</Key><Size>1</Size></Contents>"
                          "</ListBucketResult>");
          }},
         {"POST /bkt?delete=", [](const Recorded&) {
            return Answer(200,
                          "<DeleteResult><Error><Key>p/a</Key><Code>AccessDenied</Code>"
                          "<Message>Access Denied</Message></Error></DeleteResult>");
          }}});
  Status s = store->DeletePrefix("");
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("s3://bkt/p/a: AccessDenied"), std::string::npos) << s.message();
}

TEST_F(S3StoreTest, PutFileUsesMultipartAboveTheThresholdAndAbortsOnFailure) {
  S3Tuning tuning;
  tuning.multipart_threshold = 10;
  tuning.part_size = 4;
  auto store = MakeStore(tuning);
  fs::path dir = fs::temp_directory_path() / ("eddy-s3-putfile-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "small") << "0123456789";
  std::ofstream(dir / "big") << "0123456789A";
  std::vector<std::string> parts;
  bool fail_part_2 = false;
  Route({{"PUT /bkt/p/small",
          [](const Recorded& r) {
            EXPECT_EQ(r.body, "0123456789");
            return Answer(200);
          }},
         {"POST /bkt/p/big?uploads=",
          [](const Recorded&) {
            return Answer(200,
                          "<InitiateMultipartUploadResult><UploadId>M</UploadId>"
                          "</InitiateMultipartUploadResult>");
          }},
         {"PUT /bkt/p/big?partNumber=",
          [&](const Recorded& r) {
            if (fail_part_2 && r.path_and_query.starts_with("/bkt/p/big?partNumber=2")) {
              return Answer(400, ErrorXml("InvalidArgument", "bad part"));
            }
            parts.push_back(r.body);
            return Answer(200, "", {{"etag", "\"p\""}});
          }},
         {"POST /bkt/p/big?uploadId=M", [](const Recorded&) { return Answer(200, "<ok/>"); }},
         {"DELETE /bkt/p/big?uploadId=M", [](const Recorded&) { return Answer(204); }}});
  ASSERT_TRUE(store->PutFile("small", (dir / "small").string()).ok());
  ASSERT_TRUE(store->PutFile("big", (dir / "big").string()).ok());
  EXPECT_EQ(parts, (std::vector<std::string>{"0123", "4567", "89A"}));
  EXPECT_EQ(Count("DELETE"), 0u);

  fail_part_2 = true;
  Status s = store->PutFile("big", (dir / "big").string());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("bad part"), std::string::npos);
  EXPECT_EQ(Count("DELETE /bkt/p/big?uploadId=M"), 1u);

  EXPECT_EQ(store->PutFile("x", (dir / "absent").string()).code(), StatusCode::kNotFound);
  EXPECT_EQ(store->PutFile("x", dir.string()).code(), StatusCode::kInvalidArgument);
  fs::remove_all(dir);
}

TEST_F(S3StoreTest, GetToFileReplacesTheTargetOnlyOnSuccess) {
  auto store = MakeStore();
  fs::path dir = fs::temp_directory_path() / ("eddy-s3-gettofile-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string target = (dir / "out").string();
  std::ofstream(target) << "old";
  Route(
      {{"GET /bkt/p/k", [](const Recorded&) { return Answer(200, "new content"); }},
       {"GET /bkt/p/missing", [](const Recorded&) { return Answer(404, ErrorXml("NoSuchKey")); }}});
  ASSERT_TRUE(store->GetToFile("k", target).ok());
  std::ifstream in(target);
  std::string got((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(got, "new content");
  EXPECT_EQ(store->GetToFile("missing", target).code(), StatusCode::kNotFound);
  std::ifstream again(target);
  std::string kept((std::istreambuf_iterator<char>(again)), {});
  EXPECT_EQ(kept, "new content");
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1u);  // no temporary left behind
  EXPECT_EQ(store->GetToFile("k", (dir / "no/such/dir").string()).code(), StatusCode::kNotFound);
  fs::remove_all(dir);
}

TEST_F(S3StoreTest, ExpiredTokenRefreshesContainerCredentialsOnce) {
  FakeS3 creds_endpoint;
  int fetches = 0;
  creds_endpoint.handler = [&](const Recorded&) -> Result<HttpResponse> {
    ++fetches;
    return Answer(200, "{\"AccessKeyId\":\"ASIA" + std::to_string(fetches) +
                           "\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
                           "\"Expiration\":\"2100-01-01T00:00:00Z\"}");
  };
  ObjectStoreOptions o;
  o.s3_endpoint = "http://s3.test:9000";
  o.max_attempts = 1;
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "AWS_CONTAINER_CREDENTIALS_FULL_URI") return "http://127.0.0.1:1/c";
    return std::nullopt;
  };
  auto config = ResolveS3Config("s3://bkt/p", o, env);
  ASSERT_TRUE(config.ok());
  auto creds = CredentialsProvider::Make(
      o, env,
      [&](const std::string&) -> Result<std::unique_ptr<HttpTransport>> {
        return std::unique_ptr<HttpTransport>(std::make_unique<Forward>(&creds_endpoint));
      },
      config->retry);
  ASSERT_TRUE(creds.ok());
  auto store = S3Store::Make(*config, *creds, std::make_unique<Forward>(&fake_));
  Route({{"PUT", [](const Recorded& r) {
            if (r.Header("authorization").find("ASIA1/") != std::string::npos) {
              return Answer(400, ErrorXml("ExpiredToken"));
            }
            EXPECT_EQ(r.Header("x-amz-security-token"), "t");
            return Answer(200);
          }}});
  Status s = store->Put("k", "v");
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(fetches, 2);
  EXPECT_EQ(fake_.requests.size(), 2u);
}

TEST_F(S3StoreTest, ConcurrentCallsShareOneStore) {
  auto store = MakeStore();
  Route({{"PUT", [](const Recorded&) { return Answer(200); }},
         {"GET", [](const Recorded& r) { return Answer(200, r.path_and_query); }}});
  std::vector<std::thread> threads;
  threads.reserve(8);
  std::atomic<int> ok{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        std::string key = "t" + std::to_string(t) + "/" + std::to_string(i);
        if (store->Put(key, "v").ok()) ++ok;
        auto got = store->Get(key);
        if (got.ok() && *got == "/bkt/p/" + key) ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 800);
  EXPECT_EQ(store->probe().requests.load(), 800u);
}

}  // namespace
}  // namespace eddy::storage::s3
