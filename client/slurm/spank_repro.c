/* repro.so: a SPANK plugin that puts Slurm jobs under repro.
 *
 *   # plugstack.conf (on submit hosts and compute nodes)
 *   required /usr/local/lib/slurm/spank_repro.so reproctl=/usr/local/bin/reproctl \
 *            shim=/usr/local/lib/libreproshim.so socket=/run/reprod/shim.sock
 *
 *   sbatch --repro-job=train-42 --repro-pin=user_ctr@v20250108 --repro-seed=1234 train.sh
 *   srun --repro-job=train-42 -n 8 python train.py
 *
 * Options: --repro-job=JOB, --repro-pin=DATASET@VERSION[,...], --repro-mode=record|enforce,
 * --repro-seed=N. Where each part runs:
 *   - sbatch/salloc/srun (allocator and local context), after the options are parsed: with
 *     --repro-pin, pins JOB (`reproctl pin JOB D@V... [--seed N]`; the same pin again is a no-op,
 *     a conflicting one fails the submission; reproctl's output goes to stderr); then puts
 *     REPRO_JOB into the job control environment (job_submit.lua sees it in spank_job_env,
 *     prologs as SPANK_REPRO_JOB), which deploy/slurm/job_submit.lua checks at submit time.
 *   - slurmstepd (remote context), in each task before it execs: LD_PRELOAD (the shim first),
 *     REPRO_JOB, REPRO_MODE, REPRO_SHIM_SOCKET, REPRO_RANK (the task's global id, which is
 *     SLURM_PROCID), and REPRO_SEED / PYTHONHASHSEED when --repro-seed is given.
 * Without --repro-job the plugin does nothing. Plugin arguments: reproctl=PATH, shim=PATH,
 * socket=PATH, addr=ADDR (reprod's gRPC address for pinning; default reproctl's).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/spank.h>

SPANK_PLUGIN(repro, 1);

#define MAX_VALUE 4096
#define MAX_PINS 64

static char g_job[129];
static char g_pins[MAX_VALUE];
static char g_mode[16];
static char g_seed[24];
static char g_reproctl[MAX_VALUE] = "/usr/local/bin/reproctl";
static char g_shim[MAX_VALUE] = "/usr/local/lib/libreproshim.so";
static char g_socket[MAX_VALUE] = "/run/reprod/shim.sock";
static char g_addr[MAX_VALUE];

/* Copies `value` into `out` (size `cap`); -1 when it does not fit. */
static int Copy(char* out, size_t cap, const char* value) {
  if (value == NULL || strlen(value) >= cap) return -1;
  strcpy(out, value);
  return 0;
}

/* Job ids as repro takes them: letters, digits, '.', '_', '-', starting with a letter or digit. */
static int ValidJob(const char* s) {
  if (s[0] == '\0' || strlen(s) > 128 || !((s[0] >= 'a' && s[0] <= 'z') ||
                                           (s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= '0' && s[0] <= '9'))) {
    return 0;
  }
  for (const char* p = s; *p; ++p) {
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '.' || *p == '_' || *p == '-')) {
      return 0;
    }
  }
  return 1;
}

static int OptJob(int val, const char* arg, int remote) {
  (void)val;
  (void)remote;
  if (arg == NULL || !ValidJob(arg)) {
    slurm_error("repro: --repro-job=%s is not a valid job id (letters, digits, '.', '_', '-')",
                arg ? arg : "");
    return -1;
  }
  return Copy(g_job, sizeof(g_job), arg);
}

static int OptPin(int val, const char* arg, int remote) {
  (void)val;
  (void)remote;
  if (arg == NULL || arg[0] == '\0' || strchr(arg, '@') == NULL || Copy(g_pins, sizeof(g_pins), arg)) {
    slurm_error("repro: --repro-pin wants DATASET@VERSION[,DATASET@VERSION...], not \"%s\"",
                arg ? arg : "");
    return -1;
  }
  return 0;
}

static int OptMode(int val, const char* arg, int remote) {
  (void)val;
  (void)remote;
  if (arg == NULL || (strcmp(arg, "record") != 0 && strcmp(arg, "enforce") != 0)) {
    slurm_error("repro: --repro-mode must be record or enforce, not \"%s\"", arg ? arg : "");
    return -1;
  }
  return Copy(g_mode, sizeof(g_mode), arg);
}

static int OptSeed(int val, const char* arg, int remote) {
  (void)val;
  (void)remote;
  char* end = NULL;
  errno = 0;
  int number = arg != NULL && arg[0] >= '0' && arg[0] <= '9';
  if (number) strtoull(arg, &end, 10);
  if (!number || errno != 0 || *end != '\0' || Copy(g_seed, sizeof(g_seed), arg) != 0) {
    slurm_error("repro: --repro-seed must be a number, not \"%s\"", arg ? arg : "");
    return -1;
  }
  return 0;
}

struct spank_option spank_options[] = {
    {"repro-job", "JOB", "run the job's tasks under repro as job JOB", 1, 0, OptJob},
    {"repro-pin", "DATASET@VERSION[,...]", "pin JOB to these data versions first", 1, 0, OptPin},
    {"repro-mode", "record|enforce", "record (default) or enforce the pin", 1, 0, OptMode},
    {"repro-seed", "N", "the job's seed when pinning (default: derived)", 1, 0, OptSeed},
    SPANK_OPTIONS_TABLE_END,
};

