#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/row.h"
#include "eddy/status.h"

namespace eddy {

/// How one line of a file, socket or stdin source (or of a file sink) encodes one Row. The job
/// spec's `format:` field.
enum class RecordFormat : uint8_t {
  kCsv,   ///< delimiter-separated fields in schema order, RFC 4180 quoting
  kJson,  ///< one JSON object per line (JSON Lines); keys are field names
  kText,  ///< the whole line is the value of the schema's single field
};

/// "csv", "json", "text".
std::string_view RecordFormatName(RecordFormat format);
/// Accepts (case-insensitively) "csv", "json" (also "jsonl", "json-lines", "ndjson") and "text".
Result<RecordFormat> ParseRecordFormat(std::string_view name);

/// Options of a record format; each field maps 1:1 to an option of the job spec's source or sink.
/// All are fixed once a parser or formatter is made from them.
struct FormatOptions {
  /// Default csv.
  RecordFormat format = RecordFormat::kCsv;
  /// csv: the field separator. Default ','. Must not be the quote, '\n' or '\r'.
  char delimiter = ',';
  /// csv: the quote character (RFC 4180: a quote inside a quoted field is doubled). Default '"';
  /// '\0' turns quoting off (quote characters are then ordinary text).
  char quote = '"';
  /// csv: the first line of each source file is a header. Default false. The parser does not
  /// skip it; the source does, see HasHeaderLine() and ParseCsvHeader().
  bool header = false;
  /// csv: ignore spaces and tabs around fields (outside the quotes of quoted fields). Default true.
  /// The formatter quotes strings with leading or trailing blanks so that they round-trip.
  bool trim = true;
};

/// InvalidArgument when the options cannot work (delimiter equal to the quote, a newline, ...).
Status ValidateFormatOptions(const FormatOptions& options);

/// True when the first line of every source file is a header that the source must skip.
bool HasHeaderLine(const FormatOptions& options);

/// Splits a csv header line into its column names (quotes removed, trimmed per `options`).
Result<std::vector<std::string>> ParseCsvHeader(std::string_view line,
                                                const FormatOptions& options);

/// Turns lines of text into Rows of a schema.
///
/// Formats:
///  - csv: fields in schema order; too few or too many fields is an error. An empty unquoted
///    field is null (an error when the field is not nullable); a quoted empty field is the empty
///    string for string and bytes fields, null otherwise.
///  - json: one JSON object; keys are matched to field names, unknown keys are ignored, missing
///    keys and JSON null give null (an error when the field is not nullable). Nested objects and
///    arrays are accepted for string and bytes fields as their raw JSON text. Strings are converted
///    to the field's type like csv text; numbers and true/false keep their JSON spelling for string
///    fields. Duplicate keys: the last one wins.
///  - text: the whole line is converted to the type of the schema's single field (an empty line is
///    the empty string for a string field).
/// One trailing '\r' is stripped from every line (CRLF files).
///
/// Conversions: int64 is decimal with an optional sign ("1.0" is an error); double per
/// std::from_chars (also nan, inf); bool is true/false/1/0 in any case; timestamp is integer epoch
/// milliseconds or text per ParseTimestampText(); string and bytes are taken as they are.
///
/// Errors are Status::ParseError naming the field and the problem, e.g.
/// "field 'ts' (int64): cannot parse 'abc'" or "expected 3 csv fields, got 2". After an error the
/// contents of `out` are unspecified (but valid).
///
/// Lifecycle: made once per source subtask with Make(), then Parse() per line. Not thread-safe:
/// a parser keeps scratch state, one thread at a time. Parse() reuses the storage of `out` and of
/// the parser, so parsing line after line into the same Row stops allocating (error messages
/// aside) once the longest values have been seen.
class RowParser {
 public:
  /// InvalidArgument for a null or empty schema, bad options, or a text format whose schema does
  /// not have exactly one field.
  static Result<std::unique_ptr<RowParser>> Make(const FormatOptions& options, SchemaPtr schema);
  virtual ~RowParser() = default;

  /// Parses one line (without its '\n') into `out`, resizing `out` to the schema's size.
  virtual Status Parse(std::string_view line, Row& out) = 0;
};

/// Turns Rows into lines of text (without the trailing newline), appended to `out`.
///
/// Formats:
///  - csv: values in row order; null is an empty field; strings are quoted when they are empty or
///    contain the delimiter, the quote, a newline, or (with `trim`) leading or trailing blanks;
///    doubles per AppendDouble(); timestamps as epoch milliseconds.
///  - json: compact {"a":1,"b":"x"}, otherwise as Row::AppendJson (non-finite doubles are null).
///  - text: the first value's plain text (null is empty).
/// The output parses back to the same Row with a RowParser of the same options and schema (for
/// csv with quoting off only when no string contains the delimiter or a newline).
///
/// Lifecycle: made once per sink subtask with Make(). Not thread-safe (keeps scratch state).
class RowFormatter {
 public:
  /// InvalidArgument for a null or empty schema or bad options.
  static Result<std::unique_ptr<RowFormatter>> Make(const FormatOptions& options, SchemaPtr schema);
  virtual ~RowFormatter() = default;

  virtual void Append(const Row& row, std::string& out) = 0;
};

/// Parses a timestamp to epoch milliseconds; false if malformed. Accepts yyyy-MM-dd, optionally
/// followed by 'T' or ' ' and HH:mm[:ss[.fraction]] and a zone: 'Z', +HH:mm, +HHmm or +HH (or
/// '-'). Without a zone the time is UTC. Fractions beyond milliseconds are truncated.
/// Examples: 2019-01-17T09:43:19Z, 2019-01-17T09:43:19.123+08:00, 2019-01-17 09:43:19.
bool ParseTimestampText(std::string_view s, int64_t& epoch_ms);

}  // namespace eddy
