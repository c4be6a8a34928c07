/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The keys of an encrypted repository on the client (store/FORMAT.md,
 * "Encryption"; README, "Encryption"): where the passphrase comes from,
 * where a keyfile repository's key file is, unlocking a session (the
 * wrapped master key from the repository or the key file, opened with the
 * passphrase, the keys derived from it), and the key commands: init,
 * export, import, change-passphrase.
 */
#include "agent/client/client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

/* ---- passphrases --------------------------------------------------------- */

/* A passphrase as a file holds it: one trailing newline is not part of
 * it. 0, or -1 (error set). */
static int
pass_file(const char *path, char **out, size_t *len)
{
    char *p = lb_read_file(path, PROTO_MAX_PASSPHRASE + 2, len);

    if (!p) {
        lb_error_prefix("passphrase file");
        return -1;
    }
    if (*len && p[*len - 1] == '\n')
        p[--*len] = '\0';
    if (*len && p[*len - 1] == '\r')
        p[--*len] = '\0';
    *out = p;
    return 0;
}

/*
 * The passphrase (is_new: the new one of change-passphrase) from the
 * first source set, in order: the option's file, the _FILE variable, the
 * variable itself, the systemd credential. Never from the command line.
 */
static int
passphrase(bool is_new, char **out, size_t *len)
{
    const char *opt =
        is_new ? agent_opts.new_passphrase_file : agent_opts.passphrase_file;
    const char *var =
        is_new ? "LIVEBACKUP_NEW_PASSPHRASE" : "LIVEBACKUP_PASSPHRASE";
    const char *cred =
        is_new ? "livebackup-new-passphrase" : "livebackup-passphrase";
    char fvar[64];
    const char *v, *cdir = getenv("CREDENTIALS_DIRECTORY");
    CLEANUP_FREE char *credp =
        cdir && *cdir ? lb_xasprintf("%s/%s", cdir, cred) : NULL;
    int r;

    *out = NULL;
    *len = 0;
    snprintf(fvar, sizeof fvar, "%s_FILE", var);
    if (opt) {
        r = pass_file(opt, out, len);
    } else if ((v = getenv(fvar)) && *v) {
        r = pass_file(v, out, len);
    } else if ((v = getenv(var)) && *v) {
        *out = lb_xstrdup(v);
        *len = strlen(v);
        r = 0;
    } else if (credp && access(credp, F_OK) == 0) {
        r = pass_file(credp, out, len);
    } else {
        lb_fail(EINVAL, "no %spassphrase given", is_new ? "new " : "");
        lb_error_hint("put it in a file named by --%spassphrase-file or %s "
                      "(or in %s, or the systemd credential %s); never on "
                      "the command line",
                      is_new ? "new-" : "", fvar, var, cred);
        return -1;
    }
    if (r < 0)
        return -1;
    if (*len == 0 || *len > PROTO_MAX_PASSPHRASE || strlen(*out) != *len) {
        proto_wipe(*out, *len);
        free(*out);
        *out = NULL;
        return lb_fail(EINVAL,
                       "the %spassphrase must have 1 to %d bytes, none of "
                       "them NUL",
                       is_new ? "new " : "", PROTO_MAX_PASSPHRASE);
    }
    return 0;
}

static void
pass_free(char *p, size_t len)
{
    if (p)
        proto_wipe(p, len);
    free(p);
}

/* ---- key files ----------------------------------------------------------- */

/* Where a keyfile repository's key file is on this client. */
static char *
key_path(const uint8_t *key_id)
{
    const char *dir = getenv("LIVEBACKUP_KEYS_DIR");
    const char *home = getenv("HOME");
    const char *file = getenv("LIVEBACKUP_KEY_FILE");
    char hex[2 * PROTO_KEY_ID_BYTES + 1];

    if (agent_opts.key_file)
        return lb_xstrdup(agent_opts.key_file);
    if (file && *file)
        return lb_xstrdup(file);
    lb_hex_encode(hex, key_id, PROTO_KEY_ID_BYTES);
    if (dir && *dir)
        return lb_xasprintf("%s/%s.key", dir, hex);
    return lb_xasprintf("%s/.config/livebackup/keys/%s.key",
                        home && *home ? home : "/root", hex);
}

