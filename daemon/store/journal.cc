#include "daemon/store/journal.h"

#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "daemon/store/chain.h"
#include "google/protobuf/util/time_util.h"
#include "rocksdb/iterator.h"

namespace repro {

using google::protobuf::util::TimeUtil;

namespace {

// Where a job's mark lives: beside its once-keys, under a prefix no once-key uses.
std::string MarkIndexKey(absl::string_view job, absl::string_view mark_key) {
  return OnceIndexKey(job, absl::StrCat("mark/", mark_key));
}

}  // namespace

// A caller of Append waiting in writers_, or an AppendAsync call (owned by writers_ until it is
// done). The leader fills `result` and sets `done`.
struct Journal::Writer {
  absl::string_view job;
  std::vector<JournalItem>* items;
  absl::StatusOr<std::vector<Appended>> result = absl::UnknownError("not committed");
  bool done = false;
  absl::CondVar cv;  // signalled when done, or when this writer reaches the front and must lead
  // AppendAsync only: the writer owns its job and items, and reports to `on_done`.
  bool async = false;
  bool awaited = false;  // from AppendAsyncForResult
  std::string owned_job;
  std::vector<JournalItem> owned_items;
  std::function<void(absl::StatusOr<std::vector<Appended>>)> on_done;
};

// What the leader prepared for one group: the writers it commits and the heads it moves to.
struct Journal::GroupCommit {
  std::vector<Writer*> writers;                        // taken from writers_, minus damaged jobs
  absl::flat_hash_map<std::string, HeadState> heads;  // starting heads, advanced while building
  absl::flat_hash_set<std::string> touched;      // jobs that got new entries
  std::vector<std::vector<Appended>> results;    // per writer
  std::optional<HeadLog::Frontier> log;          // the head log with this group's heads
  uint64_t generation = 0;  // the store's generation the heads were taken at
};

Journal::Journal(RocksStore* store, JournalOptions options)
    : store_(store),
      options_(std::move(options)),
      entries_(Registry()->GetCounter("repro_journal_entries_total",
                                      "Journal entries durably appended")),
      commits_(Registry()->GetCounter(
          "repro_journal_commits_total",
          "Group commits (one synced write each); entries / commits is the batching factor")),
      failed_commits_(Registry()->GetCounter("repro_journal_failed_commits_total",
                                             "Group commits that failed (nothing appended)")),
      commit_seconds_(Registry()->GetHistogram("repro_journal_commit_seconds",
                                               "Time to build and durably write a group",
                                               Histogram::ExponentialBuckets(0.0001, 2, 16))) {}

Journal::~Journal() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (Committer& c : committers_) c.wake.Signal();
  }
  for (Committer& c : committers_) {
    if (c.thread.joinable()) c.thread.join();
  }
}

Metrics* Journal::Registry() {
  return options_.metrics != nullptr ? options_.metrics : &own_metrics_;
}

absl::StatusOr<Journal::HeadState> Journal::LoadHead(absl::string_view job) const {
  ASSIGN_OR_RETURN(std::optional<std::string> value, store_->Get(Column::kJournalHeads, job));
  // The last stored entry, to cross-check the head: a head that disagrees with the entries
  // means entries were dropped or added behind our back, and the chain must not be extended.
  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->handle(Column::kJournal)));
  std::string upper = JournalKey(job, UINT64_MAX);
  it->SeekForPrev(upper);
  std::optional<uint64_t> last_seq;
  std::string last_hash;
  if (it->Valid()) {
    last_seq = SeqFromJournalKey(ToView(it->key()), job);
    if (last_seq) {
      ASSIGN_OR_RETURN(StoredEntryView view, DecodeStoredEntry(ToView(it->value())));
      last_hash = std::string(view.hash);
    }
  }
  RETURN_IF_ERROR(FromRocksStatus(it->status(), "read journal"));

  HeadState head;
  head.hash = GenesisHash();
  if (value.has_value()) {
    v1::JournalHead stored;
    if (!stored.ParseFromString(*value)) {
      return absl::DataLossError(absl::StrCat("journal head of job ", job, " is corrupt"));
    }
    head.seq = stored.seq();
    head.hash = stored.hash();
    head.signature = stored.signature();
  }
  uint64_t entries_end = last_seq.value_or(0);
  if (entries_end != head.seq || (last_seq && last_hash != head.hash)) {
    return absl::DataLossError(absl::StrCat(
        "journal of job ", job, " is damaged: its head is at entry ", head.seq,
        " but the last stored entry is ", entries_end, "; run `reproctl verify ", job, "`"));
  }
  return head;
}

