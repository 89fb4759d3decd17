// Makes absl::Mutex and absl::CondVar visible to ThreadSanitizer (REPRO_SANITIZE=thread builds
// only; CMakeLists.txt links this file into every executable of such a build).
//
// Debian's Abseil is not instrumented, so TSan sees neither the lock nor the unlock of an
// absl::Mutex and reports every access that one guards as a race: in our code, and in gRPC's,
// which locks absl::Mutex too. This file interposes the Mutex and CondVar entry points (the
// executable's definitions come before libabsl_synchronization's, also for gRPC's and Abseil's
// own calls, which go through the PLT). Each forwards to Abseil's definition, found with
// dlsym(RTLD_NEXT), and tells TSan the happens-before edges the mutex makes: __tsan_release(mu)
// before mu is released (Unlock, ReaderUnlock, and inside Await and CondVar::Wait) and
// __tsan_acquire(mu) once it is held again. A Condition is evaluated between __tsan_acquire(mu)
// and __tsan_release(mu), wherever Abseil evaluates it (often in the thread that unlocks).
//
// Limits: reader locks are ordered among themselves (a write made under a reader lock is not
// reported), and TSan makes no lock-order (deadlock) reports for these mutexes.
// No reference to Abseil at link time and no C++ runtime, so that C programs link it too.
#include <dlfcn.h>
#include <sanitizer/tsan_interface.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/synchronization/mutex.h"

#define REPRO_TSAN_STR2(x) #x
#define REPRO_TSAN_STR(x) REPRO_TSAN_STR2(x)

namespace {

// Abseil's definition of the symbol `format` names, where %s stands for the mangled inline
// namespace (e.g. "7debian3"). Aborts when there is none: the interposition would be wrong.
void* Real(const char* format) {
  const char* ns = REPRO_TSAN_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  char mangled_ns[64];
  snprintf(mangled_ns, sizeof(mangled_ns), "%zu%s", strlen(ns), ns);
  char name[256];
  snprintf(name, sizeof(name), format, mangled_ns);
  void* fn = dlsym(RTLD_NEXT, name);
  if (fn == nullptr) {
    fprintf(stderr, "tsan_absl_sync: Abseil has no %s\n", name);
    abort();
  }
  return fn;
}

// Looks `format` up once per call site and caches it in *slot (every thread finds the same
// address, so a second lookup is harmless). Usable before static constructors have run.
template <typename Fn>
Fn Lookup(void** slot, const char* format) {
  void* fn = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (fn == nullptr) {
    fn = Real(format);
    __atomic_store_n(slot, fn, __ATOMIC_RELEASE);
  }
  return reinterpret_cast<Fn>(fn);
}

// Abseil's definition named by `format`, as a pointer of type Fn.
#define REPRO_REAL(Fn, format)          \
  ([] {                                 \
    static void* slot;                  \
    return Lookup<Fn>(&slot, format);   \
  }())

using absl::CondVar;
using absl::Condition;
using absl::Duration;
using absl::Mutex;
using absl::Time;

// A Condition that acquires `mu` before it evaluates `cond`, and releases it after (Abseil
// evaluates conditions with the mutex held, and may let it go without calling Unlock).
class WatchedCondition {
 public:
  WatchedCondition(const Condition& cond, Mutex* mu) : cond_(&cond), mu_(mu) {
    REPRO_REAL(void (*)(void*, bool (*)(void*), void*), "_ZN4absl%s9ConditionC1EPFbPvES2_")(
        storage_, &Eval, this);
  }
  const Condition& get() const { return *reinterpret_cast<const Condition*>(storage_); }

 private:
  static bool Eval(void* arg) {
    auto* self = static_cast<WatchedCondition*>(arg);
    __tsan_acquire(self->mu_);
    const bool holds =
        REPRO_REAL(bool (*)(const Condition*), "_ZNK4absl%s9Condition4EvalEv")(self->cond_);
    __tsan_release(self->mu_);  // Abseil may release the mutex next, unseen
    return holds;
  }

