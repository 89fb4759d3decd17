// $REPRO_PINNED: the pinned version directories that whoever starts a job's processes
// (`reproctl run`, the Kubernetes webhook) hands the shim, so that a process which cannot reach
// reprod still knows what is pinned (client/shim/pin_table.h, shim_pin_from_env, reads it).
//
//   env["REPRO_PINNED"] = PinnedEnvValue(pin);  // "user_ctr@v1=/ml_data/user_ctr/v1:..."
#ifndef REPRO_COMMON_PINNED_ENV_H_
#define REPRO_COMMON_PINNED_ENV_H_

#include <string>

#include "repro/v1/journal.pb.h"

namespace repro {

inline constexpr char kPinnedEnvVariable[] = "REPRO_PINNED";

// "DATASET@VERSION=/version/dir" for each pinned version, joined by ':'. Directories holding ':'
// are left out (the shim then learns them from reprod). "" for an empty pin.
std::string PinnedEnvValue(const v1::Pin& pin);

}  // namespace repro

#endif  // REPRO_COMMON_PINNED_ENV_H_