static void ReadArgs(int ac, char** av) {
  for (int i = 0; i < ac; ++i) {
    const char* eq = strchr(av[i], '=');
    if (eq == NULL) continue;
    size_t n = (size_t)(eq - av[i]);
    char* out = NULL;
    if (n == 8 && strncmp(av[i], "reproctl", n) == 0) out = g_reproctl;
    if (n == 4 && strncmp(av[i], "shim", n) == 0) out = g_shim;
    if (n == 6 && strncmp(av[i], "socket", n) == 0) out = g_socket;
    if (n == 4 && strncmp(av[i], "addr", n) == 0) out = g_addr;
    if (out == NULL || Copy(out, MAX_VALUE, eq + 1) != 0) {
      slurm_error("repro: ignoring plugin argument \"%s\"", av[i]);
    }
  }
}

int slurm_spank_init(spank_t sp, int ac, char** av) {
  ReadArgs(ac, av);
  if (spank_context() == S_CTX_ALLOCATOR) {  /* sbatch/salloc read only registered options */
    for (struct spank_option* o = spank_options; o->name != NULL; ++o) {
      if (spank_option_register(sp, o) != ESPANK_SUCCESS) return -1;
    }
  }
  return 0;
}

/* Runs `reproctl [--addr A] pin JOB D@V... [--seed N]`; 0 when it exited 0. */
static int PinJob(void) {
  char pins[MAX_VALUE];
  strcpy(pins, g_pins);
  char* argv[MAX_PINS + 10];
  int n = 0;
  argv[n++] = g_reproctl;
  if (g_addr[0] != '\0') {
    argv[n++] = "--addr";
    argv[n++] = g_addr;
  }
  argv[n++] = "pin";
  argv[n++] = g_job;
  for (char* save = NULL, *pin = strtok_r(pins, ",", &save); pin != NULL && n < MAX_PINS + 5;
       pin = strtok_r(NULL, ",", &save)) {
    argv[n++] = pin;
  }
  if (g_seed[0] != '\0') {
    argv[n++] = "--seed";
    argv[n++] = g_seed;
  }
  argv[n] = NULL;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(STDERR_FILENO, STDOUT_FILENO); /* the job's output stays the job's */
    execv(g_reproctl, argv);
    fprintf(stderr, "repro: cannot run %s: %s\n", g_reproctl, strerror(errno));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char** av) {
  (void)ac;
  (void)av;
  spank_context_t context = spank_context();
  if (g_job[0] == '\0' || (context != S_CTX_LOCAL && context != S_CTX_ALLOCATOR)) return 0;
  if (g_pins[0] != '\0' && PinJob() != 0) {
    slurm_error("repro: could not pin job %s to %s (see reproctl's message above)", g_job, g_pins);
    return -1;
  }
  if (spank_job_control_setenv(sp, "REPRO_JOB", g_job, 1) != ESPANK_SUCCESS) {
    slurm_error("repro: cannot pass REPRO_JOB to the job");
    return -1;
  }
  return 0;
}

/* Sets `name` in the task's environment; -1 (with a message) when it cannot. */
static int SetTaskEnv(spank_t sp, const char* name, const char* value) {
  if (spank_setenv(sp, name, value, 1) == ESPANK_SUCCESS) return 0;
  slurm_error("repro: cannot set %s for the task", name);
  return -1;
}

int slurm_spank_task_init(spank_t sp, int ac, char** av) {
  (void)ac;
  (void)av;
  if (g_job[0] == '\0') return 0;
  uint32_t rank = 0;
  if (spank_get_item(sp, S_TASK_GLOBAL_ID, &rank) != ESPANK_SUCCESS) {
    slurm_error("repro: cannot read the task's global id");
    return -1;
  }
  char text[32];
  snprintf(text, sizeof(text), "%u", rank);
  char preload[2 * MAX_VALUE + 2];
  char old[MAX_VALUE];
  if (spank_getenv(sp, "LD_PRELOAD", old, sizeof(old)) == ESPANK_SUCCESS && old[0] != '\0' &&
      strstr(old, g_shim) == NULL) {
    snprintf(preload, sizeof(preload), "%s:%s", g_shim, old);
  } else {
    snprintf(preload, sizeof(preload), "%s", g_shim);
  }
  if (SetTaskEnv(sp, "REPRO_JOB", g_job) || SetTaskEnv(sp, "REPRO_RANK", text) ||
      SetTaskEnv(sp, "REPRO_SHIM_SOCKET", g_socket) || SetTaskEnv(sp, "LD_PRELOAD", preload) ||
      (g_mode[0] != '\0' && SetTaskEnv(sp, "REPRO_MODE", g_mode))) {
    return -1;
  }
  if (g_seed[0] != '\0' &&
      (SetTaskEnv(sp, "REPRO_SEED", g_seed) || SetTaskEnv(sp, "PYTHONHASHSEED", g_seed))) {
    return -1;
  }
  return 0;
}