/* Read and decode a key file. */
static int
read_keyfile(const char *path, struct proto_keyfile *kf)
{
    size_t len = 0;
    CLEANUP_FREE char *p = lb_read_file(path, 4096, &len);
    int st;

    if (!p)
        return -1;
    st = proto_keyfile_decode((const uint8_t *)p, len, kf);
    if (st != PROTO_OK)
        return lb_fail(EINVAL, "%s is not a livebackup key file (%s)", path,
                       proto_status_str(st));
    return 0;
}

/* Write a key file: a new one (fails if path exists), or replacing one
 * atomically. Its directory is created private. */
static int
write_keyfile(const char *path, const struct proto_keyfile *kf, bool replace)
{
    uint8_t b[PROTO_KEYFILE_LEN];
    CLEANUP_FREE char *dir = lb_xstrdup(path);
    char *slash = strrchr(dir, '/');
    const char *name = slash ? slash + 1 : path;
    struct stat sb;

    proto_keyfile_encode(b, kf);
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, strlen(dir) + 1, ".");
    if (!replace && stat(path, &sb) == 0)
        return lb_fail(EEXIST, "%s already exists", path);
    if (lb_mkdir_p(dir, 0700) < 0)
        return -1;
    return lb_write_file_atomic(dir, name, b, sizeof b, 0600);
}

/* KEY_GET: the repository's encryption, key id and (repokey) key file. */
static int
key_get(struct agent_repo *r, uint8_t *encryption, uint8_t *key_id,
        struct proto_keyfile *kf, bool *have)
{
    const uint8_t *p;
    uint32_t len;
    struct proto_key_info k;

    *encryption = PROTO_ENC_NONE;
    *have = false;
    proto_enc_empty(&r->out, PROTO_T_KEY_GET);
    if (agent_repo_call(r, PROTO_T_KEY_DATA, &p, &len, NULL) < 0)
        return -1;
    if (proto_dec_key_data(p, len, &k) != PROTO_OK ||
        (k.key && proto_keyfile_decode(k.key, k.key_len, kf) != PROTO_OK))
        return lb_fail(EPROTO, "backupd sent a malformed KEY_DATA");
    *encryption = k.encryption;
    *have = k.key != NULL;
    memcpy(key_id, k.key_id, PROTO_KEY_ID_BYTES);
    if (k.key && memcmp(kf->key_id, key_id, PROTO_KEY_ID_BYTES) != 0)
        return lb_fail(EPROTO,
                       "repository %s: its key file holds another "
                       "key than the repository's",
                       r->url);
    return 0;
}

/*
 * The repository's key file as this client finds it: from the repository
 * (repokey) or the client's file (keyfile; *where, caller frees, its
 * path). Errors say which kind of repository it is and what is missing.
 */
