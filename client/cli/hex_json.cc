#include "client/cli/hex_json.h"

#include <map>
#include <memory>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/sha256.h"
#include "google/protobuf/descriptor.pb.h"
#include "google/protobuf/dynamic_message.h"

namespace repro::cli {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::DynamicMessageFactory;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using google::protobuf::FileDescriptorProto;
using google::protobuf::Message;
using google::protobuf::Reflection;

// A mirror of the generated descriptors in which every bytes field is a string field: the same
// names and numbers, so the JSON printer names everything as before. Built once per file.
class HexMirror {
 public:
  // The mirror of `type` (from the generated pool), or null when it cannot be built.
  const Descriptor* Find(const Descriptor* type) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!AddFile(type->file())) return nullptr;
    return pool_.FindMessageTypeByName(type->full_name());
  }

  // A new, empty message of the mirrored type `type`; owned by the caller.
  std::unique_ptr<Message> New(const Descriptor* type) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return std::unique_ptr<Message>(factory_.GetPrototype(type)->New());
  }

 private:
  bool AddFile(const FileDescriptor* file) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (added_.count(file->name()) > 0) return true;
    for (int i = 0; i < file->dependency_count(); ++i) {
      if (!AddFile(file->dependency(i))) return false;
    }
    FileDescriptorProto proto;
    file->CopyTo(&proto);
    for (auto& message : *proto.mutable_message_type()) StringifyBytes(&message);
    if (pool_.BuildFile(proto) == nullptr) return false;
    added_.insert(file->name());
    return true;
  }

  static void StringifyBytes(google::protobuf::DescriptorProto* message) {
    for (auto& field : *message->mutable_field()) {
      if (field.type() == google::protobuf::FieldDescriptorProto::TYPE_BYTES) {
        field.set_type(google::protobuf::FieldDescriptorProto::TYPE_STRING);
      }
    }
    for (auto& nested : *message->mutable_nested_type()) StringifyBytes(&nested);
  }

  absl::Mutex mu_;
  DescriptorPool pool_ ABSL_GUARDED_BY(mu_);
  DynamicMessageFactory factory_ ABSL_GUARDED_BY(mu_){&pool_};
  std::set<std::string> added_ ABSL_GUARDED_BY(mu_);
};

HexMirror& Mirror() {
  static HexMirror* const mirror = new HexMirror;  // never destroyed: used until exit
  return *mirror;
}

// Which way bytes travel: raw bytes to hex strings (printing) or back (parsing).
enum class Direction { kToHex, kFromHex };

bool Copy(const Message& from, Message* to, Direction direction);

// A bytes value converted for `direction`; false when a hex string is not hex.
bool ConvertBytes(std::string* value, Direction direction) {
  if (direction == Direction::kToHex) {
    *value = HexDigest(*value);
    return true;
  }
  for (char c : *value) {
    if (!absl::ascii_isxdigit(c)) return false;
  }
  if (value->size() % 2 != 0) return false;
  *value = absl::HexStringToBytes(*value);
  return true;
}

// Copies field `f` of `from` into the same-numbered field `t` of `to`, converting bytes fields
// (bytes in the generated type, strings in the mirror). False when a hex string is not hex.
bool CopyField(const Message& from, const FieldDescriptor* f, Message* to,
               const FieldDescriptor* t, Direction direction) {
  const Reflection* in = from.GetReflection();
  const Reflection* out = to->GetReflection();
  const int count = f->is_repeated() ? in->FieldSize(from, f) : 1;
  for (int i = 0; i < count; ++i) {
    const bool rep = f->is_repeated();
    switch (f->cpp_type()) {
#define REPRO_COPY(CPPTYPE, NAME)                                                          \
  case FieldDescriptor::CPPTYPE:                                                           \
    rep ? out->Add##NAME(to, t, in->GetRepeated##NAME(from, f, i))                         \
        : out->Set##NAME(to, t, in->Get##NAME(from, f));                                   \
    break;
      REPRO_COPY(CPPTYPE_INT32, Int32)
      REPRO_COPY(CPPTYPE_INT64, Int64)
      REPRO_COPY(CPPTYPE_UINT32, UInt32)
      REPRO_COPY(CPPTYPE_UINT64, UInt64)
      REPRO_COPY(CPPTYPE_DOUBLE, Double)
      REPRO_COPY(CPPTYPE_FLOAT, Float)
      REPRO_COPY(CPPTYPE_BOOL, Bool)
      REPRO_COPY(CPPTYPE_ENUM, EnumValue)
#undef REPRO_COPY
      case FieldDescriptor::CPPTYPE_STRING: {
        std::string value = rep ? in->GetRepeatedString(from, f, i) : in->GetString(from, f);
        bool bytes = f->type() == FieldDescriptor::TYPE_BYTES || t->type() == FieldDescriptor::TYPE_BYTES;
        if (bytes && !ConvertBytes(&value, direction)) return false;
        rep ? out->AddString(to, t, std::move(value)) : out->SetString(to, t, std::move(value));
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (!Copy(rep ? in->GetRepeatedMessage(from, f, i) : in->GetMessage(from, f),
                  rep ? out->AddMessage(to, t) : out->MutableMessage(to, t), direction)) {
          return false;
        }
        break;
    }
  }
  return true;
}

// Copies every set field of `from` into `to`, the same type but for bytes fields (mirrored).
bool Copy(const Message& from, Message* to, Direction direction) {
  std::vector<const FieldDescriptor*> fields;
  from.GetReflection()->ListFields(from, &fields);
  for (const FieldDescriptor* f : fields) {
    const FieldDescriptor* t = to->GetDescriptor()->FindFieldByNumber(f->number());
    if (t != nullptr && !CopyField(from, f, to, t, direction)) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<std::string> MessageToHexJson(
    const Message& message, const google::protobuf::util::JsonPrintOptions& options) {
  const Descriptor* mirrored = Mirror().Find(message.GetDescriptor());
  if (mirrored == nullptr) {
    return absl::InternalError(
        absl::StrCat("cannot write ", message.GetTypeName(), " as JSON: unknown type"));
  }
  std::unique_ptr<Message> copy = Mirror().New(mirrored);
  Copy(message, copy.get(), Direction::kToHex);
  std::string json;
  auto status = google::protobuf::util::MessageToJsonString(*copy, &json, options);
  if (!status.ok()) {
    return absl::InternalError(
        absl::StrCat("cannot write ", message.GetTypeName(), " as JSON: ", status.ToString()));
  }
  return json;
}

absl::Status HexJsonToMessage(const std::string& json, Message* message) {
  const Descriptor* mirrored = Mirror().Find(message->GetDescriptor());
  if (mirrored == nullptr) {
    return absl::InternalError(absl::StrCat("cannot read ", message->GetTypeName(), ": unknown type"));
  }
  std::unique_ptr<Message> parsed = Mirror().New(mirrored);
  auto status = google::protobuf::util::JsonStringToMessage(json, parsed.get());
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a ", message->GetTypeName(), " in JSON: ", status.ToString()));
  }
  message->Clear();
  if (!Copy(*parsed, message, Direction::kFromHex)) {
    return absl::InvalidArgumentError(
        absl::StrCat("a digest of the ", message->GetTypeName(), " is not hex"));
  }
  return absl::OkStatus();
}

}  // namespace repro::cli