absl::StatusOr<Journal::HeadState> Journal::HeadLocked(absl::string_view job) const {
  const uint64_t generation = store_->generation();
  if (generation != heads_generation_) {  // reopened: a failed write may have come back
    heads_.clear();
    heads_generation_ = generation;
  }
  auto it = heads_.find(job);
  if (it != heads_.end()) return it->second;
  ASSIGN_OR_RETURN(HeadState head, LoadHead(job));
  heads_.emplace(std::string(job), head);
  return head;
}

absl::Status Journal::Commit(GroupCommit* commit) {
  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  if (lease.generation() != commit->generation) {
    return absl::UnavailableError(
        "storage fault: the database was reopened while this append waited; nothing was written");
  }
  if (options_.head_log != nullptr) {
    RETURN_IF_ERROR(options_.head_log->Rederive(commit->generation));
  }
  const std::vector<Writer*>& group = commit->writers;
  rocksdb::WriteBatch batch;
  absl::flat_hash_map<std::string, uint64_t> pending_once;  // once key -> seq, this group
  // Mark index key -> its last value in this group: a process's reports in one group all set its
  // mark, and only the last write of a batch is read back, so each key is written once.
  absl::flat_hash_map<std::string, uint64_t> marks;
  const absl::Time now = options_.clock->Now();
  commit->results.resize(group.size());
  for (size_t w = 0; w < group.size(); ++w) {
    Writer* writer = group[w];
    HeadState& head = commit->heads[writer->job];
    for (JournalItem& item : *writer->items) {
      if (!item.mark_key.empty()) {
        marks.insert_or_assign(MarkIndexKey(writer->job, item.mark_key), item.mark_value);
      }
      if (!item.once_key.empty()) {
        std::string index_key = OnceIndexKey(writer->job, item.once_key);
        ASSIGN_OR_RETURN(std::optional<std::string> existing,
                         store_->Get(Column::kJournalIndex, index_key));
        if (existing.has_value() && existing->size() == 8) {
          commit->results[w].push_back({DecodeBigEndian64(*existing), false});
          continue;
        }
        auto [pending, inserted] = pending_once.emplace(index_key, head.seq + 1);
        if (!inserted) {  // the same key earlier in this group
          commit->results[w].push_back({pending->second, false});
          continue;
        }
        batch.Put(store_->handle(Column::kJournalIndex), index_key,
                  EncodeBigEndian64(head.seq + 1));
      }
      v1::JournalEntry& entry = item.entry;
      entry.set_job(std::string(writer->job));
      entry.set_seq(head.seq + 1);
      entry.set_node(options_.node);
      if (!entry.has_time()) *entry.mutable_time() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(now));
      std::string payload;
      if (!entry.SerializeToString(&payload)) {
        return absl::InternalError("cannot serialize a journal entry");
      }
      head.seq += 1;
      head.hash = ChainHash(head.hash, payload);
      batch.Put(store_->handle(Column::kJournal), JournalKey(writer->job, head.seq),
                EncodeStoredEntry(head.hash, payload));
      commit->touched.insert(std::string(writer->job));
      commit->results[w].push_back({head.seq, true});
    }
  }
  for (const auto& [key, value] : marks) {
    batch.Put(store_->handle(Column::kJournalIndex), key, EncodeBigEndian64(value));
  }
  std::vector<LoggedHead> logged;
  for (const std::string& job : commit->touched) {
    HeadState& head = commit->heads[job];
    std::string signing = HeadSigningBytes(options_.node, job, head.seq, head.hash);
    head.signature = options_.key->Sign(signing);
    v1::JournalHead stored = ToProto(job, head);
    stored.clear_public_key();
    batch.Put(store_->handle(Column::kJournalHeads), job, stored.SerializeAsString());
    if (options_.head_log != nullptr) logged.push_back({job, head.seq, std::move(signing)});
  }
  if (!logged.empty()) commit->log = options_.head_log->Stage(logged, &batch);
  if (batch.Count() == 0) return absl::OkStatus();
  return store_->WriteDurable(&batch);
}

absl::StatusOr<std::vector<Appended>> Journal::Append(absl::string_view job,
                                                      std::vector<JournalItem> items) {
  Writer self;
  self.job = job;
  self.items = &items;
  absl::MutexLock lock(&mu_);
  writers_.push_back(&self);
  while (!self.done && writers_.front() != &self) self.cv.Wait(&mu_);
  if (!self.done) LeadGroup(&self);
  return std::move(self.result);
}

