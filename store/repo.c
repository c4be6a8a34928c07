/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Repository lifecycle: init, open (config check, lock, session directory,
 * cleanup of crashed sessions) and close. See FORMAT.md, "Layout" and
 * "Locking".
 */
#include "proto/crypt.h"
#include "store/backend.h"
#include "store/store_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CONFIG_MAGIC "livebackup-repository"

static const char *const repo_entries[] = {"config", "chunks", "backups",
                                           "tmp",    "lock",   "keys"};

static bool
is_repo_entry(const char *name)
{
    for (size_t i = 0; i < LB_ARRAY_SIZE(repo_entries); i++)
        if (strcmp(name, repo_entries[i]) == 0)
            return true;
    return false;
}

/* 0: empty or only our own entries (an interrupted init); 1: foreign
 * content; -1: error. */
static int
dir_state(const char *path, bool *has_config)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int r = 0;

    *has_config = false;
    if (!d)
        return lb_error(errno, "open %s", path);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strcmp(e->d_name, "config") == 0)
            *has_config = true;
        if (!is_repo_entry(e->d_name))
            r = 1;
    }
    closedir(d);
    return r;
}

static const char *
encryption_name(uint8_t e)
{
    return e == PROTO_ENC_REPOKEY   ? "repokey"
           : e == PROTO_ENC_KEYFILE ? "keyfile"
                                    : "none";
}

/* Check what init is asked to record of a key; write keys/ (the key file
 * of a repokey repository) before the config makes it a repository. */
static int
init_keys(const char *path, const struct store_key *k)
{
    CLEANUP_FREE char *dir = lb_xasprintf("%s/keys", path);
    struct proto_keyfile kf;

    if (k->encryption != PROTO_ENC_REPOKEY &&
        k->encryption != PROTO_ENC_KEYFILE)
        return lb_fail(EINVAL, "unknown encryption %u", k->encryption);
    if (lb_mkdir_p(dir, 0700) < 0)
        return -1;
    if (k->encryption == PROTO_ENC_KEYFILE) {
        if (k->keyfile_len)
            return lb_fail(EINVAL, "a keyfile repository keeps no key");
        return 0;
    }
    if (proto_keyfile_decode(k->keyfile, k->keyfile_len, &kf) != PROTO_OK ||
        memcmp(kf.key_id, k->key_id, sizeof kf.key_id) != 0)
        return lb_fail(EINVAL, "the key file sent is not one of the "
                               "repository's key");
    return lb_write_file_atomic(dir, "repokey", k->keyfile, k->keyfile_len,
                                0600);
}

/* A user's name, or its number. */
static void
user_name(uid_t uid, char *buf, size_t len)
{
    struct passwd pw, *res = NULL;
    char tmp[1024];

    if (getpwuid_r(uid, &pw, tmp, sizeof tmp, &res) == 0 && res)
        snprintf(buf, len, "%s", pw.pw_name);
    else
        snprintf(buf, len, "%u", (unsigned)uid);
}

int
store_owner_check(const char *path)
{
    struct stat sb;
    char owner[256], me[256];
    uid_t uid = geteuid();

    if (stat(path, &sb) < 0)
        return lb_error(errno, "stat %s", path);
    if (sb.st_uid == uid)
        return 0;
    user_name(sb.st_uid, owner, sizeof owner);
    user_name(uid, me, sizeof me);
    lb_fail(EPERM,
            "repository %s belongs to user %s, and this backupd runs as %s: "
            "it writes only a repository it owns (files it wrote would be "
            "private to %s, unreadable to %s)",
            path, owner, me, me, owner);
    lb_error_hint("run it as %s: runuser -u %s -- livebackup ... on this "
                  "host, ssh://%s@HOST%s from another, or a backupd listen "
                  "daemon running as %s",
                  owner, owner, owner, path, owner);
    return -1;
}

/* The config file's text (FORMAT.md, "config"); NULL on error. */
static char *
config_text(uint32_t window_size, const struct store_key *k)
{
    bool enc = k && k->encryption != PROTO_ENC_NONE;
    char idhex[33], when[32], keyhex[2 * PROTO_KEY_ID_BYTES + 1] = "";
    uint8_t id[16];

    if (enc)
        lb_hex_encode(keyhex, k->key_id, sizeof k->key_id);
    if (lb_random(id, sizeof id) < 0)
        return NULL;
    lb_hex_encode(idhex, id, sizeof id);
    lb_format_time(when, sizeof when, lb_wall_time());
    /* An unencrypted repository stays version 1, which every backupd
     * reads; an encrypted one is version 2, which an older backupd refuses
     * rather than serve it as an unencrypted one. */
    return lb_xasprintf("%s %d\nwindow_size %u\nid %s\ncreated %s\n%s%s%s%s%s",
                        CONFIG_MAGIC, enc ? 2 : 1, window_size, idhex, when,
                        enc ? "encryption " : "",
                        enc ? encryption_name(k->encryption) : "",
                        enc ? "\nkey_id " : "", keyhex, enc ? "\n" : "");
}

