#pragma once

#include <memory>
#include <string>
#include <typeinfo>
#include <vector>

#include "eddy/row.h"
#include "eddy/runtime/stream_io.h"
#include "eddy/serialization.h"

namespace eddy {

/// What the runtime needs to know about a stream's element type, type-erased so that a graph of
/// differently typed operators can be wired at run time (Flink's TypeInformation).
/// Created when the program builds the graph; immutable and shared afterwards.
class TypeInfoBase {
 public:
  virtual ~TypeInfoBase() = default;
  virtual std::string name() const = 0;
  /// Row streams know their schema; other types return nullptr.
  virtual SchemaPtr schema() const { return nullptr; }

  /// Output that calls the next chained operator's input directly (no serialization).
  virtual std::unique_ptr<OutputBase> MakeChainingOutput(InputBase* next) const = 0;
  /// Output that copies each element to several outputs.
  virtual std::unique_ptr<OutputBase> MakeFanOutOutput(std::vector<OutputBase*> outs) const = 0;
  /// Output that serializes into a RecordWriter through a channel selector.
  virtual std::unique_ptr<OutputBase> MakeWriterOutput(
      RecordWriter* writer, std::unique_ptr<ChannelSelectorBase> selector) const = 0;
  /// Output that discards (an operator whose result nobody consumes).
  virtual std::unique_ptr<OutputBase> MakeDiscardingOutput() const = 0;
  /// Decoder from channel bytes into `input`, which must be an Input<T> of this type.
  virtual std::unique_ptr<RecordDecoder> MakeDecoder(InputBase* input) const = 0;
  /// Output with side outputs: `main` is an Output<T>; sides are outputs of the tags' types.
  virtual std::unique_ptr<OutputBase> MakeRoutingOutput(
      OutputBase* main, std::vector<std::pair<int, OutputBase*>> sides) const = 0;
};
using TypeInfoPtr = std::shared_ptr<const TypeInfoBase>;

template <class T>
class ChainingOutput final : public Output<T> {
 public:
  explicit ChainingOutput(Input<T>* next) : next_(next) {}
  void Collect(const T& v, Timestamp ts) override { next_->ProcessElement(v, ts); }
  void EmitWatermark(Watermark wm) override { next_->ProcessWatermark(wm); }
  void EmitIdleness(bool idle) override { next_->ProcessIdleness(idle); }

 private:
  Input<T>* next_;
};

template <class T>
class FanOutOutput final : public Output<T> {
 public:
  explicit FanOutOutput(std::vector<OutputBase*> outs) : outs_(std::move(outs)) {}
  void Collect(const T& v, Timestamp ts) override {
    for (auto* o : outs_) static_cast<Output<T>*>(o)->Collect(v, ts);
  }
  void EmitWatermark(Watermark wm) override {
    for (auto* o : outs_) o->EmitWatermark(wm);
  }
  void EmitIdleness(bool idle) override {
    for (auto* o : outs_) o->EmitIdleness(idle);
  }

 private:
  std::vector<OutputBase*> outs_;
};

template <class T>
class WriterOutput final : public Output<T> {
 public:
  WriterOutput(RecordWriter* w, std::unique_ptr<ChannelSelectorBase> s)
      : writer_(w), selector_(static_cast<ChannelSelector<T>*>(s.release())) {}
  void Collect(const T& v, Timestamp ts) override {
    scratch_.clear();
    ByteWriter bw(scratch_);
    Serializer<T>::Write(v, bw);
    if (selector_->is_broadcast()) {
      writer_->Broadcast(scratch_, ts);
    } else {
      writer_->Emit(selector_->SelectChannel(v), scratch_, ts);
    }
  }
  void EmitWatermark(Watermark wm) override { writer_->BroadcastWatermark(wm); }
  void EmitIdleness(bool idle) override { writer_->BroadcastIdleness(idle); }