namespace {

// Runs `done` with the status of the result it is given.
std::function<void(absl::StatusOr<std::vector<Appended>>)> StatusOnly(JournalDone done) {
  if (!done) return nullptr;
  return [done = std::move(done)](absl::StatusOr<std::vector<Appended>> result) {
    done(result.status());
  };
}

}  // namespace

void Journal::AppendAsync(std::string job, std::vector<JournalItem> items, JournalDone done) {
  auto writer = std::make_unique<Writer>();
  writer->owned_job = std::move(job);
  writer->owned_items = std::move(items);
  writer->on_done = StatusOnly(std::move(done));
  absl::MutexLock lock(&mu_);
  QueueAsync(std::move(writer));
}

void Journal::AppendAsyncForResult(
    std::string job, std::vector<JournalItem> items,
    std::function<void(absl::StatusOr<std::vector<Appended>>)> done) {
  auto writer = std::make_unique<Writer>();
  writer->awaited = true;
  writer->owned_job = std::move(job);
  writer->owned_items = std::move(items);
  writer->on_done = std::move(done);
  absl::MutexLock lock(&mu_);
  QueueAsync(std::move(writer));
}

void Journal::QueueAsync(std::unique_ptr<Writer> writer) {
  writer->async = true;
  writer->job = writer->owned_job;
  writer->items = &writer->owned_items;
  const size_t n = writer->owned_items.size();
  const bool awaited = writer->awaited;
  std::thread& committer = committers_[awaited].thread;
  if (!committer.joinable()) committer = std::thread([this, awaited] { CommitterLoop(awaited); });
  while (async_items_ > 0 && async_items_ + n > options_.max_async_items) {
    async_progress_.Wait(&mu_);
  }
  async_items_ += n;
  ++async_queued_;
  writers_.push_back(writer.release());
  if (writers_.size() == 1) WakeFront();
}

void Journal::FlushAsync() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = async_queued_;
  while (async_finished_ < target) async_progress_.Wait(&mu_);
}

void Journal::WakeFront() {
  if (writers_.empty()) return;
  Writer* front = writers_.front();
  if (front->async) {
    committers_[front->awaited].wake.Signal();
  } else {
    front->cv.Signal();
  }
}

void Journal::CommitterLoop(bool awaited) {
  pthread_setname_np(pthread_self(), awaited ? "journal-commit+" : "journal-commit");
  if (!awaited && options_.committer_nice != 0) {
    setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), options_.committer_nice);
  }
  absl::MutexLock lock(&mu_);
  for (;;) {
    if (!writers_.empty() && writers_.front()->async && writers_.front()->awaited == awaited) {
      LeadGroup(writers_.front());
      continue;
    }
    if (stopping_ && async_finished_ == async_queued_) return;
    committers_[awaited].wake.Wait(&mu_);
  }
}

void Journal::LeadGroup(Writer* leader) {
  GroupCommit commit;
  const size_t group_size = TakeGroup(&commit);
  mu_.Unlock();
  absl::Status status = CommitAndCount(&commit);
  mu_.Lock();
  std::vector<std::unique_ptr<Writer>> finished = FinishGroup(leader, group_size, status, &commit);
  std::vector<v1::JournalHead> heads;
  if (status.ok() && !commit.touched.empty() && options_.on_commit) {
    for (const std::string& job : commit.touched) heads.push_back(ToProto(job, commit.heads[job]));
  }
  if (heads.empty() && finished.empty()) return;
  mu_.Unlock();  // observers run outside the lock (JournalOptions::on_commit, JournalDone)
  if (!heads.empty()) options_.on_commit(std::move(heads));
  for (const std::unique_ptr<Writer>& w : finished) {
    if (w->on_done) w->on_done(std::move(w->result));
  }
  mu_.Lock();
  async_items_ -= [&] {
    size_t n = 0;
    for (const std::unique_ptr<Writer>& w : finished) n += w->owned_items.size();
    return n;
  }();
  async_finished_ += finished.size();
  if (!finished.empty()) async_progress_.SignalAll();
  if (stopping_ && async_finished_ == async_queued_) {
    for (Committer& c : committers_) c.wake.Signal();  // both may exit now
  }
}

