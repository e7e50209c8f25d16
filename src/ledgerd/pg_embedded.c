/*
 * pg_embedded.c - initdb and postgres as children of ledgerd.
 *
 * The cluster listens on no TCP address, only on a Unix socket inside its
 * data folder, whose mode is 0700: trust authentication is therefore safe
 * (DESIGN-NOTES "Running PostgreSQL as a child"). PostgreSQL refuses to run
 * as root, so when ledgerd is root the children drop to an unprivileged
 * user (the data folder's owner, else "postgres", else a "ledgerd" system
 * user created for it).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pg_embedded.h"
#include "util/log.h"

#define PG_SUPERUSER "ledgerd"

static bool is_executable(const char *dir, const char *prog)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, prog);
    return access(path, X_OK) == 0;
}

static int version_of(const char *path)
{
    const char *v = strstr(path, "/postgresql/");
    return v ? atoi(v + strlen("/postgresql/")) : 0;
}

/* pg_config --bindir, else the newest /usr/lib/postgresql/N/bin, else PATH. */
static int find_bindir(char *out, size_t len)
{
    FILE *p = popen("pg_config --bindir 2>/dev/null", "r");
    if (p) {
        char line[4096] = "";
        bool got = fgets(line, sizeof line, p) != NULL;
        pclose(p);
        line[strcspn(line, "\n")] = '\0';
        if (got && is_executable(line, "postgres") && is_executable(line, "initdb")) {
            snprintf(out, len, "%s", line);
            return 0;
        }
    }
    glob_t g;
    int best = -1, best_version = 0;
    if (glob("/usr/lib/postgresql/*/bin", 0, NULL, &g) == 0) {
        for (size_t i = 0; i < g.gl_pathc; i++) {
            int v = version_of(g.gl_pathv[i]);
            if (v > best_version && is_executable(g.gl_pathv[i], "postgres")) {
                best_version = v;
                best = (int)i;
            }
        }
        if (best >= 0)
            snprintf(out, len, "%s", g.gl_pathv[best]);
        globfree(&g);
        if (best >= 0)
            return 0;
    }
    const char *path = getenv("PATH");
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", path ? path : "");
    for (char *save, *dir = strtok_r(buf, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        if (is_executable(dir, "postgres") && is_executable(dir, "initdb")) {
            snprintf(out, len, "%s", dir);
            return 0;
        }
    }
    log_error("could not find the PostgreSQL server programs (postgres, initdb): install "
              "postgresql, or put its bin folder on PATH");
    return -1;
}

/* The unprivileged user to run PostgreSQL as, when we are root. */
static int pick_user(const char *data_dir, uid_t *uid, gid_t *gid)
{
    struct stat st;
    if (stat(data_dir, &st) == 0 && st.st_uid != 0) {
        *uid = st.st_uid;
        *gid = st.st_gid;
        return 0;
    }
    struct passwd *pw = getpwnam("postgres");
    if (pw == NULL) {
        pw = getpwnam("ledgerd");
        if (pw == NULL) {
            log_info("creating system user \"ledgerd\" to run PostgreSQL");
            if (system("useradd --system --no-create-home --shell /usr/sbin/nologin ledgerd") != 0)
                return -1;
            pw = getpwnam("ledgerd");
        }
    }
    if (pw == NULL)
        return -1;
    *uid = pw->pw_uid;
    *gid = pw->pw_gid;
    return 0;
}

/* The unprivileged user must be able to reach the data folder: give it
 * search (not read) permission on each parent that denies it, e.g. /root. */
static void grant_search_path(const char *data_dir, uid_t uid)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", data_dir);
    for (char *slash = strchr(path + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        struct stat st;
        if (stat(path, &st) == 0 && st.st_uid != uid && !(st.st_mode & S_IXOTH)) {
            char cmd[4300];
            snprintf(cmd, sizeof cmd, "setfacl -m u:%u:x '%s'", (unsigned)uid, path);
            log_info("granting the PostgreSQL user search permission on %s", path);
            if (system(cmd) != 0)
                log_warn("could not run setfacl on %s; PostgreSQL may not reach its folder", path);
        }
        *slash = '/';
    }
}

/* fork + drop privileges + exec; stdout/stderr to log_path if given.
 * die_with_parent: for initdb, which must not go on filling a folder that
 * its ledgerd, killed, no longer owns (the next owner would take a
 * half-made cluster for a whole one). postgres outlives a killed ledgerd
 * on purpose: the next owner stops it in order (stop_orphan). */
static pid_t spawn(char *const argv[], bool drop, uid_t uid, gid_t gid, const char *log_path,
                   bool die_with_parent)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    /* Own process group: a terminal's Ctrl-C reaches ledgerd only, which
     * then stops PostgreSQL in order. */
    setpgid(0, 0);
    if (drop && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0)) {
        fprintf(stderr, "ledgerd: could not drop privileges: %s\n", strerror(errno));
        _exit(127);
    }
    /* After setuid, which clears it; and the parent may have died already. */
    if (die_with_parent && (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent))
        _exit(127);
    if (log_path) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0)
        dup2(devnull, 0);
    execv(argv[0], argv);
    fprintf(stderr, "ledgerd: could not run %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* The memory PostgreSQL may use: physical memory, or in a container the
 * cgroup's limit when lower. */
static long long memory_bytes(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGESIZE);
    long long bytes = pages > 0 && page_size > 0 ? (long long)pages * page_size : 0;
    /* cgroup v2, then v1; "max" or a huge number means no limit. */
    static const char *const limits[] = {"/sys/fs/cgroup/memory.max",
                                         "/sys/fs/cgroup/memory/memory.limit_in_bytes"};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        FILE *f = fopen(limits[i], "r");
        long long limit;
        if (f == NULL)
            continue;
        if (fscanf(f, "%lld", &limit) == 1 && limit > 0 && (bytes == 0 || limit < bytes))
            bytes = limit;
        fclose(f);
    }
    return bytes;
}

