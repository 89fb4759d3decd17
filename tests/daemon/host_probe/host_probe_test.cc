// HostProbe on fixture trees (tests/daemon/host_probe/fixtures) and NVML through the fake
// library (fake_nvml.c): present, absent, broken, failing.
#include "daemon/host_probe/host_probe.h"

#include <dlfcn.h>
#include <gnu/libc-version.h>
#include <stdlib.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testutil/subprocess.h"

namespace repro {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string Fixture(const std::string& name) {
  return testing::SourcePath("tests/daemon/host_probe/fixtures/" + name);
}
std::string FakeNvml() { return testing::LibPath("fake_nvml/libnvidia-ml.so.1"); }
std::string BrokenNvml() { return testing::LibPath("fake_nvml_broken/libnvidia-ml.so.1"); }
constexpr char kNoNvml[] = "/nonexistent/libnvidia-ml.so.1";

HostProbeOptions Options(const std::string& fixture, std::string nvml = kNoNvml) {
  HostProbeOptions options;
  options.root = Fixture(fixture);
  options.node = "node-a";
  options.nvml_library = std::move(nvml);
  return options;
}

std::vector<std::string> Names(const v1::HostFacts& facts) {
  std::vector<std::string> names;
  for (const v1::Gpu& gpu : facts.gpus()) names.push_back(gpu.name());
  return names;
}

// Sets FAKE_NVML_* variables for one test and removes them afterwards.
class FakeNvmlEnv {
 public:
  ~FakeNvmlEnv() {
    for (const std::string& name : names_) unsetenv(name.c_str());
  }
  void Set(const std::string& name, const std::string& value) {
    setenv(name.c_str(), value.c_str(), 1);
    names_.push_back(name);
  }

