// Fuzzes the shim's reading of reprod's answers (client/shim, plain C): shim_reply_parse (the
// header, ALLOW and REASON of a VERDICT or ERROR) and shim_pin_from_message (a PIN), followed by
// the lookups the shim then makes in the pin (shim_pin_find_root, shim_pin_classify_name) and
// shim_pin_to_env.
// Invariants: a reason lies inside the message and holds no NUL; a pin that is taken has valid
// roots and directory names, pinned_path = root/pinned_dir, every string NUL-terminated at its
// length inside the pool; each dataset's root and directories are found and classified as such.
#include <cstring>

#include "tests/fuzz/fuzz_target.h"

extern "C" {
#include "client/shim/pin_table.h"
#include "client/shim/reply_parser.h"
}

namespace {

using repro::fuzz::FuzzCheck;

bool InPool(const shim_pin& pin, const char* s, size_t len) {
  return s >= pin.pool && s + len < pin.pool + pin.pool_used && s[len] == '\0' &&
         std::memchr(s, '\0', len) == nullptr;
}

void CheckPin(const shim_pin& pin) {
  FuzzCheck(pin.complete == 1 && pin.has_seeds == 1, "a pin from reprod is not complete");
  FuzzCheck(pin.count <= SHIM_MAX_DATASETS && pin.other_count <= SHIM_MAX_OTHER_DIRS,
            "a pin above its static limits");
  FuzzCheck(pin.pool_used <= sizeof(pin.pool), "the pin's pool overflowed");
  uint32_t others = 0;
  for (uint32_t i = 0; i < pin.count; ++i) {
    const shim_dataset& d = pin.datasets[i];
    FuzzCheck(InPool(pin, d.root, d.root_len) && InPool(pin, d.pinned_dir, d.pinned_dir_len) &&
                  InPool(pin, d.pinned_path, d.pinned_path_len) &&
                  InPool(pin, d.name, std::strlen(d.name)) &&
                  InPool(pin, d.version, std::strlen(d.version)),
              "a dataset string is not a NUL-terminated string of the pool");
    FuzzCheck(d.root_len > 1 && d.root[0] == '/' && d.root[d.root_len - 1] != '/',
              "a root that is not absolute or ends in '/'");
    FuzzCheck(d.pinned_dir_len > 0 && std::memchr(d.pinned_dir, '/', d.pinned_dir_len) == nullptr,
              "a pinned directory name with a '/'");
    FuzzCheck(d.pinned_path_len == d.root_len + 1 + d.pinned_dir_len &&
                  std::memcmp(d.pinned_path, d.root, d.root_len) == 0 &&
                  d.pinned_path[d.root_len] == '/' &&
                  std::memcmp(d.pinned_path + d.root_len + 1, d.pinned_dir, d.pinned_dir_len) == 0,
              "pinned_path is not root/pinned_dir");
    FuzzCheck(d.first_other == others, "a dataset's other directories are not consecutive");
    others += d.other_count;
    const int found = shim_pin_find_root(&pin, d.pinned_path, d.pinned_path_len);
    FuzzCheck(found >= 0 && found <= static_cast<int>(i), "a pinned path under no root");
    FuzzCheck(pin.datasets[found].root_len <= d.pinned_path_len,
              "a pinned path found under a longer root");
    FuzzCheck(shim_pin_classify_name(&pin, static_cast<int>(i), d.pinned_dir, d.pinned_dir_len) ==
                  SHIM_NAME_PINNED,
              "the pinned directory is not classified as pinned");
    for (uint32_t k = d.first_other; k < d.first_other + d.other_count; ++k) {
      FuzzCheck(InPool(pin, pin.others[k], pin.other_len[k]), "another version's name is broken");
      FuzzCheck(shim_pin_classify_name(&pin, static_cast<int>(i), pin.others[k],
                                       pin.other_len[k]) != SHIM_NAME_ALIAS,
                "another registered version is classified as an alias");
    }
  }
  FuzzCheck(others == pin.other_count, "other directories that belong to no dataset");
  static char env[2 * SHIM_PIN_POOL];
  if (shim_pin_to_env(&pin, env, sizeof(env)) == 0) {
    FuzzCheck(std::memchr(env, '\0', sizeof(env)) != nullptr, "$REPRO_PINNED is not terminated");
  }
}

}  // namespace

REPRO_FUZZ_TARGET(shim_reply) {
  shim_reply reply;
  if (shim_reply_parse(data, size, &reply) != 0) return 0;
  FuzzCheck(reply.header.length == size, "a message accepted with a wrong length");
  if (reply.reason != nullptr) {
    FuzzCheck(reply.reason >= data + REPRO_SHIM_HEADER_SIZE &&
                  reply.reason_size <= size - (reply.reason - data),
              "a reason outside the message");
    FuzzCheck(std::memchr(reply.reason, '\0', reply.reason_size) == nullptr &&
                  reply.reason_size <= REPRO_SHIM_MAX_STRING,
              "a reason that is not a valid string");
  }
  static shim_pin pin;  // ~160 KiB: static, as in the shim
  if (shim_pin_from_message(&pin, data, size) == 0) {
    FuzzCheck(reply.header.type == REPRO_SHIM_PIN, "a pin taken from a message that is no PIN");
    CheckPin(pin);
  }
  return 0;
}
