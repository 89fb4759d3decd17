/* The verdict index: a read-only table of a job's pinned files, so that the shim can allow the
 * first open of an unchanged file in enforce mode without asking reprod.
 *
 * Plain C (C99 and C++17). reprod builds it in a sealed memfd (no writes, no resizing) and passes
 * it with SCM_RIGHTS in the PIN answer, beside the report ring (proto/shim/shim_ring.h); the shim
 * maps it read-only and calls repro_shim_index_find, which touches a few pages and allocates
 * nothing, however many files the version has.
 *
 *   const struct repro_shim_index_slot* s = repro_shim_index_find(map, size, path, len);
 *   if (s != NULL && repro_shim_index_same(s, dev, ino, size, mtime_ns, ctime_ns)) allow...
 *
 * An entry is there only when reprod has verified that the file with exactly that identity
 * (device, inode, size, mtime, ctime: the rule of reprod's hash cache, daemon/hashing/
 * hash_cache.h) has the manifest's SHA-256. ctime moves on every write and cannot be set back,
 * so a file changed in place, even with its mtime restored, no longer matches: the shim then asks
 * reprod, which re-hashes it.
 *
 * Layout (host byte order; both ends are on one machine):
 *
 *   offset  size  header
 *        0     4  magic        REPRO_SHIM_INDEX_MAGIC ("RPIX")
 *        4     4  version      REPRO_SHIM_INDEX_VERSION
 *        8     8  slot_count   a power of two, at least twice the entries
 *       16     8  strings_offset, 24: strings_size  the paths, back to back, no terminators
 *       64     .  slots, slot_count x struct repro_shim_index_slot, open addressing with linear
 *                 probing from hash & (slot_count - 1); hash 0 marks an empty slot
 *
 * Keys are absolute paths inside the pinned version directory, spelled root + "/" + pinned
 * directory + "/" + relative path, the way the shim names the file it opened.
 */
#ifndef REPRO_PROTO_SHIM_SHIM_INDEX_H_
#define REPRO_PROTO_SHIM_SHIM_INDEX_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REPRO_SHIM_INDEX_MAGIC 0x58495052u /* 'R' 'P' 'I' 'X' */
#define REPRO_SHIM_INDEX_VERSION 1u
#define REPRO_SHIM_INDEX_HEADER_SIZE 64u

struct repro_shim_index_slot {
  uint64_t hash; /* repro_shim_index_hash of the path; 0: empty */
  uint64_t path_offset;
  uint64_t path_len;
  uint64_t device;
  uint64_t inode;
  uint64_t size;
  int64_t mtime_ns;
  int64_t ctime_ns;
  uint8_t sha256[32];
};

/* FNV-1a, never 0. */
static inline uint64_t repro_shim_index_hash(const char* path, size_t len) {
  uint64_t h = 14695981039346656037ull;
  for (size_t i = 0; i < len; ++i) h = (h ^ (uint8_t)path[i]) * 1099511628211ull;
  return h != 0 ? h : 1;
}

/* 1 when the `size` bytes at `map` are a well-formed index header whose tables lie inside. */
static inline int repro_shim_index_valid(const uint8_t* map, uint64_t size) {
  uint32_t magic, version;
  uint64_t slots, strings_offset, strings_size;
  if (size < REPRO_SHIM_INDEX_HEADER_SIZE) return 0;
  memcpy(&magic, map, 4);
  memcpy(&version, map + 4, 4);
  memcpy(&slots, map + 8, 8);
  memcpy(&strings_offset, map + 16, 8);
  memcpy(&strings_size, map + 24, 8);
  if (magic != REPRO_SHIM_INDEX_MAGIC || version != REPRO_SHIM_INDEX_VERSION) return 0;
  if (slots == 0 || (slots & (slots - 1)) != 0) return 0;
  if (slots > (size - REPRO_SHIM_INDEX_HEADER_SIZE) / sizeof(struct repro_shim_index_slot)) return 0;
  return strings_offset <= size && strings_size <= size - strings_offset;
}

/* The slot of `path` in a valid index, or NULL. */
static inline const struct repro_shim_index_slot* repro_shim_index_find(const uint8_t* map,
                                                                      const char* path,
                                                                      size_t len) {
  uint64_t slots, strings_offset, strings_size;
  memcpy(&slots, map + 8, 8);
  memcpy(&strings_offset, map + 16, 8);
  memcpy(&strings_size, map + 24, 8);
  const struct repro_shim_index_slot* table =
      (const struct repro_shim_index_slot*)(map + REPRO_SHIM_INDEX_HEADER_SIZE);
  const uint64_t hash = repro_shim_index_hash(path, len);
  for (uint64_t i = hash & (slots - 1), probes = 0; probes < slots; i = (i + 1) & (slots - 1)) {
    const struct repro_shim_index_slot* s = &table[i];
    ++probes;
    if (s->hash == 0) return NULL;
    if (s->hash == hash && s->path_len == len && s->path_offset <= strings_size &&
        len <= strings_size - s->path_offset &&
        memcmp(map + strings_offset + s->path_offset, path, len) == 0) {
      return s;
    }
  }
  return NULL;
}

/* 1 when the file's identity is the one reprod verified. */
static inline int repro_shim_index_same(const struct repro_shim_index_slot* s, uint64_t device,
                                        uint64_t inode, uint64_t size, int64_t mtime_ns,
                                        int64_t ctime_ns) {
  return s->device == device && s->inode == inode && s->size == size && s->mtime_ns == mtime_ns &&
         s->ctime_ns == ctime_ns;
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* REPRO_PROTO_SHIM_SHIM_INDEX_H_ */
