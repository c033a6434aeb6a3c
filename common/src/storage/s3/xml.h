#pragma once

// A small, defensive XML reader for S3's response documents: elements, character data, the five
// predefined entities and numeric character references, CDATA, comments, processing instructions.
// No DTDs, no namespaces beyond dropping a `prefix:` from element names. Anything else is a
// ParseError, never a crash: bodies come from the network and may be truncated or garbage.

#include <string>
#include <string_view>
#include <vector>

#include "eddy/status.h"

namespace eddy::storage::s3 {

/// One element: its local name, its concatenated character data and its child elements.
struct XmlElement {
  std::string name;
  std::string text;
  std::vector<XmlElement> children;

  /// The first child named `name`, or nullptr.
  const XmlElement* Child(std::string_view child_name) const;
  /// The text of the first child named `name`; empty when there is none.
  std::string ChildText(std::string_view child_name) const;
};

/// Limits that keep a hostile document from exhausting the stack.
inline constexpr int kMaxXmlDepth = 64;

/// Parses a whole document and returns its root element. ParseError for malformed input, trailing
/// content, or nesting deeper than kMaxXmlDepth.
Result<XmlElement> ParseXml(std::string_view document);

/// Escapes `&`, `<`, `>`, `"`, `'` and CR for element text.
std::string XmlEscape(std::string_view text);

}  // namespace eddy::storage::s3
