/* Fixed-size, lock-free hash tables for the shim's hot path: no allocation, no locks, bounded
 * probing. Keys are nonzero 64-bit hashes (shim_hash); a table is a cache, so when the probe
 * window is full an insert replaces the entry at the key's home slot.
 *
 *   static struct shim_slot slots[1024];
 *   static struct shim_table dirs = SHIM_TABLE_INIT(slots, 1024);
 *   uint64_t key = shim_hash(path, len, seed);
 *   if (!shim_table_get(&dirs, key, NULL)) shim_table_put(&dirs, key, 0);
 *
 * Thread-safe: readers never see a value that belongs to another key (each value carries a tag of
 * its key, checked on read). Two threads inserting the same key at once may both insert it.
 */
#ifndef REPRO_CLIENT_SHIM_FIXED_TABLE_H_
#define REPRO_CLIENT_SHIM_FIXED_TABLE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
#include <atomic>
typedef std::atomic<uint64_t> shim_atomic_u64; /* same layout; for C++ tests of this C code */
#else
#include <stdatomic.h>
typedef _Atomic uint64_t shim_atomic_u64;
#endif

/* A key and its value side by side: a lookup touches one cache line, and a table's first use in a
 * process faults in half the pages it would with keys and values apart. */
struct shim_slot {
  shim_atomic_u64 key;
  shim_atomic_u64 value;
};

struct shim_table {
  struct shim_slot* slots;
  uint32_t mask; /* slots - 1; slots is a power of two */
};

#define SHIM_TABLE_INIT(slots, count) {(slots), (uint32_t)(count) - 1u}

/* Values hold 48 bits; the top 16 bits are the key's tag. */
#define SHIM_TABLE_VALUE_MASK 0x0000ffffffffffffull

/* A 64-bit hash of `n` bytes, never 0. Different seeds give independent hashes. */
uint64_t shim_hash(const void* data, size_t n, uint64_t seed);

/* 1 when `key` is present (its value, below 2^48, stored in *value when not NULL), else 0. */
int shim_table_get(const struct shim_table* t, uint64_t key, uint64_t* value);

/* Inserts `key` with `value` (below 2^48), or updates it. */
void shim_table_put(struct shim_table* t, uint64_t key, uint64_t value);

#endif /* REPRO_CLIENT_SHIM_FIXED_TABLE_H_ */
