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
 *   _exit                                        (ends at once: no atexit, no destructors)
 *   exec P [ARG...]                              (execv(P, [P, ARG...]): the rest of the line)
 *   pause                                        (prints "OK", then waits until killed)
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

int __open_2(const char* path, int flags);
int __open64_2(const char* path, int flags);
int __openat_2(int dirfd, const char* path, int flags);

static const char* ErrnoName(int err) {
  switch (err) {
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case ELOOP: return "ELOOP";
    case EPERM: return "EPERM";
    case EBADF: return "EBADF";
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

/* Runs the command at argv[0..]; returns how many words it used. */
static int Run(int argc, char** argv) {
  const char* cmd = argv[0];
  const char* a = argc > 1 ? argv[1] : "";
  const char* b = argc > 2 ? argv[2] : "";
  errno = 0;
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
