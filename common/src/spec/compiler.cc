// Job spec -> StreamGraph. One pass over sources, steps and sinks in document order; every error
// names the file, line, column and the path of the offending field.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "eddy/expr.h"
#include "eddy/spec/formats.h"
#include "eddy/spec/job_spec.h"
#include "eddy/spec/row_ops.h"
#include "spec/transactional_sink.h"
#include "spec/upsert_sink.h"

namespace eddy {

Result<Duration> ParseDuration(std::string_view t) {
  std::string_view s = t;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0) {
    return Status::InvalidArgument("bad duration '" + std::string(t) +
                                   "' (expected e.g. 500ms, 3s, 1m, 2h, 1d)");
  }
  std::string_view unit(p, static_cast<size_t>(s.data() + s.size() - p));
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  int64_t mult = 0;
  if (unit.empty() || unit == "ms")
    mult = 1;
  else if (unit == "s" || unit == "sec" || unit == "seconds")
    mult = 1000;
  else if (unit == "m" || unit == "min" || unit == "minutes")
    mult = 60'000;
  else if (unit == "h" || unit == "hours")
    mult = 3'600'000;
  else if (unit == "d" || unit == "days")
    mult = 86'400'000;
  else
    return Status::InvalidArgument("bad duration unit in '" + std::string(t) +
                                   "' (use ms, s, m, h or d)");
  return Duration::Millis(n * mult);
}

namespace {

/// A named stream of the job: its DataStream and schema, and its side outputs.
struct NamedStream {
  DataStream<Row> stream;
  SchemaPtr schema;
  bool has_timestamps = false;
  struct Side {
    int tag;
    SchemaPtr schema;
    bool has_timestamps;
  };
  std::map<std::string, Side> sides;
};

/// Clones an Expression whenever it is copied, so that every subtask's copy of a std::function or
/// operator gets its own evaluation scratch.
struct ExprHolder {
  std::unique_ptr<Expression> e;
  explicit ExprHolder(std::unique_ptr<Expression> x) : e(std::move(x)) {}
  ExprHolder(const ExprHolder& o) : e(o.e->Clone()) {}
  ExprHolder& operator=(const ExprHolder& o) {
    e = o.e->Clone();
    return *this;
  }
};

/// The output file of a file sink, shared by the sink's subtasks and owned by the job's graph:
/// opened (and truncated) when the first subtask opens, closed when the graph goes away, so
/// `eddy plan`/`validate` never touch it and every run starts a fresh file.
class SharedOutputFile {
 public:
  SharedOutputFile(std::string path, bool append) : path_(std::move(path)), append_(append) {}
  ~SharedOutputFile() {
    writer_.reset();
    if (file_) std::fclose(file_);
  }
  Result<LineWriter*> Open() {
    std::lock_guard lock(mu_);
    if (writer_) return writer_.get();
    std::error_code ec;
    auto parent = std::filesystem::path(path_).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    file_ = std::fopen(path_.c_str(), append_ ? "a" : "w");
    if (!file_)
      return Status::IOError("file sink: cannot open '" + path_ +
                             "' for writing: " + std::strerror(errno));
    writer_ = std::make_unique<LineWriter>(file_);
    return writer_.get();
  }

 private:
  std::string path_;
  bool append_;
  std::mutex mu_;
  std::FILE* file_ = nullptr;
  std::unique_ptr<LineWriter> writer_;
};

/// Drops every row (Flink's DiscardingSink); `delayPerRecord` throttles it, which makes a
/// deliberately slow consumer for trying out back-pressure.
class DiscardSinkFunction final : public SinkFunction<Row> {
 public:
  explicit DiscardSinkFunction(Duration delay) : delay_(delay) {}
  void Invoke(const Row&, Timestamp) override {
    if (delay_.millis() > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(delay_.millis()));
  }

 private:
  Duration delay_;
};

class FileSinkFunction final : public SinkFunction<Row> {
 public:
  FileSinkFunction(std::shared_ptr<SharedOutputFile> file, FormatOptions opts, SchemaPtr schema)
      : file_(std::move(file)), opts_(opts), schema_(std::move(schema)) {}
  Status Open(RuntimeContext&) override {
    EDDY_ASSIGN_OR_RETURN(LineWriter * w, file_->Open());
    lines_.emplace(w);
    auto f = RowFormatter::Make(opts_, schema_);
    if (!f.ok()) return f.status();
    fmt_ = std::move(*f);
    return Status::Ok();
  }
  void Invoke(const Row& v, Timestamp) override {
    fmt_->Append(v, lines_->buffer());
    lines_->LineDone();
  }
  void Finish() override { lines_->Flush(); }
  void Flush() override {
    if (lines_) lines_->Flush();
  }
  void Close() override {
    if (lines_) lines_->Flush();
  }

 private:
  std::shared_ptr<SharedOutputFile> file_;
  std::optional<BatchedLines> lines_;
  FormatOptions opts_;
  SchemaPtr schema_;
  std::unique_ptr<RowFormatter> fmt_;
};

class ParserAdapter final : public LineParserBase {
 public:
  explicit ParserAdapter(std::unique_ptr<RowParser> p) : p_(std::move(p)) {}
  Status Parse(std::string_view line, Row& out) override { return p_->Parse(line, out); }

 private:
  std::unique_ptr<RowParser> p_;
};

int NextTag() {
  static std::atomic<int> next{1'000'000};
  return next++;
}

/// Join keys: the key fields, each cast to the type both sides compare in (an int64 id meets a
/// timestamp as int64, an int64 meets a double as double), serialized like RowKeySelector so
/// that equal keys give equal bytes on both sides. Shared by all subtasks: stateless.
class JoinKeySelector final : public KeySelector<Row> {
 public:
  JoinKeySelector(std::vector<int> fields, std::vector<DataType> types)
      : fields_(std::move(fields)), types_(std::move(types)) {}
  void KeyBytes(const Row& row, std::string& out) const override {
    out.clear();
    ByteWriter w(out);
    w.PutVarU64(fields_.size());
    static const Value kNull;
    for (size_t i = 0; i < fields_.size(); ++i) {
      auto f = static_cast<size_t>(fields_[i]);
      const Value& v = f < row.size() ? row.Get(f) : kNull;
      if (types_[i] == DataType::kInt64 && v.type() == DataType::kTimestamp) {
        Serializer<Value>::Write(Value::Int(v.int_value()), w);
      } else if (types_[i] == DataType::kDouble && v.type() != DataType::kDouble &&
                 v.is_numeric()) {
        Serializer<Value>::Write(Value::Double(v.AsDouble()), w);
      } else {
        Serializer<Value>::Write(v, w);
      }
    }
  }

 private:
  std::vector<int> fields_;
  std::vector<DataType> types_;
};

/// Writes left ++ right into `out` (the join step's output: all left fields, then all right ones).
void ConcatRows(const Row& left, const Row& right, size_t nl, size_t nr, Row& out) {
  static const Value kNull;
  out.Resize(nl + nr);
  for (size_t i = 0; i < nl; ++i) out.Mutable(i) = i < left.size() ? left.Get(i) : kNull;
  for (size_t i = 0; i < nr; ++i) out.Mutable(nl + i) = i < right.size() ? right.Get(i) : kNull;
}

/// Window join of rows; copied per subtask (the output row is scratch).
struct RowPairJoiner {
  size_t nl = 0;
  size_t nr = 0;
  Row row;
  void operator()(const Row& left, const Row& right, Collector<Row>& out) {
    ConcatRows(left, right, nl, nr, row);
    out.Collect(row);
  }
};

class RowIntervalJoinFunction final : public ProcessJoinFunction<Row, Row, Row> {
 public:
  RowIntervalJoinFunction(size_t nl, size_t nr) : nl_(nl), nr_(nr) {}
  void ProcessElement(const Row& left, const Row& right, Context&, Collector<Row>& out) override {
    ConcatRows(left, right, nl_, nr_, row_);
    out.Collect(row_);
  }

 private:
  size_t nl_, nr_;
  Row row_;
};

class Compiler {
 public:
  Compiler(std::string file, JobSpecOptions options)
      : file_(std::move(file)), options_(std::move(options)) {}