size_t Journal::TakeGroup(GroupCommit* commit) {
  commit->generation = store_->generation();
  size_t taken = 0;
  size_t entries = 0;
  absl::flat_hash_map<std::string, absl::Status> damaged;  // jobs whose journal must not grow
  for (Writer* w : writers_) {
    if (taken > 0 && entries + w->items->size() > options_.max_group_entries) break;
    ++taken;
    entries += w->items->size();
    std::string job(w->job);
    if (!commit->heads.contains(job) && !damaged.contains(job)) {
      absl::StatusOr<HeadState> head = HeadLocked(job);
      if (head.ok()) {
        commit->heads.emplace(job, *std::move(head));
      } else {
        damaged.emplace(job, head.status());
      }
    }
    auto bad = damaged.find(job);
    if (bad != damaged.end()) {
      w->result = bad->second;
    } else {
      commit->writers.push_back(w);
    }
  }
  return taken;
}

absl::Status Journal::CommitAndCount(GroupCommit* commit) {
  const absl::Time start = absl::Now();
  absl::Status status = Commit(commit);
  commit_seconds_->Observe(absl::ToDoubleSeconds(absl::Now() - start));
  if (!status.ok()) {
    failed_commits_->Increment();
    return status;
  }
  commits_->Increment();
  for (const std::vector<Appended>& results : commit->results) {
    for (const Appended& a : results) entries_->Increment(a.created ? 1 : 0);
  }
  return status;
}

std::vector<std::unique_ptr<Journal::Writer>> Journal::FinishGroup(Writer* leader,
                                                                  size_t group_size,
                                                                  const absl::Status& status,
                                                                  GroupCommit* commit) {
  if (status.ok()) {
    for (const std::string& job : commit->touched) heads_[job] = commit->heads[job];
    if (commit->log.has_value()) options_.head_log->Apply(*std::move(commit->log));
  }
  for (size_t i = 0; i < commit->writers.size(); ++i) {
    if (status.ok()) {
      commit->writers[i]->result = std::move(commit->results[i]);
    } else {
      commit->writers[i]->result = status;
    }
  }
  // Wake exactly the writers that are done and the next leader, not every waiting thread.
  std::vector<std::unique_ptr<Writer>> finished_async;
  for (size_t i = 0; i < group_size; ++i) {
    Writer* done = writers_.front();
    writers_.pop_front();
    done->done = true;
    if (done->async) {
      finished_async.emplace_back(done);
    } else if (done != leader) {
      done->cv.Signal();
    }
  }
  WakeFront();
  if (status.ok() && !commit->touched.empty()) appended_.SignalAll();
  return finished_async;
}

absl::StatusOr<std::vector<StoredEntry>> Journal::Read(absl::string_view job, uint64_t after_seq,
                                                       size_t max_entries) const {
  std::vector<StoredEntry> out;
  if (after_seq == UINT64_MAX) return out;
  std::string prefix = JobPrefix(job);
  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  rocksdb::ReadOptions read_options;
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(read_options, store_->handle(Column::kJournal)));
  for (it->Seek(JournalKey(job, after_seq + 1));
       it->Valid() && it->key().starts_with(prefix) && out.size() < max_entries; it->Next()) {
    std::optional<uint64_t> seq = SeqFromJournalKey(ToView(it->key()), job);
    if (!seq) continue;
    ASSIGN_OR_RETURN(StoredEntryView view, DecodeStoredEntry(ToView(it->value())));
    out.push_back({*seq, std::string(view.hash), std::string(view.payload)});
  }
  RETURN_IF_ERROR(FromRocksStatus(it->status(), "read journal"));
  return out;
}

v1::JournalHead Journal::ToProto(absl::string_view job, const HeadState& head) const {
  v1::JournalHead out;
  out.set_job(std::string(job));
  out.set_node(options_.node);
  out.set_seq(head.seq);
  out.set_hash(head.hash);
  out.set_signature(head.signature);
  out.set_public_key(options_.key->public_key());
  return out;
}

absl::StatusOr<std::optional<uint64_t>> Journal::Mark(absl::string_view job,
                                                      absl::string_view key) const {
  ASSIGN_OR_RETURN(std::optional<std::string> stored,
                   store_->Get(Column::kJournalIndex, MarkIndexKey(job, key)));
  if (!stored.has_value()) return std::optional<uint64_t>();
  if (stored->size() != 8) {
    return absl::DataLossError(absl::StrCat("mark ", key, " of job ", job, " is damaged"));
  }
  return std::optional<uint64_t>(DecodeBigEndian64(*stored));
}

