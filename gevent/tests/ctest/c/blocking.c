/* A C library nobody here wrote, in miniature: plain blocking calls, no idea of greenlets.
 * Built fortified, so recv/read/poll become __recv_chk/__read_chk/__poll_chk. */
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Blocks in recv until data arrives; copies at most `cap` bytes to `out`. */
long c_blocking_recv(int fd, char *out, long cap) {
    char buf[256];
    long want = cap < (long)sizeof buf ? cap : (long)sizeof buf;
    long n = recv(fd, buf, (size_t)want, 0);
    if (n > 0) memcpy(out, buf, (size_t)n);
    return n;
}

/* Blocks in read until data arrives; copies at most `cap` bytes to `out`. */
long c_blocking_read(int fd, char *out, long cap) {
    char buf[256];
    long want = cap < (long)sizeof buf ? cap : (long)sizeof buf;
    long n = read(fd, buf, (size_t)want);
    if (n > 0) memcpy(out, buf, (size_t)n);
    return n;
}

/* Blocks in poll for POLLIN on `n` fds (at most 8); returns poll's result. */
int c_blocking_poll(const int *fds, int n, int timeout_ms) {
    struct pollfd p[8];
    if (n > 8) n = 8;
    for (int i = 0; i < n; i++) {
        p[i].fd = fds[i];
        p[i].events = POLLIN;
        p[i].revents = 0;
    }
    return poll(p, (nfds_t)n, timeout_ms);
}
