#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "eddy/types.h"

namespace eddy {

/// Where an operator sends what it produces. One Output per operator, owned by the task's chain.
/// Threading: only the task thread calls it.
class OutputBase {
 public:
  virtual ~OutputBase() = default;
  /// Emits a value of this output's type passed type-erased (side outputs use this).
  virtual void CollectErased(const void* value, Timestamp ts) = 0;
  virtual void EmitWatermark(Watermark wm) = 0;
  /// Marks the stream idle (true) or active again (false); idle inputs don't hold watermarks back.
  virtual void EmitIdleness(bool idle) = 0;
  /// Routes a side-output value (tag ids come from OutputTag). Default: dropped.
  virtual void EmitSide(int tag, const void* value, Timestamp ts) {
    (void)tag, (void)value, (void)ts;
  }
};

template <class T>
class Output : public OutputBase {
 public:
  virtual void Collect(const T& value, Timestamp ts) = 0;
  void CollectErased(const void* value, Timestamp ts) final {
    Collect(*static_cast<const T*>(value), ts);
  }
};

/// The receiving side of one operator input. Watermarks and idleness arrive per input; the
/// operator combines its inputs.
class InputBase {
 public:
  virtual ~InputBase() = default;
  virtual void ProcessWatermark(Watermark wm) = 0;
  virtual void ProcessIdleness(bool idle) = 0;
};
template <class T>
class Input : public InputBase {
 public:
  virtual void ProcessElement(const T& value, Timestamp ts) = 0;
};

/// Receives the serialized records an operator chain writes to one outgoing edge. Implemented by
/// the worker's network stack (buffers, channels, credits); this side only decides the channel.
/// Threading: task thread only.
class RecordWriter {
 public:
  virtual ~RecordWriter() = default;
  virtual int num_channels() const = 0;
  /// Appends one encoded record to `channel`.
  virtual void Emit(int channel, std::string_view bytes, Timestamp ts) = 0;
  /// Appends one encoded record to every channel.
  virtual void Broadcast(std::string_view bytes, Timestamp ts) = 0;
  virtual void BroadcastWatermark(Watermark wm) = 0;
  virtual void BroadcastIdleness(bool idle) = 0;
};

/// Picks the output channel for a record of type T on an edge (forward, hash, rebalance, ...).
class ChannelSelectorBase {
 public:
  virtual ~ChannelSelectorBase() = default;
  virtual void Setup(int num_channels, int subtask_index) = 0;
  virtual bool is_broadcast() const { return false; }
};
template <class T>
class ChannelSelector : public ChannelSelectorBase {
 public:
  virtual int SelectChannel(const T& value) = 0;
};

/// Decodes records of one type arriving on an input and hands them to the operator input.
class RecordDecoder {
 public:
  virtual ~RecordDecoder() = default;
  /// Returns false when the bytes are not a valid record (counted and skipped by the caller).
  virtual bool Decode(std::string_view bytes, Timestamp ts) = 0;
};

}  // namespace eddy