/* Settings written once, into the postgresql.conf of a cluster ledgerd
 * creates, so that its owner can still change them there. Neither trades
 * durability: fsync, synchronous_commit and full_page_writes stay on.
 *  - shared_buffers: a quarter of the machine's memory (PostgreSQL's own
 *    advice), so that a large journal's pages are read from PostgreSQL's
 *    cache rather than copied in from the kernel's at every entries page;
 *    never below PostgreSQL's default of 128 MB.
 *  - wal_init_zero = off: a new 16 MB WAL segment is created with its size
 *    set rather than written full of zeros. Writing them holds the WAL
 *    write lock, and every commit waited 20-40 ms each time a busy ledger
 *    crossed into a new segment (every two seconds at 5,000 transfers/s).
 *    fdatasync still makes each commit's blocks, allocation included,
 *    durable.
 *  - wal_sync_method = open_datasync: each WAL write is made durable as it
 *    is written (O_DSYNC) instead of by a write and then an fdatasync.
 *    Measured on the 2-core VM of BENCHMARKS.md, same cluster, interleaved
 *    runs: p99 at 5,000 transfers/s offered 4.5-8.2 ms instead of
 *    10-37 ms, and 5-30 % more transfers/s. Equally durable; an owner on
 *    other storage can compare with pg_test_fsync and change it.
 *  - max_connections = 200: room for several ledgerd processes, each with
 *    about ten connections, beside the owner's own tools. */
