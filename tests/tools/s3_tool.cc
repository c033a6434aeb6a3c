// eddy_s3_tool: drives Eddy's s3:// ObjectStore from the command line for the pytest tests
// (tests/python/test_s3_store.py, test_s3_sigv4.py). One command per run, one JSON line on
// stdout: {"ok": true, ...} or {"ok": false, "code": "NotFound", "retryable": false, "message":
// ...}, plus the store's request counters. Exit status 0 on success, 1 when the operation failed,
// 2 for a usage error.
//
//   eddy_s3_tool [options] put KEY DATA          eddy_s3_tool [options] stat KEY
//   eddy_s3_tool [options] put-file KEY PATH     eddy_s3_tool [options] list PREFIX
//   eddy_s3_tool [options] get KEY [OUT_PATH]    eddy_s3_tool [options] delete KEY
//   eddy_s3_tool [options] get-to-file KEY PATH  eddy_s3_tool [options] delete-prefix PREFIX
//   eddy_s3_tool [options] stage KEY DATA        eddy_s3_tool [options] list-staged PREFIX
//   eddy_s3_tool [options] commit STAGED_JSON    eddy_s3_tool [options] abort STAGED_JSON
//   eddy_s3_tool [options] put-many PREFIX COUNT THREADS   (concurrent puts, then gets)
//   eddy_s3_tool [options] stress PREFIX THREADS ROUNDS    (mixed concurrent operations)
//   eddy_s3_tool sign < cases.json                          (SigV4 of fixed requests)
//   eddy_s3_tool [options] config                           (resolved endpoint and addressing)
//
// Options: --uri s3://bucket/prefix --endpoint URL --region R --path-style true|false
//          --access-key K --secret-key S --session-token T --max-attempts N --retry-base-ms N
//          --retry-max-ms N --timeout-ms N --page-size N --part-size BYTES
//          --multipart-threshold BYTES. Unset credentials come from the environment.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/src/storage/s3/s3_store.h"
#include "common/src/storage/s3/sigv4.h"

namespace {

using eddy::Status;
using eddy::StatusCode;
using eddy::StatusCodeName;
using eddy::storage::ObjectInfo;
using eddy::storage::ObjectStoreOptions;
using eddy::storage::StagedObject;
using nlohmann::json;
namespace s3 = eddy::storage::s3;

void Print(const json& j) {
  std::cout << j.dump(-1, ' ', false, json::error_handler_t::replace) << std::endl;
}

int Usage(const std::string& why) {
  std::cerr << "eddy_s3_tool: " << why << " (see the comment at the top of s3_tool.cc)\n";
  return 2;
}

json StatusJson(const Status& s) {
  return {{"ok", s.ok()},
          {"code", std::string(StatusCodeName(s.code()))},
          {"retryable", s.IsRetryable()},
          {"message", s.message()}};
}

json StagedJson(const StagedObject& s) {
  return {
      {"key", s.key}, {"upload_id", s.upload_id}, {"part_etags", s.part_etags}, {"size", s.size}};
}

StagedObject StagedFromJson(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  StagedObject s;
  if (!j.is_object()) return s;
  s.key = j.value("key", "");
  s.upload_id = j.value("upload_id", "");
  if (j.contains("part_etags") && j["part_etags"].is_array()) {
    for (const auto& e : j["part_etags"]) {
      if (e.is_string()) s.part_etags.push_back(e.get<std::string>());
    }
  }
  s.size = j.value("size", uint64_t{0});
  return s;
}

json ObjectsJson(const std::vector<ObjectInfo>& objects) {
  json out = json::array();
  for (const auto& o : objects) out.push_back({{"key", o.key}, {"size", o.size}});
  return out;
}

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return out;
}

