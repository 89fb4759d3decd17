#include "daemon/service/caller_identity.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/strip.h"
#include "daemon/auth/peer_credentials.h"
#include "spdlog/spdlog.h"

namespace repro {

void CallerIdentities::OnAccepted(int fd, Identity peer) {
  absl::MutexLock lock(&mu_);
  unix_peers_[fd] = std::move(peer);
}

void CallerIdentities::OnTcpListening(const std::vector<std::string>& endpoints) {
  absl::MutexLock lock(&mu_);
  tcp_endpoints_.insert(tcp_endpoints_.end(), endpoints.begin(), endpoints.end());
}

void CallerIdentities::OnTcpStopped(const std::vector<std::string>& endpoints) {
  absl::MutexLock lock(&mu_);
  for (const std::string& endpoint : endpoints) {
    auto it = std::find(tcp_endpoints_.begin(), tcp_endpoints_.end(), endpoint);
    if (it != tcp_endpoints_.end()) tcp_endpoints_.erase(it);
  }
}

Identity CallerIdentities::Of(const grpc::ServerContextBase& context) {
  const std::string peer = context.peer();
  absl::string_view rest = peer;
  if (absl::ConsumePrefix(&rest, "fd:")) {
    int fd = -1;
    if (!absl::SimpleAtoi(rest, &fd)) return Identity();
    absl::MutexLock lock(&mu_);
    auto it = unix_peers_.find(fd);
    return it == unix_peers_.end() ? Identity() : it->second;
  }
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    std::vector<grpc::string_ref> names = auth->GetPeerIdentity();
    if (!names.empty()) return Identity::Certificate(std::string(names[0].data(), names[0].size()));
  }
  if (IsLoopbackAddress(peer)) {
    std::vector<std::string> endpoints;
    {
      absl::MutexLock lock(&mu_);
      endpoints = tcp_endpoints_;
    }
    absl::StatusOr<Identity> local = LoopbackTcpPeerIdentity(peer, endpoints);
    if (local.ok()) return *std::move(local);
    // Shared addresses are what a neighbour squatting on another uid's port would make.
    spdlog::log(absl::IsFailedPrecondition(local.status()) ? spdlog::level::warn
                                                           : spdlog::level::debug,
                "cannot tell who called from {}: {}", peer, local.status().ToString());
  }
  return Identity();
}

}  // namespace repro
