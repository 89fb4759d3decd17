#include "daemon/host_probe/host_probe.h"

#include <gnu/libc-version.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// The first line of `text`, trimmed.
std::string FirstLine(absl::string_view text) {
  return std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

// An os-release value without its shell quoting: "Debian GNU/Linux 12 (bookworm)".
std::string Unquote(absl::string_view value) {
  if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
      value.back() == value.front()) {
    value = value.substr(1, value.size() - 2);
  }
  std::string out;
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] == '\\' && i + 1 < value.size()) ++i;
    out.push_back(value[i]);
  }
  return out;
}

}  // namespace

HostProbe::HostProbe(HostProbeOptions options)
    : options_(std::move(options)), root_(options_.root) {}

v1::HostFacts HostProbe::Probe() const {
  v1::HostFacts facts;
  facts.set_node(options_.node);
  facts.set_hostname(Hostname());
  facts.set_kernel_release(KernelRelease());
  facts.set_os_release(OsRelease());
  ProbeCpus(&facts);
  facts.set_memory_bytes(MemoryBytes());
  facts.set_glibc_version(gnu_get_libc_version());
  GpuInventory gpus = ProbeGpus();
  for (v1::Gpu& gpu : gpus.gpus) *facts.add_gpus() = std::move(gpu);
  facts.set_driver_version(gpus.driver_version);
  facts.set_cuda_driver_version(gpus.cuda_driver_version);
  facts.set_gpu_source(gpus.source);
  return facts;
}

GpuInventory HostProbe::ProbeGpus() const {
  if (!options_.nvml_library.empty()) {
    absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(options_.nvml_library);
    absl::StatusOr<GpuInventory> inventory =
        nvml.ok() ? (*nvml)->Inventory() : absl::StatusOr<GpuInventory>(nvml.status());
    if (inventory.ok()) return *std::move(inventory);
    if (absl::IsNotFound(inventory.status())) {
      spdlog::debug("no NVML ({}); looking for NVIDIA GPUs in /proc and /sys",
                    std::string(inventory.status().message()));
    } else {
      spdlog::warn("NVML is not usable ({}); looking for NVIDIA GPUs in /proc and /sys",
                   std::string(inventory.status().message()));
    }
  }
  if (std::optional<GpuInventory> procfs = GpuInventoryFromProcfs(root_)) return *procfs;
  if (std::optional<GpuInventory> pci = GpuInventoryFromPci(root_)) return *pci;
  GpuInventory none;
  none.source = kGpuSourceNone;
  return none;
}

std::string HostProbe::Hostname() const {
  if (std::optional<std::string> text = root_.Read("/proc/sys/kernel/hostname")) {
    if (std::string name = FirstLine(*text); !name.empty()) return name;
  }
  if (!root_.live()) return "";
  char name[256] = {0};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

std::string HostProbe::KernelRelease() const {
  if (std::optional<std::string> text = root_.Read("/proc/sys/kernel/osrelease")) {
    if (std::string release = FirstLine(*text); !release.empty()) return release;
  }
  struct utsname names;
  if (!root_.live() || uname(&names) != 0) return "";
  return names.release;
}

std::string HostProbe::OsRelease() const {
  for (absl::string_view path : {"/etc/os-release", "/usr/lib/os-release"}) {
    std::optional<std::string> text = root_.Read(path);
    if (!text.has_value()) continue;
    if (std::string pretty = Unquote(LineValue(*text, "PRETTY_NAME", '=')); !pretty.empty()) {
      return pretty;
    }
    std::string name = Unquote(LineValue(*text, "NAME", '='));
    std::string version = Unquote(LineValue(*text, "VERSION_ID", '='));
    return std::string(absl::StripAsciiWhitespace(absl::StrCat(name, " ", version)));
  }
  return "";
}

void HostProbe::ProbeCpus(v1::HostFacts* facts) const {
  std::string cpuinfo = root_.Read("/proc/cpuinfo").value_or("");
  uint32_t count = 0;
  for (absl::string_view line : absl::StrSplit(cpuinfo, '\n')) {
    if (absl::StripAsciiWhitespace(line.substr(0, line.find(':'))) == "processor") ++count;
  }
  if (count == 0 && root_.live()) {
    long online = sysconf(_SC_NPROCESSORS_CONF);
    if (online > 0) count = static_cast<uint32_t>(online);
  }
  facts->set_cpu_count(count);

  // x86 says "model name"; ARM boards "Model" or "Hardware"; ARM servers only give part ids.
  for (absl::string_view key : {"model name", "Model", "Hardware", "cpu model", "uarch"}) {
    if (std::string model = LineValue(cpuinfo, key, ':'); !model.empty()) {
      facts->set_cpu_model(model);
      return;
    }
  }
  std::string implementer = LineValue(cpuinfo, "CPU implementer", ':');
  std::string part = LineValue(cpuinfo, "CPU part", ':');
  if (!implementer.empty() || !part.empty()) {
    facts->set_cpu_model(absl::StrCat("ARM implementer ", implementer, " part ", part));
  }
}

uint64_t HostProbe::MemoryBytes() const {
  std::optional<std::string> meminfo = root_.Read("/proc/meminfo");
  if (!meminfo.has_value()) return 0;
  std::string total = LineValue(*meminfo, "MemTotal", ':');  // "16318268 kB"
  absl::string_view number = total;
  bool kib = absl::ConsumeSuffix(&number, "kB");
  uint64_t value = 0;
  if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(number), &value)) return 0;
  return kib ? value * 1024 : value;
}

}  // namespace repro