  Result<CompiledJob> Compile(const YAML::Node& root) {
    if (!root.IsMap())
      return Err(root, "", "a job spec is a mapping with name, sources, steps and sinks");
    EDDY_RETURN_NOT_OK(
        CheckKeys(root, "",
                  {"name", "parallelism", "maxParallelism", "time", "bufferTimeout", "chaining",
                   "sources", "steps", "sinks", "sql", "library", "restartStrategy",
                   "latencyTrackingInterval", "stateBackend", "checkpointing", "savepointDir"}));
    if (root["sql"] || root["library"]) {
      return Err(root["sql"] ? root["sql"] : root["library"], root["sql"] ? "sql" : "library",
                 "not supported yet by this version of Eddy (use sources/steps/sinks)");
    }
    job_.env = std::make_unique<StreamExecutionEnvironment>();
    env_ = job_.env.get();
    if (!root["name"]) return Err(root, "name", "is required");
    EDDY_ASSIGN_OR_RETURN(job_.name, String(root["name"], "name", true));
    env_->SetJobName(job_.name);
    int par = 1;
    if (root["parallelism"]) {
      EDDY_ASSIGN_OR_RETURN(par, Int(root["parallelism"], "parallelism", 1, 32768));
    }
    if (options_.parallelism > 0) par = options_.parallelism;
    env_->SetParallelism(par);
    if (root["maxParallelism"]) {
      EDDY_ASSIGN_OR_RETURN(int mp, Int(root["maxParallelism"], "maxParallelism", 1, 32768));
      if (mp < par)
        return Err(root["maxParallelism"], "maxParallelism",
                   "must be >= parallelism (" + std::to_string(par) + ")");
      env_->SetMaxParallelism(mp);
    }
    if (root["time"]) {
      EDDY_ASSIGN_OR_RETURN(std::string t, String(root["time"], "time", true));
      if (t == "event")
        time_ = TimeCharacteristic::kEventTime;
      else if (t == "processing")
        time_ = TimeCharacteristic::kProcessingTime;
      else if (t == "ingestion")
        time_ = TimeCharacteristic::kIngestionTime;
      else
        return Err(root["time"], "time", "must be event, processing or ingestion");
    }
    env_->SetStreamTimeCharacteristic(time_);
    if (root["bufferTimeout"]) {
      EDDY_ASSIGN_OR_RETURN(Duration d, Dur(root["bufferTimeout"], "bufferTimeout"));
      env_->SetBufferTimeout(d);
    }
    if (root["latencyTrackingInterval"]) {
      EDDY_ASSIGN_OR_RETURN(Duration d,
                            Dur(root["latencyTrackingInterval"], "latencyTrackingInterval"));
      env_->graph().latency_tracking_interval = d;
    }
    if (root["stateBackend"]) {
      EDDY_ASSIGN_OR_RETURN(std::string b, String(root["stateBackend"], "stateBackend", true));
      auto kind = ParseStateBackendKind(b);
      if (!kind) return Err(root["stateBackend"], "stateBackend", "must be heap or rocksdb");
      env_->graph().state_backend = *kind;
    }
    if (root["chaining"]) {
      EDDY_ASSIGN_OR_RETURN(bool c, Bool(root["chaining"], "chaining"));
      if (!c) env_->DisableOperatorChaining();
    }
    for (const char* section : {"sources", "sinks"}) {
      if (!root[section] || !root[section].IsSequence() || root[section].size() == 0) {
        return Err(root[section] ? root[section] : root, section,
                   std::string("at least one entry is required"));
      }
    }
    for (size_t i = 0; i < root["sources"].size(); ++i) {
      EDDY_RETURN_NOT_OK(CompileSource(root["sources"][i], "sources[" + std::to_string(i) + "]"));
    }
    if (root["steps"]) {
      if (!root["steps"].IsSequence()) return Err(root["steps"], "steps", "must be a list");
      for (size_t i = 0; i < root["steps"].size(); ++i) {
        EDDY_RETURN_NOT_OK(CompileStep(root["steps"][i], "steps[" + std::to_string(i) + "]"));
      }
    }
    for (size_t i = 0; i < root["sinks"].size(); ++i) {
      EDDY_RETURN_NOT_OK(CompileSink(root["sinks"][i], "sinks[" + std::to_string(i) + "]"));
    }
    auto st = env_->graph().Finalize();
    if (!st.ok()) return st.WithContext(file_);
    for (const auto& [path, f] : output_files_) job_.output_files.push_back(path);
    return std::move(job_);
  }

