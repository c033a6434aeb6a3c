#include "common/src/storage/s3/xml.h"

#include <cstdint>

namespace eddy::storage::s3 {

namespace {

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool IsNameChar(char c) {
  return !IsSpace(c) && c != '>' && c != '/' && c != '=' && c != '<' && c != '"' && c != '\'' &&
         c != '\0';
}

void AppendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

/// Recursive-descent reader over one document. `pos_` only moves forward; every read checks the
/// end first.
class Reader {
 public:
  explicit Reader(std::string_view doc) : doc_(doc) {}

  Result<XmlElement> Document() {
    if (doc_.starts_with("\xEF\xBB\xBF")) pos_ = 3;  // UTF-8 byte order mark
    EDDY_RETURN_NOT_OK(SkipMisc());
    if (AtEnd() || doc_[pos_] != '<') return Error("expected the root element");
    XmlElement root;
    EDDY_RETURN_NOT_OK(Element(root, 1));
    EDDY_RETURN_NOT_OK(SkipMisc());
    if (!AtEnd()) return Error("content after the root element");
    return root;
  }

 private:
  bool AtEnd() const { return pos_ >= doc_.size(); }
  bool LookingAt(std::string_view s) const { return doc_.substr(pos_).starts_with(s); }

  Status Error(std::string_view what) const {
    return Status::ParseError("malformed XML at byte " + std::to_string(pos_) + ": " +
                              std::string(what));
  }

  void SkipSpace() {
    while (!AtEnd() && IsSpace(doc_[pos_])) ++pos_;
  }

  /// Skips to just after `terminator`; false when the document ends first.
  bool SkipPast(std::string_view terminator) {
    size_t end = doc_.find(terminator, pos_);
    if (end == std::string_view::npos) return false;
    pos_ = end + terminator.size();
    return true;
  }

  /// Whitespace, comments, processing instructions and a DOCTYPE outside the root element.
  Status SkipMisc() {
    for (;;) {
      SkipSpace();
      if (LookingAt("<?")) {
        if (!SkipPast("?>")) return Error("unterminated processing instruction");
      } else if (LookingAt("<!--")) {
        if (!SkipPast("-->")) return Error("unterminated comment");
      } else if (LookingAt("<!DOCTYPE")) {
        if (!SkipPast(">")) return Error("unterminated DOCTYPE");
      } else {
        return Status::Ok();
      }
    }
  }

  Result<std::string> Name() {
    size_t start = pos_;
    while (!AtEnd() && IsNameChar(doc_[pos_])) ++pos_;
    if (pos_ == start) return Error("expected a name");
    std::string_view name = doc_.substr(start, pos_ - start);
    size_t colon = name.rfind(':');
    if (colon != std::string_view::npos) name.remove_prefix(colon + 1);
    return std::string(name);
  }

  /// Appends the character data up to the next '<', decoding references.
  Status Text(std::string& out) {
    while (!AtEnd() && doc_[pos_] != '<') {
      char c = doc_[pos_];
      if (c != '&') {
        out += c;
        ++pos_;
        continue;
      }
      size_t semi = doc_.find(';', pos_);
      if (semi == std::string_view::npos || semi - pos_ > 12) return Error("bad entity reference");
      std::string_view ref = doc_.substr(pos_ + 1, semi - pos_ - 1);
      if (ref == "amp") {
        out += '&';
      } else if (ref == "lt") {
        out += '<';
      } else if (ref == "gt") {
        out += '>';
      } else if (ref == "quot") {
        out += '"';
      } else if (ref == "apos") {
        out += '\'';
      } else if (ref.size() >= 2 && ref[0] == '#') {
        bool hex = ref[1] == 'x' || ref[1] == 'X';
        std::string_view digits = ref.substr(hex ? 2 : 1);
        if (digits.empty()) return Error("bad character reference");
        uint32_t cp = 0;
        for (char d : digits) {
          uint32_t v;
          if (d >= '0' && d <= '9') {
            v = static_cast<uint32_t>(d - '0');
          } else if (hex && d >= 'a' && d <= 'f') {
            v = static_cast<uint32_t>(d - 'a' + 10);
          } else if (hex && d >= 'A' && d <= 'F') {
            v = static_cast<uint32_t>(d - 'A' + 10);
          } else {
            return Error("bad character reference");
          }
          cp = cp * (hex ? 16 : 10) + v;
          if (cp > 0x10ffff) return Error("character reference out of range");
        }
        if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff)) return Error("invalid character reference");
        AppendUtf8(out, cp);
      } else {
        return Error("unknown entity '&" + std::string(ref) + ";'");
      }
      pos_ = semi + 1;
    }
    return Status::Ok();
  }

