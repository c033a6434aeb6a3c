#pragma once

// The Binder resolves field names against a Schema, checks and infers types, inserts implicit
// conversions, folds constant sub-expressions and builds the evaluation tree (nodes.h).

#include <string>
#include <string_view>
#include <vector>

#include "common/src/expr/nodes.h"
#include "common/src/expr/parser.h"
#include "eddy/row.h"
#include "eddy/status.h"

namespace eddy::expr {

/// Binds `ast` (parsed from `text`, which error messages quote) against `schema`. Appends the
/// names of referenced fields to `referenced_fields` (first appearance, no duplicates).
Result<NodePtr> Bind(std::string_view text, const Schema& schema, const Ast& ast,
                     std::vector<std::string>& referenced_fields);

}  // namespace eddy::expr
