/* shim_probe: calls the libc functions the shim wraps, the way programs do, so that integration
 * tests can drive each wrapper in a real process under the real shim.
 *
 *   shim_probe open /ml/ds/latest/a.csv -- openat /ml/ds/v1 sub/b.csv -- chdir /ml/ds -- ...
 *
 * Commands, separated by "--"; each prints one line, "OK <first line read>" or "ERR <errno name>":
 *   open P | open64 P | open_2 P | open64_2 P | creat P | write P (O_WRONLY|O_CREAT, writes "x")
 *   fopen P | fopen64 P | freopen P
 *   openat D R | openat64 D R | openat_2 D R     (D opened with open(O_DIRECTORY))
 *   chdir D | fchdir D                           (prints "OK" or "ERR ...")
 *   dlopen L                                     (dlopen(L, RTLD_NOW): "OK" or "ERR dlopen")
 *   fork                                         (the commands after it run in a child; waits)
 * The view (what a path shows besides its bytes), each "OK ..." or "ERR <errno name>":
 *   stat P | stat64 P | lstat P | lstat64 P | xstat P | lxstat P | statx P | lstatx P
 *                                                ("OK <type> <size> <inode> <mtime ns>")
 *   fstatat D R                                  (D opened with open(O_DIRECTORY))
 *   access P | faccessat P | euidaccess P        ("OK")
 *   readlink P | realpath P | canonicalize P     ("OK <target>")
 *   opendir D | scandir D                        ("OK <name>,<name>..." sorted, without . and ..)
 *   getcwd                                       ("OK <directory>")
 *   execv P                                      (forks; the child execv's P; "OK <exit code>")
 *   replace D T                                  (renames directory D away and makes D a
 *                                                 symlink to T: "OK")
 *   _exit                                        (ends at once: no atexit, no destructors)
 *   kill                                         (SIGKILL to itself: the shim cannot say more)
 *   exec P [ARG...]                              (execv(P, [P, ARG...]): the rest of the line)
 *   pause                                        (prints "OK", then waits until killed)
 */
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int dirfd, const char* path, int flags);
int __xstat(int ver, const char* path, struct stat* buf);
int __lxstat(int ver, const char* path, struct stat* buf);

static const char* ErrnoName(int err) {
  switch (err) {
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
    case EINVAL: return "EINVAL";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    default: return "EOTHER";
  }
}

static void Print(const char* line) {
  printf("%s\n", line);
  fflush(stdout);
}

static void Fail(int err) {
  char line[64];
  snprintf(line, sizeof(line), "ERR %s", ErrnoName(err));
  Print(line);
}

/* Prints "OK <first line>" of an open descriptor and closes it. */
static void ShowFd(int fd) {
  char buf[512];
  ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  buf[n > 0 ? n : 0] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  char line[600];
  snprintf(line, sizeof(line), "OK %s", buf);
  Print(line);
}

static void ShowFile(FILE* f) {
  if (f == NULL) {
    Fail(errno);
    return;
  }
  char buf[512] = "";
  if (fgets(buf, sizeof(buf), f) == NULL) buf[0] = '\0';
  fclose(f);
  buf[strcspn(buf, "\n")] = '\0';
  char line[600];
  snprintf(line, sizeof(line), "OK %s", buf);
  Print(line);
}

static void Result(int fd) {
  if (fd < 0) {
    Fail(errno);
  } else {
    ShowFd(fd);
  }
}

static const char* TypeName(mode_t mode) {
  return S_ISDIR(mode) ? "dir" : S_ISREG(mode) ? "file" : S_ISLNK(mode) ? "link" : "other";
}

/* "OK <type> <size> <inode> <mtime ns>" after a stat call that returned r. */
static void ShowAttrs(int r, mode_t mode, long long size, unsigned long long ino,
                      long long mtime_ns) {
  if (r != 0) {
    Fail(errno);
    return;
  }
  printf("OK %s %lld %llu %lld\n", TypeName(mode), size, ino, mtime_ns);
  fflush(stdout);
}

static void ShowStat(int r, const struct stat* st) {
  ShowAttrs(r, st->st_mode, (long long)st->st_size, (unsigned long long)st->st_ino,
            (long long)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec);
}

static void ShowStatx(int r, const struct statx* st) {
  ShowAttrs(r, st->stx_mode, (long long)st->stx_size, (unsigned long long)st->stx_ino,
            (long long)st->stx_mtime.tv_sec * 1000000000ll + st->stx_mtime.tv_nsec);
}

static void ShowText(const char* text) {
  if (text == NULL) {
    Fail(errno);
    return;
  }
  printf("OK %s\n", text);
  fflush(stdout);
}