/// Signs the fixed requests of a JSON array on stdin (see test_s3_sigv4.py for the fields).
int Sign() {
  std::string input((std::istreambuf_iterator<char>(std::cin)), {});
  json cases = json::parse(input, nullptr, false);
  if (!cases.is_array()) return Usage("sign expects a JSON array on stdin");
  json out = json::array();
  for (const auto& c : cases) {
    s3::SigningRequest req;
    req.method = c.value("method", "GET");
    req.encoded_path = s3::UriEncode(c.value("raw_path", "/"), true);
    for (const auto& q : c.value("query", json::array())) {
      req.query.emplace_back(q.at(0).get<std::string>(), q.at(1).get<std::string>());
    }
    for (const auto& h : c.value("headers", json::array())) {
      req.headers.emplace_back(h.at(0).get<std::string>(), h.at(1).get<std::string>());
    }
    std::string payload = c.value("payload", "");
    if (c.contains("payload_hex")) payload = FromHex(c.value("payload_hex", ""));
    req.payload_sha256_hex = s3::Sha256Hex(payload);
    s3::SigningCredentials creds{c.value("access_key", ""), c.value("secret_key", ""),
                                 c.value("session_token", "")};
    auto signed_req = s3::SignV4(req, creds, c.value("region", "us-east-1"),
                                 c.value("service", "s3"), c.value("amz_date", ""));
    json headers = json::array();
    for (const auto& [name, value] : signed_req.added_headers) headers.push_back({name, value});
    out.push_back({{"encoded_path", req.encoded_path},
                   {"canonical_query", s3::CanonicalQueryString(req.query)},
                   {"canonical_request", signed_req.canonical_request},
                   {"string_to_sign", signed_req.string_to_sign},
                   {"authorization", signed_req.authorization},
                   {"added_headers", headers}});
  }
  Print(out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ObjectStoreOptions options;
    s3::S3Tuning tuning;
    std::string uri;
    std::vector<std::string> args;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (!a.starts_with("--")) {
        args.push_back(a);
        continue;
      }
      if (i + 1 >= argc) return Usage("option " + a + " needs a value");
      std::string v = argv[++i];
      if (a == "--uri") {
        uri = v;
      } else if (a == "--endpoint") {
        options.s3_endpoint = v;
      } else if (a == "--region") {
        options.s3_region = v;
      } else if (a == "--path-style") {
        options.s3_path_style = v == "true";
      } else if (a == "--access-key") {
        options.s3_access_key = v;
      } else if (a == "--secret-key") {
        options.s3_secret_key = v;
      } else if (a == "--session-token") {
        options.s3_session_token = v;
      } else if (a == "--max-attempts") {
        options.max_attempts = std::stoi(v);
      } else if (a == "--retry-base-ms") {
        options.retry_base_ms = std::stoi(v);
      } else if (a == "--retry-max-ms") {
        options.retry_max_ms = std::stoi(v);
      } else if (a == "--timeout-ms") {
        options.request_timeout_ms = std::stoi(v);
      } else if (a == "--page-size") {
        tuning.list_page_size = std::stoi(v);
      } else if (a == "--part-size") {
        tuning.part_size = std::stoull(v);
      } else if (a == "--multipart-threshold") {
        tuning.multipart_threshold = std::stoull(v);
      } else {
        return Usage("unknown option " + a);
      }
    }
    if (args.empty()) return Usage("no command");
    std::string cmd = args[0];
    if (cmd == "sign") return Sign();
    auto arg = [&](size_t i) { return i < args.size() ? args[i] : std::string(); };

    auto opened = s3::OpenS3Store(uri, options, tuning, s3::ProcessEnvironment());
    if (!opened.ok()) {
      Print(StatusJson(opened.status()));
      return 1;
    }
    s3::S3Store& store = **opened;
    auto start = std::chrono::steady_clock::now();
    json out = {{"ok", true}};
    Status status;

    if (cmd == "config") {
      const auto& c = store.config();
      out["base_url"] = c.endpoint.BaseUrl(c.location.bucket);
      out["host"] = c.endpoint.HostHeader(c.location.bucket);
      out["path"] = c.endpoint.EncodedPath(c.location.bucket, c.location.FullKey(arg(1)));
      out["path_style"] = c.endpoint.path_style;
      out["region"] = c.endpoint.region;
      out["root"] = store.root();
    } else if (cmd == "put") {
      status = store.Put(arg(1), arg(2));
    } else if (cmd == "put-file") {
      status = store.PutFile(arg(1), arg(2));
    } else if (cmd == "get") {
      auto r = store.Get(arg(1));
      status = r.status();
      if (r.ok() && args.size() > 2) {
        std::ofstream f(arg(2), std::ios::binary);
        f << *r;
        out["size"] = r->size();
      } else if (r.ok()) {
        out["data"] = *r;
      }
    } else if (cmd == "get-to-file") {
      status = store.GetToFile(arg(1), arg(2));
    } else if (cmd == "stat") {
      auto r = store.Stat(arg(1));
      status = r.status();
      if (r.ok()) {
        out["exists"] = r->has_value();
        if (r->has_value()) out["size"] = (*r)->size;
      }
    } else if (cmd == "list") {
      auto r = store.List(arg(1));
      status = r.status();
      if (r.ok()) out["objects"] = ObjectsJson(*r);
    } else if (cmd == "delete") {
      status = store.Delete(arg(1));
    } else if (cmd == "delete-prefix") {
      status = store.DeletePrefix(arg(1));
    } else if (cmd == "stage") {
      auto r = store.Stage(arg(1), arg(2));
      status = r.status();
      if (r.ok()) out["staged"] = StagedJson(*r);
    } else if (cmd == "commit") {
      status = store.CommitStaged(StagedFromJson(arg(1)));
    } else if (cmd == "abort") {
      status = store.AbortStaged(StagedFromJson(arg(1)));
    } else if (cmd == "list-staged") {
      auto r = store.ListStaged(arg(1));
      status = r.status();
      if (r.ok()) {
        out["staged"] = json::array();
        for (const auto& s : *r) out["staged"].push_back(StagedJson(s));
      }
    } else if (cmd == "put-many" || cmd == "stress") {
      // put-many: COUNT objects PREFIX%05d written by THREADS threads, then read back.
      // stress: THREADS threads, ROUNDS rounds each of put, get, stat, list, stage+commit and
      // delete on their own keys, all on one store.
      std::string prefix = arg(1);
      int a = std::stoi(arg(2).empty() ? "0" : arg(2));
      int b = std::stoi(arg(3).empty() ? "1" : arg(3));
      std::mutex mu;
      std::vector<std::string> errors;
      auto fail = [&](const std::string& what) {
        std::lock_guard<std::mutex> lock(mu);
        errors.push_back(what);
      };
      std::vector<std::thread> threads;
      if (cmd == "put-many") {
        int count = a, nthreads = b;
        for (int t = 0; t < nthreads; ++t) {
          // By value: the threads outlive this block's locals.
          threads.emplace_back([&, t, count, nthreads] {
            for (int i = t; i < count; i += nthreads) {
              char name[32];
              std::snprintf(name, sizeof name, "%05d", i);
              std::string key = prefix + name;
              Status s = store.Put(key, "value-" + std::to_string(i));
              if (!s.ok()) fail(key + ": " + s.ToString());
            }
          });
        }
      } else {
        int nthreads = a, rounds = b;
        for (int t = 0; t < nthreads; ++t) {
          threads.emplace_back([&, t, rounds] {
            for (int r = 0; r < rounds; ++r) {
              std::string key = prefix + "t" + std::to_string(t) + "/r" + std::to_string(r);
              std::string value = "thread " + std::to_string(t) + " round " + std::to_string(r);
              if (Status s = store.Put(key, value); !s.ok()) fail("put " + s.ToString());
              auto got = store.Get(key);
              if (!got.ok() || *got != value) fail("get " + key + ": " + got.status().ToString());
              auto st = store.Stat(key);
              if (!st.ok() || !st->has_value() || (*st)->size != value.size()) {
                fail("stat " + key + ": " + st.status().ToString());
              }
              auto listed = store.List(prefix + "t" + std::to_string(t) + "/");
              if (!listed.ok() || listed->size() != 1) {
                fail("list " + key + ": " + listed.status().ToString());
              }
              auto staged = store.Stage(key + ".staged", value);
              if (!staged.ok()) {
                fail("stage " + staged.status().ToString());
              } else if (Status s = store.CommitStaged(*staged); !s.ok()) {
                fail("commit " + s.ToString());
              }
              if (Status s = store.Delete(key); !s.ok()) fail("delete " + s.ToString());
              if (Status s = store.Delete(key + ".staged"); !s.ok()) fail("delete " + s.ToString());
            }
          });
        }
      }
      for (auto& t : threads) t.join();
      if (cmd == "put-many" && errors.empty()) {
        for (int i = 0; i < a; ++i) {
          char name[32];
          std::snprintf(name, sizeof name, "%05d", i);
          auto got = store.Get(prefix + name);
          if (!got.ok() || *got != "value-" + std::to_string(i)) {
            fail(std::string("read back ") + name + ": " + got.status().ToString());
          }
        }
      }
      out["errors"] = errors;
      if (!errors.empty()) status = Status::Internal(std::to_string(errors.size()) + " failures");
    } else {
      return Usage("unknown command " + cmd);
    }

    if (!status.ok()) out = StatusJson(status);
    const auto& p = store.probe();
    out["requests"] = p.requests.load();
    out["retries"] = p.retries.load();
    out["failed_calls"] = p.failed_calls.load();
    out["elapsed_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - start)
                            .count();
    Print(out);
    return status.ok() ? 0 : 1;
  } catch (const std::exception& e) {
    return Usage(e.what());
  }
}