static int write_settings(const char *data_dir)
{
    long long buffers_mb = memory_bytes() / 4 >> 20;
    if (buffers_mb < 128)
        buffers_mb = 128;
    char path[4200];
    snprintf(path, sizeof path, "%s/postgresql.conf", data_dir);
    FILE *f = fopen(path, "a");
    if (f == NULL) {
        log_error("could not open %s: %s", path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "\n# Set by ledgerd when it created this cluster (see ledgerd's README).\n"
            "shared_buffers = %lldMB\n"
            "wal_init_zero = off\n"
            "wal_sync_method = open_datasync\n"
            "max_connections = 200\n",
            buffers_mb);
    if (fclose(f) != 0) {
        log_error("could not write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static bool can_connect(const char *conninfo)
{
    return PQping(conninfo) == PQPING_OK;
}

static bool stop_signal_pending(void)
{
    sigset_t pending;
    return sigpending(&pending) == 0 &&
           (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT) ||
            sigismember(&pending, SIGHUP));
}

static bool take_owner_lock(struct pg_embedded *pg)
{
    if (pg->owner)
        return true;
    int fd = open(pg->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
        /* Held by another process is the one expected failure. */
        if (errno != EWOULDBLOCK)
            log_warn("could not lock data folder %s: %s", pg->data_dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    pg->lock_fd = fd;
    pg->owner = true;
    return true;
}

static void release_owner_lock(struct pg_embedded *pg)
{
    if (pg->owner)
        close(pg->lock_fd);
    pg->owner = false;
}

/* Stops a postgres that answers in the folder while no process owns it:
 * the one its postmaster.pid names, if /proc shows that process working
 * in this folder (a pid from another namespace, or reused, is not
 * signalled). It is gone when postmaster.pid is, since a zombie that
 * nobody reaps keeps its pid. Returns 0; 1 if a stop signal came
 * meanwhile; -1. */
static int stop_orphan(struct pg_embedded *pg)
{
    char path[4200], proc[64], cwd[4096];
    snprintf(path, sizeof path, "%s/postmaster.pid", pg->data_dir);
    long pid = 0;
    FILE *f = fopen(path, "r");
    if (f) {
        if (fscanf(f, "%ld", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    snprintf(proc, sizeof proc, "/proc/%ld/cwd", pid);
    ssize_t n = pid > 0 ? readlink(proc, cwd, sizeof cwd - 1) : -1;
    if (n >= 0)
        cwd[n] = '\0';
    if (n < 0 || strcmp(cwd, pg->data_dir) != 0) {
        log_error("a PostgreSQL answers in %s, but postmaster.pid names no process of this"
                  " system working there; stop it, then start ledgerd again",
                  pg->data_dir);
        return -1;
    }
    log_warn("stopping the PostgreSQL (pid %ld) that a process now gone left running in %s,"
             " to run it as this one's child",
             pid, pg->data_dir);
    if (kill((pid_t)pid, SIGINT) != 0) {
        log_error("could not stop PostgreSQL (pid %ld): %s", pid, strerror(errno));
        return -1;
    }
    for (int waited_ms = 0; waited_ms < 60000; waited_ms += 50) {
        if (access(path, F_OK) != 0 && !can_connect(pg->conninfo))
            return 0;
        if (stop_signal_pending())
            return 1;
        usleep(50 * 1000);
    }
    log_error("the PostgreSQL left running in %s did not stop within 60 s", pg->data_dir);
    return -1;
}

/* A folder that is neither empty nor a cluster is not ours to chown and
 * initdb into: --data /var/lib by mistake must change nothing. */
static bool empty_folder(const char *path)
{
    DIR *d = opendir(path);
    if (d == NULL)
        return false;
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)) != NULL)
        empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
    closedir(d);
    return empty;
}

int pg_embedded_start(struct pg_embedded *pg, const char *data_dir)
{
    /* A restart by the supervisor keeps the lock it holds. */
    bool owner = pg->owner;
    int lock_fd = pg->lock_fd;
    memset(pg, 0, sizeof *pg);
    pg->owner = owner;
    pg->lock_fd = lock_fd;
    if (mkdir(data_dir, 0700) != 0 && errno != EEXIST) {
        log_error("could not create data folder \"%s\": %s", data_dir, strerror(errno));
        return -1;
    }
    if (realpath(data_dir, pg->data_dir) == NULL) {
        log_error("could not resolve data folder \"%s\": %s", data_dir, strerror(errno));
        return -1;
    }
    char version_file[4200];
    snprintf(version_file, sizeof version_file, "%s/PG_VERSION", pg->data_dir);
    struct stat st;
    if (stat(pg->data_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        log_error("data folder \"%s\" is not a folder", pg->data_dir);
        return -1;
    }
    snprintf(pg->conninfo, sizeof pg->conninfo, "host=%s port=5432 dbname=postgres user=%s",
             pg->data_dir, PG_SUPERUSER);
    /* Another process owns the cluster: use it once it answers, or own it
     * if that process goes meanwhile. */
    for (int waited_ms = 0; !take_owner_lock(pg); waited_ms += 50) {
        if (can_connect(pg->conninfo)) {
            log_info("using the PostgreSQL cluster that another process runs in %s", pg->data_dir);
            return 0;
        }
        if (stop_signal_pending())
            return 1;
        if (waited_ms >= 60000) {
            log_error("the process running PostgreSQL in %s did not get it to answer within 60 s",
                      pg->data_dir);
            return -1;
        }
        usleep(50 * 1000);
    }
    /* Only the owner creates a cluster, so only it judges the folder:
     * another process may be running initdb in it right now. */
    if (access(version_file, F_OK) != 0 && !empty_folder(pg->data_dir)) {
        log_error("data folder \"%s\" holds no PostgreSQL cluster and is not empty;"
                  " not creating one there",
                  pg->data_dir);
        release_owner_lock(pg);
        return -1;
    }
    int orphan = can_connect(pg->conninfo) ? stop_orphan(pg) : 0;
    if (orphan != 0) {
        release_owner_lock(pg);
        return orphan;
    }
    if (find_bindir(pg->bindir, sizeof pg->bindir) != 0)
        return -1;

    bool root = geteuid() == 0;
    uid_t uid = 0;
    gid_t gid = 0;
    if (root) {
        if (pick_user(pg->data_dir, &uid, &gid) != 0) {
            log_error("could not find or create an unprivileged user to run PostgreSQL");
            return -1;
        }
        if (chown(pg->data_dir, uid, gid) != 0) {
            log_error("could not give %s to the PostgreSQL user: %s", pg->data_dir,
                      strerror(errno));
            return -1;
        }
        grant_search_path(pg->data_dir, uid);
    }
    chmod(pg->data_dir, 0700);

    char prog[4200], log_path[4200];
    snprintf(log_path, sizeof log_path, "%s/postgres.log", pg->data_dir);
    if (access(version_file, F_OK) != 0) {
        log_info("creating PostgreSQL cluster in %s", pg->data_dir);
        snprintf(prog, sizeof prog, "%s/initdb", pg->bindir);
        char *argv[] = {prog,         "-D", pg->data_dir, "-A",         "trust", "-U",
                        PG_SUPERUSER, "-E", "UTF8",       "--locale=C", NULL};
        pid_t pid = spawn(argv, root, uid, gid, "/dev/null", true);
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
            WEXITSTATUS(status) != 0) {
            log_error("initdb failed in %s (exit status %d)", pg->data_dir,
                      WIFEXITED(status) ? WEXITSTATUS(status) : -1);
            return -1;
        }
        if (write_settings(pg->data_dir) != 0)
            return -1;
    }

    snprintf(prog, sizeof prog, "%s/postgres", pg->bindir);
    char *argv[] = {prog, "-D", pg->data_dir, "-k", pg->data_dir, "-c", "listen_addresses=", NULL};
    pg->pid = spawn(argv, root, uid, gid, log_path, false);
    if (pg->pid < 0) {
        log_error("could not start postgres: %s", strerror(errno));
        pg->pid = 0;
        return -1;
    }
    /* Crash recovery after an unclean stop may take long: a server that
     * answers "starting up" is waited for as long as it takes; one that does
     * not answer at all, 60 s. A stop signal ends the wait (it stays
     * pending for the caller). */
    for (int silent_ms = 0; silent_ms < 60000; usleep(50 * 1000)) {
        PGPing ping = PQping(pg->conninfo);
        if (ping == PQPING_OK) {
            log_info("PostgreSQL is running in %s (pid %d)", pg->data_dir, (int)pg->pid);
            return 0;
        }
        if (!pg_embedded_alive(pg)) {
            log_error("postgres exited during start; see %s", log_path);
            pg->pid = 0;
            return -1;
        }
        if (stop_signal_pending()) {
            log_info("stop requested while PostgreSQL was starting");
            pg_embedded_stop(pg);
            return 1;
        }
        if (ping != PQPING_REJECT)
            silent_ms += 50;
    }
    log_error("postgres did not answer within 60 s; see %s", log_path);
    pg_embedded_stop(pg);
    return -1;
}

bool pg_embedded_alive(struct pg_embedded *pg)
{
    if (pg->pid == 0)
        return !take_owner_lock(pg); /* its owner lives, and looks after it */
    int status;
    return waitpid(pg->pid, &status, WNOHANG) == 0;
}

void pg_embedded_stop(struct pg_embedded *pg)
{
    if (pg->pid == 0) {
        release_owner_lock(pg);
        return;
    }
    kill(pg->pid, SIGINT); /* fast shutdown: abort sessions, checkpoint, exit */
    for (int waited_ms = 0; waited_ms < 30000; waited_ms += 20) {
        int status;
        if (waitpid(pg->pid, &status, WNOHANG) != 0) {
            pg->pid = 0;
            release_owner_lock(pg);
            log_info("PostgreSQL stopped");
            return;
        }
        usleep(20 * 1000);
    }
    log_warn("postgres did not stop within 30 s; sending SIGQUIT");
    kill(pg->pid, SIGQUIT);
    waitpid(pg->pid, NULL, 0);
    pg->pid = 0;
    release_owner_lock(pg);
}
