#include "common/src/storage/s3/sigv4.h"

#include <gtest/gtest.h>

#include <chrono>

namespace eddy::storage::s3 {
namespace {

// The worked examples of AWS's "Signature Version 4: authenticating requests (AWS signature
// version 4) — examples" page for S3 (bucket `examplebucket`, 2013-05-24, us-east-1).
const SigningCredentials kExampleCredentials{"AKIAIOSFODNN7EXAMPLE",
                                             "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr const char* kEmptySha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

TEST(SigV4Test, AwsGetObjectExample) {
  SigningRequest req;
  req.method = "GET";
  req.encoded_path = "/test.txt";
  req.headers = {{"Host", "examplebucket.s3.amazonaws.com"}, {"Range", "bytes=0-9"}};
  req.payload_sha256_hex = kEmptySha256;
  SignedRequest s = SignV4(req, kExampleCredentials, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_EQ(s.canonical_request,
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
            "\nx-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  // The headers to send besides the request's own.
  ASSERT_EQ(s.added_headers.size(), 3u);
  EXPECT_EQ(s.added_headers[0],
            (std::pair<std::string, std::string>{"x-amz-date", "20130524T000000Z"}));
  EXPECT_EQ(s.added_headers[1].second, kEmptySha256);
  EXPECT_EQ(s.added_headers[2].first, "authorization");
}

TEST(SigV4Test, AwsGetBucketLifecycleExample) {
  SigningRequest req;
  req.method = "GET";
  req.encoded_path = "/";
  req.query = {{"lifecycle", ""}};
  req.headers = {{"host", "examplebucket.s3.amazonaws.com"}};
  req.payload_sha256_hex = kEmptySha256;
  SignedRequest s = SignV4(req, kExampleCredentials, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(SigV4Test, AwsListObjectsExample) {
  SigningRequest req;
  req.method = "GET";
  req.encoded_path = "/";
  req.query = {{"prefix", "J"}, {"max-keys", "2"}};  // sorted by the signer
  req.headers = {{"host", "examplebucket.s3.amazonaws.com"}};
  req.payload_sha256_hex = kEmptySha256;
  SignedRequest s = SignV4(req, kExampleCredentials, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(SigV4Test, SessionTokenIsSentAndSigned) {
  SigningRequest req;
  req.method = "PUT";
  req.encoded_path = "/b/k";
  req.headers = {{"host", "h"}};
  req.payload_sha256_hex = Sha256Hex("x");
  SigningCredentials creds = kExampleCredentials;
  creds.session_token = "token/with+chars=";
  SignedRequest s = SignV4(req, creds, "eu-west-1", "s3", "20240101T120000Z");
  EXPECT_NE(s.canonical_request.find("\nx-amz-security-token:token/with+chars=\n"),
            std::string::npos);
  EXPECT_NE(s.authorization.find(
                "SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,"),
            std::string::npos);
  EXPECT_NE(s.authorization.find("/20240101/eu-west-1/s3/aws4_request"), std::string::npos);
  bool sent = false;
  for (const auto& [name, value] : s.added_headers) {
    sent = sent || (name == "x-amz-security-token" && value == creds.session_token);
  }
  EXPECT_TRUE(sent);
}

TEST(SigV4Test, CanonicalHeadersTrimLowercaseAndJoinRepeats) {
  SigningRequest req;
  req.method = "GET";
  req.encoded_path = "/";
  req.headers = {{"Host", "h"}, {"X-Custom", "  a   b \t c  "}, {"x-custom", "d"}};
  req.payload_sha256_hex = kEmptySha256;
  SignedRequest s = SignV4(req, kExampleCredentials, "us-east-1", "s3", "20130524T000000Z");
  EXPECT_NE(s.canonical_request.find("\nx-custom:a b c,d\n"), std::string::npos);
  EXPECT_NE(s.canonical_request.find("host;x-amz-content-sha256;x-amz-date;x-custom\n"),
            std::string::npos);
}

TEST(SigV4Test, UriEncodingFollowsS3Rules) {
  EXPECT_EQ(UriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("a b+c=d&e/f", true), "a%20b%2Bc%3Dd%26e/f");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriEncode("\xc3\xbc", true), "%C3%BC");  // ü, UTF-8 bytes
  EXPECT_EQ(UriEncode("*'()!$%", true), "%2A%27%28%29%21%24%25");
  EXPECT_EQ(UriEncode(std::string("\0x", 2), true), "%00x");
}

TEST(SigV4Test, CanonicalQuerySortsByEncodedNameThenValue) {
  EXPECT_EQ(CanonicalQueryString({}), "");
  EXPECT_EQ(CanonicalQueryString({{"uploads", ""}}), "uploads=");
  EXPECT_EQ(CanonicalQueryString({{"prefix", "a b/c"}, {"list-type", "2"}, {"max-keys", "7"}}),
            "list-type=2&max-keys=7&prefix=a%20b%2Fc");
  EXPECT_EQ(CanonicalQueryString({{"b", "2"}, {"b", "1"}, {"a", "z"}}), "a=z&b=1&b=2");
  // '%' sorts before letters once encoded: "a b" → "a%20b" < "aa".
  EXPECT_EQ(CanonicalQueryString({{"aa", "1"}, {"a b", "2"}}), "a%20b=2&aa=1");
}

TEST(SigV4Test, HashHelpers) {
  EXPECT_EQ(Sha256Hex(""), kEmptySha256);
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Md5Base64(""), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(Md5Base64("abc"), "kAFQmDzST7DWlj99KOF/cg==");
  // RFC 4231 test case 2.
  EXPECT_EQ(HexEncode(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SigV4Test, AmzDateIsUtc) {
  auto t = std::chrono::system_clock::from_time_t(1369353600);  // 2013-05-24T00:00:00Z
  EXPECT_EQ(AmzDate(t), "20130524T000000Z");
  EXPECT_EQ(AmzDate(t + std::chrono::seconds(3723)), "20130524T010203Z");
}

}  // namespace
}  // namespace eddy::storage::s3
