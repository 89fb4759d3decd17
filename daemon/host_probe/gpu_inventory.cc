#include "daemon/host_probe/gpu_inventory.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace repro {
namespace {

constexpr absl::string_view kNvidiaVendor = "0x10de";
constexpr absl::string_view kProcDriverDir = "/proc/driver/nvidia";
constexpr absl::string_view kPciDevicesDir = "/sys/bus/pci/devices";

std::string DriverVersion(const RootDir& root) {
  std::optional<std::string> text = root.Read(absl::StrCat(kProcDriverDir, "/version"));
  return text.has_value() ? DriverVersionFromProcText(*text) : "";
}

// The first line of a sysfs attribute file, trimmed; "" when unreadable.
std::string SysfsValue(const RootDir& root, absl::string_view path) {
  std::optional<std::string> text = root.Read(path);
  if (!text.has_value()) return "";
  absl::string_view value = *text;
  value = value.substr(0, value.find('\n'));
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(value));
}

}  // namespace

std::string NormalizeBusId(absl::string_view bus) {
  bus = absl::StripAsciiWhitespace(bus);
  std::vector<absl::string_view> parts = absl::StrSplit(bus, ':');
  if (parts.size() == 3 && parts[0].size() > 4) {
    parts[0] = parts[0].substr(parts[0].size() - 4);
  }
  return absl::AsciiStrToLower(absl::StrJoin(parts, ":"));
}

std::string DriverVersionFromProcText(absl::string_view text) {
  text = text.substr(0, text.find('\n'));
  for (absl::string_view word : absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    bool dotted = absl::StrContains(word, '.') && absl::ascii_isdigit(word.front()) &&
                  absl::ascii_isdigit(word.back());
    for (char c : word) dotted = dotted && (absl::ascii_isdigit(c) || c == '.');
    if (dotted) return std::string(word);
  }
  return "";
}

std::optional<GpuInventory> GpuInventoryFromProcfs(const RootDir& root) {
  GpuInventory inventory;
  std::string gpus_dir = absl::StrCat(kProcDriverDir, "/gpus");
  for (const std::string& bus : root.List(gpus_dir)) {  // sorted: PCI bus order
    std::optional<std::string> info = root.Read(absl::StrCat(gpus_dir, "/", bus, "/information"));
    if (!info.has_value()) continue;
    v1::Gpu gpu;
    gpu.set_index(inventory.gpus.size());
    gpu.set_name(LineValue(*info, "Model", ':'));
    gpu.set_uuid(LineValue(*info, "GPU UUID", ':'));
    std::string location = LineValue(*info, "Bus Location", ':');
    gpu.set_pci_bus_id(NormalizeBusId(location.empty() ? bus : location));
    inventory.gpus.push_back(std::move(gpu));
  }
  if (inventory.gpus.empty()) return std::nullopt;
  inventory.driver_version = DriverVersion(root);
  inventory.source = kGpuSourceProcfs;
  return inventory;
}

std::optional<GpuInventory> GpuInventoryFromPci(const RootDir& root) {
  GpuInventory inventory;
  for (const std::string& bus : root.List(kPciDevicesDir)) {  // sorted: PCI bus order
    std::string dir = absl::StrCat(kPciDevicesDir, "/", bus);
    if (SysfsValue(root, absl::StrCat(dir, "/vendor")) != kNvidiaVendor) continue;
    // NVIDIA boards also carry audio and USB functions; GPUs are display controllers (0x03).
    if (!absl::StartsWith(SysfsValue(root, absl::StrCat(dir, "/class")), "0x03")) continue;
    std::string device = SysfsValue(root, absl::StrCat(dir, "/device"));
    absl::string_view id = device;
    absl::ConsumePrefix(&id, "0x");
    v1::Gpu gpu;
    gpu.set_index(inventory.gpus.size());
    gpu.set_name(absl::StrCat("NVIDIA [10de:", id.empty() ? "?" : id, "]"));
    gpu.set_pci_bus_id(NormalizeBusId(bus));
    inventory.gpus.push_back(std::move(gpu));
  }
  if (inventory.gpus.empty()) return std::nullopt;
  inventory.driver_version = DriverVersion(root);
  inventory.source = kGpuSourcePci;
  return inventory;
}

}  // namespace repro
