#include "common/src/storage/s3/credentials.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

namespace eddy::storage::s3 {

namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

/// The whole file, nullopt when it cannot be opened.
std::optional<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Hosts a plain-http container credentials URI may name: loopback and the ECS/EKS agents.
/// Anything else must be https, so that credentials never cross a network in the clear.
bool IsTrustedHttpHost(const std::string& host) {
  return host == "localhost" || host.starts_with("127.") || host == "::1" ||
         host == "169.254.170.2" || host == "169.254.170.23" || host == "fd00:ec2::23";
}

}  // namespace

EnvLookup ProcessEnvironment() {
  return [](std::string_view name) -> std::optional<std::string> {
    const char* v = std::getenv(std::string(name).c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

Result<std::optional<Credentials>> ParseSharedCredentials(std::string_view text,
                                                          std::string_view profile,
                                                          std::string_view file_for_messages) {
  bool in_profile = false;
  bool found = false;
  Credentials c;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = Trim(text.substr(pos, end - pos));
    pos = end + 1;
    if (line.empty() || line.front() == '#' || line.front() == ';') continue;
    if (line.front() == '[') {
      size_t close = line.find(']');
      std::string_view name =
          Trim(line.substr(1, close == std::string_view::npos ? line.size() - 1 : close - 1));
      if (name.starts_with("profile ") || name.starts_with("profile\t")) {
        name = Trim(name.substr(8));
      }
      in_profile = name == profile;
      found = found || in_profile;
      continue;
    }
    if (!in_profile) continue;
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string key = ToLower(Trim(line.substr(0, eq)));
    std::string value(Trim(line.substr(eq + 1)));
    if (key == "aws_access_key_id") {
      c.key.access_key_id = value;
    } else if (key == "aws_secret_access_key") {
      c.key.secret_access_key = value;
    } else if (key == "aws_session_token" || key == "aws_security_token") {
      c.key.session_token = value;
    }
  }
  if (!found) return std::optional<Credentials>();
  if (c.key.access_key_id.empty() || c.key.secret_access_key.empty()) {
    return Status::InvalidArgument(
        "AWS profile '" + std::string(profile) + "' in " + std::string(file_for_messages) +
        " has no aws_access_key_id and aws_secret_access_key (role_arn, sso_* and "
        "credential_process profiles are not supported)");
  }
  c.source = "profile '" + std::string(profile) + "' of " + std::string(file_for_messages);
  return std::optional<Credentials>(std::move(c));
}

Result<std::chrono::system_clock::time_point> ParseIso8601(std::string_view text) {
  std::string s(Trim(text));
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6 ||
      consumed != 19 || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
      minute > 59 || second > 60) {
    return Status::ParseError("'" + s + "' is not an ISO 8601 UTC time");
  }
  std::string_view rest = std::string_view(s).substr(19);
  if (rest.starts_with(".")) {
    rest.remove_prefix(1);
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') rest.remove_prefix(1);
  }
  int offset_minutes = 0;
  if (rest == "Z" || rest == "z") {
    // UTC
  } else if (rest.size() == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':') {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(rest.substr(1)).c_str(), "%2d:%2d", &oh, &om) != 2) {
      return Status::ParseError("'" + s + "' has a bad UTC offset");
    }
    offset_minutes = (rest[0] == '+' ? 1 : -1) * (oh * 60 + om);
  } else {
    return Status::ParseError("'" + s + "' is not an ISO 8601 UTC time");
  }
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  std::time_t t = timegm(&tm);
  return std::chrono::system_clock::from_time_t(t) - std::chrono::minutes(offset_minutes);
}