static int ByName(const void* a, const void* b) {
  return strcmp(*(char* const*)a, *(char* const*)b);
}

/* Prints the names of a directory listing, sorted, without "." and "..". */
static void ShowNames(char** names, int n) {
  qsort(names, (size_t)n, sizeof(char*), ByName);
  printf("OK ");
  const char* sep = "";
  for (int i = 0; i < n; ++i) {
    if (strcmp(names[i], ".") == 0 || strcmp(names[i], "..") == 0) continue;
    printf("%s%s", sep, names[i]);
    sep = ",";
  }
  printf("\n");
  fflush(stdout);
}

static void ListDir(const char* path) {
  DIR* dir = opendir(path);
  if (dir == NULL) {
    Fail(errno);
    return;
  }
  char* names[256];
  int n = 0;
  for (struct dirent* e; n < 256 && (e = readdir(dir)) != NULL;) names[n++] = strdup(e->d_name);
  closedir(dir);
  ShowNames(names, n);
  for (int i = 0; i < n; ++i) free(names[i]);
}

static void ScanDir(const char* path) {
  struct dirent** list;
  int n = scandir(path, &list, NULL, alphasort);
  if (n < 0) {
    Fail(errno);
    return;
  }
  char* names[256];
  int k = 0;
  for (int i = 0; i < n; ++i) {
    if (k < 256) names[k++] = list[i]->d_name;
  }
  ShowNames(names, k);
  for (int i = 0; i < n; ++i) free(list[i]);
  free(list);
}

/* The view commands; returns how many words the command used, 0 when it is not one. */
static int RunView(const char* cmd, const char* a, const char* b) {
  struct stat st;
  struct statx sx;
  char buf[4096];
  struct stat64 st64; /* struct stat's layout on 64-bit Linux */
  if (strcmp(cmd, "stat") == 0) { ShowStat(stat(a, &st), &st); return 2; }
  if (strcmp(cmd, "stat64") == 0) { ShowStat(stat64(a, &st64), (struct stat*)&st64); return 2; }
  if (strcmp(cmd, "lstat") == 0) { ShowStat(lstat(a, &st), &st); return 2; }
  if (strcmp(cmd, "lstat64") == 0) { ShowStat(lstat64(a, &st64), (struct stat*)&st64); return 2; }
  if (strcmp(cmd, "xstat") == 0) { ShowStat(__xstat(1, a, &st), &st); return 2; }
  if (strcmp(cmd, "lxstat") == 0) { ShowStat(__lxstat(1, a, &st), &st); return 2; }
  if (strcmp(cmd, "statx") == 0 || strcmp(cmd, "lstatx") == 0) {
    int flags = cmd[0] == 'l' ? AT_SYMLINK_NOFOLLOW : 0;
    ShowStatx(statx(AT_FDCWD, a, flags, STATX_BASIC_STATS, &sx), &sx);
    return 2;
  }
  if (strcmp(cmd, "fstatat") == 0) {
    int dir = open(a, O_RDONLY | O_DIRECTORY);
    if (dir < 0) {
      Fail(errno);
      return 3;
    }
    int r = fstatat(dir, b, &st, 0);
    int err = errno;
    close(dir);
    errno = err;
    ShowStat(r, &st);
    return 3;
  }
  if (strcmp(cmd, "access") == 0 || strcmp(cmd, "faccessat") == 0 ||
      strcmp(cmd, "euidaccess") == 0) {
    int r = cmd[0] == 'a' ? access(a, R_OK)
            : cmd[0] == 'f' ? faccessat(AT_FDCWD, a, R_OK, 0)
                            : euidaccess(a, R_OK);
    if (r == 0) Print("OK"); else Fail(errno);
    return 2;
  }
  if (strcmp(cmd, "readlink") == 0) {
    ssize_t n = readlink(a, buf, sizeof(buf) - 1);
    if (n >= 0) buf[n] = '\0';
    ShowText(n >= 0 ? buf : NULL);
    return 2;
  }
  if (strcmp(cmd, "realpath") == 0) { ShowText(realpath(a, buf)); return 2; }
  if (strcmp(cmd, "canonicalize") == 0) {
    char* p = canonicalize_file_name(a);
    ShowText(p);
    free(p);
    return 2;
  }
  if (strcmp(cmd, "opendir") == 0) { ListDir(a); return 2; }
  if (strcmp(cmd, "scandir") == 0) { ScanDir(a); return 2; }
  if (strcmp(cmd, "replace") == 0) {
    snprintf(buf, sizeof(buf), "%s.old", a);
    if (rename(a, buf) == 0 && symlink(b, a) == 0) Print("OK"); else Fail(errno);
    return 3;
  }
  if (strcmp(cmd, "getcwd") == 0) { ShowText(getcwd(buf, sizeof(buf))); return 1; }
  if (strcmp(cmd, "execv") == 0) {
    pid_t child = fork();
    if (child == 0) {
      char* argv[] = {(char*)a, NULL};
      execv(a, argv);
      printf("ERR %s\n", ErrnoName(errno));
      fflush(stdout);
      _exit(127);
    }
    int status = 0;
    waitpid(child, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) != 127) {
      snprintf(buf, sizeof(buf), "OK %d", WEXITSTATUS(status));
      Print(buf);
    }
    return 2;
  }
  return 0;
}

