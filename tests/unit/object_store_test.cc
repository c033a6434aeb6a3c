#include "eddy/storage/object_store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace eddy::storage {
namespace {

namespace fs = std::filesystem;

class FileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("eddy-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    auto s = OpenObjectStore("file://" + dir_.string());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(s.value());
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::vector<std::string> Keys(std::string_view prefix) {
    auto l = store_->List(prefix);
    EXPECT_TRUE(l.ok()) << l.status().ToString();
    std::vector<std::string> keys;
    for (const auto& o : *l) keys.push_back(o.key);
    return keys;
  }
  fs::path dir_;
  std::unique_ptr<ObjectStore> store_;
};

TEST_F(FileStoreTest, PutGetStatDelete) {
  EXPECT_EQ(store_->root(), "file://" + dir_.string());
  ASSERT_TRUE(store_->Put("job/chk-1/_metadata", "hello").ok());
  auto got = store_->Get("job/chk-1/_metadata");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(*got, "hello");
  auto st = store_->Stat("job/chk-1/_metadata");
  ASSERT_TRUE(st.ok() && st->has_value());
  EXPECT_EQ((*st)->size, 5u);
  ASSERT_TRUE(store_->Put("job/chk-1/_metadata", "replaced").ok());
  EXPECT_EQ(*store_->Get("job/chk-1/_metadata"), "replaced");

  auto missing = store_->Get("job/chk-2/_metadata");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(store_->Stat("job/chk-2/_metadata")->has_value());

  ASSERT_TRUE(store_->Delete("job/chk-1/_metadata").ok());
  EXPECT_TRUE(store_->Delete("job/chk-1/_metadata").ok());  // absent is fine
  EXPECT_FALSE(fs::exists(dir_ / "job"));                   // empty parents pruned
}

TEST_F(FileStoreTest, ListIsRecursiveSortedAndFiltersByPrefix) {
  for (const char* k : {"j/chk-10/a", "j/chk-1/b", "j/chk-1/a", "j/shared/x", "k/y"}) {
    ASSERT_TRUE(store_->Put(k, k).ok());
  }
  EXPECT_EQ(Keys("j/chk-1"), (std::vector<std::string>{"j/chk-1/a", "j/chk-1/b", "j/chk-10/a"}));
  EXPECT_EQ(Keys("j/chk-1/"), (std::vector<std::string>{"j/chk-1/a", "j/chk-1/b"}));
  EXPECT_EQ(Keys("").size(), 5u);
  EXPECT_TRUE(Keys("nothing/").empty());
  ASSERT_TRUE(store_->DeletePrefix("j/chk-1/").ok());
  EXPECT_EQ(Keys("j/"), (std::vector<std::string>{"j/chk-10/a", "j/shared/x"}));
  EXPECT_FALSE(fs::exists(dir_ / "j" / "chk-1"));
}

TEST_F(FileStoreTest, PutFileAndGetToFile) {
  std::string big(3 << 20, 'z');
  big[12345] = 'q';
  fs::path local = dir_.string() + "-local";
  {
    std::ofstream f(local, std::ios::binary);
    f << big;
  }
  ASSERT_TRUE(store_->PutFile("shared/000012.sst", local.string()).ok());
  fs::path back = dir_.string() + "-back";
  ASSERT_TRUE(store_->GetToFile("shared/000012.sst", back.string()).ok());
  std::ifstream f(back, std::ios::binary);
  std::string read((std::istreambuf_iterator<char>(f)), {});
  EXPECT_EQ(read, big);
  EXPECT_EQ(store_->PutFile("x", "/nonexistent/file").code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetToFile("nope", back.string()).code(), StatusCode::kNotFound);
  fs::remove(local);
  fs::remove(back);
}

TEST_F(FileStoreTest, StagedObjectsAreInvisibleUntilCommitted) {
  auto staged = store_->Stage("out/part-0-1.jsonl", "line\n");
  ASSERT_TRUE(staged.ok()) << staged.status().ToString();
  EXPECT_TRUE(Keys("out/").empty());
  EXPECT_FALSE(store_->Stat("out/part-0-1.jsonl")->has_value());

  auto pending = store_->ListStaged("out/part-0");
  ASSERT_TRUE(pending.ok());
  ASSERT_EQ(pending->size(), 1u);
  EXPECT_EQ((*pending)[0].key, "out/part-0-1.jsonl");
  EXPECT_EQ((*pending)[0].upload_id, staged->upload_id);
  EXPECT_TRUE(store_->ListStaged("out/part-1")->empty());

  ASSERT_TRUE(store_->CommitStaged(*staged).ok());
  EXPECT_EQ(*store_->Get("out/part-0-1.jsonl"), "line\n");
  EXPECT_TRUE(store_->CommitStaged(*staged).ok());  // idempotent after a restart
  EXPECT_TRUE(store_->ListStaged("out/")->empty());

  auto aborted = store_->Stage("out/part-0-2.jsonl", "x\n");
  ASSERT_TRUE(aborted.ok());
  ASSERT_TRUE(store_->AbortStaged(*aborted).ok());
  EXPECT_TRUE(store_->AbortStaged(*aborted).ok());
  EXPECT_EQ(store_->CommitStaged(*aborted).code(), StatusCode::kNotFound);
  EXPECT_EQ(Keys("out/"), (std::vector<std::string>{"out/part-0-1.jsonl"}));
}

TEST(ObjectStoreTest, KeysAndUris) {
  EXPECT_TRUE(ValidateKey("a/b/c").ok());
  EXPECT_FALSE(ValidateKey("").ok());
  EXPECT_FALSE(ValidateKey("/abs").ok());
  EXPECT_FALSE(ValidateKey("a/../b").ok());
  EXPECT_FALSE(ValidateKey("a//b").ok());
  EXPECT_FALSE(ValidateKey("./a").ok());
  EXPECT_EQ(JoinKey("s3://b/x/", "/chk-1"), "s3://b/x/chk-1");
  EXPECT_EQ(JoinKey("file:///tmp", "a"), "file:///tmp/a");
  EXPECT_EQ(JoinKey("", "a"), "a");
  EXPECT_EQ(OpenObjectStore("ftp://x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenObjectStore("file://relative").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(OpenObjectStore("").status().code(), StatusCode::kInvalidArgument);
  auto local = OpenObjectStore("some/dir");
  ASSERT_TRUE(local.ok());
  EXPECT_TRUE((*local)->root().starts_with("file:///"));
  EXPECT_TRUE((*local)->root().ends_with("/some/dir"));
}

TEST_F(FileStoreTest, BadKeysAreRejected) {
  EXPECT_EQ(store_->Put("../escape", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Get("/etc/passwd").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace eddy::storage