  /// Skips the attributes of a start tag, stopping before '>' or "/>".
  Status Attributes() {
    for (;;) {
      SkipSpace();
      if (AtEnd()) return Error("unterminated start tag");
      if (doc_[pos_] == '>' || LookingAt("/>")) return Status::Ok();
      EDDY_ASSIGN_OR_RETURN(std::string name, Name());
      (void)name;
      SkipSpace();
      if (AtEnd() || doc_[pos_] != '=') return Error("expected '=' after an attribute name");
      ++pos_;
      SkipSpace();
      if (AtEnd() || (doc_[pos_] != '"' && doc_[pos_] != '\'')) {
        return Error("expected a quoted attribute value");
      }
      char quote = doc_[pos_++];
      size_t end = doc_.find(quote, pos_);
      if (end == std::string_view::npos) return Error("unterminated attribute value");
      pos_ = end + 1;
    }
  }

  /// Reads one element starting at '<'.
  Status Element(XmlElement& out, int depth) {
    if (depth > kMaxXmlDepth) return Error("elements nested too deeply");
    ++pos_;  // '<'
    EDDY_ASSIGN_OR_RETURN(out.name, Name());
    EDDY_RETURN_NOT_OK(Attributes());
    if (LookingAt("/>")) {
      pos_ += 2;
      return Status::Ok();
    }
    ++pos_;  // '>'
    for (;;) {
      EDDY_RETURN_NOT_OK(Text(out.text));
      if (AtEnd()) return Error("unterminated element <" + out.name + ">");
      if (LookingAt("</")) {
        pos_ += 2;
        EDDY_ASSIGN_OR_RETURN(std::string end_name, Name());
        SkipSpace();
        if (AtEnd() || doc_[pos_] != '>') return Error("unterminated end tag");
        ++pos_;
        if (end_name != out.name) {
          return Error("end tag </" + end_name + "> does not match <" + out.name + ">");
        }
        return Status::Ok();
      }
      if (LookingAt("<!--")) {
        if (!SkipPast("-->")) return Error("unterminated comment");
      } else if (LookingAt("<![CDATA[")) {
        size_t start = pos_ + 9;
        if (!SkipPast("]]>")) return Error("unterminated CDATA section");
        out.text.append(doc_.substr(start, pos_ - 3 - start));
      } else if (LookingAt("<?")) {
        if (!SkipPast("?>")) return Error("unterminated processing instruction");
      } else if (LookingAt("<!")) {
        return Error("unexpected markup declaration");
      } else {
        out.children.emplace_back();
        EDDY_RETURN_NOT_OK(Element(out.children.back(), depth + 1));
      }
    }
  }

  std::string_view doc_;
  size_t pos_ = 0;
};

}  // namespace

const XmlElement* XmlElement::Child(std::string_view child_name) const {
  for (const auto& c : children) {
    if (c.name == child_name) return &c;
  }
  return nullptr;
}

std::string XmlElement::ChildText(std::string_view child_name) const {
  const XmlElement* c = Child(child_name);
  return c ? c->text : std::string();
}

Result<XmlElement> ParseXml(std::string_view document) {
  return Reader(document).Document();
}

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':  // a raw CR would be normalized away by the reader
        out += "&#13;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace eddy::storage::s3