 private:
  // ---- error reporting and typed field access ----
  Status Err(const YAML::Node& n, const std::string& path, const std::string& msg) const {
    std::string where = file_;
    if (n.IsDefined() && n.Mark().line >= 0) {
      where += ":" + std::to_string(n.Mark().line + 1) + ":" + std::to_string(n.Mark().column + 1);
    }
    return Status::InvalidArgument(where + ": " + (path.empty() ? "" : path + ": ") + msg);
  }
  Status CheckKeys(const YAML::Node& n, const std::string& path,
                   std::initializer_list<const char*> allowed) const {
    if (!n.IsMap()) return Err(n, path, "must be a mapping");
    for (auto it = n.begin(); it != n.end(); ++it) {
      std::string k = it->first.as<std::string>();
      bool ok = false;
      for (const char* a : allowed) ok = ok || k == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return Err(it->first, path, "unknown key '" + k + "' (expected one of: " + list + ")");
      }
    }
    return Status::Ok();
  }
  Result<std::string> String(const YAML::Node& n, const std::string& path, bool required) const {
    if (!n) {
      if (required) return Err(n, path, "is required");
      return std::string();
    }
    if (!n.IsScalar()) return Err(n, path, "must be a string");
    return n.Scalar();
  }
  Result<int> Int(const YAML::Node& n, const std::string& path, int lo, int hi) const {
    int v = 0;
    if (!n.IsScalar() || !YAML::convert<int>::decode(n, v))
      return Err(n, path, "must be an integer");
    if (v < lo || v > hi) {
      return Err(n, path, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    }
    return v;
  }
  Result<int64_t> Int64(const YAML::Node& n, const std::string& path) const {
    int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<int64_t>::decode(n, v))
      return Err(n, path, "must be an integer");
    return v;
  }
  Result<double> Double(const YAML::Node& n, const std::string& path) const {
    double v = 0;
    if (!n.IsScalar() || !YAML::convert<double>::decode(n, v))
      return Err(n, path, "must be a number");
    return v;
  }
  Result<bool> Bool(const YAML::Node& n, const std::string& path) const {
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v))
      return Err(n, path, "must be true or false");
    return v;
  }
  Result<Duration> Dur(const YAML::Node& n, const std::string& path) const {
    if (!n.IsScalar()) return Err(n, path, "must be a duration such as 500ms, 3s or 1m");
    auto d = ParseDuration(n.Scalar());
    if (!d.ok()) return Err(n, path, d.status().message());
    return *d;
  }
  Result<std::string> Name(const YAML::Node& entry, const std::string& path) {
    if (entry.IsMap() && !entry["name"]) return Err(entry, path + ".name", "is required");
    EDDY_ASSIGN_OR_RETURN(std::string name, String(entry["name"], path + ".name", true));
    if (name.empty() || name.find('.') != std::string::npos) {
      return Err(entry["name"], path + ".name", "must be non-empty and contain no '.'");
    }
    if (streams_.count(name) || sink_names_.count(name)) {
      return Err(entry["name"], path + ".name", "'" + name + "' is already defined");
    }
    return name;
  }
  std::string Resolve(const std::string& p) const {
    if (p.empty() || p[0] == '/') return p;
    std::string base = options_.base_dir;
    if (base.empty()) base = std::filesystem::path(file_).parent_path().string();
    return base.empty() ? p : (std::filesystem::path(base) / p).string();
  }
  Result<std::unique_ptr<Expression>> Expr(const YAML::Node& n, const std::string& path,
                                           const Schema& schema) const {
    if (!n.IsScalar()) return Err(n, path, "must be an expression string");
    auto e = CompileExpression(n.Scalar(), schema);
    if (!e.ok()) return Err(n, path, e.status().message());
    return std::move(*e);
  }
  /// from: "name" or "name.side"
  Result<NamedStream> From(const YAML::Node& n, const std::string& path) const {
    EDDY_ASSIGN_OR_RETURN(std::string from, String(n, path, true));
    std::string base = from, side;
    if (auto dot = from.find('.'); dot != std::string::npos) {
      base = from.substr(0, dot);
      side = from.substr(dot + 1);
    }
    auto it = streams_.find(base);
    if (it == streams_.end()) {
      std::string known;
      for (const auto& [k, v] : streams_) known += (known.empty() ? "" : ", ") + k;
      return Err(n, path,
                 "unknown stream '" + base + "' (defined so far: " + known +
                     "; a step can only read streams defined above it)");
    }
    if (side.empty()) return it->second;
    auto s = it->second.sides.find(side);
    if (s == it->second.sides.end()) {
      std::string known;
      for (const auto& [k, v] : it->second.sides) known += (known.empty() ? "" : ", ") + k;
      return Err(n, path,
                 "'" + base + "' has no side output '" + side + "'" +
                     (known.empty() ? "" : " (it has: " + known + ")"));
    }
    NamedStream ns{it->second.stream.SideOutputStream(s->second.tag),
                   s->second.schema,
                   s->second.has_timestamps,
                   {}};
    return ns;
  }
  Result<std::shared_ptr<Schema>> ParseSchema(const YAML::Node& n, const std::string& path) const {
    if (!n.IsMap() || n.size() == 0)
      return Err(n, path, "must map field names to types, e.g. {id: string, ts: int64}");
    std::vector<Field> fields;
    std::set<std::string> seen;
    for (auto it = n.begin(); it != n.end(); ++it) {
      Field f;
      f.name = it->first.as<std::string>();
      std::string type = it->second.IsScalar() ? it->second.Scalar() : "";
      if (!type.empty() && type.back() == '!') {
        f.nullable = false;
        type.pop_back();
      }
      auto t = ParseDataType(type);
      if (!t.ok()) return Err(it->second, path + "." + f.name, t.status().message());
      if (!seen.insert(f.name).second)
        return Err(it->first, path, "duplicate field '" + f.name + "'");
      f.type = *t;
      fields.push_back(std::move(f));
    }
    return std::make_shared<Schema>(std::move(fields));
  }
  Status ApplyCommon(const YAML::Node& entry, const std::string& path, DataStream<Row>& s) {
    if (entry["parallelism"]) {
      EDDY_ASSIGN_OR_RETURN(int p, Int(entry["parallelism"], path + ".parallelism", 1, 32768));
      s.SetParallelism(p);
    }
    if (entry["uid"]) {
      EDDY_ASSIGN_OR_RETURN(std::string uid, String(entry["uid"], path + ".uid", true));
      s.Uid(uid);
    }
    if (entry["slotSharingGroup"]) {
      EDDY_ASSIGN_OR_RETURN(std::string g,
                            String(entry["slotSharingGroup"], path + ".slotSharingGroup", true));
      s.SlotSharingGroup(g);
    }
    if (entry["chaining"]) {
      EDDY_ASSIGN_OR_RETURN(std::string c, String(entry["chaining"], path + ".chaining", true));
      if (c == "never" || c == "false")
        s.DisableChaining();
      else if (c == "new-chain")
        s.StartNewChain();
      else if (c != "always" && c != "true")
        return Err(entry["chaining"], path + ".chaining", "must be always, never or new-chain");
    }
    return Status::Ok();
  }

  // ---- sources ----
  Status CompileSource(const YAML::Node& n, const std::string& path) {
    EDDY_RETURN_NOT_OK(
        CheckKeys(n, path,
                  {"name", "file", "generator", "socket", "stdin", "schema", "timestamp",
                   "watermark", "parallelism", "uid", "onError", "chaining", "slotSharingGroup"}));
    EDDY_ASSIGN_OR_RETURN(std::string name, Name(n, path));
    const std::string p = path + " (" + name + ")";
    int kinds = (n["file"] ? 1 : 0) + (n["generator"] ? 1 : 0) + (n["socket"] ? 1 : 0) +
                (n["stdin"] ? 1 : 0);
    if (kinds != 1) return Err(n, p, "needs exactly one of file, generator, socket, stdin");
    int parallelism = env_->parallelism();
    if (n["parallelism"]) {
      EDDY_ASSIGN_OR_RETURN(parallelism, Int(n["parallelism"], p + ".parallelism", 1, 32768));
    }

    NamedStream out;
    if (n["generator"]) {
      EDDY_ASSIGN_OR_RETURN(out,
                            GeneratorSource(n["generator"], p + ".generator", name, parallelism));
    } else {
      const YAML::Node& k = n["file"] ? n["file"] : n["socket"] ? n["socket"] : n["stdin"];
      std::string kp = p + (n["file"] ? ".file" : n["socket"] ? ".socket" : ".stdin");
      EDDY_RETURN_NOT_OK(CheckKeys(k.IsNull() ? YAML::Node(YAML::NodeType::Map) : k, kp,
                                   {"path", "format", "delimiter", "header", "host", "port"}));
      FormatOptions fo;
      if (k["format"]) {
        auto f = ParseRecordFormat(k["format"].Scalar());
        if (!f.ok()) return Err(k["format"], kp + ".format", f.status().message());
        fo.format = *f;
      } else if (!n["file"]) {
        fo.format = RecordFormat::kText;
      }
      if (k["delimiter"]) {
        EDDY_ASSIGN_OR_RETURN(std::string d, String(k["delimiter"], kp + ".delimiter", true));
        if (d.size() != 1) return Err(k["delimiter"], kp + ".delimiter", "must be one character");
        fo.delimiter = d[0];
      }
      if (k["header"]) {
        EDDY_ASSIGN_OR_RETURN(fo.header, Bool(k["header"], kp + ".header"));
      }
      std::shared_ptr<Schema> schema;
      if (n["schema"]) {
        EDDY_ASSIGN_OR_RETURN(schema, ParseSchema(n["schema"], p + ".schema"));
      } else if (fo.format == RecordFormat::kText) {
        schema = std::make_shared<Schema>(std::vector<Field>{{"line", DataType::kString, false}});
      } else {
        return Err(n, p, "schema is required for csv and json formats");
      }
      if (fo.format == RecordFormat::kText &&
          (schema->size() != 1 || schema->field(0).type != DataType::kString)) {
        return Err(n["schema"], p + ".schema", "text format needs exactly one string field");
      }
      auto probe = RowParser::Make(fo, schema);
      if (!probe.ok()) return Err(k, kp, probe.status().message());
      DataStream<std::string> lines;
      if (n["file"]) {
        EDDY_ASSIGN_OR_RETURN(std::string fpath, String(k["path"], kp + ".path", true));
        fpath = Resolve(fpath);
        if (!std::filesystem::exists(fpath))
          return Err(k["path"], kp + ".path", "file '" + fpath + "' does not exist");
        lines = env_->FromSource<std::string>(
            [fpath] { return std::make_unique<TextFileReader>(fpath); }, name,
            MakeTypeInfo<std::string>(), parallelism);
      } else if (n["socket"]) {
        std::string host = "localhost";
        if (k["host"]) {
          EDDY_ASSIGN_OR_RETURN(host, String(k["host"], kp + ".host", true));
        }
        if (!k["port"]) return Err(k, kp, "port is required");
        EDDY_ASSIGN_OR_RETURN(int port, Int(k["port"], kp + ".port", 1, 65535));
        lines = env_->FromSource<std::string>(
            [host, port] { return std::make_unique<SocketTextReader>(host, port); }, name,
            MakeTypeInfo<std::string>(), 1);
      } else {
        lines = env_->FromSource<std::string>([] { return std::make_unique<StdinReader>(); }, name,
                                              MakeTypeInfo<std::string>(), 1);
      }
      lines.Uid(name + "-reader");
      BadRecordPolicy policy = BadRecordPolicy::kSkip;
      if (n["onError"]) {
        EDDY_ASSIGN_OR_RETURN(std::string pol, String(n["onError"], p + ".onError", true));
        if (pol == "skip")
          policy = BadRecordPolicy::kSkip;
        else if (pol == "fail")
          policy = BadRecordPolicy::kFail;
        else if (pol == "dead-letter")
          policy = BadRecordPolicy::kDeadLetter;
        else
          return Err(n["onError"], p + ".onError", "must be skip, fail or dead-letter");
      }
      int dl_tag = NextTag();
      bool header = fo.header;
      SchemaPtr sp = schema;
      auto parsed = lines.Transform<Row>(
          "Parse(" +
              std::string(fo.format == RecordFormat::kCsv    ? "csv"
                          : fo.format == RecordFormat::kJson ? "json"
                                                             : "text") +
              ")",
          [fo, sp, name, policy, dl_tag, header] {
            auto parser = RowParser::Make(fo, sp);
            return std::make_unique<RowParseOperator>(
                std::make_unique<ParserAdapter>(std::move(*parser)), name, policy, dl_tag, header);
          },
          MakeTypeInfo<Row>(schema));
      parsed.SetParallelism(lines.node().parallelism);
      out = NamedStream{parsed, schema, false, {}};
      if (policy == BadRecordPolicy::kDeadLetter) {
        parsed.DeclareSideOutput(dl_tag, "errors", MakeTypeInfo<Row>(DeadLetterSchema()));
        out.sides["errors"] = {dl_tag, DeadLetterSchema(), false};
      }
    }
    EDDY_RETURN_NOT_OK(AssignTimestamps(n, p, out));
    streams_[name] = out;
    return Status::Ok();
  }

  Result<NamedStream> GeneratorSource(const YAML::Node& g, const std::string& path,
                                      const std::string& name, int parallelism) {
    EDDY_RETURN_NOT_OK(CheckKeys(g, path, {"count", "rate", "fields"}));
    int64_t count = -1;
    if (g["count"]) {
      EDDY_ASSIGN_OR_RETURN(count, Int64(g["count"], path + ".count"));
    }
    double rate = 0;
    if (g["rate"]) {
      EDDY_ASSIGN_OR_RETURN(rate, Double(g["rate"], path + ".rate"));
    }
    if (!g["fields"] || !g["fields"].IsMap() || g["fields"].size() == 0) {
      return Err(
          g, path,
          "fields is required: a mapping of field name to an expression over n (0, 1, 2, ...)");
    }
    Schema input({{"n", DataType::kInt64, false}});
    std::vector<Field> fields;
    auto exprs = std::make_shared<std::vector<std::shared_ptr<const Expression>>>();
    for (auto it = g["fields"].begin(); it != g["fields"].end(); ++it) {
      std::string f = it->first.as<std::string>();
      EDDY_ASSIGN_OR_RETURN(auto e, Expr(it->second, path + ".fields." + f, input));
      fields.push_back(
          {f, e->result_type() == DataType::kNull ? DataType::kString : e->result_type(), true});
      exprs->push_back(std::shared_ptr<const Expression>(std::move(e)));
    }
    auto schema = std::make_shared<Schema>(std::move(fields));
    double per_subtask = rate > 0 ? rate / parallelism : 0;
    auto make = [exprs, count, per_subtask]() -> std::unique_ptr<SourceReader<Row>> {
      struct Gen {
        std::vector<std::unique_ptr<Expression>> e;
        Row in{1};
      };
      auto gen = std::make_shared<Gen>();
      for (const auto& p : *exprs) gen->e.push_back(p->Clone());
      return std::make_unique<GeneratorReader<Row>>(
          [gen](int64_t n, Row& out) {
            gen->in.Mutable(0).SetInt(n);
            out.Resize(gen->e.size());
            for (size_t i = 0; i < gen->e.size(); ++i) {
              if (!gen->e[i]->Eval(gen->in, out.Mutable(i)).ok()) out.Mutable(i).SetNull();
            }
          },
          count, per_subtask);
    };
    auto s = env_->FromSource<Row>(make, name, MakeTypeInfo<Row>(schema), parallelism);
    return NamedStream{s, schema, false, {}};
  }

  Status AssignTimestamps(const YAML::Node& n, const std::string& p, NamedStream& out) {
    WatermarkStrategy<Row> ws;
    if (n["watermark"]) {
      EDDY_RETURN_NOT_OK(CheckKeys(n["watermark"], p + ".watermark",
                                   {"maxOutOfOrderness", "idleness", "interval"}));
    }
    const YAML::Node wm = n["watermark"];
    Duration ooo;
    if (wm && wm["maxOutOfOrderness"]) {
      EDDY_ASSIGN_OR_RETURN(ooo, Dur(wm["maxOutOfOrderness"], p + ".watermark.maxOutOfOrderness"));
    }
    if (time_ == TimeCharacteristic::kEventTime) {
      if (!n["timestamp"]) {
        if (wm) return Err(wm, p + ".watermark", "needs a timestamp expression (timestamp: ...)");
        return Status::Ok();
      }
      EDDY_ASSIGN_OR_RETURN(auto e, Expr(n["timestamp"], p + ".timestamp", *out.schema));
      if (e->result_type() != DataType::kInt64 && e->result_type() != DataType::kTimestamp &&
          e->result_type() != DataType::kDouble) {
        return Err(n["timestamp"], p + ".timestamp",
                   "must be a number of epoch milliseconds or a timestamp");
      }
      ws = WatermarkStrategy<Row>::ForBoundedOutOfOrderness(ooo);
      ExprHolder h(std::move(e));
      ws.timestamp_assigner = [h](const Row& r) mutable {
        Value v;
        if (!h.e->Eval(r, v).ok() || v.is_null()) return Timestamp::Min();
        return Timestamp(v.AsInt());
      };
    } else if (time_ == TimeCharacteristic::kIngestionTime) {
      ws = WatermarkStrategy<Row>::ForMonotonousTimestamps();
      ws.timestamp_assigner = [](const Row&) { return NowProcessingTime(); };
    } else {
      if (n["timestamp"] || wm) {
        // Timestamps are still useful for process functions; watermarks are ignored in processing
        // time.
      }
      return Status::Ok();
    }
    if (wm && wm["interval"]) {
      EDDY_ASSIGN_OR_RETURN(ws.interval, Dur(wm["interval"], p + ".watermark.interval"));
    }
    if (wm && wm["idleness"]) {
      EDDY_ASSIGN_OR_RETURN(ws.idleness, Dur(wm["idleness"], p + ".watermark.idleness"));
    }
    SchemaPtr schema = out.schema;
    out.stream = out.stream.AssignTimestampsAndWatermarks(ws);
    out.stream.WithSchema(schema).SetParallelism(
        out.stream.inputs().empty() ? 1 : UpstreamParallelism(out.stream));
    out.has_timestamps = true;
    return Status::Ok();
  }
  int UpstreamParallelism(DataStream<Row>& s) {
    const auto& g = env_->graph();
    for (const auto& e : g.edges()) {
      if (e.target == s.node().id) return g.node(e.source).parallelism;
    }
    return env_->parallelism();
  }

  // ---- steps ----
  Status CompileStep(const YAML::Node& n, const std::string& path) {
    EDDY_RETURN_NOT_OK(
        CheckKeys(n, path, {"name",       "from",      "filter",      "map",     "flatMap",
                            "keyBy",      "window",    "trigger",     "evictor", "allowedLateness",
                            "lateOutput", "aggregate", "rolling",     "process", "union",
                            "partition",  "join",      "parallelism", "uid",     "slotSharingGroup",
                            "chaining"}));
    EDDY_ASSIGN_OR_RETURN(std::string name, Name(n, path));
    const std::string p = path + " (" + name + ")";
    EDDY_ASSIGN_OR_RETURN(NamedStream in, From(n["from"], p + ".from"));
    const char* ops[] = {"filter",  "map",   "flatMap",   "aggregate", "rolling",
                         "process", "union", "partition", "join"};
    int count = 0;
    for (const char* o : ops) count += n[o] ? 1 : 0;
    if (count != 1) {
      return Err(n, p,
                 "needs exactly one operator key: filter, map, flatMap, aggregate, rolling, "
                 "process, union, partition or join");
    }
    for (const char* k : {"window", "trigger", "evictor", "allowedLateness", "lateOutput"}) {
      if (n[k] && !n["aggregate"])
        return Err(n[k], p + "." + k, "only applies to an aggregate step");
    }
    for (const char* k : {"trigger", "evictor", "allowedLateness", "lateOutput"}) {
      if (n[k] && !n["window"])
        return Err(n[k], p + "." + k, "only applies to a windowed aggregate (add window: ...)");
    }
    if (n["keyBy"] && !(n["aggregate"] || n["rolling"] || n["process"])) {
      return Err(n["keyBy"], p + ".keyBy",
                 "keyBy needs aggregate, rolling or process in the same step");
    }
    NamedStream out;
    if (n["filter"]) {
      EDDY_ASSIGN_OR_RETURN(auto e, Expr(n["filter"], p + ".filter", *in.schema));
      if (e->result_type() != DataType::kBool && e->result_type() != DataType::kNull) {
        return Err(n["filter"], p + ".filter", "must be a boolean expression");
      }
      auto proto = std::shared_ptr<const Expression>(std::move(e));
      out = in;
      out.sides.clear();
      out.stream = in.stream.Transform<Row>(
          "Filter(" + proto->text() + ")",
          [proto] { return std::make_unique<RowFilterOperator>(proto->Clone()); },
          MakeTypeInfo<Row>(in.schema));
    } else if (n["map"]) {
      const YAML::Node& m = n["map"];
      if (!m.IsMap() || m.size() == 0)
        return Err(m, p + ".map", "must map output field names to expressions");
      std::vector<Field> fields;
      auto protos = std::make_shared<std::vector<std::shared_ptr<const Expression>>>();
      for (auto it = m.begin(); it != m.end(); ++it) {
        std::string f = it->first.as<std::string>();
        EDDY_ASSIGN_OR_RETURN(auto e, Expr(it->second, p + ".map." + f, *in.schema));
        fields.push_back(
            {f, e->result_type() == DataType::kNull ? DataType::kString : e->result_type(), true});
        protos->push_back(std::shared_ptr<const Expression>(std::move(e)));
      }
      auto schema = std::make_shared<Schema>(std::move(fields));
      out = NamedStream{in.stream.Transform<Row>(
                            "Map",
                            [protos] {
                              std::vector<std::unique_ptr<Expression>> es;
                              for (const auto& e : *protos) es.push_back(e->Clone());
                              return std::make_unique<RowMapOperator>(std::move(es));
                            },
                            MakeTypeInfo<Row>(schema)),
                        schema,
                        in.has_timestamps,
                        {}};
    } else if (n["flatMap"]) {
      const YAML::Node& f = n["flatMap"];
      EDDY_RETURN_NOT_OK(CheckKeys(f, p + ".flatMap", {"split", "delimiter", "as"}));
      if (!f["split"])
        return Err(f, p + ".flatMap", "split is required (an expression giving the text to split)");
      EDDY_ASSIGN_OR_RETURN(auto e, Expr(f["split"], p + ".flatMap.split", *in.schema));
      std::string delim = ",";
      if (f["delimiter"]) {
        EDDY_ASSIGN_OR_RETURN(delim, String(f["delimiter"], p + ".flatMap.delimiter", true));
      }
      std::string as = "value";
      if (f["as"]) {
        EDDY_ASSIGN_OR_RETURN(as, String(f["as"], p + ".flatMap.as", true));
      }
      std::vector<Field> fields = in.schema->fields();
      int idx = in.schema->IndexOf(as);
      if (idx < 0) {
        idx = static_cast<int>(fields.size());
        fields.push_back({as, DataType::kString, true});
      } else {
        fields[static_cast<size_t>(idx)].type = DataType::kString;
      }
      auto schema = std::make_shared<Schema>(std::move(fields));
      auto proto = std::shared_ptr<const Expression>(std::move(e));
      size_t size = schema->size();
      out = NamedStream{in.stream.Transform<Row>(
                            "FlatMap(split " + proto->text() + ")",
                            [proto, delim, idx, size] {
                              return std::make_unique<RowSplitOperator>(proto->Clone(), delim, idx,
                                                                        size);
                            },
                            MakeTypeInfo<Row>(schema)),
                        schema,
                        in.has_timestamps,
                        {}};
    } else if (n["union"]) {
      const YAML::Node& u = n["union"];
      if (!u.IsSequence() || u.size() == 0)
        return Err(u, p + ".union", "must list the streams to merge with 'from'");
      std::vector<DataStream<Row>> others;
      bool ts = in.has_timestamps;
      for (size_t i = 0; i < u.size(); ++i) {
        EDDY_ASSIGN_OR_RETURN(NamedStream o, From(u[i], p + ".union[" + std::to_string(i) + "]"));
        if (!SameSchema(*o.schema, *in.schema)) {
          return Err(u[i], p + ".union[" + std::to_string(i) + "]",
                     "schema " + o.schema->ToString() + " differs from " + in.schema->ToString());
        }
        ts = ts && o.has_timestamps;
        others.push_back(o.stream);
      }
      // A union is not an operator in Flink; a no-op map gives the merged stream a name.
      auto merged = in.stream.Union(others);
      SchemaPtr schema = in.schema;
      out = NamedStream{merged.Transform<Row>(
                            "Union",
                            [] {
                              auto f = [](const Row&) { return true; };
                              return std::make_unique<FilterOperator<Row, decltype(f)>>(f);
                            },
                            MakeTypeInfo<Row>(schema)),
                        schema,
                        ts,
                        {}};
    } else if (n["partition"]) {
      EDDY_ASSIGN_OR_RETURN(std::string kind, String(n["partition"], p + ".partition", true));
      DataStream<Row> s = in.stream;
      if (kind == "rebalance")
        s = s.Rebalance();
      else if (kind == "rescale")
        s = s.Rescale();
      else if (kind == "shuffle")
        s = s.Shuffle();
      else if (kind == "broadcast")
        s = s.Broadcast();
      else if (kind == "global")
        s = s.Global();
      else if (kind == "forward")
        s = s.Forward();
      else
        return Err(n["partition"], p + ".partition",
                   "must be rebalance, rescale, shuffle, broadcast, global or forward");
      SchemaPtr schema = in.schema;
      out = NamedStream{s.Transform<Row>(
                            "Partition(" + kind + ")",
                            [] {
                              auto f = [](const Row&) { return true; };
                              return std::make_unique<FilterOperator<Row, decltype(f)>>(f);
                            },
                            MakeTypeInfo<Row>(schema)),
                        schema,
                        in.has_timestamps,
                        {}};
    } else if (n["join"]) {
      EDDY_ASSIGN_OR_RETURN(out, JoinStep(n, p, in));
    } else {
      EDDY_ASSIGN_OR_RETURN(out, KeyedStep(n, p, in));
    }
    EDDY_RETURN_NOT_OK(ApplyCommon(n, p, out.stream));
    if (n["lateOutput"]) {
      EDDY_ASSIGN_OR_RETURN(std::string late, String(n["lateOutput"], p + ".lateOutput", true));
      out.sides[late] = {late_tag_, in.schema, in.has_timestamps};
    }
    streams_[name] = out;
    return Status::Ok();
  }

  static bool SameSchema(const Schema& a, const Schema& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a.field(i).name != b.field(i).name || a.field(i).type != b.field(i).type) return false;
    }
    return true;
  }

  Result<std::vector<int>> KeyFields(const YAML::Node& k, const std::string& path,
                                     const Schema& schema) const {
    std::vector<int> idx;
    auto add = [&](const YAML::Node& f) -> Status {
      if (!f.IsScalar()) return Err(f, path, "must be a field name or a list of field names");
      int i = schema.IndexOf(f.Scalar());
      if (i < 0) {
        std::string names;
        for (const auto& fl : schema.fields()) names += (names.empty() ? "" : ", ") + fl.name;
        return Err(f, path, "unknown field '" + f.Scalar() + "' (fields: " + names + ")");
      }
      idx.push_back(i);
      return Status::Ok();
    };
    if (k.IsSequence()) {
      if (k.size() == 0) return Err(k, path, "must name at least one field");
      for (size_t i = 0; i < k.size(); ++i) EDDY_RETURN_NOT_OK(add(k[i]));
    } else {
      EDDY_RETURN_NOT_OK(add(k));
    }
    return idx;
  }

  Result<std::vector<AggregateSpec>> Aggregates(const YAML::Node& a, const std::string& path,
                                                const Schema& schema) const {
    if (!a.IsMap() || a.size() == 0) {
      return Err(a, path,
                 "must map output fields to aggregate calls, e.g. {n: \"count()\", avg_t: "
                 "\"avg(temperature)\"}");
    }
    std::vector<AggregateSpec> specs;
    for (auto it = a.begin(); it != a.end(); ++it) {
      std::string out = it->first.as<std::string>();
      std::string fp = path + "." + out;
      if (!it->second.IsScalar())
        return Err(it->second, fp, "must be an aggregate call such as count() or max(x)");
      auto call = ParseAggregateCall(it->second.Scalar(), schema);
      if (!call.ok()) return Err(it->second, fp, call.status().message());
      AggregateSpec s;
      s.output = out;
      using K = AggregateSpec::Kind;
      const std::string& fn = call->name;
      size_t want_min = 1, want_max = 1;
      if (fn == "count") {
        s.kind = call->distinct ? K::kCountDistinct : K::kCount;
        want_min = call->distinct ? 1 : 0;
      } else if (fn == "sum")
        s.kind = K::kSum;
      else if (fn == "min")
        s.kind = K::kMin;
      else if (fn == "max")
        s.kind = K::kMax;
      else if (fn == "avg")
        s.kind = K::kAvg;
      else if (fn == "first" || fn == "first_value")
        s.kind = K::kFirst;
      else if (fn == "last" || fn == "last_value")
        s.kind = K::kLast;
      else if (fn == "minby" || fn == "min_by") {
        s.kind = K::kMinBy;
        want_max = 2;
      } else if (fn == "maxby" || fn == "max_by") {
        s.kind = K::kMaxBy;
        want_max = 2;
      } else if (fn == "listagg" || fn == "collect")
        s.kind = K::kListAgg;
      else
        return Err(it->second, fp,
                   "unknown aggregate '" + fn +
                       "' (count, sum, min, max, avg, first, last, minBy, maxBy, listagg, "
                       "count(distinct x))");
      if (call->distinct && s.kind != K::kCountDistinct)
        return Err(it->second, fp, "distinct is only supported in count(distinct x)");
      if (call->args.size() < want_min || call->args.size() > want_max) {
        return Err(it->second, fp,
                   fn + " takes " +
                       (want_min == want_max
                            ? std::to_string(want_min)
                            : std::to_string(want_min) + " to " + std::to_string(want_max)) +
                       " argument(s)");
      }
      if (!call->args.empty()) s.arg = std::shared_ptr<const Expression>(std::move(call->args[0]));
      if (call->args.size() > 1)
        s.arg2 = std::shared_ptr<const Expression>(std::move(call->args[1]));
      DataType at = s.arg ? s.arg->result_type() : DataType::kInt64;
      switch (s.kind) {
        case K::kCount:
        case K::kCountDistinct:
          s.result_type = DataType::kInt64;
          break;
        case K::kAvg:
          s.result_type = DataType::kDouble;
          break;
        case K::kListAgg:
          s.result_type = DataType::kString;
          break;
        case K::kSum:
          if (at != DataType::kInt64 && at != DataType::kDouble && at != DataType::kTimestamp) {
            return Err(it->second, fp, "sum needs a numeric argument");
          }
          s.result_type = at == DataType::kDouble ? DataType::kDouble : DataType::kInt64;
          break;
        case K::kMinBy:
        case K::kMaxBy:
          s.result_type = s.arg2 ? s.arg2->result_type() : at;
          break;
        default:
          s.result_type = at;
          break;
      }
      if ((s.kind == K::kAvg) && at != DataType::kInt64 && at != DataType::kDouble &&
          at != DataType::kTimestamp) {
        return Err(it->second, fp, "avg needs a numeric argument");
      }
      specs.push_back(std::move(s));
    }
    return specs;
  }

  Result<NamedStream> KeyedStep(const YAML::Node& n, const std::string& p, const NamedStream& in) {
    std::vector<int> key_idx;
    if (n["keyBy"]) {
      EDDY_ASSIGN_OR_RETURN(key_idx, KeyFields(n["keyBy"], p + ".keyBy", *in.schema));
    }
    std::vector<Field> key_fields;
    for (int i : key_idx) key_fields.push_back(in.schema->field(static_cast<size_t>(i)));
    auto selector = std::make_shared<RowKeySelector>(key_idx);
    const bool keyed = !key_idx.empty();
    const bool event_time = time_ != TimeCharacteristic::kProcessingTime;

    if (n["rolling"]) {
      if (!keyed) return Err(n["rolling"], p + ".rolling", "needs keyBy");
      const YAML::Node& r = n["rolling"];
      if (!r.IsMap() || r.size() != 1)
        return Err(r, p + ".rolling", "must be one of {sum|min|max|minBy|maxBy: field}");
      std::string kind = r.begin()->first.as<std::string>();
      std::string field = r.begin()->second.Scalar();
      int fi = in.schema->IndexOf(field);
      if (fi < 0)
        return Err(r.begin()->second, p + ".rolling." + kind, "unknown field '" + field + "'");
      using K = RowRollingFieldOperator::Kind;
      K k;
      if (kind == "sum")
        k = K::kSum;
      else if (kind == "min")
        k = K::kMin;
      else if (kind == "max")
        k = K::kMax;
      else if (kind == "minBy")
        k = K::kMinBy;
      else if (kind == "maxBy")
        k = K::kMaxBy;
      else
        return Err(r.begin()->first, p + ".rolling",
                   "unknown rolling aggregation '" + kind + "' (sum, min, max, minBy, maxBy)");
      KeyedStream<Row, Row> ks = in.stream.KeyBySelector<Row>(selector);
      auto s = ks.TransformKeyed<Row, RowRollingFieldOperator>(
          "Rolling(" + kind + " " + field + ")",
          [k, fi] { return std::make_unique<RowRollingFieldOperator>(k, fi); },
          MakeTypeInfo<Row>(in.schema));
      return NamedStream{s, in.schema, in.has_timestamps, {}};
    }
    if (n["process"]) {
      if (!keyed) return Err(n["process"], p + ".process", "built-in process functions need keyBy");
      const YAML::Node& pr = n["process"];
      EDDY_RETURN_NOT_OK(CheckKeys(pr, p + ".process", {"function", "field", "interval", "ttl"}));
      EDDY_ASSIGN_OR_RETURN(std::string fn, String(pr["function"], p + ".process.function", true));
      KeyedStream<Row, Row> ks = in.stream.KeyBySelector<Row>(selector);
      if (fn == "rising-temperature" || fn == "rising") {
        EDDY_ASSIGN_OR_RETURN(std::string field, String(pr["field"], p + ".process.field", true));
        int fi = in.schema->IndexOf(field);
        if (fi < 0) return Err(pr["field"], p + ".process.field", "unknown field '" + field + "'");
        DataType ft = in.schema->field(static_cast<size_t>(fi)).type;
        if (ft != DataType::kDouble && ft != DataType::kInt64)
          return Err(pr["field"], p + ".process.field", "must be numeric");
        if (!pr["interval"]) return Err(pr, p + ".process", "interval is required");
        EDDY_ASSIGN_OR_RETURN(Duration interval, Dur(pr["interval"], p + ".process.interval"));
        if (event_time && !in.has_timestamps) return NoTimestamps(n["from"], p);
        std::vector<Field> fields = key_fields;
        fields.push_back({"alert_time", DataType::kTimestamp, false});
        fields.push_back({"message", DataType::kString, false});
        auto schema = std::make_shared<Schema>(std::move(fields));
        auto s = ks.Process<Row>(
            [fi, field, interval, event_time] {
              return std::make_shared<RisingValueFunction>(fi, field, interval, event_time);
            },
            "Process(rising " + field + " for " + interval.ToString() + ")",
            MakeTypeInfo<Row>(schema));
        return NamedStream{s, schema, in.has_timestamps, {}};
      }
      if (fn == "dedup" || fn == "deduplicate") {
        Duration ttl;
        if (pr["ttl"]) {
          EDDY_ASSIGN_OR_RETURN(ttl, Dur(pr["ttl"], p + ".process.ttl"));
        }
        auto s = ks.Process<Row>([ttl] { return std::make_shared<DedupFunction>(ttl); },
                                 "Process(dedup)", MakeTypeInfo<Row>(in.schema));
        return NamedStream{s, in.schema, in.has_timestamps, {}};
      }
      return Err(pr["function"], p + ".process.function",
                 "unknown function '" + fn + "' (rising-temperature, dedup)");
    }
    // aggregate, with or without a window
    EDDY_ASSIGN_OR_RETURN(std::vector<AggregateSpec> aggs,
                          Aggregates(n["aggregate"], p + ".aggregate", *in.schema));
    std::vector<Field> fields = key_fields;
    for (const auto& a : aggs) fields.push_back({a.output, a.result_type, true});
    if (!n["window"]) {
      if (!keyed)
        return Err(n["aggregate"], p + ".aggregate", "an aggregate without a window needs keyBy");
      auto schema = std::make_shared<Schema>(fields);
      KeyedStream<Row, Row> ks = in.stream.KeyBySelector<Row>(selector);
      auto s = ks.TransformKeyed<Row, RowRollingAggregateOperator>(
          "Aggregate", [aggs] { return std::make_unique<RowRollingAggregateOperator>(aggs); },
          MakeTypeInfo<Row>(schema));
      return NamedStream{s, schema, in.has_timestamps, {}};
    }
    fields.push_back({"window_start", DataType::kTimestamp, false});
    fields.push_back({"window_end", DataType::kTimestamp, false});
    auto schema = std::make_shared<Schema>(fields);
    EDDY_ASSIGN_OR_RETURN(auto assigner, WindowAssignerOf(n["window"], p + ".window", event_time));
    if (assigner->is_event_time() && !in.has_timestamps) return NoTimestamps(n["from"], p);
    KeyedStream<Row, Row> ks =
        keyed ? in.stream.KeyBySelector<Row>(selector)
              : in.stream.KeyBySelector<Row>(std::make_shared<RowKeySelector>(std::vector<int>{}));
    WindowedStream<Row, Row> ws(ks, assigner, !keyed);
    if (n["trigger"]) EDDY_RETURN_NOT_OK(TriggerOf(n["trigger"], p + ".trigger", ws));
    if (n["evictor"]) EDDY_RETURN_NOT_OK(EvictorOf(n["evictor"], p + ".evictor", ws));
    if (n["allowedLateness"]) {
      EDDY_ASSIGN_OR_RETURN(Duration d, Dur(n["allowedLateness"], p + ".allowedLateness"));
      ws.AllowedLateness(d);
    }
    late_tag_ = 0;
    if (n["lateOutput"]) {
      late_tag_ = NextTag();
      ws.SideOutputLateData(late_tag_, n["lateOutput"].Scalar());
    }
    ApplyCountWindow(n["window"], ws);
    TypeInfoPtr type = MakeTypeInfo<Row>(schema);
    // Evicting windows keep the elements and aggregate them when the window fires.
    DataStream<Row> s =
        (n["evictor"] || has_count_evictor_)
            ? ws.Process<Row>(
                  [aggs, keyed] { return std::make_shared<RowListWindowFunction>(aggs, keyed); },
                  "aggregate", type)
            : ws.AggregateWith<RowAcc, Row, Row>(
                  [aggs] { return std::make_shared<RowAggregateFunction>(aggs); },
                  [keyed] { return std::make_shared<RowWindowResultFunction>(keyed); }, "aggregate",
                  type);
    has_count_evictor_ = false;
    trigger_factory_ = nullptr;
    return NamedStream{s, schema, in.has_timestamps, {}};
  }
  // ---- join ----
  /// The type two key fields are compared in, or nullopt when they cannot meet.
  static std::optional<DataType> JoinKeyType(DataType a, DataType b) {
    auto integral = [](DataType t) { return t == DataType::kInt64 || t == DataType::kTimestamp; };
    auto numeric = [&](DataType t) { return integral(t) || t == DataType::kDouble; };
    if (integral(a) && integral(b)) return DataType::kInt64;
    if (numeric(a) && numeric(b)) return DataType::kDouble;
    if (a == b) return a;
    return std::nullopt;
  }
  /// A duration that may be negative ("-5s").
  Result<Duration> SignedDur(const YAML::Node& n, const std::string& path) const {
    if (n.IsScalar() && !n.Scalar().empty() && n.Scalar()[0] == '-') {
      auto d = ParseDuration(n.Scalar().substr(1));
      if (!d.ok()) return Err(n, path, d.status().message());
      return Duration::Millis(-d->millis());
    }
    return Dur(n, path);
  }
  /// SQL semantics: a null key joins nothing, so rows with one are dropped before the join.
  DataStream<Row> DropNullKeys(const NamedStream& s, const std::vector<int>& idx) {
    auto keep = [idx](const Row& r) {
      for (int i : idx) {
        if (static_cast<size_t>(i) >= r.size() || r.Get(static_cast<size_t>(i)).is_null())
          return false;
      }
      return true;
    };
    DataStream<Row> f = s.stream.Transform<Row>(
        "Filter(join key is not null)",
        [keep] { return std::make_unique<FilterOperator<Row, decltype(keep)>>(keep); },
        MakeTypeInfo<Row>(s.schema));
    f.SetParallelism(s.stream.node().parallelism);
    return f;
  }

  /// join: {with, type: window|interval, on, window | between}. Output: the left fields, then the
  /// right ones; a right field named like a left one becomes <with>_<field>.
  Result<NamedStream> JoinStep(const YAML::Node& n, const std::string& p, const NamedStream& in) {
    const YAML::Node& j = n["join"];
    const std::string jp = p + ".join";
    EDDY_RETURN_NOT_OK(CheckKeys(j, jp, {"with", "type", "where", "equalTo", "window", "between"}));
    EDDY_ASSIGN_OR_RETURN(std::string with, String(j["with"], jp + ".with", true));
    EDDY_ASSIGN_OR_RETURN(NamedStream right, From(j["with"], jp + ".with"));
    std::string type;
    if (j["type"]) {
      EDDY_ASSIGN_OR_RETURN(type, String(j["type"], jp + ".type", true));
      if (type != "window" && type != "interval")
        return Err(j["type"], jp + ".type", "must be window or interval");
    } else if (j["window"] && !j["between"]) {
      type = "window";
    } else if (j["between"] && !j["window"]) {
      type = "interval";
    } else {
      return Err(j, jp, "type is required: window or interval");
    }
    const bool window = type == "window";
    if (window && !j["window"])
      return Err(j, jp, "type window needs window, e.g. window: {tumbling: 10s}");
    if (!window && !j["between"])
      return Err(j, jp, "type interval needs between, e.g. between: {lower: -5s, upper: 5s}");
    if (window && j["between"])
      return Err(j["between"], jp + ".between", "only applies to type interval");
    if (!window && j["window"])
      return Err(j["window"], jp + ".window", "only applies to type window");

    // Keys as in Flink's join(...).where(...).equalTo(...): `where` names the left key fields,
    // `equalTo` the right ones (default: the same names). Not `on:` — YAML 1.1 parsers, kubectl's
    // among them, read an `on` key as the boolean true.
    if (!j["where"])
      return Err(j, jp, "where is required: the left key fields, e.g. where: [order_id]");
    const bool sides = static_cast<bool>(j["equalTo"]);
    const YAML::Node left_on = j["where"];
    const YAML::Node right_on = sides ? j["equalTo"] : j["where"];
    const YAML::Node on = left_on;
    const std::string left_path = jp + ".where";
    const std::string right_path = jp + (sides ? ".equalTo" : ".where");
    EDDY_ASSIGN_OR_RETURN(std::vector<int> lk, KeyFields(left_on, left_path, *in.schema));
    EDDY_ASSIGN_OR_RETURN(
        std::vector<int> rk,
        KeyFields(right_on, right_path + (sides ? "" : " (of " + with + ")"), *right.schema));
    if (lk.size() != rk.size()) {
      return Err(right_on, right_path,
                 "where names " + std::to_string(lk.size()) + " key fields and equalTo " +
                     std::to_string(rk.size()) + "; they pair up in order");
    }
    std::vector<DataType> key_types;
    for (size_t i = 0; i < lk.size(); ++i) {
      const Field& lf = in.schema->field(static_cast<size_t>(lk[i]));
      const Field& rf = right.schema->field(static_cast<size_t>(rk[i]));
      auto t = JoinKeyType(lf.type, rf.type);
      if (!t) {
        const bool seq = right_on.IsSequence();
        return Err(seq ? right_on[i] : right_on,
                   right_path + (seq ? "[" + std::to_string(i) + "]" : ""),
                   "key field '" + rf.name + "' (" + std::string(DataTypeName(rf.type)) +
                       ") cannot be compared with left key '" + lf.name + "' (" +
                       std::string(DataTypeName(lf.type)) + ")");
      }
      key_types.push_back(*t);
    }

    const bool event_time = time_ != TimeCharacteristic::kProcessingTime;
    if (!window && !event_time) {
      return Err(
          j["type"] ? j["type"] : j, jp + ".type",
          "an interval join needs event time (time: event or ingestion); in processing time use "
          "type: window");
    }
    if (event_time && !in.has_timestamps) return NoTimestamps(n["from"], p);
    if (event_time && !right.has_timestamps) return NoTimestampsAt(j["with"], jp + ".with");

    // Output schema.
    std::vector<Field> fields = in.schema->fields();
    std::set<std::string> left_names, names;
    for (const auto& f : fields) left_names.insert(f.name);
    names = left_names;
    std::string prefix = with;
    std::replace(prefix.begin(), prefix.end(), '.', '_');
    for (const Field& f : right.schema->fields()) {
      Field g = f;
      if (left_names.count(f.name)) g.name = prefix + "_" + f.name;
      if (!names.insert(g.name).second) {
        return Err(j["with"], jp + ".with",
                   "right field '" + f.name + "' would be " +
                       (g.name == f.name ? "named" : "renamed to") + " '" + g.name +
                       "', which the left side already has; rename fields with a map step first");
      }
      fields.push_back(std::move(g));
    }
    auto schema = std::make_shared<Schema>(std::move(fields));
    TypeInfoPtr out_type = MakeTypeInfo<Row>(schema);
    auto left_key = std::make_shared<JoinKeySelector>(lk, key_types);
    auto right_key = std::make_shared<JoinKeySelector>(rk, key_types);
    DataStream<Row> l = DropNullKeys(in, lk);
    DataStream<Row> r = DropNullKeys(right, rk);
    const size_t nl = in.schema->size(), nr = right.schema->size();
    DataStream<Row> s;
    if (window) {
      const YAML::Node& w = j["window"];
      if (!w.IsMap() || w.size() != 1 || !(w["tumbling"] || w["sliding"] || w["session"])) {
        return Err(w, jp + ".window", "a window join needs a tumbling, sliding or session window");
      }
      using Tagged = TaggedUnion<Row, Row>;
      EDDY_ASSIGN_OR_RETURN(auto assigner, WindowAssignerOf<Tagged>(w, jp + ".window", event_time));
      s = l.Join(r).Where<Row>(left_key).EqualTo(right_key).Window(assigner).Apply<Row>(
          RowPairJoiner{nl, nr, Row()}, "join", out_type);
    } else {
      const YAML::Node& b = j["between"];
      EDDY_RETURN_NOT_OK(
          CheckKeys(b, jp + ".between", {"lower", "upper", "lowerInclusive", "upperInclusive"}));
      if (!b["lower"] || !b["upper"])
        return Err(b, jp + ".between",
                   "lower and upper are required, e.g. {lower: -5s, upper: 5s}");
      EDDY_ASSIGN_OR_RETURN(Duration lower, SignedDur(b["lower"], jp + ".between.lower"));
      EDDY_ASSIGN_OR_RETURN(Duration upper, SignedDur(b["upper"], jp + ".between.upper"));
      bool lower_inclusive = true, upper_inclusive = true;
      if (b["lowerInclusive"]) {
        EDDY_ASSIGN_OR_RETURN(lower_inclusive,
                              Bool(b["lowerInclusive"], jp + ".between.lowerInclusive"));
      }
      if (b["upperInclusive"]) {
        EDDY_ASSIGN_OR_RETURN(upper_inclusive,
                              Bool(b["upperInclusive"], jp + ".between.upperInclusive"));
      }
      if (lower > upper) {
        return Err(
            b, jp + ".between",
            "lower (" + lower.ToString() + ") must not be after upper (" + upper.ToString() + ")");
      }
      auto joined = l.KeyBySelector<Row>(left_key)
                        .IntervalJoin(r.KeyBySelector<Row>(right_key))
                        .Between(lower, upper);
      if (!lower_inclusive) joined.LowerBoundExclusive();
      if (!upper_inclusive) joined.UpperBoundExclusive();
      std::string name = std::string("IntervalJoin(") + (lower_inclusive ? "[" : "(") +
                         lower.ToString() + ", " + upper.ToString() +
                         (upper_inclusive ? "]" : ")") + ")";
      s = joined.Process<Row>(
          [nl, nr] { return std::make_shared<RowIntervalJoinFunction>(nl, nr); }, name, out_type);
    }
    return NamedStream{s, schema, in.has_timestamps && right.has_timestamps, {}};
  }

  Status NoTimestamps(const YAML::Node& from, const std::string& p) const {
    return NoTimestampsAt(from, p + ".from");
  }
  Status NoTimestampsAt(const YAML::Node& n, const std::string& path) const {
    return Err(
        n, path,
        "this step uses event time but its input has no timestamps: give the source a timestamp "
        "expression (timestamp: ...) or set time: processing");
  }

  template <class T = Row>
  Result<std::shared_ptr<const WindowAssigner<T>>> WindowAssignerOf(const YAML::Node& w,
                                                                    const std::string& path,
                                                                    bool event_time) {
    if (!w.IsMap() || w.size() != 1) {
      return Err(w, path,
                 "must be one of {tumbling: 10s}, {sliding: {size, slide}}, {session: {gap}}, "
                 "{count: {size, slide}}, {global: {}}");
    }
    std::string kind = w.begin()->first.as<std::string>();
    const YAML::Node v = w.begin()->second;  // a copy: the iterator yields a temporary
    const std::string kp = path + "." + kind;
    if (kind == "tumbling") {
      Duration size, offset;
      if (v.IsScalar()) {
        EDDY_ASSIGN_OR_RETURN(size, Dur(v, kp));
      } else {
        EDDY_RETURN_NOT_OK(CheckKeys(v, kp, {"size", "offset"}));
        EDDY_ASSIGN_OR_RETURN(size, Dur(v["size"], kp + ".size"));
        if (v["offset"]) {
          EDDY_ASSIGN_OR_RETURN(offset, Dur(v["offset"], kp + ".offset"));
        }
      }
      if (size.millis() <= 0) return Err(v, kp, "size must be positive");
      return std::shared_ptr<const WindowAssigner<T>>(
          std::make_shared<TumblingWindows<T>>(size, offset, event_time));
    }
    if (kind == "sliding") {
      EDDY_RETURN_NOT_OK(CheckKeys(v, kp, {"size", "slide", "offset"}));
      if (!v["size"] || !v["slide"]) return Err(v, kp, "size and slide are required");
      EDDY_ASSIGN_OR_RETURN(Duration size, Dur(v["size"], kp + ".size"));
      EDDY_ASSIGN_OR_RETURN(Duration slide, Dur(v["slide"], kp + ".slide"));
      Duration offset;
      if (v["offset"]) {
        EDDY_ASSIGN_OR_RETURN(offset, Dur(v["offset"], kp + ".offset"));
      }
      if (size.millis() <= 0 || slide.millis() <= 0)
        return Err(v, kp, "size and slide must be positive");
      if (size.millis() / slide.millis() > 10'000)
        return Err(v, kp, "size/slide over 10000 windows per element");
      return std::shared_ptr<const WindowAssigner<T>>(
          std::make_shared<SlidingWindows<T>>(size, slide, offset, event_time));
    }
    if (kind == "session") {
      Duration gap;
      if (v.IsScalar()) {
        EDDY_ASSIGN_OR_RETURN(gap, Dur(v, kp));
      } else {
        EDDY_RETURN_NOT_OK(CheckKeys(v, kp, {"gap"}));
        EDDY_ASSIGN_OR_RETURN(gap, Dur(v["gap"], kp + ".gap"));
      }
      if (gap.millis() <= 0) return Err(v, kp, "gap must be positive");
      return std::shared_ptr<const WindowAssigner<T>>(
          std::make_shared<SessionWindows<T>>(gap, event_time));
    }
    if (kind == "count") {
      int64_t size = 0, slide = 0;
      if (v.IsScalar()) {
        EDDY_ASSIGN_OR_RETURN(size, Int64(v, kp));
      } else {
        EDDY_RETURN_NOT_OK(CheckKeys(v, kp, {"size", "slide"}));
        EDDY_ASSIGN_OR_RETURN(size, Int64(v["size"], kp + ".size"));
        if (v["slide"]) {
          EDDY_ASSIGN_OR_RETURN(slide, Int64(v["slide"], kp + ".slide"));
        }
      }
      if (size <= 0 || slide < 0) return Err(v, kp, "size must be positive");
      count_size_ = size;
      count_slide_ = slide;
      return std::shared_ptr<const WindowAssigner<T>>(std::make_shared<GlobalWindows<T>>());
    }
    if (kind == "global") {
      return std::shared_ptr<const WindowAssigner<T>>(std::make_shared<GlobalWindows<T>>());
    }
    return Err(w.begin()->first, path,
               "unknown window '" + kind + "' (tumbling, sliding, session, count, global)");
  }
  void ApplyCountWindow(const YAML::Node& w, WindowedStream<Row, Row>& ws) {
    if (!w["count"]) return;
    int64_t size = count_size_, slide = count_slide_;
    if (slide > 0) {
      if (!trigger_factory_)
        trigger_factory_ = [slide] { return std::make_unique<CountTrigger<Row>>(slide); };
      ws.Evictor([size] { return std::make_shared<CountEvictor<Row>>(static_cast<size_t>(size)); });
      has_count_evictor_ = true;
    } else if (!trigger_factory_) {
      trigger_factory_ = [size] {
        return std::make_unique<PurgingTrigger<Row>>(std::make_unique<CountTrigger<Row>>(size));
      };
    }
    ws.Trigger(trigger_factory_);
  }
  Status TriggerOf(const YAML::Node& t, const std::string& path, WindowedStream<Row, Row>& ws) {
    std::function<std::unique_ptr<Trigger<Row>>()> make;
    bool purge = false;
    const YAML::Node* spec = &t;
    YAML::Node inner;
    if (t.IsMap() && t["purge"]) {
      EDDY_ASSIGN_OR_RETURN(purge, Bool(t["purge"], path + ".purge"));
      inner = YAML::Node(YAML::NodeType::Map);
      for (auto it = t.begin(); it != t.end(); ++it) {
        if (it->first.as<std::string>() != "purge") inner[it->first.as<std::string>()] = it->second;
      }
      spec = &inner;
    }
    const YAML::Node& s = *spec;
    if (s.IsScalar()) {
      std::string k = s.Scalar();
      if (k == "eventTime")
        make = [] { return std::make_unique<EventTimeTrigger<Row>>(); };
      else if (k == "processingTime")
        make = [] { return std::make_unique<ProcessingTimeTrigger<Row>>(); };
      else if (k == "never")
        make = [] { return std::make_unique<NeverTrigger<Row>>(); };
      else
        return Err(t, path,
                   "unknown trigger '" + k +
                       "' (eventTime, processingTime, never, {count: N}, {continuousEventTime: D}, "
                       "{continuousProcessingTime: D})");
    } else if (s.IsMap() && s.size() == 1) {
      std::string k = s.begin()->first.as<std::string>();
      const YAML::Node v = s.begin()->second;  // a copy: the iterator yields a temporary
      if (k == "count") {
        EDDY_ASSIGN_OR_RETURN(int64_t c, Int64(v, path + ".count"));
        if (c <= 0) return Err(v, path + ".count", "must be positive");
        make = [c] { return std::make_unique<CountTrigger<Row>>(c); };
      } else if (k == "continuousEventTime") {
        EDDY_ASSIGN_OR_RETURN(Duration d, Dur(v, path + "." + k));
        make = [d] { return std::make_unique<ContinuousEventTimeTrigger<Row>>(d); };
      } else if (k == "continuousProcessingTime") {
        EDDY_ASSIGN_OR_RETURN(Duration d, Dur(v, path + "." + k));
        make = [d] { return std::make_unique<ContinuousProcessingTimeTrigger<Row>>(d); };
      } else {
        return Err(s.begin()->first, path, "unknown trigger '" + k + "'");
      }
    } else {
      return Err(t, path,
                 "must be a trigger name or {count: N} / {continuousEventTime: D} / "
                 "{continuousProcessingTime: D}, optionally with purge: true");
    }
    if (purge) {
      auto base = make;
      make = [base] { return std::make_unique<PurgingTrigger<Row>>(base()); };
    }
    trigger_factory_ = make;
    ws.Trigger(make);
    return Status::Ok();
  }
  Status EvictorOf(const YAML::Node& e, const std::string& path, WindowedStream<Row, Row>& ws) {
    if (!e.IsMap() || e.size() != 1) return Err(e, path, "must be {count: N} or {time: D}");
    std::string k = e.begin()->first.as<std::string>();
    const YAML::Node v = e.begin()->second;  // a copy: the iterator yields a temporary
    if (k == "count") {
      EDDY_ASSIGN_OR_RETURN(int64_t c, Int64(v, path + ".count"));
      if (c <= 0) return Err(v, path + ".count", "must be positive");
      ws.Evictor([c] { return std::make_shared<CountEvictor<Row>>(static_cast<size_t>(c)); });
    } else if (k == "time") {
      EDDY_ASSIGN_OR_RETURN(Duration d, Dur(v, path + ".time"));
      ws.Evictor([d] { return std::make_shared<TimeEvictor<Row>>(d); });
    } else {
      return Err(e.begin()->first, path, "unknown evictor '" + k + "' (count, time)");
    }
    return Status::Ok();
  }

  // ---- sinks ----
  /// `format` (json, the default, or csv) and `delimiter` of a file or upsert sink at `path`,
  /// checked against the input's schema.
  Result<FormatOptions> SinkFormat(const YAML::Node& f, const std::string& path,
                                   const SchemaPtr& schema) {
    FormatOptions fo;
    fo.format = RecordFormat::kJson;
    if (f["format"]) {
      auto r = ParseRecordFormat(f["format"].Scalar());
      if (!r.ok() || *r == RecordFormat::kText)
        return Err(f["format"], path + ".format", "must be json or csv");
      fo.format = *r;
    }
    if (f["delimiter"]) {
      EDDY_ASSIGN_OR_RETURN(std::string d, String(f["delimiter"], path + ".delimiter", true));
      if (d.size() != 1) return Err(f["delimiter"], path + ".delimiter", "must be one character");
      fo.delimiter = d[0];
    }
    auto probe = RowFormatter::Make(fo, schema);
    if (!probe.ok()) return Err(f, path, probe.status().message());
    return fo;
  }

  Status CompileSink(const YAML::Node& n, const std::string& path) {
    EDDY_RETURN_NOT_OK(CheckKeys(n, path,
                                 {"name", "from", "print", "file", "upsert", "discard",
                                  "parallelism", "uid", "chaining", "slotSharingGroup"}));
    EDDY_ASSIGN_OR_RETURN(std::string name, Name(n, path));
    sink_names_.insert(name);
    const std::string p = path + " (" + name + ")";
    EDDY_ASSIGN_OR_RETURN(NamedStream in, From(n["from"], p + ".from"));
    if ((n["print"] ? 1 : 0) + (n["file"] ? 1 : 0) + (n["upsert"] ? 1 : 0) +
            (n["discard"] ? 1 : 0) !=
        1)
      return Err(n, p, "needs exactly one of print, file, upsert, discard");
    DataStream<Row> s = in.stream;
    SchemaPtr schema = in.schema;
    if (n["discard"]) {
      const YAML::Node& d = n["discard"];
      Duration delay;
      if (d.IsMap()) {
        EDDY_RETURN_NOT_OK(CheckKeys(d, p + ".discard", {"delayPerRecord"}));
        if (d["delayPerRecord"]) {
          EDDY_ASSIGN_OR_RETURN(delay, Dur(d["delayPerRecord"], p + ".discard.delayPerRecord"));
        }
      } else if (!d.IsNull()) {
        return Err(d, p + ".discard", "must be a mapping");
      }
      s = in.stream.Sink("Discard(" + name + ")",
                         [delay] { return std::make_shared<DiscardSinkFunction>(delay); });
    } else if (n["upsert"]) {
      const YAML::Node& u = n["upsert"];
      const std::string up = p + ".upsert";
      if (!u.IsMap()) return Err(u, up, "must be a mapping with path and key");
      EDDY_RETURN_NOT_OK(CheckKeys(u, up, {"path", "key", "format", "delimiter"}));
      if (!u["key"]) return Err(u, up + ".key", "is required: the fields that identify a result");
      EDDY_ASSIGN_OR_RETURN(std::vector<int> key_idx, KeyFields(u["key"], up + ".key", *schema));
      EDDY_ASSIGN_OR_RETURN(FormatOptions fo, SinkFormat(u, up, schema));
      EDDY_ASSIGN_OR_RETURN(std::string upath, String(u["path"], up + ".path", true));
      std::string dir = upath.find("://") != std::string::npos ? upath : Resolve(upath);
      auto store = storage::OpenObjectStore(dir);
      if (!store.ok()) return Err(u["path"], up + ".path", store.status().message());
      std::string ext = fo.format == RecordFormat::kCsv ? ".csv" : ".json";
      // One subtask owns each key: the input is partitioned by it.
      s = in.stream.KeyBySelector<Row>(std::make_shared<RowKeySelector>(key_idx))
              .Partitioned()
              .Sink("UpsertSink(" + name + ")", [dir, key_idx, ext, fo, schema] {
                return std::make_shared<UpsertSinkFunction>(dir, key_idx, ext, fo, schema);
              });
    } else if (n["print"]) {
      s = in.stream.Sink("Print(" + name + ")",
                         [schema] { return std::make_shared<PrintSinkFunction<Row>>("", schema); });
    } else {
      const YAML::Node& f = n["file"];
      EDDY_RETURN_NOT_OK(
          CheckKeys(f, p + ".file", {"path", "format", "delimiter", "transactional"}));
      EDDY_ASSIGN_OR_RETURN(std::string fpath, String(f["path"], p + ".file.path", true));
      EDDY_ASSIGN_OR_RETURN(FormatOptions fo, SinkFormat(f, p + ".file", schema));
      bool transactional = false;
      if (f["transactional"]) {
        try {
          transactional = f["transactional"].as<bool>();
        } catch (const YAML::Exception&) {
          return Err(f["transactional"], p + ".file.transactional", "must be true or false");
        }
      }
      if (transactional) {
        // A directory of part files committed with the checkpoints (exactly-once).
        std::string dir = fpath.find("://") != std::string::npos ? fpath : Resolve(fpath);
        auto store = storage::OpenObjectStore(dir);
        if (!store.ok()) return Err(f["path"], p + ".file.path", store.status().message());
        std::string ext = fo.format == RecordFormat::kCsv ? ".csv" : ".jsonl";
        s = in.stream.Sink("TransactionalFileSink(" + name + ")", [dir, ext, fo, schema] {
          return std::make_shared<TransactionalFileSinkFunction>(dir, ext, fo, schema);
        });
        EDDY_RETURN_NOT_OK(ApplyCommon(n, p, s));
        return Status::Ok();
      }
      std::string resolved = Resolve(fpath);
      auto& shared = output_files_[resolved];
      if (!shared)
        shared = std::make_shared<SharedOutputFile>(resolved, options_.append_output_files);
      auto file = shared;
      s = in.stream.Sink("FileSink(" + name + ")", [file, fo, schema] {
        return std::make_shared<FileSinkFunction>(file, fo, schema);
      });
    }
    EDDY_RETURN_NOT_OK(ApplyCommon(n, p, s));
    return Status::Ok();
  }

  std::string file_;
  JobSpecOptions options_;
  CompiledJob job_;
  StreamExecutionEnvironment* env_ = nullptr;
  TimeCharacteristic time_ = TimeCharacteristic::kEventTime;
  std::map<std::string, NamedStream> streams_;
  std::set<std::string> sink_names_;
  std::map<std::string, std::shared_ptr<SharedOutputFile>> output_files_;
  int late_tag_ = 0;
  int64_t count_size_ = 0, count_slide_ = 0;
  bool has_count_evictor_ = false;
  std::function<std::unique_ptr<Trigger<Row>>()> trigger_factory_;
};

}  // namespace

Result<CompiledJob> CompileJobSpec(std::string_view text, const std::string& file_name,
                                   const JobSpecOptions& options) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(file_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  try {
    Compiler c(file_name, options);
    return c.Compile(root);
  } catch (const YAML::Exception& e) {
    return Status::InvalidArgument(file_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
}

Result<CompiledJob> CompileJobSpecFile(const std::string& path, JobSpecOptions options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound("cannot read job file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return CompileJobSpec(ss.str(), path, options);
}

}  // namespace eddy
