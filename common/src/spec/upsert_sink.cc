#include "spec/upsert_sink.h"

#include <cstdio>

namespace eddy {

namespace {

constexpr size_t kMaxNameBytes = 200;
constexpr size_t kKeptNameBytes = 160;

uint64_t Fnv1a64(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

void AppendEncoded(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (unsigned char c : text) {
    bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '.' || c == '-';
    if (plain) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
}

}  // namespace

void UpsertSinkFunction::AppendObjectName(const Row& row, const std::vector<int>& key_fields,
                                          std::string_view extension, std::string& out) {
  const size_t start = out.size();
  static const Value kNull;
  for (size_t i = 0; i < key_fields.size(); ++i) {
    if (i > 0) out.push_back(',');
    auto f = static_cast<size_t>(key_fields[i]);
    const Value& v = f < row.size() ? row.Get(f) : kNull;
    if (v.is_null()) {
      out.push_back('~');
      continue;
    }
    if (v.type() == DataType::kString || v.type() == DataType::kBytes) {
      if (v.string_value().empty()) {
        out.push_back('_');
      } else {
        AppendEncoded(v.string_value(), out);
      }
      continue;
    }
    AppendEncoded(v.ToString(), out);
  }
  if (out.size() - start > kMaxNameBytes) {
    const uint64_t h = Fnv1a64(std::string_view(out).substr(start));
    out.resize(start + kKeptNameBytes);
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
    out += '#';
    out += hex;
  }
  out.append(extension);
}

Status UpsertSinkFunction::Open(RuntimeContext& ctx) {
  ctx_ = &ctx;
  EDDY_ASSIGN_OR_RETURN(store_, storage::OpenObjectStore(dir_));
  EDDY_ASSIGN_OR_RETURN(fmt_, RowFormatter::Make(opts_, schema_));
  return Status::Ok();
}

void UpsertSinkFunction::Invoke(const Row& v, Timestamp) {
  name_.clear();
  AppendObjectName(v, key_fields_, ext_, name_);
  auto it = buffered_.find(std::string_view(name_));
  if (it == buffered_.end()) it = buffered_.emplace(name_, std::string()).first;
  std::string& text = it->second;
  text.clear();
  fmt_->Append(v, text);
  text.push_back('\n');
  if (buffered_.size() >= max_buffered_) WriteAll();
}

bool UpsertSinkFunction::WriteAll() {
  for (auto it = buffered_.begin(); it != buffered_.end();) {
    Status st = store_->Put(it->first, it->second);
    if (!st.ok()) {
      ctx_->Fail(st.WithContext("upsert sink: writing " + store_->Uri(it->first)));
      return false;
    }
    it = buffered_.erase(it);
  }
  return true;
}

void UpsertSinkFunction::Flush() {
  WriteAll();
}

void UpsertSinkFunction::Finish() {
  WriteAll();
}

void UpsertSinkFunction::PrepareSnapshotPreBarrier(CheckpointId) {
  WriteAll();
}

}  // namespace eddy
