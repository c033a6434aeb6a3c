#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/src/storage/s3/s3_xml.h"
#include "common/src/storage/s3/xml.h"

namespace eddy::storage::s3 {
namespace {

TEST(XmlTest, ParsesElementsTextEntitiesAndSkipsTheRest) {
  auto doc = ParseXml(
      "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->"
      "<s3:Root xmlns:s3=\"http://s3.amazonaws.com/doc/2006-03-01/\" a='1'>"
      "<Key>a &amp; b &lt;c&gt; &quot;&apos; &#65;&#x42;&#xFC;</Key><Empty/>"
      "<Data><![CDATA[<raw> & ]]></Data><!-- x --><?pi?></s3:Root>  ");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  EXPECT_EQ(doc->name, "Root");
  EXPECT_EQ(doc->ChildText("Key"), "a & b <c> \"' AB\xC3\xBC");
  ASSERT_NE(doc->Child("Empty"), nullptr);
  EXPECT_EQ(doc->ChildText("Empty"), "");
  EXPECT_EQ(doc->ChildText("Data"), "<raw> & ");
  EXPECT_EQ(doc->Child("Missing"), nullptr);
}

TEST(XmlTest, RejectsMalformedDocuments) {
  for (const char* bad : {"",
                          "   ",
                          "text",
                          "<a>",
                          "<a></b>",
                          "<a><b></a></b>",
                          "<a>&bogus;</a>",
                          "<a>&#0;</a>",
                          "<a>&#xD800;</a>",
                          "<a>&#99999999;</a>",
                          "<a x=1></a>",
                          "<a x=\"1></a>",
                          "<a></a><b/>",
                          "<a><!-- </a>",
                          "<a><![CDATA[x</a>",
                          "<a>&amp</a>",
                          "<",
                          "<a",
                          "</a>",
                          "<a/",
                          "<?xml",
                          "<a><!DOCTYPE x></a>"}) {
    auto r = ParseXml(bad);
    EXPECT_FALSE(r.ok()) << "accepted: " << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kParseError) << bad;
    }
  }
}

TEST(XmlTest, DeepNestingIsAnErrorNotAStackOverflow) {
  std::string deep;
  for (int i = 0; i < 100000; ++i) deep += "<a>";
  EXPECT_EQ(ParseXml(deep).status().code(), StatusCode::kParseError);
  std::string ok;
  for (int i = 0; i < kMaxXmlDepth; ++i) ok += "<a>";
  for (int i = 0; i < kMaxXmlDepth; ++i) ok += "</a>";
  EXPECT_TRUE(ParseXml(ok).ok());
}

TEST(XmlTest, RandomGarbageNeverCrashes) {
  const std::string kValid =
      "<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b</Key><Size>3</Size>"
      "</Contents><NextContinuationToken>t</NextContinuationToken></ListBucketResult>";
  std::mt19937 rng(42);
  for (int i = 0; i < 5000; ++i) {
    std::string doc = kValid;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t pos = rng() % doc.size();
      switch (rng() % 3) {
        case 0:
          doc[pos] = static_cast<char>(rng() % 256);
          break;
        case 1:
          doc.erase(pos, 1 + rng() % 8);
          break;
        default:
          doc.resize(pos);  // truncation
      }
      if (doc.empty()) break;
    }
    (void)ParseXml(doc);
    (void)ParseListObjectsV2(doc);
    (void)ParseS3Error(doc);
  }
}

TEST(XmlTest, EscapeRoundTrips) {
  std::string text = "a&b<c>\"d'e\rf\ng";
  auto doc = ParseXml("<K>" + XmlEscape(text) + "</K>");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->text, text);
}

TEST(S3XmlTest, ParsesErrors) {
  auto e = ParseS3Error(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchKey</Code><Message>The "
      "specified key does not exist.</Message><Key>a/b</Key><BucketName>bk</BucketName>"
      "<RequestId>R1</RequestId></Error>");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->code, "NoSuchKey");
  EXPECT_EQ(e->message, "The specified key does not exist.");
  EXPECT_EQ(e->key, "a/b");
  EXPECT_EQ(e->bucket, "bk");
  EXPECT_EQ(e->request_id, "R1");
  EXPECT_FALSE(ParseS3Error("").ok());
  EXPECT_FALSE(ParseS3Error("<html>502 Bad Gateway</html>").ok());
  EXPECT_FALSE(ParseS3Error("<Error><Message>no code</Message></Error>").ok());
  EXPECT_FALSE(ParseS3Error("<Error><Code>Trunc").ok());
}

