/* A fake NVIDIA Management Library for tests: exports the NVML entry points that reprod's host
 * probe uses (daemon/host_probe/nvml.h) and answers what the environment says, read on every call:
 *
 *   FAKE_NVML_NAME    GPU name                      (default "Fake GPU")
 *   FAKE_NVML_UUID    UUID of GPU 0; GPU i > 0 gets "-i" appended
 *                                                   (default "GPU-00000000-0000-4000-8000-000000000000")
 *   FAKE_NVML_COUNT   number of GPUs, at most 64    (default 1)
 *   FAKE_NVML_MEMORY  bytes of memory per GPU       (default 17179869184)
 *   FAKE_NVML_DRIVER  driver version                (default "535.104.05")
 *   FAKE_NVML_CUDA    CUDA driver version as NVML encodes it (default 12020, i.e. 12.2)
 *   FAKE_NVML_FAIL    comma list of entry points that fail, e.g. "nvmlInit_v2"
 *
 * Built as libnvidia-ml.so.1 in a directory of its own, so reprod finds it through
 * LD_LIBRARY_PATH exactly as it finds the driver's. Built with FAKE_NVML_BROKEN it lacks
 * nvmlDeviceGetCount_v2 and nvmlDeviceGetHandleByIndex_v2: a library that is not a usable NVML.
 * fake_nvml_open_sessions() says how many nvmlInit_v2 calls have no nvmlShutdown yet.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))

typedef int nvmlReturn_t;
typedef struct FakeDevice* nvmlDevice_t;

typedef struct {
  unsigned long long total;
  unsigned long long free;
  unsigned long long used;
} nvmlMemory_t;

typedef struct {
  char busIdLegacy[16];
  unsigned int domain;
  unsigned int bus;
  unsigned int device;
  unsigned int pciDeviceId;
  unsigned int pciSubSystemId;
  char busId[32];
} nvmlPciInfo_t;

enum {
  kSuccess = 0,
  kInvalidArgument = 2,
  kInsufficientSize = 7,
  kDriverNotLoaded = 9,
  kUnknown = 999,
  kMaxDevices = 64,
};

struct FakeDevice {
  unsigned int index;
};

static struct FakeDevice devices[kMaxDevices] __attribute__((unused));
static int sessions;

static const char* Env(const char* name, const char* fallback) {
  const char* value = getenv(name);
  return value != NULL && value[0] != '\0' ? value : fallback;
}

/* True when `function` is listed in FAKE_NVML_FAIL. */
static int Fails(const char* function) {
  const char* list = Env("FAKE_NVML_FAIL", "");
  size_t n = strlen(function);
  for (const char* at = strstr(list, function); at != NULL; at = strstr(at + 1, function)) {
    int starts = at == list || at[-1] == ',';
    int ends = at[n] == '\0' || at[n] == ',';
    if (starts && ends) return 1;
  }
  return 0;
}

__attribute__((unused)) static unsigned int Count(void) {
  long count = strtol(Env("FAKE_NVML_COUNT", "1"), NULL, 10);
  if (count < 0) return 0;
  return count > kMaxDevices ? kMaxDevices : (unsigned int)count;
}

static nvmlReturn_t Copy(char* out, unsigned int length, const char* text) {
  if (out == NULL) return kInvalidArgument;
  if (strlen(text) + 1 > length) return kInsufficientSize;
  memcpy(out, text, strlen(text) + 1);
  return kSuccess;
}

EXPORT int fake_nvml_open_sessions(void) { return sessions; }

EXPORT nvmlReturn_t nvmlInit_v2(void) {
  if (Fails("nvmlInit_v2")) return kDriverNotLoaded;
  ++sessions;
  return kSuccess;
}

EXPORT nvmlReturn_t nvmlShutdown(void) {
  --sessions;
  return kSuccess;
}

EXPORT const char* nvmlErrorString(nvmlReturn_t result) {
  return result == kDriverNotLoaded ? "Driver Not Loaded" : "Fake Error";
}

#ifndef FAKE_NVML_BROKEN
EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int* count) {
  if (Fails("nvmlDeviceGetCount_v2")) return kUnknown;
  if (count == NULL) return kInvalidArgument;
  *count = Count();
  return kSuccess;
}

EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t* device) {
  if (Fails("nvmlDeviceGetHandleByIndex_v2")) return kUnknown;
  if (device == NULL || index >= Count()) return kInvalidArgument;
  devices[index].index = index;
  *device = &devices[index];
  return kSuccess;
}
#endif

EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char* name, unsigned int length) {
  if (Fails("nvmlDeviceGetName")) return kUnknown;
  if (device == NULL) return kInvalidArgument;
  return Copy(name, length, Env("FAKE_NVML_NAME", "Fake GPU"));
}

EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char* uuid, unsigned int length) {
  if (Fails("nvmlDeviceGetUUID")) return kUnknown;
  if (device == NULL) return kInvalidArgument;
  char text[128];
  const char* base = Env("FAKE_NVML_UUID", "GPU-00000000-0000-4000-8000-000000000000");
  if (device->index == 0) {
    snprintf(text, sizeof(text), "%s", base);
  } else {
    snprintf(text, sizeof(text), "%s-%u", base, device->index);
  }
  return Copy(uuid, length, text);
}

EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t* memory) {
  if (Fails("nvmlDeviceGetMemoryInfo")) return kUnknown;
  if (device == NULL || memory == NULL) return kInvalidArgument;
  memory->total = strtoull(Env("FAKE_NVML_MEMORY", "17179869184"), NULL, 10);
  memory->used = memory->total / 4;
  memory->free = memory->total - memory->used;
  return kSuccess;
}

EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t* pci) {
  if (Fails("nvmlDeviceGetPciInfo_v3")) return kUnknown;
  if (device == NULL || pci == NULL) return kInvalidArgument;
  memset(pci, 0, sizeof(*pci));
  pci->bus = 0x17 + device->index;
  pci->pciDeviceId = 0x233010de;
  snprintf(pci->busId, sizeof(pci->busId), "00000000:%02X:00.0", pci->bus);
  snprintf(pci->busIdLegacy, sizeof(pci->busIdLegacy), "0000:%02X:00.0", pci->bus);
  return kSuccess;
}

EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char* version, unsigned int length) {
  if (Fails("nvmlSystemGetDriverVersion")) return kUnknown;
  return Copy(version, length, Env("FAKE_NVML_DRIVER", "535.104.05"));
}

EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int* version) {
  if (Fails("nvmlSystemGetCudaDriverVersion_v2")) return kUnknown;
  if (version == NULL) return kInvalidArgument;
  *version = (int)strtol(Env("FAKE_NVML_CUDA", "12020"), NULL, 10);
  return kSuccess;
}
