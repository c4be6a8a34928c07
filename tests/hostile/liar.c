/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * lbhostile liar -- COMMAND [ARGS...]: a repository server that lies. It
 * runs COMMAND (a backupd serve, perhaps over ssh) and relays between it
 * and its own standard input and output, frame by frame, the server's
 * side read whole; it flips the last byte of the first CHUNK_DATA the
 * server sends (as a broken-into primary, or a bit flipped in its memory
 * after its own check, would hand over), says so on stderr
 * ("liar: flipped a byte of chunk HEX"), and passes everything else on
 * as it came. What a `livebackup copy --from` it must then do (the
 * destination checks each chunk again) tests/integration/test_copy.sh
 * checks.
 *
 * lbhostile liar --flood-list|--flood-manifest -- COMMAND...: the
 * server's first LIST_ENTRY (or MANIFEST_DATA) is sent again and again,
 * without end (a list of backups, or a manifest, that never ends);
 * test_ssh.sh checks that the client gives up, its memory and the room
 * it writes to bounded.
 */
#include "tests/hostile/hostile.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The client's bytes to the server, as they come; its end closes the
 * server's input. */
static void *
client_to_server(void *arg)
{
    int to = *(int *)arg;
    uint8_t buf[65536];
    ssize_t n;

    while ((n = read(0, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0 && lb_write_full(to, buf, (size_t)n) < 0)
            break;
    close(to);
    return NULL;
}

/* Exactly len bytes from fd: 1, 0 at a clean end before any, -1. */
static int
read_exactly(int fd, uint8_t *p, size_t len)
{
    size_t got = 0;

    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return got == 0 && n == 0 ? 0 : -1;
        got += (size_t)n;
    }
    return 1;
}

int
liar(char **argv)
{
    uint16_t flood = strcmp(argv[0], "--flood-list") == 0 ? PROTO_T_LIST_ENTRY
                     : strcmp(argv[0], "--flood-manifest") == 0
                         ? PROTO_T_MANIFEST_DATA
                         : 0;
    int to[2], from[2], st = 0, r;
    bool lied = false;
    pthread_t t;
    pid_t pid;
    uint8_t hdr[12], *payload = lb_xmalloc(PROTO_MAX_PAYLOAD);

    if (flood)
        argv += 2; /* --flood-... -- */
    if (pipe2(to, O_CLOEXEC) < 0 || pipe2(from, O_CLOEXEC) < 0)
        return 2;
    pid = fork();
    if (pid < 0)
        return 2;
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    if (pthread_create(&t, NULL, client_to_server, &to[1]) != 0)
        return 2;
    while ((r = read_exactly(from[0], hdr, sizeof hdr)) == 1) {
        uint16_t type = (uint16_t)(hdr[4] << 8 | hdr[5]);
        uint32_t len = (uint32_t)hdr[8] << 24 | (uint32_t)hdr[9] << 16 |
                       (uint32_t)hdr[10] << 8 | hdr[11];
        if (len > PROTO_MAX_PAYLOAD ||
            (len && read_exactly(from[0], payload, len) != 1))
            break;
        /* digest (32), type, compression, reserved (2), raw_len (4),
         * then the stored bytes */
        if (type == PROTO_T_CHUNK_DATA && !flood && !lied && len > 40) {
            char hex[65];
            payload[len - 1] ^= 0x01;
            lied = true;
            for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", payload[i]);
            fprintf(stderr, "liar: flipped a byte of chunk %s\n", hex);
        }
        while (flood && type == flood)
            if (lb_write_full(1, hdr, sizeof hdr) < 0 ||
                lb_write_full(1, payload, len) < 0)
                goto out;
        if (lb_write_full(1, hdr, sizeof hdr) < 0 ||
            lb_write_full(1, payload, len) < 0)
            break;
    }
out:
    close(1);
    close(from[0]);
    free(payload);
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