TEST(S3XmlTest, ParsesListObjectsV2Pages) {
  auto page = ParseListObjectsV2(
      "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
      "<Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated>"
      "<Contents><Key>p/a b</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
      "<ETag>&quot;x&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
      "<Contents><Key>p/&#x00FC;</Key><Size>18446744073709551615</Size></Contents>"
      "<NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>");
  ASSERT_TRUE(page.ok()) << page.status().ToString();
  ASSERT_EQ(page->objects.size(), 2u);
  EXPECT_EQ(page->objects[0].key, "p/a b");
  EXPECT_EQ(page->objects[0].size, 12u);
  EXPECT_EQ(page->objects[1].key, "p/\xC3\xBC");
  EXPECT_EQ(page->objects[1].size, 18446744073709551615ull);
  EXPECT_TRUE(page->is_truncated);
  EXPECT_EQ(page->next_continuation_token, "tok/+=");

  auto last =
      ParseListObjectsV2("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>");
  ASSERT_TRUE(last.ok());
  EXPECT_TRUE(last->objects.empty());
  EXPECT_FALSE(last->is_truncated);
}

TEST(S3XmlTest, RejectsBadListings) {
  const std::string kHugeSize =
      "<ListBucketResult><Contents><Key>k</Key><Size>99999999999999999999</Size></Contents>";
  for (const std::string& bad : std::vector<std::string>{
           "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",  // no token
           "<ListBucketResult><IsTruncated>maybe</IsTruncated></ListBucketResult>",
           "<ListBucketResult><Contents><Size>1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>-1</Size></Contents></ListBucketResult>",
           "<ListBucketResult><Contents><Key>k</Key><Size>1x</Size></Contents></ListBucketResult>",
           kHugeSize + "</ListBucketResult>",  // beyond 64 bits
           "<Error><Code>InternalError</Code></Error>",
           "<ListBucketResult><Contents><Key>k</Key><Size>1</Size></Contents>",  // truncated
       }) {
    auto r = ParseListObjectsV2(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), StatusCode::kParseError);
    }
  }
}

TEST(S3XmlTest, MultipartDocuments) {
  auto id = ParseInitiateMultipartUpload(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>U-1~x</UploadId>"
      "</InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "U-1~x");
  EXPECT_FALSE(ParseInitiateMultipartUpload(
                   "<InitiateMultipartUploadResult></InitiateMultipartUploadResult>")
                   .ok());

  auto uploads = ParseListMultipartUploads(
      "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>true</IsTruncated>"
      "<NextKeyMarker>p/b</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>"
      "<Upload><Key>p/a</Key><UploadId>u1</UploadId></Upload>"
      "<Upload><Key>p/b</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>");
  ASSERT_TRUE(uploads.ok()) << uploads.status().ToString();
  ASSERT_EQ(uploads->uploads.size(), 2u);
  EXPECT_EQ(uploads->uploads[1].key, "p/b");
  EXPECT_EQ(uploads->uploads[1].upload_id, "u2");
  EXPECT_TRUE(uploads->is_truncated);
  EXPECT_EQ(uploads->next_key_marker, "p/b");
  EXPECT_FALSE(
      ParseListMultipartUploads("<ListMultipartUploadsResult><IsTruncated>true</IsTruncated>"
                                "</ListMultipartUploadsResult>")
          .ok());

  EXPECT_EQ(CompleteMultipartUploadXml({"\"e1\"", "\"e2\""}),
            "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag>"
            "</Part><Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>"
            "</CompleteMultipartUpload>");
}

TEST(S3XmlTest, DeleteObjectsDocuments) {
  EXPECT_EQ(DeleteObjectsXml({"a&b", "c"}),
            "<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key>"
            "</Object></Delete>");
  auto none = ParseDeleteResult("<DeleteResult/>");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto failed = ParseDeleteResult(
      "<DeleteResult><Deleted><Key>x</Key></Deleted><Error><Key>a</Key><Code>AccessDenied</Code>"
      "<Message>Access Denied</Message></Error></DeleteResult>");
  ASSERT_TRUE(failed.ok());
  ASSERT_EQ(failed->size(), 1u);
  EXPECT_EQ((*failed)[0].key, "a");
  EXPECT_EQ((*failed)[0].code, "AccessDenied");
  EXPECT_FALSE(ParseDeleteResult("<DeleteResult><Error>").ok());
}

}  // namespace
}  // namespace eddy::storage::s3