/* init of a repository on an object backend (rados:...). */
static int
init_obj(const char *spec, uint32_t window_size, const struct store_key *k)
{
    CLEANUP_FREE char *cfg = NULL;
    struct proto_keyfile kf;
    bool enc = k && k->encryption != PROTO_ENC_NONE;

    if (enc) {
        if (k->encryption != PROTO_ENC_REPOKEY &&
            k->encryption != PROTO_ENC_KEYFILE)
            return lb_fail(EINVAL, "unknown encryption %u", k->encryption);
        if (k->encryption == PROTO_ENC_KEYFILE && k->keyfile_len)
            return lb_fail(EINVAL, "a keyfile repository keeps no key");
        if (k->encryption == PROTO_ENC_REPOKEY &&
            (proto_keyfile_decode(k->keyfile, k->keyfile_len, &kf) !=
                 PROTO_OK ||
             memcmp(kf.key_id, k->key_id, sizeof kf.key_id) != 0))
            return lb_fail(EINVAL, "the key file sent is not one of the "
                                   "repository's key");
    }
    cfg = config_text(window_size, k);
    if (!cfg)
        return -1;
    return store_obj_init(spec, cfg,
                          enc && k->encryption == PROTO_ENC_REPOKEY ? k->keyfile
                                                                    : NULL,
                          enc ? k->keyfile_len : 0);
}

int
store_init(const char *path, uint32_t window_size)
{
    return store_init_keyed(path, window_size, NULL);
}

int
store_init_keyed(const char *path, uint32_t window_size,
                 const struct store_key *k)
{
    struct stat sb;
    bool has_config;
    bool enc = k && k->encryption != PROTO_ENC_NONE;

    if (!proto_window_size_valid(window_size))
        return lb_fail(EINVAL,
                       "window size %u: must be a power of two between "
                       "%u KiB and %u MiB",
                       window_size, PROTO_MIN_WINDOW >> 10,
                       PROTO_MAX_WINDOW >> 20);
    if (store_be_is_rados(path))
        return init_obj(path, window_size, k);
    if (stat(path, &sb) == 0) {
        int s;
        if (!S_ISDIR(sb.st_mode))
            return lb_fail(ENOTDIR, "%s exists and is not a directory", path);
        s = dir_state(path, &has_config);
        if (s < 0)
            return -1;
        if (has_config) {
            lb_fail(EEXIST, "%s is already a livebackup repository", path);
            errno = EEXIST;
            return -1;
        }
        if (s == 1) {
            /* ENOTEMPTY in the slot: backupd maps it to NOT_EMPTY. */
            lb_fail(ENOTEMPTY,
                    "%s is not empty and is not a livebackup repository", path);
            lb_error_hint("choose an empty or new directory");
            errno = ENOTEMPTY;
            return -1;
        }
        if (store_owner_check(path) < 0)
            return -1;
    } else if (errno != ENOENT) {
        return lb_error(errno, "stat %s", path);
    } else if (lb_mkdir_p(path, 0700) < 0) {
        return -1;
    }

    for (unsigned i = 0; i < 256; i++) {
        CLEANUP_FREE char *d = lb_xasprintf("%s/chunks/%02x", path, i);
        if (lb_mkdir_p(d, 0700) < 0)
            return -1;
    }
    {
        CLEANUP_FREE char *b = lb_xasprintf("%s/backups", path);
        CLEANUP_FREE char *t = lb_xasprintf("%s/tmp", path);
        CLEANUP_FREE char *l = lb_xasprintf("%s/lock", path);
        int fd;
        if (lb_mkdir_p(b, 0700) < 0 || lb_mkdir_p(t, 0700) < 0)
            return -1;
        fd = open(l, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
            return lb_error(errno, "create %s", l);
        close(fd);
    }
    if (enc && init_keys(path, k) < 0)
        return -1;
    {
        CLEANUP_FREE char *cfg = config_text(window_size, k);
        /* The config is written last: without it the directory is not a
         * repository, and init can simply be run again. */
        if (!cfg ||
            lb_write_file_atomic(path, "config", cfg, strlen(cfg), 0600) < 0)
            return -1;
    }
    return 0;
}

static int
parse_config(struct store *st)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/config", st->path);
    CLEANUP_FREE char *text = NULL;

    text = lb_read_file(path, 64 << 10, NULL);
    if (!text) {
        struct stat sb;
        if (errno != ENOENT)
            return -1;
        if (stat(st->path, &sb) < 0) {
            lb_fail(ENOENT, "no repository at %s", st->path);
            lb_error_hint("create one with: livebackup init --repo %s",
                          st->path);
            errno = ENOENT;
            return -1;
        }
        lb_fail(ENOTDIR, "%s is not a livebackup repository (no config)",
                st->path);
        lb_error_hint("check the path, or create a repository with "
                      "livebackup init in an empty directory");
        errno = ENOTDIR;
        return -1;
    }
    return store_config_parse(st, text);
}