static int
find_key(struct agent_repo *r, uint8_t *encryption, struct proto_keyfile *kf,
         char **where)
{
    uint8_t id[PROTO_KEY_ID_BYTES];
    char want[2 * PROTO_KEY_ID_BYTES + 1], got[2 * PROTO_KEY_ID_BYTES + 1];
    CLEANUP_FREE char *path = NULL;
    bool have;

    *where = NULL;
    if (key_get(r, encryption, id, kf, &have) < 0)
        return -1;
    if (*encryption == PROTO_ENC_REPOKEY) {
        if (agent_opts.key_file)
            return lb_fail(EINVAL,
                           "repository %s keeps its key in the repository "
                           "(repokey): --key-file is for keyfile "
                           "repositories",
                           r->url);
        if (!have) {
            lb_fail(ENOENT,
                    "repository %s has lost its key file (keys/repokey is "
                    "missing or damaged)",
                    r->url);
            lb_error_hint("put an exported copy back: livebackup key import "
                          "--repo %s --from FILE",
                          r->url);
            return -1;
        }
        return 0;
    }
    path = key_path(id);
    if (read_keyfile(path, kf) < 0) {
        if (lb_error_errno() == ENOENT) {
            lb_fail(ENOENT,
                    "repository %s is encrypted with a key kept on the "
                    "client (keyfile), and there is no key file %s",
                    r->url, path);
            lb_error_hint("copy the repository's key file there, name it "
                          "with --key-file, or livebackup key import it");
        }
        return -1;
    }
    lb_hex_encode(want, id, sizeof id);
    lb_hex_encode(got, kf->key_id, sizeof kf->key_id);
    if (memcmp(kf->key_id, id, sizeof id) != 0)
        return lb_fail(EACCES,
                       "wrong key: %s holds key %s, repository %s uses key "
                       "%s",
                       path, got, r->url, want);
    *where = path;
    path = NULL;
    return 0;
}

/* The wrong-passphrase error for repository url (slot set by the open). */
static void
wrong_passphrase(const char *url)
{
    if (lb_error_errno() != EBADMSG)
        return;
    lb_fail(EACCES, "wrong passphrase for the key of repository %s", url);
    lb_error_hint("check the passphrase source (--passphrase-file, "
                  "LIVEBACKUP_PASSPHRASE_FILE, LIVEBACKUP_PASSPHRASE); "
                  "nothing was written");
}

/* The passphrase of repository r's key (*pass: caller frees, pass_free). */
static int
repo_passphrase(const struct agent_repo *r, char **pass, size_t *plen)
{
    if (passphrase(false, pass, plen) < 0) {
        lb_error_prefix("repository %s is encrypted: its passphrase is "
                        "needed",
                        r->url);
        return -1;
    }
    return 0;
}

/* Open kf with the passphrase. */
static int
unwrap(const struct agent_repo *r, const struct proto_keyfile *kf,
       uint8_t master[PROTO_KEY_LEN])
{
    char *pass = NULL;
    size_t plen = 0;
    int rc;

    if (repo_passphrase(r, &pass, &plen) < 0)
        return -1;
    rc = proto_keyfile_unwrap(kf, pass, plen, master);
    pass_free(pass, plen);
    if (rc < 0)
        wrong_passphrase(r->url);
    return rc;
}

void
agent_keys_free(struct agent_keys *k)
{
    if (!k)
        return;
    proto_wipe(k, sizeof *k);
    free(k);
}

/* The keys of master, with fresh sealing sessions. */
static struct agent_keys *
keys_new(uint8_t encryption, const uint8_t master[PROTO_KEY_LEN])
{
    struct agent_keys *k = lb_xcalloc(1, sizeof *k);

    k->encryption = encryption;
    if (proto_keys_derive(master, &k->k) < 0 ||
        proto_sealer_init(&k->data, k->k.data) < 0 ||
        proto_sealer_init(&k->meta, k->k.meta) < 0) {
        agent_keys_free(k);
        return NULL;
    }
    return k;
}

bool
agent_repo_encrypted(const struct agent_repo *r)
{
    return r->encrypted;
}

/*
 * Unlocking on a thread. The KDF (Argon2id, about 0.04 s of two CPUs;
 * scrypt in key files of earlier versions, 0.2 s of one) is
 * the one step that needs neither the connection nor anything else of
 * the command: agent_repo_unlock_start finds the key file and reads the
 * passphrase (their errors come at once), then runs the KDF on its own
 * thread while the command goes on with what does not need the key;
 * agent_repo_unlock joins it where the key is first needed. The thread
 * touches nothing but its struct unlock.
 */
