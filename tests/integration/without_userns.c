/* without_userns UID GID PROGRAM [ARG...]: runs PROGRAM as UID:GID where it cannot create a user
 * namespace, without changing anything for the rest of the machine: inside a user namespace of
 * its own (identity-mapped, so UID and GID mean what they mean outside) whose
 * user.max_user_namespaces is 0. Needs root. Exits with PROGRAM's status (128 + signal when it
 * is killed), or 125 after a message on stderr when the setup fails.
 *
 * Used by isolate_test to check that `reproctl run --isolate` refuses to start, in one line,
 * where user namespaces are unavailable. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void die(const char* what) {
  fprintf(stderr, "without_userns: %s: %s\n", what, strerror(errno));
  _exit(125);
}

static void write_file(const char* path, const char* text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) die(path);
  close(fd);
}

int main(int argc, char** argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: without_userns UID GID PROGRAM [ARG...]\n");
    return 125;
  }
  const uid_t uid = (uid_t)strtoul(argv[1], NULL, 10);
  const gid_t gid = (gid_t)strtoul(argv[2], NULL, 10);
  int to_child[2], to_parent[2];
  if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(to_parent, O_CLOEXEC) != 0) die("pipe");
  char byte = 0;
  pid_t pid = fork();
  if (pid < 0) die("fork");
  if (pid == 0) {
    if (unshare(CLONE_NEWUSER) != 0) die("unshare(CLONE_NEWUSER)");
    if (write(to_parent[1], &byte, 1) != 1) die("write");
    if (read(to_child[0], &byte, 1) != 1) _exit(125); /* the parent failed */
    write_file("/proc/sys/user/max_user_namespaces", "0");
    if (setgroups(0, NULL) != 0) die("setgroups");
    if (setresgid(gid, gid, gid) != 0) die("setresgid");
    if (setresuid(uid, uid, uid) != 0) die("setresuid");
    execvp(argv[3], argv + 3);
    die(argv[3]);
  }
  if (read(to_parent[0], &byte, 1) != 1) die("the child did not unshare");
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
  write_file(path, "0 0 4294967295");
  snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
  write_file(path, "0 0 4294967295");
  if (write(to_child[1], &byte, 1) != 1) die("write");
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) die("waitpid");
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
