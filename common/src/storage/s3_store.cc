#include "eddy/storage/object_store.h"

namespace eddy::storage {

Result<std::unique_ptr<ObjectStore>> OpenS3Store(std::string_view uri,
                                                 const ObjectStoreOptions& options) {
  (void)options;
  return Status::Unimplemented("s3:// object storage is not available in this build ('" +
                               std::string(uri) + "')");
}

}  // namespace eddy::storage
