/* What a training process runs with, told to reprod in LOADED messages (shim_protocol.h): the
 * shared objects it has loaded (dl_iterate_phdr), its glibc version and, in Python processes, the
 * top-level packages it opened files of under site-packages / dist-packages directories.
 *
 *   shim_loaded_init(is_python);        // constructor
 *   shim_loaded_note_open(path);        // after every successful open outside dataset roots
 *   shim_loaded_report(0);              // at a dataset open: the first time, or when news wait
 *   shim_loaded_report(1);              // at exit: whatever was loaded since
 *
 * Each library and package directory is sent once per process (fork children start afresh);
 * reprod journals each once per job. Reports never wait for reprod (shim_link_post).
 *
 * Cost: shim_loaded_note_open is a no-op outside Python processes and for relative paths; else
 * one strstr over the path, and a lock-free table lookup when it lies under a packages
 * directory. The first sighting of a package takes a mutex and copies its directory into a fixed
 * buffer. Nothing is allocated; errno is left alone.
 *
 * Thread-safe; call shim_loaded_after_fork_child from the pthread_atfork child handler.
 */
#ifndef REPRO_CLIENT_SHIM_LOADED_REPORT_H_
#define REPRO_CLIENT_SHIM_LOADED_REPORT_H_

#include <stddef.h>

void shim_loaded_init(int is_python);

void shim_loaded_note_open(const char* path);

/* Sends what was not sent yet. `at_exit` = 0: only when nothing was ever sent by this process or
 * new package directories wait; 1: always looks for libraries loaded since. */
void shim_loaded_report(int at_exit);

void shim_loaded_after_fork_child(void);

/* The length of "<site dir>/<top-level name>" at the start of `path` when it names a file of a
 * Python package or module in a site-packages or dist-packages directory (for a compiled module
 * cache, "<site dir>/__pycache__/<file>"), else 0. Exposed for tests. */
size_t shim_package_dir_length(const char* path);

#endif /* REPRO_CLIENT_SHIM_LOADED_REPORT_H_ */
