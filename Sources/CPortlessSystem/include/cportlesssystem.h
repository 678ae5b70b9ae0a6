#ifndef PORTLESS_CPORTLESSSYSTEM_H
#define PORTLESS_CPORTLESSSYSTEM_H

#include <sys/types.h>

/// Starts `path` with `argv` and exactly `envp` (nothing inherited), in a new process group,
/// with default signal dispositions and an empty signal mask, its stdin/stdout/stderr on the
/// given descriptors and every other descriptor closed; in `cwd` when it is not NULL.
/// Returns 0 and sets `*pid`, or an errno value.
int portless_spawn(pid_t *pid, const char *path, char *const argv[], char *const envp[], const char *cwd,
                   int stdin_fd, int stdout_fd, int stderr_fd);

/// The process, user and group at the other end of a connected unix socket (SO_PEERCRED).
/// Returns 0, or -1 with errno set.
int portless_peer_credentials(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

/// A pipe whose both ends close on exec (pipe2 with O_CLOEXEC). Returns 0, or -1 with errno set.
int portless_pipe(int fds[2]);

#endif