 private:
  RecordWriter* writer_;
  std::unique_ptr<ChannelSelector<T>> selector_;
  std::string scratch_;
};

template <class T>
class DiscardingOutput final : public Output<T> {
 public:
  void Collect(const T&, Timestamp) override {}
  void EmitWatermark(Watermark) override {}
  void EmitIdleness(bool) override {}
};

template <class T>
class TypedDecoder final : public RecordDecoder {
 public:
  explicit TypedDecoder(Input<T>* input) : input_(input) {}
  bool Decode(std::string_view bytes, Timestamp ts) override {
    ByteReader r(bytes);
    if (!Serializer<T>::Read(r, value_) || !r.AtEnd()) return false;
    input_->ProcessElement(value_, ts);
    return true;
  }

 private:
  Input<T>* input_;
  T value_{};  // reused for every record
};

template <class T>
class TypeInfo : public TypeInfoBase {
 public:
  explicit TypeInfo(SchemaPtr schema = nullptr) : schema_(std::move(schema)) {}
  std::string name() const override {
    if constexpr (std::is_same_v<T, Row>) {
      return schema_ ? "Row" + schema_->ToString() : "Row";
    } else {
      return typeid(T).name();
    }
  }
  SchemaPtr schema() const override { return schema_; }
  std::unique_ptr<OutputBase> MakeChainingOutput(InputBase* next) const override {
    return std::make_unique<ChainingOutput<T>>(static_cast<Input<T>*>(next));
  }
  std::unique_ptr<OutputBase> MakeFanOutOutput(std::vector<OutputBase*> outs) const override {
    return std::make_unique<FanOutOutput<T>>(std::move(outs));
  }
  std::unique_ptr<OutputBase> MakeWriterOutput(
      RecordWriter* w, std::unique_ptr<ChannelSelectorBase> s) const override {
    return std::make_unique<WriterOutput<T>>(w, std::move(s));
  }
  std::unique_ptr<OutputBase> MakeDiscardingOutput() const override {
    return std::make_unique<DiscardingOutput<T>>();
  }
  std::unique_ptr<RecordDecoder> MakeDecoder(InputBase* input) const override {
    return std::make_unique<TypedDecoder<T>>(static_cast<Input<T>*>(input));
  }
  std::unique_ptr<OutputBase> MakeRoutingOutput(
      OutputBase* main, std::vector<std::pair<int, OutputBase*>> sides) const override;

 private:
  SchemaPtr schema_;
};

template <class T>
TypeInfoPtr MakeTypeInfo(SchemaPtr schema = nullptr) {
  return std::make_shared<TypeInfo<T>>(std::move(schema));
}

}  // namespace eddy

namespace eddy {

/// Main output plus side outputs by tag; watermarks and idleness reach every edge.
template <class T>
class RoutingOutput final : public Output<T> {
 public:
  RoutingOutput(OutputBase* main, std::vector<std::pair<int, OutputBase*>> sides)
      : main_(static_cast<Output<T>*>(main)), sides_(std::move(sides)) {}
  void Collect(const T& v, Timestamp ts) override { main_->Collect(v, ts); }
  void EmitSide(int tag, const void* v, Timestamp ts) override {
    for (auto& [t, o] : sides_) {
      if (t == tag) o->CollectErased(v, ts);
    }
  }
  void EmitWatermark(Watermark wm) override {
    main_->EmitWatermark(wm);
    for (auto& [t, o] : sides_) o->EmitWatermark(wm);
  }
  void EmitIdleness(bool idle) override {
    main_->EmitIdleness(idle);
    for (auto& [t, o] : sides_) o->EmitIdleness(idle);
  }

 private:
  Output<T>* main_;
  std::vector<std::pair<int, OutputBase*>> sides_;
};

}  // namespace eddy

template <class T>
std::unique_ptr<eddy::OutputBase> eddy::TypeInfo<T>::MakeRoutingOutput(
    OutputBase* main, std::vector<std::pair<int, OutputBase*>> sides) const {
  return std::make_unique<RoutingOutput<T>>(main, std::move(sides));
}