Result<Credentials> ParseContainerCredentials(std::string_view json) {
  auto doc = nlohmann::json::parse(json.begin(), json.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status::ParseError("container credentials are not a JSON object");
  }
  auto str = [&](const char* name) -> std::string {
    auto it = doc.find(name);
    return it != doc.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  Credentials c;
  c.key.access_key_id = str("AccessKeyId");
  c.key.secret_access_key = str("SecretAccessKey");
  c.key.session_token = str("Token");
  if (c.key.access_key_id.empty() || c.key.secret_access_key.empty()) {
    return Status::ParseError("container credentials lack AccessKeyId or SecretAccessKey");
  }
  std::string expiration = str("Expiration");
  if (!expiration.empty()) {
    EDDY_ASSIGN_OR_RETURN(auto t, ParseIso8601(expiration));
    c.expiration = t;
  }
  return c;
}

Result<std::shared_ptr<CredentialsProvider>> CredentialsProvider::Make(
    const ObjectStoreOptions& options, const EnvLookup& env, TransportFactory transports,
    RetryPolicy retry, Clock clock) {
  std::shared_ptr<CredentialsProvider> p(new CredentialsProvider());
  p->transports_ = std::move(transports);
  p->retry_ = retry;
  p->clock_ = clock ? std::move(clock) : Clock([] { return std::chrono::system_clock::now(); });

  auto use_static = [&](SigningCredentials key, std::string source) {
    p->static_ = Credentials{std::move(key), std::nullopt, source};
    p->source_ = std::move(source);
    return p;
  };

  // 1. The options.
  if (!options.s3_access_key.empty() || !options.s3_secret_key.empty()) {
    if (options.s3_access_key.empty() || options.s3_secret_key.empty()) {
      return Status::InvalidArgument(
          "S3 options set only one of the access key and the secret key; set both or neither");
    }
    return use_static({options.s3_access_key, options.s3_secret_key, options.s3_session_token},
                      "the store options");
  }
  // 2. The environment.
  auto access = env("AWS_ACCESS_KEY_ID");
  auto secret = env("AWS_SECRET_ACCESS_KEY");
  if (access && secret) {
    return use_static({*access, *secret, env("AWS_SESSION_TOKEN").value_or("")},
                      "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
  }
  // 3. The shared credentials file.
  auto explicit_profile = env("AWS_PROFILE");
  std::string profile = explicit_profile.value_or("default");
  std::string file;
  if (auto f = env("AWS_SHARED_CREDENTIALS_FILE")) {
    file = *f;
  } else if (auto home = env("HOME")) {
    file = *home + "/.aws/credentials";
  }
  if (!file.empty()) {
    if (auto text = ReadFile(file)) {
      EDDY_ASSIGN_OR_RETURN(auto creds, ParseSharedCredentials(*text, profile, file));
      if (creds) return use_static(creds->key, creds->source);
      if (explicit_profile) {
        return Status::InvalidArgument("AWS_PROFILE names profile '" + profile +
                                       "', which is not in " + file);
      }
    } else if (explicit_profile) {
      return Status::InvalidArgument("AWS_PROFILE names profile '" + profile +
                                     "', but the credentials file " + file + " cannot be read");
    }
  }
  // 4. The container credentials endpoint (ECS task roles, EKS pod identity).
  std::string uri;
  if (auto full = env("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
    uri = *full;
  } else if (auto rel = env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) {
    uri = "http://169.254.170.2" + (rel->starts_with("/") ? *rel : "/" + *rel);
  }
  if (!uri.empty()) {
    EDDY_ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl(uri));
    if (url.scheme == "http" && !IsTrustedHttpHost(url.host)) {
      return Status::InvalidArgument("container credentials URI '" + uri +
                                     "' must be https, or http to a loopback address or the "
                                     "ECS/EKS agent (169.254.170.2, 169.254.170.23)");
    }
    p->endpoint_base_ = url.Base();
    p->endpoint_path_ = url.path_and_query;
    p->token_ = env("AWS_CONTAINER_AUTHORIZATION_TOKEN").value_or("");
    p->token_file_ = env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").value_or("");
    p->source_ = "the container credentials endpoint " + uri;
    return p;
  }
  return Status::InvalidArgument(
      "no AWS credentials found for s3://: set the store's access and secret key options, or "
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '" +
      profile + "' in " + (file.empty() ? std::string("~/.aws/credentials") : file) +
      " (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE), or AWS_CONTAINER_CREDENTIALS_FULL_URI / "
      "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
}

Result<Credentials> CredentialsProvider::Get() {
  if (static_) return *static_;
  std::lock_guard<std::mutex> lock(mu_);
  auto now = clock_();
  if (cached_ && (!cached_->expiration || now + kCredentialsRefreshMargin < *cached_->expiration)) {
    return *cached_;
  }
  auto fresh = Fetch();
  if (fresh.ok()) {
    cached_ = *fresh;
    return fresh;
  }
  // A failed refresh is harmless while the old credentials still work.
  if (cached_ && cached_->expiration && now < *cached_->expiration) return *cached_;
  return fresh.status();
}

void CredentialsProvider::Invalidate() {
  if (static_) return;
  std::lock_guard<std::mutex> lock(mu_);
  cached_.reset();
}

Result<Credentials> CredentialsProvider::Fetch() {
  if (!transport_) {
    EDDY_ASSIGN_OR_RETURN(transport_, transports_(endpoint_base_));
  }
  HttpRequest req;
  req.method = "GET";
  req.path_and_query = endpoint_path_;
  std::string token = token_;
  if (!token_file_.empty()) {
    // Re-read on every fetch: the agent rotates the token file.
    auto text = ReadFile(token_file_);
    if (!text) {
      return Status::IOError("cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE '" + token_file_ +
                             "'");
    }
    token = std::string(Trim(*text));
  }
  if (!token.empty()) req.headers.emplace_back("Authorization", token);

  Status last;
  int attempts = std::max(retry_.max_attempts, 1);
  for (int attempt = 1; attempt <= attempts; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(retry_.Backoff(attempt - 1, JitterSample()));
    auto resp = transport_->Send(req);
    if (!resp.ok()) {
      last = resp.status();
      continue;
    }
    if (resp->status == 200) {
      auto creds = ParseContainerCredentials(resp->body);
      if (!creds.ok()) {
        return Status::IOError("bad answer from " + source_ + ": " + creds.status().message());
      }
      creds->source = source_;
      return creds;
    }
    std::string body = resp->body.substr(0, 200);
    last = Status::IOError("HTTP " + std::to_string(resp->status) + ": " + body);
    if (!IsRetryableHttp(resp->status, "")) {
      return Status::InvalidArgument("the container credentials endpoint refused: HTTP " +
                                     std::to_string(resp->status) + " " + body);
    }
  }
  return Status(last.code(), "cannot get AWS credentials from " + source_ + " after " +
                                 std::to_string(attempts) + " attempts: " + last.message());
}

}  // namespace eddy::storage::s3
