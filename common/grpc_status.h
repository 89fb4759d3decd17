// The one place where absl::Status and grpc::Status are converted into each other.
// Canonical codes share their numeric values, so the mapping is exact in both directions.
#ifndef REPRO_COMMON_GRPC_STATUS_H_
#define REPRO_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace repro {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace repro

#endif  // REPRO_COMMON_GRPC_STATUS_H_
