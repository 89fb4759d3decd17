#include "daemon/host_probe/nvml.h"

#include <dlfcn.h>

#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace repro {
namespace {

// The parts of nvml.h we use, with the layouts of the NVML API (stable since R450).
using NvmlReturn = int;  // nvmlReturn_t; NVML_SUCCESS is 0
using NvmlDevice = struct NvmlDeviceOpaque*;
struct NvmlMemory {  // nvmlMemory_t
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
};
struct NvmlPciInfo {  // nvmlPciInfo_t (v3)
  char bus_id_legacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pci_device_id;
  unsigned int pci_subsystem_id;
  char bus_id[32];
};

constexpr NvmlReturn kSuccess = 0;
// Buffer sizes from nvml.h (NVML_DEVICE_NAME_V2_BUFFER_SIZE, NVML_DEVICE_UUID_V2_BUFFER_SIZE,
// NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE).
constexpr unsigned int kNameSize = 96;
constexpr unsigned int kUuidSize = 96;
constexpr unsigned int kDriverSize = 80;
// More devices than any machine has: a larger count is garbage from a broken library.
constexpr unsigned int kMaxDevices = 1024;

// A char buffer NVML writes into: one byte more than NVML is told, always NUL-terminated.
template <unsigned int N>
struct TextBuffer {
  char data[N + 1] = {0};
  static constexpr unsigned int size() { return N; }
  std::string str() const { return std::string(data, strnlen(data, N)); }
};

}  // namespace

struct Nvml::Api {
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  NvmlReturn (*device_count)(unsigned int*) = nullptr;
  NvmlReturn (*device_handle)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*device_name)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*device_uuid)(NvmlDevice, char*, unsigned int) = nullptr;
  NvmlReturn (*device_memory)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*device_pci)(NvmlDevice, NvmlPciInfo*) = nullptr;
  NvmlReturn (*driver_version)(char*, unsigned int) = nullptr;
  NvmlReturn (*cuda_version)(int*) = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;

  // "nvmlInit_v2: Driver Not Loaded (9)".
  std::string Error(absl::string_view call, NvmlReturn rc) const {
    const char* text = error_string != nullptr ? error_string(rc) : nullptr;
    if (text == nullptr || *text == '\0') return absl::StrCat(call, ": error ", rc);
    return absl::StrCat(call, ": ", text, " (", rc, ")");
  }
};

namespace {

// Resolves `name` in `handle` into *fn; false when the library does not export it.
template <typename Fn>
bool Resolve(void* handle, const char* name, Fn* fn) {
  dlerror();
  void* symbol = dlsym(handle, name);
  if (dlerror() != nullptr || symbol == nullptr) return false;
  *fn = reinterpret_cast<Fn>(symbol);
  return true;
}

}  // namespace

std::string CudaVersionString(int version) {
  if (version <= 0) return "";
  return absl::StrCat(version / 1000, ".", (version % 1000) / 10);
}

Nvml::Nvml(std::unique_ptr<Api> api) : api_(std::move(api)) {}

Nvml::~Nvml() = default;

