// Nvml: the NVIDIA Management Library, loaded at run time with dlopen — never linked, so reprod
// runs on machines without NVIDIA drivers — and asked for the GPUs, the driver version and the
// CUDA driver version.
//
//   absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(Nvml::kLibrary);
//   if (!nvml.ok()) { /* no NVIDIA driver here (NOT_FOUND), or a broken library */ }
//   ASSIGN_OR_RETURN(GpuInventory gpus, (*nvml)->Inventory());
//
// Only entry points that every driver since R450 exports are used, by their versioned names:
// nvmlInit_v2, nvmlDeviceGetCount_v2, nvmlDeviceGetHandleByIndex_v2 and nvmlDeviceGetName are
// required; nvmlDeviceGetUUID, nvmlDeviceGetMemoryInfo, nvmlDeviceGetPciInfo_v3,
// nvmlSystemGetDriverVersion, nvmlSystemGetCudaDriverVersion_v2, nvmlShutdown and nvmlErrorString
// are used when present. Every call's result is checked.
#ifndef REPRO_DAEMON_HOST_PROBE_NVML_H_
#define REPRO_DAEMON_HOST_PROBE_NVML_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/host_probe/gpu_inventory.h"

namespace repro {

// Thread-compatible (NVML itself is thread-safe; reprod asks once at start). The library stays
// loaded for the life of the process: NVML may leave handlers behind, and unloading it is not
// worth the risk for a probe that runs once.
class Nvml {
 public:
  // The driver's NVML, found as dlopen finds it (LD_LIBRARY_PATH first, then the ld.so cache).
  static constexpr char kLibrary[] = "libnvidia-ml.so.1";

  // Loads `library` (a file name looked up by dlopen, or a path) and resolves its entry points.
  // NOT_FOUND when it cannot be loaded (no NVIDIA driver: not an error for callers);
  // FAILED_PRECONDITION when a required entry point is missing.
  static absl::StatusOr<std::unique_ptr<Nvml>> Load(const std::string& library);

  // Initializes NVML, lists the GPUs with name, UUID, memory and PCI bus id, reads the driver
  // and CUDA driver versions, and shuts NVML down again. UNAVAILABLE (with NVML's reason) when
  // initialization or a required call fails; an optional call that fails leaves its field empty.
  absl::StatusOr<GpuInventory> Inventory() const;

  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

 private:
  struct Api;
  explicit Nvml(std::unique_ptr<Api> api);

  const std::unique_ptr<Api> api_;
};

// "12.2" for the CUDA driver version NVML reports as 12020.
std::string CudaVersionString(int version);

}  // namespace repro

#endif  // REPRO_DAEMON_HOST_PROBE_NVML_H_