 private:
  std::vector<std::string> names_;
};

int OpenSessions() {
  void* handle = dlopen(FakeNvml().c_str(), RTLD_NOW | RTLD_NOLOAD);
  if (handle == nullptr) return -1;
  auto sessions = reinterpret_cast<int (*)()>(dlsym(handle, "fake_nvml_open_sessions"));
  int open = sessions != nullptr ? sessions() : -1;
  dlclose(handle);
  return open;
}

TEST(HostProbeTest, HostFactsFromTheFixtureTree) {
  v1::HostFacts facts = HostProbe(Options("gpu_host")).Probe();
  EXPECT_EQ(facts.node(), "node-a");
  EXPECT_EQ(facts.hostname(), "gpu-host-7");
  EXPECT_EQ(facts.kernel_release(), "6.1.0-18-amd64");
  EXPECT_EQ(facts.os_release(), "Debian GNU/Linux 12 (bookworm)");
  EXPECT_EQ(facts.cpu_model(), "Intel(R) Xeon(R) Platinum 8480+");
  EXPECT_EQ(facts.cpu_count(), 2u);
  EXPECT_EQ(facts.memory_bytes(), 16318268ull * 1024);
  EXPECT_EQ(facts.glibc_version(), gnu_get_libc_version());
}

TEST(HostProbeTest, WithoutNvmlGpusComeFromTheDriversProcFiles) {
  v1::HostFacts facts = HostProbe(Options("gpu_host")).Probe();
  EXPECT_EQ(facts.gpu_source(), "procfs");
  ASSERT_EQ(facts.gpus_size(), 2);
  EXPECT_EQ(facts.gpus(0).index(), 0u);
  EXPECT_EQ(facts.gpus(0).name(), "NVIDIA H100 80GB HBM3");
  EXPECT_EQ(facts.gpus(0).uuid(), "GPU-5e0b8f4a-1c2d-3e4f-5a6b-7c8d9e0f1a2b");
  EXPECT_EQ(facts.gpus(0).pci_bus_id(), "0000:17:00.0");
  EXPECT_EQ(facts.gpus(1).index(), 1u);
  EXPECT_EQ(facts.gpus(1).pci_bus_id(), "0000:2a:00.0");
  EXPECT_EQ(facts.driver_version(), "535.104.05");
  EXPECT_EQ(facts.cuda_driver_version(), "");  // only NVML knows it
}

TEST(HostProbeTest, WithoutTheDriverGpusComeFromThePciBus) {
  v1::HostFacts facts = HostProbe(Options("pci_gpu_host")).Probe();
  EXPECT_EQ(facts.gpu_source(), "pci");
  EXPECT_THAT(Names(facts), ElementsAre("NVIDIA [10de:2342]"));
  EXPECT_EQ(facts.gpus(0).pci_bus_id(), "0000:01:00.0");
  EXPECT_EQ(facts.driver_version(), "");
  // An ARM server names no model, only part ids; os-release without PRETTY_NAME.
  EXPECT_EQ(facts.cpu_model(), "ARM implementer 0x41 part 0xd40");
  EXPECT_EQ(facts.cpu_count(), 4u);
  EXPECT_EQ(facts.os_release(), "Ubuntu 22.04");
}

TEST(HostProbeTest, NoGpuAnywhereIsSourceNone) {
  v1::HostFacts facts = HostProbe(Options("plain_host")).Probe();
  EXPECT_EQ(facts.gpu_source(), "none");
  EXPECT_EQ(facts.gpus_size(), 0);
  EXPECT_EQ(facts.driver_version(), "");
  // Missing files leave their facts empty; os-release is also looked for in /usr/lib.
  EXPECT_EQ(facts.hostname(), "");
  EXPECT_EQ(facts.memory_bytes(), 0u);
  EXPECT_EQ(facts.os_release(), "Debian GNU/Linux 11 (bullseye)");
  EXPECT_EQ(facts.cpu_model(), "AMD EPYC 7B13");
}

TEST(HostProbeTest, NvmlAnswersComeFirst) {
  FakeNvmlEnv env;
  env.Set("FAKE_NVML_NAME", "Fake H100 80GB");
  env.Set("FAKE_NVML_UUID", "GPU-feedface");
  env.Set("FAKE_NVML_COUNT", "2");
  env.Set("FAKE_NVML_MEMORY", "85899345920");
  env.Set("FAKE_NVML_DRIVER", "550.54.15");
  env.Set("FAKE_NVML_CUDA", "12040");
  v1::HostFacts facts = HostProbe(Options("gpu_host", FakeNvml())).Probe();
  EXPECT_EQ(facts.gpu_source(), "nvml");
  ASSERT_EQ(facts.gpus_size(), 2);
  EXPECT_EQ(facts.gpus(0).name(), "Fake H100 80GB");
  EXPECT_EQ(facts.gpus(0).uuid(), "GPU-feedface");
  EXPECT_EQ(facts.gpus(1).uuid(), "GPU-feedface-1");
  EXPECT_EQ(facts.gpus(0).memory_bytes(), 85899345920u);
  EXPECT_EQ(facts.gpus(0).pci_bus_id(), "0000:17:00.0");
  EXPECT_EQ(facts.gpus(1).pci_bus_id(), "0000:18:00.0");
  EXPECT_EQ(facts.driver_version(), "550.54.15");
  EXPECT_EQ(facts.cuda_driver_version(), "12.4");
  EXPECT_EQ(OpenSessions(), 0) << "every nvmlInit_v2 needs its nvmlShutdown";
}

TEST(HostProbeTest, NvmlThatCannotInitializeFallsBack) {
  FakeNvmlEnv env;
  env.Set("FAKE_NVML_FAIL", "nvmlInit_v2");
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(FakeNvml());
  ASSERT_TRUE(nvml.ok()) << nvml.status();
  absl::StatusOr<GpuInventory> inventory = (*nvml)->Inventory();
  EXPECT_EQ(inventory.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(inventory.status().message(), HasSubstr("Driver Not Loaded"));
  EXPECT_EQ(HostProbe(Options("gpu_host", FakeNvml())).Probe().gpu_source(), "procfs");
}

TEST(HostProbeTest, NvmlFailingMidwayShutsDownAndFallsBack) {
  FakeNvmlEnv env;
  env.Set("FAKE_NVML_FAIL", "nvmlDeviceGetName");
  EXPECT_EQ(HostProbe(Options("gpu_host", FakeNvml())).ProbeGpus().source, "procfs");
  EXPECT_EQ(OpenSessions(), 0);
}

TEST(HostProbeTest, OptionalNvmlCallsThatFailLeaveTheirFieldEmpty) {
  FakeNvmlEnv env;
  env.Set("FAKE_NVML_FAIL",
          "nvmlDeviceGetUUID,nvmlDeviceGetMemoryInfo,nvmlSystemGetCudaDriverVersion_v2");
  GpuInventory gpus = HostProbe(Options("plain_host", FakeNvml())).ProbeGpus();
  EXPECT_EQ(gpus.source, "nvml");
  ASSERT_EQ(gpus.gpus.size(), 1u);
  EXPECT_EQ(gpus.gpus[0].name(), "Fake GPU");
  EXPECT_EQ(gpus.gpus[0].uuid(), "");
  EXPECT_EQ(gpus.gpus[0].memory_bytes(), 0u);
  EXPECT_EQ(gpus.driver_version, "535.104.05");
  EXPECT_EQ(gpus.cuda_driver_version, "");
}

TEST(HostProbeTest, NvmlWithoutGpusIsTrusted) {
  FakeNvmlEnv env;
  env.Set("FAKE_NVML_COUNT", "0");
  GpuInventory gpus = HostProbe(Options("plain_host", FakeNvml())).ProbeGpus();
  EXPECT_EQ(gpus.source, "nvml");
  EXPECT_TRUE(gpus.gpus.empty());
  EXPECT_EQ(gpus.driver_version, "535.104.05");
}

TEST(HostProbeTest, AbsentNvmlIsNotFound) {
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(kNoNvml);
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kNotFound);
}

TEST(HostProbeTest, BrokenNvmlIsRefusedAndFallsBack) {
  absl::StatusOr<std::unique_ptr<Nvml>> nvml = Nvml::Load(BrokenNvml());
  EXPECT_EQ(nvml.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(nvml.status().message(), HasSubstr("nvmlDeviceGetCount_v2"));
  EXPECT_EQ(HostProbe(Options("gpu_host", BrokenNvml())).Probe().gpu_source(), "procfs");
  // A file that is not a shared object at all.
  absl::StatusOr<std::unique_ptr<Nvml>> junk = Nvml::Load(Fixture("gpu_host/proc/cpuinfo"));
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(HostProbeTest, NoNvmlLibraryConfiguredSkipsIt) {
  EXPECT_EQ(HostProbe(Options("plain_host", "")).ProbeGpus().source, "none");
}

TEST(HostProbeTest, LiveRootFillsEverythingIn) {
  HostProbeOptions options;
  options.node = "me";
  options.nvml_library = kNoNvml;  // hermetic even on a GPU machine
  v1::HostFacts facts = HostProbe(options).Probe();
  EXPECT_FALSE(facts.hostname().empty());
  EXPECT_FALSE(facts.kernel_release().empty());
  EXPECT_GT(facts.cpu_count(), 0u);
  EXPECT_GT(facts.memory_bytes(), 0u);
  EXPECT_FALSE(facts.gpu_source().empty());
}

TEST(GpuInventoryTest, DriverVersionFromProcText) {
  EXPECT_EQ(DriverVersionFromProcText("NVRM version: NVIDIA UNIX x86_64 Kernel Module  "
                                      "535.104.05  Sat Aug 19 01:15:15 UTC 2023\nGCC 12.2.0"),
            "535.104.05");
  EXPECT_EQ(DriverVersionFromProcText("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  "
                                      "550.54.15  Release Build"),
            "550.54.15");
  EXPECT_EQ(DriverVersionFromProcText("garbage"), "");
  EXPECT_EQ(NormalizeBusId("00000000:1A:00.0"), "0000:1a:00.0");
  EXPECT_EQ(CudaVersionString(12020), "12.2");
  EXPECT_EQ(CudaVersionString(11080), "11.8");
  EXPECT_EQ(CudaVersionString(0), "");
}

TEST(RootDirTest, LineValue) {
  EXPECT_EQ(LineValue("a: 1\nmodel name\t: Xeon  \n", "model name", ':'), "Xeon");
  EXPECT_EQ(LineValue("ID=debian\n", "ID", '='), "debian");
  EXPECT_EQ(LineValue("IDX=1\n", "ID", '='), "");
  EXPECT_EQ(RootDir("/tmp/root/").Resolve("/proc/x"), "/tmp/root/proc/x");
  EXPECT_EQ(RootDir("").Resolve("/proc/x"), "/proc/x");
}

}  // namespace
}  // namespace repro
