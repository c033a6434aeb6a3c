#pragma once

#include <string>
#include <string_view>

#include "eddy/proto/control.pb.h"
#include "eddy/status.h"

namespace eddy::rpc {

/// Version of the control protocol (proto::Envelope::protocol). Peers of another version are
/// refused with an error naming both versions.
inline constexpr uint32_t kProtocolVersion = 1;

/// Serializes an envelope, stamping the protocol version.
std::string Pack(proto::Envelope& e);

/// Parses one control message; InvalidArgument naming what is wrong for garbage, truncated
/// messages, another protocol version or an envelope without a body.
Result<proto::Envelope> Unpack(std::string_view bytes);

}  // namespace eddy::rpc