struct agent_unlock {
    pthread_t th;
    char *url; /* for the messages */
    struct proto_keyfile kf;
    char *pass;
    size_t plen;
    uint8_t enc;
    char *where;               /* keyfile: the key file's path */
    struct agent_keys *keys;   /* the result, or NULL */
    struct lb_error_saved err; /* why not */
    uint64_t t_start, t_done;  /* lb_now_ns: for the debug log */
};

static void *
unlock_run(void *arg)
{
    struct agent_unlock *u = arg;
    uint8_t master[PROTO_KEY_LEN];

    lb_fault_point("agent:unlock-kdf");
    if (proto_keyfile_unwrap(&u->kf, u->pass, u->plen, master) < 0) {
        wrong_passphrase(u->url);
    } else {
        u->keys = keys_new(u->enc, master);
        proto_wipe(master, sizeof master);
    }
    pass_free(u->pass, u->plen);
    u->pass = NULL;
    if (!u->keys)
        lb_error_save(&u->err);
    u->t_done = lb_now_ns();
    return NULL;
}

static void
unlock_free(struct agent_unlock *u)
{
    pass_free(u->pass, u->plen);
    agent_keys_free(u->keys);
    free(u->where);
    free(u->url);
    proto_wipe(u, sizeof *u);
    free(u);
}

int
agent_repo_unlock_start(struct agent_repo *r)
{
    struct agent_unlock *u;
    int e;

    if (r->keys || r->unlock)
        return 0;
    if (!r->encrypted) {
        if (agent_opts.key_file)
            return lb_fail(EINVAL,
                           "repository %s is not encrypted: --key-file is "
                           "for encrypted (keyfile) repositories",
                           r->url);
        return 0;
    }
    u = lb_xcalloc(1, sizeof *u);
    u->url = lb_xstrdup(r->url);
    if (find_key(r, &u->enc, &u->kf, &u->where) < 0 ||
        repo_passphrase(r, &u->pass, &u->plen) < 0) {
        unlock_free(u);
        return -1;
    }
    u->t_start = lb_now_ns();
    e = pthread_create(&u->th, NULL, unlock_run, u);
    if (e != 0) {
        unlock_free(u);
        return lb_error(e, "cannot start a thread");
    }
    r->unlock = u;
    return 0;
}

/* Wait for the KDF thread; its keys (or its error) become r's. */
static int
unlock_join(struct agent_repo *r)
{
    struct agent_unlock *u = r->unlock;
    uint64_t t = lb_now_ns();
    int rc = 0;

    r->unlock = NULL;
    pthread_join(u->th, NULL);
    if (u->keys) {
        char kdf[64];
        r->keys = u->keys;
        u->keys = NULL;
        proto_keyfile_kdf_name(&u->kf, kdf, sizeof kdf);
        lb_debug("repository %s unlocked (%s): the KDF (%s) took %llu ms, "
                 "%llu of them waited for",
                 r->url, u->enc == PROTO_ENC_REPOKEY ? "repokey" : u->where,
                 kdf, (unsigned long long)(u->t_done - u->t_start) / 1000000u,
                 (unsigned long long)(u->t_done > t ? u->t_done - t : 0) /
                     1000000u);
    } else {
        rc = lb_error_restore(&u->err);
    }
    unlock_free(u);
    return rc;
}

void
agent_repo_unlock_drop(struct agent_repo *r)
{
    if (r->unlock) {
        struct lb_error_saved keep;
        lb_error_save(&keep);
        (void)unlock_join(r);
        lb_error_restore(&keep);
    }
}

int
agent_repo_unlock(struct agent_repo *r)
{
    if (r->keys)
        return 0;
    if (agent_repo_unlock_start(r) < 0)
        return -1;
    return r->unlock ? unlock_join(r) : 0;
}

/* ---- init, export, import, change-passphrase ---------------------------- */