absl::StatusOr<v1::JournalHead> Journal::Head(absl::string_view job) const {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(HeadState head, HeadLocked(job));
  if (head.seq == 0) {
    return absl::NotFoundError(absl::StrCat("job ", job, " has no journal on node ", options_.node));
  }
  return ToProto(job, head);
}

bool Journal::WaitForEntriesAfter(absl::string_view job, uint64_t after_seq,
                                  absl::Duration timeout) const {
  const absl::Time deadline = absl::Now() + timeout;
  absl::MutexLock lock(&mu_);
  while (true) {
    absl::StatusOr<HeadState> head = HeadLocked(job);
    if (head.ok() && head->seq > after_seq) return true;
    if (appended_.WaitWithDeadline(&mu_, deadline)) return false;
  }
}

absl::StatusOr<v1::NodeJournalCheck> Journal::Verify(absl::string_view job) const {
  v1::NodeJournalCheck check;
  check.set_node(options_.node);
  auto broken = [&check](uint64_t seq, std::string problem) {
    check.set_intact(false);
    check.set_first_broken_seq(seq);
    check.set_problem(std::move(problem));
    return check;
  };

  ASSIGN_OR_RETURN(std::optional<std::string> head_value, store_->Get(Column::kJournalHeads, job));
  std::string prefix = JobPrefix(job);
  RocksStore::Lease lease(store_);
  RETURN_IF_ERROR(lease.status());
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->handle(Column::kJournal)));
  std::string hash = GenesisHash();
  uint64_t expected = 1;
  for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    std::optional<uint64_t> seq = SeqFromJournalKey(ToView(it->key()), job);
    if (!seq) return broken(expected, "a key in the journal is malformed");
    if (*seq != expected) {
      return broken(expected, absl::StrCat("entry ", expected, " is missing (next stored entry is ",
                                           *seq, ")"));
    }
    absl::StatusOr<StoredEntryView> view = DecodeStoredEntry(ToView(it->value()));
    if (!view.ok()) return broken(*seq, std::string(view.status().message()));
    std::string computed = ChainHash(hash, view->payload);
    if (computed != view->hash) {
      return broken(*seq, absl::StrCat("entry ", *seq, " does not match its chain hash (stored ",
                                       HexDigest(view->hash).substr(0, 16), "…, computed ",
                                       HexDigest(computed).substr(0, 16), "…)"));
    }
    v1::JournalEntry entry;
    if (!entry.ParseFromArray(view->payload.data(), static_cast<int>(view->payload.size())) || entry.seq() != *seq || entry.job() != job) {
      return broken(*seq, absl::StrCat("entry ", *seq, " does not decode as entry ", *seq,
                                       " of job ", job));
    }
    hash = std::move(computed);
    ++expected;
  }
  RETURN_IF_ERROR(FromRocksStatus(it->status(), "read journal"));
  const uint64_t entries = expected - 1;
  check.set_entries(entries);

  if (!head_value.has_value()) {
    if (entries == 0) {
      return absl::NotFoundError(absl::StrCat("job ", job, " has no journal on node ", options_.node));
    }
    return broken(entries, "the journal head is missing");
  }
  v1::JournalHead head;
  if (!head.ParseFromString(*head_value)) return broken(entries, "the journal head is corrupt");
  head.set_public_key(options_.key->public_key());
  *check.mutable_head() = head;
  if (head.seq() != entries) {
    return broken(std::min(head.seq(), entries) + 1,
                  absl::StrCat("the signed head is at entry ", head.seq(), " but ", entries,
                               " entries are stored",
                               head.seq() > entries ? " (entries were dropped)" : ""));
  }
  if (head.hash() != hash) {
    return broken(entries, "the signed head does not match the last entry's hash");
  }
  if (!NodeKey::Verify(options_.key->public_key(),
                       HeadSigningBytes(head.node(), job, head.seq(), head.hash()),
                       head.signature())) {
    return broken(entries, "the head's signature does not verify with this node's key");
  }
  check.set_intact(true);
  return check;
}

absl::StatusOr<std::vector<std::string>> Journal::ListJobs() const {
  std::vector<std::string> jobs;
  RETURN_IF_ERROR(store_->ScanPrefix(Column::kJournalHeads, "",
                                     [&jobs](absl::string_view key, absl::string_view) {
                                       jobs.emplace_back(key);
                                       return true;
                                     }));
  return jobs;
}

}  // namespace repro