int
store_config_parse(struct store *st, char *text)
{
    char *line, *save = NULL;
    int version = -1;
    bool has_key_id = false;

    for (line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        char key[64], val[128];
        if (sscanf(line, "%63s %127s", key, val) != 2)
            continue;
        if (strcmp(key, CONFIG_MAGIC) == 0)
            version = atoi(val);
        else if (strcmp(key, "window_size") == 0)
            st->window_size = (uint32_t)strtoul(val, NULL, 10);
        else if (strcmp(key, "id") == 0)
            snprintf(st->repo_id, sizeof st->repo_id, "%s", val);
        else if (strcmp(key, "encryption") == 0)
            st->encryption = strcmp(val, "repokey") == 0   ? PROTO_ENC_REPOKEY
                             : strcmp(val, "keyfile") == 0 ? PROTO_ENC_KEYFILE
                                                           : 0xFF;
        else if (strcmp(key, "key_id") == 0 &&
                 lb_hex_decode(st->key_id, sizeof st->key_id, val) == 0)
            has_key_id = true;
    }
    if (version < 0) {
        lb_fail(ENOTDIR, "%s/config is not a livebackup repository config",
                st->path);
        errno = ENOTDIR;
        return -1;
    }
    if (version > STORE_FORMAT_VERSION) {
        lb_fail(ERANGE,
                "repository %s has format version %d, newer than this "
                "livebackup supports (%d)",
                st->path, version, STORE_FORMAT_VERSION);
        lb_error_hint("upgrade livebackup on the machine that holds the "
                      "repository");
        errno = ERANGE;
        return -1;
    }
    if (!proto_window_size_valid(st->window_size)) {
        lb_fail(EPROTO, "%s/config: invalid window size %u", st->path,
                st->window_size);
        errno = EPROTO;
        return -1;
    }
    /* Version 2 is an encrypted repository and says how; version 1 never
     * is (its keys, if any, are not ours). */
    st->format_version = (unsigned)version;
    if (version < 2) {
        st->encryption = PROTO_ENC_NONE;
    } else if ((st->encryption != PROTO_ENC_REPOKEY &&
                st->encryption != PROTO_ENC_KEYFILE) ||
               !has_key_id) {
        lb_fail(EPROTO,
                "%s/config: format version 2 without a valid encryption "
                "and key_id",
                st->path);
        errno = EPROTO;
        return -1;
    }
    return 0;
}

/* What a lock's holder says of itself (others are told who holds it). */
static void
describe(char *buf, size_t len, const char *what)
{
    char host[128] = "?", when[32];

    gethostname(host, sizeof host - 1);
    lb_format_time(when, sizeof when, lb_wall_time());
    snprintf(buf, len, "%s (pid %ld on %s since %s)", what, (long)getpid(),
             host, when);
}

int
store_repo_lock(struct store *st, unsigned wait_secs)
{
    bool excl = st->mode == STORE_ADMIN;
    unsigned lease = store_be_lease(st->be);
    char desc[256], holder[256], died[96] = "";

    describe(desc, sizeof desc,
             excl ? "an exclusive operation" : "a backup, restore or gc");
    st->be_lock = st->be->ops->lock(st->be, "lock", excl, lease, wait_secs,
                                    desc, holder, sizeof holder);
    if (st->be_lock >= 0)
        return 0;
    if (lb_error_errno() != EWOULDBLOCK)
        return -1;
    if (lease)
        snprintf(died, sizeof died,
                 "; a holder that died loses its lock after %u s", lease);
    if (excl) {
        lb_fail(EWOULDBLOCK,
                "repository %s is in use by running backups or restores "
                "(locked by %s)",
                st->path, holder);
        lb_error_hint("try again when they are done (or wait with "
                      "--lock-wait SECONDS)%s",
                      died);
    } else {
        lb_fail(EWOULDBLOCK, "repository %s is locked by %s", st->path, holder);
        lb_error_hint("it is being pruned or garbage-collected; try again "
                      "when that is done (or wait with --lock-wait "
                      "SECONDS)%s",
                      died);
    }
    errno = EWOULDBLOCK;
    return -1;
}