int
agent_repo_init_keyed(struct agent_repo *r, uint32_t window_size,
                      uint8_t encryption, char **key_out)
{
    struct proto_keyfile kf;
    struct proto_key_info ki = {.encryption = encryption};
    uint8_t master[PROTO_KEY_LEN], kb[PROTO_KEYFILE_LEN];
    char *pass = NULL, *path = NULL;
    size_t plen = 0;
    const uint8_t *p;
    uint32_t len;
    int rc;

    *key_out = NULL;
    if (encryption == PROTO_ENC_NONE)
        return agent_repo_init(r, window_size);
    if (!(r->features & PROTO_FEATURE_ENCRYPTION)) {
        lb_fail(EINVAL,
                "backupd serving %s does not know encrypted "
                "repositories (it is older than this livebackup)",
                r->url);
        lb_error_hint("upgrade livebackup on the backup server, or init "
                      "with --encryption none");
        return -1;
    }
    if (passphrase(false, &pass, &plen) < 0) {
        lb_error_prefix("an encrypted repository needs a passphrase");
        return -1;
    }
    rc = lb_random(master, sizeof master) < 0 ||
                 proto_keyfile_wrap(master, pass, plen, 0, 0, &kf) < 0
             ? -1
             : 0;
    pass_free(pass, plen);
    proto_wipe(master, sizeof master);
    if (rc < 0)
        return -1;
    memcpy(ki.key_id, kf.key_id, sizeof ki.key_id);
    if (encryption == PROTO_ENC_KEYFILE) {
        /* The key first: a repository must never exist without it. */
        path = key_path(kf.key_id);
        if (write_keyfile(path, &kf, false) < 0) {
            free(path);
            return -1;
        }
    } else {
        proto_keyfile_encode(kb, &kf);
        ki.key = kb;
        ki.key_len = sizeof kb;
    }
    proto_enc_init_keyed(&r->out, window_size, &ki);
    if (agent_repo_call(r, PROTO_T_OK, &p, &len, NULL) < 0) {
        if (path)
            unlink(path); /* it names a key no repository uses */
        free(path);
        return -1;
    }
    *key_out = path;
    return 0;
}

int
agent_repo_init_from_key(struct agent_repo *r, uint32_t window_size,
                         uint8_t encryption, const char *from, char **key_out)
{
    struct proto_keyfile kf, mine;
    struct proto_key_info ki = {.encryption = encryption};
    uint8_t kb[PROTO_KEYFILE_LEN];
    char *path = NULL;
    bool wrote = false;
    const uint8_t *p;
    uint32_t len;
    struct stat sb;

    *key_out = NULL;
    if (!(r->features & PROTO_FEATURE_ENCRYPTION))
        return lb_fail(EINVAL,
                       "backupd serving %s does not know encrypted "
                       "repositories (it is older than this livebackup)",
                       r->url);
    if (read_keyfile(from, &kf) < 0)
        return -1;
    memcpy(ki.key_id, kf.key_id, sizeof ki.key_id);
    if (encryption == PROTO_ENC_KEYFILE) {
        /* This client's key file of that key: the one given, unless it
         * has one already (of the same key). */
        path = key_path(kf.key_id);
        if (stat(path, &sb) < 0) {
            if (write_keyfile(path, &kf, false) < 0)
                goto fail;
            wrote = true;
        } else if (read_keyfile(path, &mine) < 0 ||
                   memcmp(mine.key_id, kf.key_id, sizeof kf.key_id) != 0) {
            lb_fail(EEXIST, "%s holds another key than %s", path, from);
            goto fail;
        }
    } else {
        proto_keyfile_encode(kb, &kf);
        ki.key = kb;
        ki.key_len = sizeof kb;
    }
    proto_enc_init_keyed(&r->out, window_size, &ki);
    if (agent_repo_call(r, PROTO_T_OK, &p, &len, NULL) < 0)
        goto fail;
    *key_out = path;
    return 0;
fail:
    if (wrote)
        unlink(path); /* it names a key no repository uses */
    free(path);
    return -1;
}

