#include "common/src/storage/s3/s3_xml.h"

#include <charconv>

#include "common/src/storage/s3/xml.h"

namespace eddy::storage::s3 {

namespace {

Result<XmlElement> ParseRoot(std::string_view body, std::string_view expected_root) {
  auto root = ParseXml(body);
  if (!root.ok()) return root.status();
  if (root->name != expected_root) {
    return Status::ParseError("expected an S3 <" + std::string(expected_root) +
                              "> document, got <" + root->name + ">");
  }
  return root;
}

Result<bool> ParseBool(const XmlElement& parent, std::string_view name) {
  const XmlElement* e = parent.Child(name);
  if (e == nullptr || e->text == "false") return false;
  if (e->text == "true") return true;
  return Status::ParseError("S3 <" + std::string(name) + "> is '" + e->text +
                            "', not true or false");
}

Result<uint64_t> ParseSize(const XmlElement& parent) {
  const XmlElement* e = parent.Child("Size");
  if (e == nullptr) return Status::ParseError("S3 listing entry without <Size>");
  uint64_t v = 0;
  const char* first = e->text.data();
  const char* last = first + e->text.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  if (ec != std::errc() || ptr != last || e->text.empty()) {
    return Status::ParseError("S3 <Size> '" + e->text + "' is not a byte count");
  }
  return v;
}

}  // namespace

Result<S3Error> ParseS3Error(std::string_view body) {
  EDDY_ASSIGN_OR_RETURN(XmlElement root, ParseRoot(body, "Error"));
  S3Error e;
  e.code = root.ChildText("Code");
  e.message = root.ChildText("Message");
  e.bucket = root.ChildText("BucketName");
  e.key = root.ChildText("Key");
  e.request_id = root.ChildText("RequestId");
  if (e.code.empty()) return Status::ParseError("S3 <Error> without <Code>");
  return e;
}

Result<ListObjectsPage> ParseListObjectsV2(std::string_view body) {
  EDDY_ASSIGN_OR_RETURN(XmlElement root, ParseRoot(body, "ListBucketResult"));
  ListObjectsPage page;
  for (const auto& c : root.children) {
    if (c.name != "Contents") continue;
    const XmlElement* key = c.Child("Key");
    if (key == nullptr || key->text.empty()) {
      return Status::ParseError("S3 listing entry without <Key>");
    }
    EDDY_ASSIGN_OR_RETURN(uint64_t size, ParseSize(c));
    page.objects.push_back({key->text, size});
  }
  EDDY_ASSIGN_OR_RETURN(page.is_truncated, ParseBool(root, "IsTruncated"));
  if (page.is_truncated) {
    page.next_continuation_token = root.ChildText("NextContinuationToken");
    if (page.next_continuation_token.empty()) {
      return Status::ParseError("truncated S3 listing without <NextContinuationToken>");
    }
  }
  return page;
}

Result<std::string> ParseInitiateMultipartUpload(std::string_view body) {
  EDDY_ASSIGN_OR_RETURN(XmlElement root, ParseRoot(body, "InitiateMultipartUploadResult"));
  std::string id = root.ChildText("UploadId");
  if (id.empty()) return Status::ParseError("S3 multipart upload without <UploadId>");
  return id;
}

Result<ListUploadsPage> ParseListMultipartUploads(std::string_view body) {
  EDDY_ASSIGN_OR_RETURN(XmlElement root, ParseRoot(body, "ListMultipartUploadsResult"));
  ListUploadsPage page;
  for (const auto& c : root.children) {
    if (c.name != "Upload") continue;
    ListedUpload u{c.ChildText("Key"), c.ChildText("UploadId")};
    if (u.key.empty() || u.upload_id.empty()) {
      return Status::ParseError("S3 <Upload> without <Key> or <UploadId>");
    }
    page.uploads.push_back(std::move(u));
  }
  EDDY_ASSIGN_OR_RETURN(page.is_truncated, ParseBool(root, "IsTruncated"));
  if (page.is_truncated) {
    page.next_key_marker = root.ChildText("NextKeyMarker");
    page.next_upload_id_marker = root.ChildText("NextUploadIdMarker");
    if (page.next_key_marker.empty()) {
      return Status::ParseError("truncated S3 upload listing without <NextKeyMarker>");
    }
  }
  return page;
}

Result<std::vector<DeleteFailure>> ParseDeleteResult(std::string_view body) {
  EDDY_ASSIGN_OR_RETURN(XmlElement root, ParseRoot(body, "DeleteResult"));
  std::vector<DeleteFailure> failures;
  for (const auto& c : root.children) {
    if (c.name != "Error") continue;
    failures.push_back({c.ChildText("Key"), c.ChildText("Code"), c.ChildText("Message")});
  }
  return failures;
}

std::string CompleteMultipartUploadXml(const std::vector<std::string>& part_etags) {
  std::string out = "<CompleteMultipartUpload>";
  for (size_t i = 0; i < part_etags.size(); ++i) {
    out += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>" +
           XmlEscape(part_etags[i]) + "</ETag></Part>";
  }
  out += "</CompleteMultipartUpload>";
  return out;
}

std::string DeleteObjectsXml(const std::vector<std::string>& keys) {
  std::string out = "<Delete><Quiet>true</Quiet>";
  for (const auto& k : keys) out += "<Object><Key>" + XmlEscape(k) + "</Key></Object>";
  out += "</Delete>";
  return out;
}

}  // namespace eddy::storage::s3
