#pragma once

#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include "eddy/functions.h"
#include "eddy/row.h"
#include "eddy/serialization.h"

namespace eddy {

/// Serializes whole lines to a FILE* shared by several sink subtasks so that lines never
/// interleave. Threading: any thread; one lock per write of a batch of lines.
class LineWriter {
 public:
  static LineWriter& Stdout();
  explicit LineWriter(std::FILE* f) : f_(f) {}
  void Write(std::string_view lines);

 private:
  std::FILE* f_;
  std::mutex mu_;
};

/// Buffers formatted lines and hands them to a LineWriter in batches (at 16 KiB, every 50 ms, and
/// when the input ends).
class BatchedLines {
 public:
  explicit BatchedLines(LineWriter* w) : w_(w) {}
  ~BatchedLines() { Flush(); }
  std::string& buffer() { return buf_; }
  void LineDone() {
    buf_.push_back('\n');
    auto now = std::chrono::steady_clock::now();
    if (buf_.size() >= 16384 || now - last_ >= std::chrono::milliseconds(50)) {
      Flush();
      last_ = now;
    }
  }
  void Flush() {
    if (!buf_.empty()) w_->Write(buf_);
    buf_.clear();
  }

 private:
  LineWriter* w_;
  std::string buf_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

/// Appends the text form of a value: JSON for Rows with a schema, FormatValue otherwise.
template <class T>
void AppendText(std::string& out, const T& v, const Schema* schema) {
  if constexpr (std::is_same_v<T, Row>) {
    if (schema) {
      v.AppendJson(schema, out);
      return;
    }
  }
  (void)schema;
  out += FormatValue(v);
}

/// print(): one line per element, "prefix> value" (prefix omitted when empty).
template <class T>
class PrintSinkFunction final : public SinkFunction<T> {
 public:
  PrintSinkFunction(std::string prefix, SchemaPtr schema, LineWriter* w = &LineWriter::Stdout())
      : prefix_(std::move(prefix)), schema_(std::move(schema)), lines_(w) {}
  void Invoke(const T& v, Timestamp) override {
    std::string& b = lines_.buffer();
    if (!prefix_.empty()) {
      b += prefix_;
      b += "> ";
    }
    AppendText(b, v, schema_.get());
    lines_.LineDone();
  }
  void Finish() override { lines_.Flush(); }
  void Flush() override { lines_.Flush(); }
  void Close() override { lines_.Flush(); }

 private:
  std::string prefix_;
  SchemaPtr schema_;
  BatchedLines lines_;
};

}  // namespace eddy