  const Condition* const cond_;
  Mutex* const mu_;
  alignas(Condition) unsigned char storage_[sizeof(Condition)];
};

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

void Mutex::Lock() {
  REPRO_REAL(void (*)(Mutex*), "_ZN4absl%s5Mutex4LockEv")(this);
  __tsan_acquire(this);
}
void Mutex::ReaderLock() {
  REPRO_REAL(void (*)(Mutex*), "_ZN4absl%s5Mutex10ReaderLockEv")(this);
  __tsan_acquire(this);
}
bool Mutex::TryLock() {
  const bool locked = REPRO_REAL(bool (*)(Mutex*), "_ZN4absl%s5Mutex7TryLockEv")(this);
  if (locked) __tsan_acquire(this);
  return locked;
}
bool Mutex::ReaderTryLock() {
  const bool locked = REPRO_REAL(bool (*)(Mutex*), "_ZN4absl%s5Mutex13ReaderTryLockEv")(this);
  if (locked) __tsan_acquire(this);
  return locked;
}
void Mutex::Unlock() {
  __tsan_release(this);
  REPRO_REAL(void (*)(Mutex*), "_ZN4absl%s5Mutex6UnlockEv")(this);
}
void Mutex::ReaderUnlock() {
  __tsan_release(this);
  REPRO_REAL(void (*)(Mutex*), "_ZN4absl%s5Mutex12ReaderUnlockEv")(this);
}

// Await and CondVar::Wait release the mutex while they wait and hold it again when they return.
void Mutex::Await(const Condition& cond) {
  WatchedCondition watched(cond, this);
  auto real = REPRO_REAL(void (*)(Mutex*, const Condition&),
                         "_ZN4absl%s5Mutex5AwaitERKNS0_9ConditionE");
  __tsan_release(this);
  real(this, watched.get());
  __tsan_acquire(this);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  WatchedCondition watched(cond, this);
  auto real = REPRO_REAL(bool (*)(Mutex*, const Condition&, Duration),
                         "_ZN4absl%s5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  __tsan_release(this);
  const bool holds = real(this, watched.get(), timeout);
  __tsan_acquire(this);
  return holds;
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  WatchedCondition watched(cond, this);
  auto real = REPRO_REAL(bool (*)(Mutex*, const Condition&, Time),
                         "_ZN4absl%s5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  __tsan_release(this);
  const bool holds = real(this, watched.get(), deadline);
  __tsan_acquire(this);
  return holds;
}
void CondVar::Wait(Mutex* mu) {
  auto real = REPRO_REAL(void (*)(CondVar*, Mutex*), "_ZN4absl%s7CondVar4WaitEPNS0_5MutexE");
  __tsan_release(mu);
  real(this, mu);
  __tsan_acquire(mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  auto real = REPRO_REAL(bool (*)(CondVar*, Mutex*, Duration),
                         "_ZN4absl%s7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, timeout);
  __tsan_acquire(mu);
  return timed_out;
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  auto real = REPRO_REAL(bool (*)(CondVar*, Mutex*, Time),
                         "_ZN4absl%s7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  __tsan_release(mu);
  const bool timed_out = real(this, mu, deadline);
  __tsan_acquire(mu);
  return timed_out;
}

// The LockWhen family takes the mutex (for writing or reading) once the condition holds.
void Mutex::LockWhen(const Condition& cond) {
  WatchedCondition watched(cond, this);
  REPRO_REAL(void (*)(Mutex*, const Condition&), "_ZN4absl%s5Mutex8LockWhenERKNS0_9ConditionE")(
      this, watched.get());
  __tsan_acquire(this);
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  WatchedCondition watched(cond, this);
  const bool holds = REPRO_REAL(
      bool (*)(Mutex*, const Condition&, Duration),
      "_ZN4absl%s5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE")(
      this, watched.get(), timeout);
  __tsan_acquire(this);
  return holds;
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  WatchedCondition watched(cond, this);
  const bool holds = REPRO_REAL(
      bool (*)(Mutex*, const Condition&, Time),
      "_ZN4absl%s5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE")(
      this, watched.get(), deadline);
  __tsan_acquire(this);
  return holds;
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  WatchedCondition watched(cond, this);
  REPRO_REAL(void (*)(Mutex*, const Condition&),
             "_ZN4absl%s5Mutex14ReaderLockWhenERKNS0_9ConditionE")(this, watched.get());
  __tsan_acquire(this);
}
bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  WatchedCondition watched(cond, this);
  const bool holds = REPRO_REAL(
      bool (*)(Mutex*, const Condition&, Duration),
      "_ZN4absl%s5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE")(
      this, watched.get(), timeout);
  __tsan_acquire(this);
  return holds;
}
bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  WatchedCondition watched(cond, this);
  const bool holds = REPRO_REAL(
      bool (*)(Mutex*, const Condition&, Time),
      "_ZN4absl%s5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE")(
      this, watched.get(), deadline);
  __tsan_acquire(this);
  return holds;
}

ABSL_NAMESPACE_END
}  // namespace absl