/* Runs the command at argv[0..]; returns how many words it used. */
static int Run(int argc, char** argv) {
  const char* cmd = argv[0];
  const char* a = argc > 1 ? argv[1] : "";
  const char* b = argc > 2 ? argv[2] : "";
  errno = 0;
  int used = RunView(cmd, a, b);
  if (used > 0) return used;
  if (strcmp(cmd, "open") == 0) { Result(open(a, O_RDONLY)); return 2; }
  if (strcmp(cmd, "open64") == 0) { Result(open64(a, O_RDONLY)); return 2; }
  if (strcmp(cmd, "open_2") == 0) { Result(__open_2(a, O_RDONLY)); return 2; }
  if (strcmp(cmd, "open64_2") == 0) { Result(__open64_2(a, O_RDONLY)); return 2; }
  if (strcmp(cmd, "fopen") == 0) { ShowFile(fopen(a, "r")); return 2; }
  if (strcmp(cmd, "fopen64") == 0) { ShowFile(fopen64(a, "r")); return 2; }
  if (strcmp(cmd, "freopen") == 0) { ShowFile(freopen(a, "r", tmpfile())); return 2; }
  if (strcmp(cmd, "creat") == 0 || strcmp(cmd, "write") == 0) {
    int fd = cmd[0] == 'c' ? creat(a, 0644) : open(a, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
      Fail(errno);
    } else {
      if (write(fd, "x", 1) != 1) perror("write");
      close(fd);
      Print("OK");
    }
    return 2;
  }
  if (strncmp(cmd, "openat", 6) == 0) {
    int dir = open(a, O_RDONLY | O_DIRECTORY);
    if (dir < 0) {
      Fail(errno);
      return 3;
    }
    int fd = strcmp(cmd, "openat64") == 0 ? openat64(dir, b, O_RDONLY)
             : strcmp(cmd, "openat_2") == 0 ? __openat_2(dir, b, O_RDONLY)
                                            : openat(dir, b, O_RDONLY);
    int err = errno;
    close(dir);
    errno = err;
    Result(fd);
    return 3;
  }
  if (strcmp(cmd, "_exit") == 0) _exit(0);
  if (strcmp(cmd, "kill") == 0) raise(SIGKILL); /* ends without the shim's last step */
  if (strcmp(cmd, "exec") == 0) {
    char* args[64] = {0};
    for (int k = 1; k < argc && k < 63; ++k) args[k - 1] = argv[k];
    execv(a, args);
    Fail(errno);
    return argc;
  }
  if (strcmp(cmd, "pause") == 0) {
    Print("OK");
    for (;;) pause();
  }
  if (strcmp(cmd, "dlopen") == 0) {
    Print(dlopen(a, RTLD_NOW) != NULL ? "OK" : "ERR dlopen");
    return 2;
  }
  if (strcmp(cmd, "chdir") == 0 || strcmp(cmd, "fchdir") == 0) {
    int r;
    if (cmd[0] == 'c') {
      r = chdir(a);
    } else {
      int dir = open(a, O_RDONLY | O_DIRECTORY);
      r = dir < 0 ? -1 : fchdir(dir);
      if (dir >= 0) close(dir);
    }
    if (r == 0) {
      Print("OK");
    } else {
      Fail(errno);
    }
    return 2;
  }
  fprintf(stderr, "shim_probe: unknown command %s\n", cmd);
  exit(2);
}

int main(int argc, char** argv) {
  int i = 1;
  while (i < argc) {
    if (strcmp(argv[i], "--") == 0) {
      ++i;
      continue;
    }
    if (strcmp(argv[i], "fork") == 0) {
      pid_t child = fork();
      if (child < 0) return 1;
      if (child > 0) {
        int status = 0;
        waitpid(child, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
      }
      ++i;
      continue;
    }
    int end = i;
    while (end < argc && strcmp(argv[end], "--") != 0) ++end;
    Run(end - i, argv + i);
    i = end;
  }
  return 0;
}
