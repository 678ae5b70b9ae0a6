#define _GNU_SOURCE
#include "cportlesssystem.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <unistd.h>

int portless_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
                   int stdin_fd, int stdout_fd, int stderr_fd) {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attributes;
    sigset_t defaults, empty;
    int result;

    if ((result = posix_spawn_file_actions_init(&actions)) != 0) return result;
    if ((result = posix_spawnattr_init(&attributes)) != 0) {
        posix_spawn_file_actions_destroy(&actions);
        return result;
    }
    sigfillset(&defaults);
    sigemptyset(&empty);
    if ((result = posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK)) == 0 &&
        (result = posix_spawnattr_setpgroup(&attributes, 0)) == 0 &&
        (result = posix_spawnattr_setsigdefault(&attributes, &defaults)) == 0 &&
        (result = posix_spawnattr_setsigmask(&attributes, &empty)) == 0 &&
        (result = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0)) == 0 &&
        (result = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1)) == 0 &&
        (result = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2)) == 0 &&
        (result = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) == 0 &&
        (cwd == NULL || (result = posix_spawn_file_actions_addchdir_np(&actions, cwd)) == 0)) {
        result = posix_spawn(pid, path, &actions, &attributes, argv, envp);
    }
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attributes);
    return result;
}

int portless_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof(credentials);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}

int portless_pipe(int fds[2]) {
    return pipe2(fds, O_CLOEXEC);
}