int
agent_key_export(struct agent_repo *r, const char *path)
{
    struct proto_keyfile kf;
    uint8_t enc = 0;
    CLEANUP_FREE char *where = NULL;

    if (!r->encrypted)
        return lb_fail(EINVAL,
                       "repository %s is not encrypted: it has no "
                       "key",
                       r->url);
    if (find_key(r, &enc, &kf, &where) < 0)
        return -1;
    return write_keyfile(path, &kf, false);
}

int
agent_key_import(struct agent_repo *r, const char *path)
{
    struct proto_keyfile kf, cur;
    uint8_t enc = 0, id[PROTO_KEY_ID_BYTES], master[PROTO_KEY_LEN];
    char want[2 * PROTO_KEY_ID_BYTES + 1], got[2 * PROTO_KEY_ID_BYTES + 1];
    CLEANUP_FREE char *dst = NULL;
    const uint8_t *p;
    uint32_t len;
    bool have;

    if (!r->encrypted)
        return lb_fail(EINVAL,
                       "repository %s is not encrypted: it takes no "
                       "key",
                       r->url);
    if (read_keyfile(path, &kf) < 0 || key_get(r, &enc, id, &cur, &have) < 0)
        return -1;
    lb_hex_encode(want, id, sizeof id);
    lb_hex_encode(got, kf.key_id, sizeof kf.key_id);
    if (memcmp(kf.key_id, id, sizeof id) != 0)
        return lb_fail(EACCES,
                       "wrong key: %s holds key %s, repository %s uses key "
                       "%s",
                       path, got, r->url, want);
    /* Only a key file the passphrase opens replaces what is there. */
    if (unwrap(r, &kf, master) < 0)
        return -1;
    proto_wipe(master, sizeof master);
    if (enc == PROTO_ENC_KEYFILE) {
        dst = key_path(id);
        return write_keyfile(dst, &kf, true);
    }
    {
        size_t f = proto_frame_begin(&r->out, PROTO_T_KEY_SET);
        uint8_t b[PROTO_KEYFILE_LEN];
        proto_keyfile_encode(b, &kf);
        lb_buf_append(&r->out, b, sizeof b);
        proto_frame_end(&r->out, f);
    }
    return agent_repo_call(r, PROTO_T_OK, &p, &len, NULL);
}

int
agent_key_change_passphrase(struct agent_repo *r, char **where)
{
    struct proto_keyfile kf;
    uint8_t enc = 0, master[PROTO_KEY_LEN];
    char *pass = NULL, *path = NULL;
    size_t plen = 0;
    const uint8_t *p;
    uint32_t len;
    int rc;

    *where = NULL;
    if (!r->encrypted)
        return lb_fail(EINVAL,
                       "repository %s is not encrypted: it has no "
                       "passphrase",
                       r->url);
    if (find_key(r, &enc, &kf, &path) < 0)
        return -1;
    if (unwrap(r, &kf, master) < 0 || passphrase(true, &pass, &plen) < 0) {
        proto_wipe(master, sizeof master);
        free(path);
        return -1;
    }
    rc = proto_keyfile_wrap(master, pass, plen, 0, 0, &kf);
    pass_free(pass, plen);
    proto_wipe(master, sizeof master);
    if (rc == 0 && enc == PROTO_ENC_KEYFILE) {
        rc = write_keyfile(path, &kf, true);
    } else if (rc == 0) {
        size_t f = proto_frame_begin(&r->out, PROTO_T_KEY_SET);
        uint8_t b[PROTO_KEYFILE_LEN];
        proto_keyfile_encode(b, &kf);
        lb_buf_append(&r->out, b, sizeof b);
        proto_frame_end(&r->out, f);
        rc = agent_repo_call(r, PROTO_T_OK, &p, &len, NULL);
        free(path);
        path = lb_xasprintf("%s (keys/repokey)", r->url);
    }
    if (rc < 0) {
        free(path);
        return -1;
    }
    *where = path;
    return 0;
}
