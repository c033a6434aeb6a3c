#pragma once

#include <memory>
#include <string>

#include "eddy/storage/object_store.h"

namespace eddy::storage {

/// `file://` objects: one file per key under a root directory. Writes go to a hidden temporary
/// file in the target's directory, are fsync'ed and renamed into place (atomic on POSIX).
/// Staged objects are hidden files `.<name>.inprogress.<random>` beside their final key;
/// committing renames them. Threading: stateless beyond the root; any thread.
std::unique_ptr<ObjectStore> MakeFileStore(std::string root_dir);

}  // namespace eddy::storage
