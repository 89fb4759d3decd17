#include "client/shim/verdict_index.h"

#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "proto/shim/shim_index.h"

static _Atomic(const uint8_t*) g_index;

int shim_index_attach(int fd) {
  struct stat st;
  int result = -1;
  if (atomic_load(&g_index) != NULL) {
    result = 0;
  } else if (fstat(fd, &st) == 0 && st.st_size >= (off_t)REPRO_SHIM_INDEX_HEADER_SIZE) {
    void* map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    if (map != MAP_FAILED && repro_shim_index_valid(map, (uint64_t)st.st_size)) {
      const uint8_t* expected = NULL;
      if (!atomic_compare_exchange_strong(&g_index, &expected, (const uint8_t*)map)) {
        munmap(map, (size_t)st.st_size);
      }
      result = 0;
    } else if (map != MAP_FAILED) {
      munmap(map, (size_t)st.st_size);
    }
  }
  close(fd);
  return result;
}

int shim_index_allows(const char* path, size_t len, const struct stat* st) {
  const uint8_t* index = atomic_load_explicit(&g_index, memory_order_acquire);
  if (index == NULL) return 0;
  const struct repro_shim_index_slot* s = repro_shim_index_find(index, path, len);
  return s != NULL &&
         repro_shim_index_same(s, (uint64_t)st->st_dev, (uint64_t)st->st_ino, (uint64_t)st->st_size,
                               (int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec,
                               (int64_t)st->st_ctim.tv_sec * 1000000000ll + st->st_ctim.tv_nsec);
}