absl::StatusOr<std::unique_ptr<Nvml>> Nvml::Load(const std::string& library) {
  dlerror();
  void* handle = dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    std::string message = absl::StrCat("cannot load ", library, ": ", why ? why : "dlopen failed");
    if (why == nullptr || absl::StrContains(why, "No such file")) {
      return absl::NotFoundError(message);
    }
    return absl::FailedPreconditionError(message);
  }
  auto api = std::make_unique<Api>();
  // Required: without these there is no inventory.
  struct Required {
    const char* name;
    bool found;
  };
  const Required required[] = {
      {"nvmlInit_v2", Resolve(handle, "nvmlInit_v2", &api->init)},
      {"nvmlDeviceGetCount_v2", Resolve(handle, "nvmlDeviceGetCount_v2", &api->device_count)},
      {"nvmlDeviceGetHandleByIndex_v2",
       Resolve(handle, "nvmlDeviceGetHandleByIndex_v2", &api->device_handle)},
      {"nvmlDeviceGetName", Resolve(handle, "nvmlDeviceGetName", &api->device_name)},
  };
  for (const Required& r : required) {
    if (!r.found) {
      // The handle stays open (see the class comment); it is one small mapping.
      return absl::FailedPreconditionError(
          absl::StrCat(library, " does not export ", r.name, "; it is not a usable NVML"));
    }
  }
  Resolve(handle, "nvmlShutdown", &api->shutdown);
  Resolve(handle, "nvmlDeviceGetUUID", &api->device_uuid);
  Resolve(handle, "nvmlDeviceGetMemoryInfo", &api->device_memory);
  Resolve(handle, "nvmlDeviceGetPciInfo_v3", &api->device_pci);
  Resolve(handle, "nvmlSystemGetDriverVersion", &api->driver_version);
  Resolve(handle, "nvmlSystemGetCudaDriverVersion_v2", &api->cuda_version);
  Resolve(handle, "nvmlErrorString", &api->error_string);
  return std::unique_ptr<Nvml>(new Nvml(std::move(api)));
}

absl::StatusOr<GpuInventory> Nvml::Inventory() const {
  const Api& api = *api_;
  if (NvmlReturn rc = api.init(); rc != kSuccess) {
    return absl::UnavailableError(api.Error("nvmlInit_v2", rc));
  }
  absl::Cleanup shutdown = [&api] {
    if (api.shutdown != nullptr) api.shutdown();
  };

  unsigned int count = 0;
  if (NvmlReturn rc = api.device_count(&count); rc != kSuccess) {
    return absl::UnavailableError(api.Error("nvmlDeviceGetCount_v2", rc));
  }
  if (count > kMaxDevices) {
    return absl::UnavailableError(absl::StrCat("nvmlDeviceGetCount_v2 says ", count, " GPUs"));
  }
  GpuInventory inventory;
  inventory.source = kGpuSourceNvml;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    if (NvmlReturn rc = api.device_handle(i, &device); rc != kSuccess) {
      return absl::UnavailableError(
          api.Error(absl::StrCat("GPU ", i, ": nvmlDeviceGetHandleByIndex_v2"), rc));
    }
    TextBuffer<kNameSize> name;
    if (NvmlReturn rc = api.device_name(device, name.data, name.size()); rc != kSuccess) {
      return absl::UnavailableError(api.Error(absl::StrCat("GPU ", i, ": nvmlDeviceGetName"), rc));
    }
    v1::Gpu gpu;
    gpu.set_index(i);
    gpu.set_name(name.str());
    TextBuffer<kUuidSize> uuid;
    if (api.device_uuid != nullptr && api.device_uuid(device, uuid.data, uuid.size()) == kSuccess) {
      gpu.set_uuid(uuid.str());
    }
    NvmlMemory memory{};
    if (api.device_memory != nullptr && api.device_memory(device, &memory) == kSuccess) {
      gpu.set_memory_bytes(memory.total);
    }
    NvmlPciInfo pci{};
    if (api.device_pci != nullptr && api.device_pci(device, &pci) == kSuccess) {
      pci.bus_id[sizeof(pci.bus_id) - 1] = '\0';
      gpu.set_pci_bus_id(pci.bus_id[0] != '\0' ? NormalizeBusId(pci.bus_id)
                                               : absl::StrFormat("%04x:%02x:%02x.0", pci.domain,
                                                                 pci.bus, pci.device));
    }
    inventory.gpus.push_back(std::move(gpu));
  }
  TextBuffer<kDriverSize> driver;
  if (api.driver_version != nullptr && api.driver_version(driver.data, driver.size()) == kSuccess) {
    inventory.driver_version = driver.str();
  }
  int cuda = 0;
  if (api.cuda_version != nullptr && api.cuda_version(&cuda) == kSuccess) {
    inventory.cuda_driver_version = CudaVersionString(cuda);
  }
  return inventory;
}

}  // namespace repro