struct store *
store_open(const char *path, enum store_mode mode, unsigned lock_wait_secs)
{
    struct store *st = lb_xcalloc(1, sizeof *st);

    st->path = lb_xstrdup(path);
    st->mode = mode;
    st->be_lock = -1;
    pthread_mutex_init(&st->tmp_lock, NULL);
    if (store_be_is_rados(path)) {
        if (store_obj_open(st, lock_wait_secs) < 0)
            goto fail;
        return st;
    }
    if (parse_config(st) < 0 ||
        (mode != STORE_READ && store_owner_check(path) < 0))
        goto fail;
    st->be = store_be_file_open(path);
    if (!st->be || store_repo_lock(st, lock_wait_secs) < 0)
        goto fail;
    if (mode != STORE_READ && st->be->ops->session_begin(st->be) < 0)
        goto fail;
    return st;
fail : {
    int saved = errno;
    store_close(st);
    errno = saved;
}
    return NULL;
}

void
store_set_tick(struct store *st, void (*fn)(void *opaque), void *opaque)
{
    st->tick = fn;
    st->tick_opaque = opaque;
}

void
store_close(struct store *st)
{
    if (!st)
        return;
    /* The session ends (its directory removed) before the locks go (an
     * exclusive holder's line emptied). */
    store_be_close(st->be);
    pthread_mutex_destroy(&st->tmp_lock);
    free(st->path);
    free(st);
}

uint32_t
store_window_size(const struct store *st)
{
    return st->window_size;
}

const char *
store_repo_id(const struct store *st)
{
    return st->repo_id;
}

const char *
store_path(const struct store *st)
{
    return st->path;
}

unsigned
store_format_version(const struct store *st)
{
    return st->format_version;
}

uint8_t
store_encryption(const struct store *st)
{
    return st->encryption;
}

const uint8_t *
store_key_id(const struct store *st)
{
    return st->key_id;
}

ssize_t
store_key_get(struct store *st, uint8_t *out, size_t cap)
{
    CLEANUP_FREE char *path = lb_xasprintf("%s/keys/repokey", st->path);
    CLEANUP_FREE char *text = NULL;
    struct proto_keyfile kf;
    size_t len = 0;
    ssize_t n;

    if (st->encryption != PROTO_ENC_REPOKEY)
        return lb_fail(EINVAL, "repository %s keeps no key", st->path);
    text = lb_xmalloc(4096);
    n = store_obj_get(st, "keys/repokey", (uint8_t *)text, 4096);
    if (n < 0)
        return -1;
    len = (size_t)n;
    if (len > cap ||
        proto_keyfile_decode((const uint8_t *)text, len, &kf) != PROTO_OK) {
        lb_fail(EPROTO, "%s is damaged", path);
        lb_error_hint("import the key again (livebackup key import) from "
                      "an exported copy");
        return -1;
    }
    if (memcmp(kf.key_id, st->key_id, sizeof kf.key_id) != 0)
        return lb_fail(EPROTO, "%s holds another key than the repository's",
                       path);
    memcpy(out, text, len);
    return (ssize_t)len;
}

int
store_key_set(struct store *st, const uint8_t *p, size_t len)
{
    struct proto_keyfile kf;

    if (st->mode == STORE_READ)
        return lb_fail(EPERM, "repository opened read-only");
    if (st->append_only)
        return lb_fail(EPERM, "this repository connection is append-only: "
                              "its key cannot be replaced");
    if (st->encryption != PROTO_ENC_REPOKEY)
        return lb_fail(EINVAL, "repository %s keeps no key (%s)", st->path,
                       st->encryption == PROTO_ENC_KEYFILE
                           ? "its key is kept on the clients"
                           : "it is not encrypted");
    if (proto_keyfile_decode(p, len, &kf) != PROTO_OK)
        return lb_fail(EINVAL, "not a key file");
    if (memcmp(kf.key_id, st->key_id, sizeof kf.key_id) != 0)
        return lb_fail(EINVAL, "the key file holds another key than the "
                               "repository's");
    return st->be->ops->replace(st->be, "keys/repokey", p, len);
}

void
store_set_append_only(struct store *st, bool on)
{
    st->append_only = on;
}

void
store_set_trusted(struct store *st, bool on)
{
    st->trusted = on;
}

bool
store_append_only(const struct store *st)
{
    return st->append_only;
}

char *
store_tmp_name(struct store *st, const char *what)
{
    unsigned long n;

    pthread_mutex_lock(&st->tmp_lock);
    n = ++st->tmp_seq;
    pthread_mutex_unlock(&st->tmp_lock);
    return lb_xasprintf("%s/%s.%lu", st->be->tmp_dir, what, n);
}
