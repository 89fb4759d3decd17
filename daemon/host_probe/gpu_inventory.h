// GpuInventory: the NVIDIA GPUs of a machine and their driver, as one source saw them, and the two
// sources that need no library: the NVIDIA kernel module's /proc files and the PCI bus in /sys.
// NVML (nvml.h) is the third and best source; HostProbe tries NVML, then procfs, then PCI.
//
//   RootDir root("/");
//   if (std::optional<GpuInventory> gpus = GpuInventoryFromProcfs(root)) { ... }
#ifndef REPRO_DAEMON_HOST_PROBE_GPU_INVENTORY_H_
#define REPRO_DAEMON_HOST_PROBE_GPU_INVENTORY_H_

#include <optional>
#include <string>
#include <vector>

#include "daemon/host_probe/root_dir.h"
#include "repro/v1/journal.pb.h"

namespace repro {

inline constexpr char kGpuSourceNvml[] = "nvml";
inline constexpr char kGpuSourceProcfs[] = "procfs";
inline constexpr char kGpuSourcePci[] = "pci";
inline constexpr char kGpuSourceNone[] = "none";

struct GpuInventory {
  std::vector<v1::Gpu> gpus;        // index order (NVML's, else PCI bus order)
  std::string driver_version;       // "535.104.05"; empty when unknown
  std::string cuda_driver_version;  // "12.2"; only NVML knows it
  std::string source;               // kGpuSource*
};

// GPUs from /proc/driver/nvidia/gpus/<bus>/information (Model, GPU UUID, Bus Location) and the
// driver version from /proc/driver/nvidia/version; no memory sizes. nullopt when the NVIDIA
// module lists no GPU.
std::optional<GpuInventory> GpuInventoryFromProcfs(const RootDir& root);

// Display controllers (PCI class 0x03xxxx) of vendor 0x10de under /sys/bus/pci/devices, named
// "NVIDIA [10de:<device>]" (the PCI ids are all there is), and the driver version when the /proc
// file exists. nullopt when there is none.
std::optional<GpuInventory> GpuInventoryFromPci(const RootDir& root);

// A PCI bus location in sysfs form, lower case: "0000:17:00.0" for NVML's "00000000:17:00.0".
std::string NormalizeBusId(absl::string_view bus);

// The driver version in the text of /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX
// x86_64 Kernel Module  535.104.05  Sat Aug ..."): the first dotted number; "" when none.
std::string DriverVersionFromProcText(absl::string_view text);

}  // namespace repro

#endif  // REPRO_DAEMON_HOST_PROBE_GPU_INVENTORY_H_
