// HostProbe: the facts about a machine that can change what a training run computes — CPU, memory,
// kernel, OS, glibc, and every NVIDIA GPU with its driver and CUDA driver version — for the
// journal (once per job and node) and for GetNodeInfo.
//
//   HostProbe probe({.node = "node-a"});
//   v1::HostFacts host = probe.Probe();  // reprod probes once at start and keeps the result
//
// Files are read below HostProbeOptions::root, so tests point the probe at fixture trees:
//   hostname        <root>/proc/sys/kernel/hostname (else gethostname, on the live root)
//   kernel_release  <root>/proc/sys/kernel/osrelease (else uname)
//   os_release      PRETTY_NAME of <root>/etc/os-release, else <root>/usr/lib/os-release
//   cpu_model/count <root>/proc/cpuinfo ("model name", else "Model", "Hardware", ARM part ids)
//   memory_bytes    MemTotal of <root>/proc/meminfo
//   glibc_version   gnu_get_libc_version() of reprod itself
//   GPUs            NVML (nvml.h), else <root>/proc/driver/nvidia, else <root>/sys/bus/pci
//                   (gpu_inventory.h); gpu_source says which: "nvml", "procfs", "pci", "none"
#ifndef REPRO_DAEMON_HOST_PROBE_HOST_PROBE_H_
#define REPRO_DAEMON_HOST_PROBE_HOST_PROBE_H_

#include <string>

#include "daemon/host_probe/gpu_inventory.h"
#include "daemon/host_probe/nvml.h"
#include "daemon/host_probe/root_dir.h"
#include "repro/v1/journal.pb.h"

namespace repro {

struct HostProbeOptions {
  std::string root = "/";                     // where proc/, sys/ and etc/ are read
  std::string node;                           // HostFacts.node
  std::string nvml_library = Nvml::kLibrary;  // empty: do not try NVML
};

// Thread-safe; Probe() reads the machine each time it is called (tens of milliseconds, seconds
// when NVML wakes idle GPUs), so callers probe once and keep the result: GPUs do not change while
// reprod runs.
class HostProbe {
 public:
  explicit HostProbe(HostProbeOptions options);

  // Never fails: a fact that cannot be read is left empty, and a missing or broken NVML falls
  // back to the files (an absent library means "no NVIDIA GPU", not an error; a broken one is
  // logged).
  v1::HostFacts Probe() const;

  // The GPU part of Probe().
  GpuInventory ProbeGpus() const;

 private:
  std::string Hostname() const;
  std::string KernelRelease() const;
  std::string OsRelease() const;
  void ProbeCpus(v1::HostFacts* facts) const;
  uint64_t MemoryBytes() const;

  const HostProbeOptions options_;
  const RootDir root_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_HOST_PROBE_HOST_PROBE_H_
