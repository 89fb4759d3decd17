#include "client/shim/fixed_table.h"

#include <string.h>

/* Slots looked at before an insert evicts the home slot. */
enum { kProbes = 16 };

static inline uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

uint64_t shim_hash(const void* data, size_t n, uint64_t seed) {
  const unsigned char* p = (const unsigned char*)data;
  uint64_t h = Mix(seed ^ (n * 0x9e3779b97f4a7c15ull));
  while (n >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    h = Mix(h ^ w) * 0x9e3779b97f4a7c15ull;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = Mix(h ^ w ^ 0xa0761d6478bd642full);
  }
  h = Mix(h);
  return h != 0 ? h : 1;
}

static inline uint64_t Tag(uint64_t key) { return key & ~SHIM_TABLE_VALUE_MASK; }

int shim_table_get(const struct shim_table* t, uint64_t key, uint64_t* value) {
  for (uint32_t i = 0; i < kProbes; ++i) {
    uint32_t slot = (uint32_t)(key + i) & t->mask;
    uint64_t k = atomic_load_explicit(&t->slots[slot].key, memory_order_acquire);
    if (k == 0) return 0;
    if (k != key) continue;
    uint64_t v = atomic_load_explicit(&t->slots[slot].value, memory_order_acquire);
    if ((v & ~SHIM_TABLE_VALUE_MASK) != Tag(key)) return 0; /* being replaced */
    if (value != NULL) *value = v & SHIM_TABLE_VALUE_MASK;
    return 1;
  }
  return 0;
}

static void Store(const struct shim_table* t, uint32_t slot, uint64_t key, uint64_t value) {
  atomic_store_explicit(&t->slots[slot].value, Tag(key) | (value & SHIM_TABLE_VALUE_MASK),
                        memory_order_release);
}

void shim_table_put(struct shim_table* t, uint64_t key, uint64_t value) {
  for (uint32_t i = 0; i < kProbes; ++i) {
    uint32_t slot = (uint32_t)(key + i) & t->mask;
    uint64_t k = atomic_load_explicit(&t->slots[slot].key, memory_order_acquire);
    if (k == key) {
      Store(t, slot, key, value);
      return;
    }
    if (k == 0) {
      uint64_t expected = 0; /* an empty slot's value is 0: slots are never emptied */
      if (atomic_compare_exchange_strong(&t->slots[slot].key, &expected, key) || expected == key) {
        Store(t, slot, key, value);
        return;
      }
    }
  }
  /* Full window: replace the home slot. Its value is cleared first so that no reader pairs the
   * new key with the old value. */
  uint32_t home = (uint32_t)key & t->mask;
  atomic_store_explicit(&t->slots[home].value, 0, memory_order_release);
  atomic_store_explicit(&t->slots[home].key, key, memory_order_release);
  Store(t, home, key, value);
}
