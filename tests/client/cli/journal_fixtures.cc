#include "tests/client/cli/journal_fixtures.h"

#include "absl/strings/str_cat.h"

namespace repro::cli {

std::string Digest(char c) { return std::string(32, c); }

v1::Pin MakePin(const std::string& job, const std::map<std::string, std::string>& versions,
                uint64_t seed) {
  v1::Pin pin;
  pin.set_job(job);
  for (const auto& [dataset, version] : versions) {
    v1::PinnedVersion* v = pin.add_versions();
    v->set_dataset(dataset);
    v->set_version(version);
    v->set_digest(Digest(version.back()));
    v->set_path(absl::StrCat("/ml/", dataset, "/", version));
  }
  pin.set_seed(seed);
  return pin;
}

v1::JournalEntry PinApplied(const v1::Pin& pin) {
  v1::JournalEntry e;
  *e.mutable_pin_applied()->mutable_pin() = pin;
  return e;
}

v1::JournalEntry Registered(const std::string& dataset, const std::string& version, uint64_t files,
                            char digest) {
  v1::JournalEntry e;
  v1::VersionInfo* v = e.mutable_version_registered()->mutable_version();
  v->set_dataset(dataset);
  v->set_version(version);
  v->set_digest(Digest(digest));
  v->set_file_count(files);
  v->set_total_bytes(files * 100);
  return e;
}

v1::JournalEntry Facts(const std::map<std::string, std::string>& facts) {
  v1::JournalEntry e;
  for (const auto& [key, value] : facts) {
    v1::Fact* fact = e.mutable_record()->add_facts();
    fact->set_key(key);
    fact->set_value(value);
  }
  return e;
}

v1::JournalEntry Process(int64_t rank, uint64_t rank_seed, const std::string& exe, char sha) {
  v1::JournalEntry e;
  v1::ProcessStart* p = e.mutable_process_start();
  p->set_pid(1000 + static_cast<int32_t>(rank));
  p->set_rank(rank);
  p->set_rank_seed(rank_seed);
  p->set_exe(exe);
  p->set_exe_sha256(Digest(sha));
  p->add_argv(exe);
  return e;
}

v1::JournalEntry Open(const std::string& dataset, const std::string& version,
                      const std::string& path, char sha, int64_t rank) {
  v1::JournalEntry e;
  v1::DataOpen* o = e.mutable_data_open();
  o->set_dataset(dataset);
  o->set_version(version);
  o->set_relative_path(path);
  o->set_opened_path(absl::StrCat("/ml/", dataset, "/", version, "/", path));
  o->set_requested_path(o->opened_path());
  o->set_sha256(Digest(sha));
  o->set_size(4096);
  o->set_rank(rank);
  o->set_pid(1000 + static_cast<int32_t>(rank));
  o->set_verdict(v1::VERDICT_MATCH);
  return e;
}

v1::JournalEntry Violation(const std::string& path, v1::Verdict verdict, bool refused) {
  v1::JournalEntry e;
  v1::Violation* v = e.mutable_violation();
  v->set_path(path);
  v->set_verdict(verdict);
  v->set_dataset("users");
  v->set_pinned_version("v1");
  v->set_detail("not the pinned version");
  v->set_refused(refused);
  return e;
}

v1::JournalEntry Libraries(const std::vector<LibrarySpec>& libraries, int32_t pid) {
  v1::JournalEntry e;
  v1::LibrariesLoaded* loaded = e.mutable_libraries();
  loaded->set_pid(pid);
  for (const LibrarySpec& spec : libraries) {
    v1::Library* library = loaded->add_libraries();
    library->set_path(spec.path);
    library->set_soname(spec.soname);
    library->set_version(spec.version);
    library->set_sha256(Digest(spec.sha));
  }
  return e;
}

v1::JournalEntry Packages(const std::vector<std::pair<std::string, std::string>>& packages,
                          const std::string& location) {
  v1::JournalEntry e;
  for (const auto& [name, version] : packages) {
    v1::PythonPackage* p = e.mutable_python_packages()->add_packages();
    p->set_name(name);
    p->set_version(version);
    p->set_location(absl::StrCat(location, "/", name, "-", version, ".dist-info"));
  }
  return e;
}

v1::JournalEntry Host(const std::string& hostname, const std::string& gpu, int gpus) {
  v1::JournalEntry e;
  v1::HostFacts* h = e.mutable_host();
  h->set_hostname(hostname);
  h->set_kernel_release("6.1.0-18-amd64");
  h->set_os_release("Debian GNU/Linux 12 (bookworm)");
  h->set_cpu_model("Intel(R) Xeon(R) Platinum 8480+");
  h->set_cpu_count(224);
  h->set_memory_bytes(uint64_t{2} << 40);
  h->set_glibc_version("2.36");
  for (int i = 0; i < gpus && !gpu.empty(); ++i) {
    v1::Gpu* g = h->add_gpus();
    g->set_index(i);
    g->set_name(gpu);
    g->set_uuid(absl::StrCat("GPU-", hostname, "-", i));
    g->set_memory_bytes(uint64_t{80} << 30);
  }
  if (!gpu.empty()) {
    h->set_driver_version("535.104.05");
    h->set_cuda_driver_version("12.2");
    h->set_gpu_source("nvml");
  } else {
    h->set_gpu_source("none");
  }
  return e;
}

v1::JournalEntry& JournalFixture::Add(const std::string& node, v1::JournalEntry entry) {
  entry.set_job(job_);
  entry.set_node(node);
  entry.set_seq(++seqs_[node]);
  if (entry.kind_case() == v1::JournalEntry::kHost) entry.mutable_host()->set_node(node);
  entry.mutable_time()->set_seconds(++clock_);
  entries_.push_back(std::move(entry));
  return entries_.back();
}

std::string JournalFixture::HashOf(const std::string& node, uint64_t seq) {
  return Digest(static_cast<char>(node.size() + seq));
}

v1::Provenance JournalFixture::Provenance(const v1::Pin& pin) const {
  ProvenanceBuilder builder(job_);
  if (!pin.job().empty()) builder.SetPin(pin);
  for (const v1::JournalEntry& entry : entries_) {
    builder.Add(entry, HashOf(entry.node(), entry.seq()));
  }
  return builder.Build();
}

}  // namespace repro::cli
