/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Every command of livebackup and every option, with what it does: the one
 * source of getopt's tables (cli_getopt), `COMMAND --help`, `help`, the man
 * page's COMMANDS section (`livebackup __man`, built into livebackup(1) by
 * scdoc) and the bash completion (`livebackup __complete`). An option a
 * command parses is in its entry here, or getopt refuses it.
 */
#include "agent/cli/cli.h"

#include <string.h>

/* Options every command that talks to a repository takes (vals 1000+ are
 * agent_common_opt's). */
const struct lb_help_opt cli_common_opts[] = {
    {"json", 0, 1000, NULL,
     "Print one JSON object per line on stdout (events, errors, a final "
     "summary) instead of text; implies --no-progress."},
    {"rsh", 0, 1001, "COMMAND",
     "The ssh command line for ssh:// repositories, like rsync's -e, e.g. "
     "\"ssh -i KEY -o ...\" (or LIVEBACKUP_RSH, or rsh in livebackup.conf)."},
    {"remote-backupd", 0, 1002, "PATH",
     "backupd on the remote host when it is not on its PATH (or "
     "LIVEBACKUP_REMOTE_BACKUPD, or remote-backupd in livebackup.conf)."},
    {"bwlimit", 0, 1003, "RATE",
     "Limit the bytes per second sent to or read from the repository, "
     "K/M/G = 2^10/2^20/2^30, e.g. 20M; with -j N each backup gets RATE/N "
     "(or LIVEBACKUP_BWLIMIT, or bwlimit in livebackup.conf)."},
    {"compress-level", 0, 1004, "N",
     "zstd level, -5 to 19 (default 1; or LIVEBACKUP_COMPRESS_LEVEL, or "
     "compress-level in livebackup.conf)."},
    {"lock-wait", 0, 1005, "SECONDS",
     "Wait up to SECONDS (at most 86400) for a repository another command "
     "holds, instead of failing at once."},
    {"progress", 0, 1006, NULL, "Show a progress line on stderr."},
    {"no-progress", 0, 1007, NULL,
     "No progress line (the default when stderr is not a terminal)."},
    {"verbose", 'v', 'v', NULL, "Also print debug messages."},
    {"quiet", 'q', 'q', NULL,
     "Only errors and warnings, and no progress line."},
    {"threads", 0, 1008, "N", "Worker threads (default: one per CPU)."},
    {"passphrase-file", 0, 1009, "FILE",
     "The passphrase of an encrypted repository, in FILE (one trailing "
     "newline is not part of it); else LIVEBACKUP_PASSPHRASE_FILE, "
     "LIVEBACKUP_PASSPHRASE or the systemd credential "
     "livebackup-passphrase."},
    {"key-file", 0, 1010, "FILE",
     "The key of a keyfile repository (default: "
     "~/.config/livebackup/keys/KEYID.key, or LIVEBACKUP_KEY_FILE)."},
    {"new-passphrase-file", 0, 1011, "FILE",
     "key change-passphrase: the new passphrase (else "
     "LIVEBACKUP_NEW_PASSPHRASE_FILE or LIVEBACKUP_NEW_PASSPHRASE)."},
    {0},
};

#define OPT_REPO                                                               \
    {                                                                          \
        "repo", 0, 'r', "REPO",                                                \
            "The repository: a path, "                                         \
            "ssh://[user@]host[:port]/path[?socket=PATH], or "                 \
            "[ssh://...]rados:POOL[/NS]?conf=PATH&id=NAME[&socket=PATH] "      \
            "(default: LIVEBACKUP_REPO, else repo in livebackup.conf)."        \
    }
#define OPT_CONNECT                                                            \
    {                                                                          \
        "connect", 'c', 'c', "URI",                                            \
            "The libvirt connection (default qemu:///system, or "              \
            "LIVEBACKUP_DEFAULT_URI)."                                         \
    }
#define OPT_STATE_DIR(v)                                                       \
    {                                                                          \
        "state-dir", 0, v, "DIR",                                              \
            "Where the tracking state and journals live (default "             \
            "/var/lib/livebackup, or LIVEBACKUP_STATE_DIR)."                   \
    }
#define OPT_BACKUP                                                             \
    {                                                                          \
        "backup", 0, 'b', "ID|latest|TIME",                                    \
            "Which backup: an id, latest, or a time YYYY-MM-DD[THH:MM[:SS]] "  \
            "(UTC: "                                                           \
            "the latest backup at or before it); default latest."              \
    }
#define OPT_CACHE_SIZE(dflt)                                                   \
    {                                                                          \
        "cache-size", 0, 'C', "SIZE",                                          \
            "Memory for decoded windows (default " dflt ")."                   \
    }

static const struct lb_help_opt backup_opts[] = {
    OPT_REPO,
    {"all", 0, 'a', NULL,
     "Back up every domain of the connection that has "
     "disks."},
    {"jobs", 'j', 'j', "N",
     "Back up N domains at once (1 to 64; default 1); a failure of one never "
     "stops the others."},
    OPT_CONNECT,
    {"full", 0, 'F', NULL, "Read every disk whole (a full backup)."},
    {"full-every", 0, 'E', "N",
     "Read a disk whole once it has had N-1 incrementals in a row."},
    {"background-commit", 0, 'B', NULL,
     "Start the block commit of the backed-up layer and return; the next "
     "backup or recover finishes it."},
    {"disks", 0, 'd', "vda,vdb", "Back up only these disks (by target name)."},
    {"consistency", 0, 'C', "quiesce|crash",
     "quiesce (default) freezes the guest's filesystems through "
     "qemu-guest-agent and fails without it; crash backs up without "
     "freezing."},
    {"freeze-timeout", 0, 't', "SECONDS",
     "How long the guest agent may take to freeze (1 to 3600; default 10)."},
    {"overlay-dir", 0, 'o', "DIR",
     "Create the tracking overlays in DIR instead of beside each image "
     "(default: overlay-dir in livebackup.conf, or LIVEBACKUP_OVERLAY_DIR); "
     "needed for a disk on a block device under /dev."},
    OPT_STATE_DIR('s'),
    {"on-failure", 0, 'O', "CMD",
     "Run CMD (through sh) when a domain failed or warned: the run's JSON on "
     "its stdin, LIVEBACKUP_STATUS and LIVEBACKUP_EXIT_STATUS in its "
     "environment (default: on-failure in livebackup.conf, or "
     "LIVEBACKUP_ON_FAILURE; '' turns it off)."},
    {"metrics-file", 0, 'M', "PATH",
     "Write a Prometheus textfile of the run per domain to PATH, replaced "
     "atomically (default: metrics-file in livebackup.conf, or "
     "LIVEBACKUP_METRICS_FILE; '' turns it off)."},
    {0},
};

static const struct lb_help_opt dom_opts[] = {
    OPT_CONNECT,
    OPT_STATE_DIR('s'),
    {0},
};

static const struct lb_help_opt restore_opts[] = {
    OPT_REPO,
    OPT_BACKUP,
    {"to", 0, 't', "DIR", "Write the disks and the XML into DIR."},
    {"name", 0, 'n', "NEWNAME",
     "The restored domain's name (default "
     "DOMAIN-restore-YYYYMMDD-HHMMSS)."},
    {"format", 0, 'f', "qcow2|raw", "The disks' format (default qcow2)."},
    {"disks", 0, 'd', "vda,...", "Restore only these disks."},
    {"define", 0, 'D', NULL, "Define the restored domain in libvirt."},
    {"start", 0, 'S', NULL, "Define and start the restored domain."},
    {"new-mac", 0, 'M', NULL, "Give its interfaces new random MAC addresses."},
    {"keep-host-access", 0, 'K', NULL,
     "Keep what would run programs or open files on this host (QEMU "
     "command lines, host devices, kernels...): only for a trusted backup."},
    {"instant", 0, 'i', NULL,
     "Define and start the domain at once on local overlays backed by an NBD "
     "export of the backup; in the background each disk is copied into "
     "DIR/NAME-DISK.raw and the domain moved onto DIR/NAME-DISK.qcow2 over "
     "it."},
    {"in-place", 0, 'I', NULL,
     "Write the backup over the shut-off domain's own images, files or "
     "raw block devices (needs --force)."},
    {"force", 0, 'F', NULL, "Replace files that exist."},
    OPT_CONNECT,
    OPT_STATE_DIR('s'),
    {0},
};

static const struct lb_help_opt show_opts[] = {
    OPT_REPO,
    {"backup", 0, 'b', "ID|latest|TIME",
     "The backup (latest and TIME need --name)."},
    {"name", 0, 'n', "NAME", "The set (domain or image name) of --backup."},
    {0},
};

static const struct lb_help_opt map_opts[] = {
    OPT_REPO,
    {"name", 0, 'n', "NAME", "The set (domain or image name)."},
    OPT_BACKUP,
    {"disk", 0, 'd', "DISK", "The disk to serve (its target name, e.g. vda)."},
    {"socket", 0, 's', "PATH", "Serve on this unix socket."},
    {"port", 0, 'p', "N", "Serve on this TCP port."},
    {"bind", 0, 'B', "ADDR",
     "The address of --port (default 127.0.0.1: NBD has no "
     "authentication)."},
    {"daemon", 0, 'D', NULL, "Run in the background once serving."},
    {"pid-file", 0, 'P', "FILE", "Write the server's pid to FILE."},
    OPT_CACHE_SIZE("64M"),
    {0},
};

static const struct lb_help_opt mount_opts[] = {
    OPT_REPO,
    {"name", 0, 'n', "NAME", "Show only this set."},
    {"backup", 0, 'b', "ID", "Show only this backup."},
    {"fs", 0, 'F', NULL,
     "Also mount the filesystems inside each disk, read-only: ext2/3/4 "
     "(fuse2fs) and XFS (guestmount, which boots a libguestfs appliance: "
     "tens of seconds each)."},
    {"fs-appliance", 0, 'A', NULL,
     "Like --fs, with every filesystem in guestmount's appliance, ext2/3/4 "
     "too: the guest's filesystem is read inside a small VM, never parsed "
     "on this host (fuse2fs runs as root). For backups of guests you do "
     "not trust; a boot per filesystem."},
    {"foreground", 'f', 'f', NULL, "Stay in the foreground."},
    OPT_CACHE_SIZE("32M"),
    {0},
};

static const struct lb_help_opt init_opts[] = {
    OPT_REPO,
    {"window-size", 0, 'w', "SIZE",
     "The repository's window size, a power of two from 64K to 8M (default "
     "4M); fixed for its life."},
    {"encryption", 0, 'e', "repokey|keyfile|none",
     "repokey (default, or LIVEBACKUP_ENCRYPTION): the key in the "
     "repository, wrapped by the passphrase; keyfile: the wrapped key on "
     "this host; none: not encrypted."},
    {"key-from", 0, 'k', "KEYFILE",
     "Make an encrypted repository of the key in KEYFILE (livebackup key "
     "export of another repository): copies between the two move chunks as "
     "they are."},
    {0},
};

static const struct lb_help_opt copy_opts[] = {
    {"from", 0, 'f', "SRC", "The repository to copy from (read only)."},
    {"to", 0, 't', "DST", "The repository to copy into."},
    {"name", 0, 'n', "GLOB",
     "Copy the sets whose names match GLOB (fnmatch; repeatable; default "
     "every set)."},
    {"backup", 0, 'b', "ID", "Copy this backup (repeatable)."},
    {"last", 0, 'l', "K", "Of each set, only the last K backups selected."},
    {"since", 0, 's', "TIME",
     "Only backups started at or after TIME (YYYY-MM-DD[THH:MM[:SS]], "
     "UTC)."},
    {"dry-run", 0, 'd', NULL, "Say what would be copied; copy nothing."},
    {0},
};

static const struct lb_help_opt key_opts[] = {
    OPT_REPO,
    {"to", 0, 't', "FILE", "export: where to write the wrapped key."},
    {"from", 0, 'f', "FILE", "import: the key file to install."},
    {0},
};

static const struct lb_help_opt backup_image_opts[] = {
    OPT_REPO,
    {"name", 0, 'n', "NAME", "The set's name (e.g. host1-data)."},
    {"disk", 0, 'd', "DISK=PATH",
     "A disk image (raw or qcow2, with its backing chain) and its name in "
     "the backup; repeatable."},
    {"since", 0, 's', "[DISK=]LAYER",
     "Send only the clusters allocated in the layers above LAYER of the "
     "chain (an incremental); repeatable."},
    {"parent", 0, 'p', "ID|auto",
     "The backup an incremental builds on (default auto: the last one this "
     "host committed for NAME)."},
    {"force-share", 0, 'U', NULL, "Read an image another process has open."},
    OPT_STATE_DIR('S'),
    {0},
};

static const struct lb_help_opt list_opts[] = {
    OPT_REPO,
    {"name", 0, 'n', "NAME", "Only the backups of this set."},
    {"latest", 0, 'L', NULL,
     "One row per set: its latest backup, age and count."},
    {0},
};

static const struct lb_help_opt verify_opts[] = {
    OPT_REPO,
    {"key", 0, 'K', NULL,
     "Also authenticate every chunk and manifest with the key (reads the "
     "whole repository through the session)."},
    {0},
};

static const struct lb_help_opt restore_image_opts[] = {
    OPT_REPO,
    {"name", 0, 'n', "NAME", "The set."},
    OPT_BACKUP,
    {"disk", 0, 'd', "DISK", "The disk to restore."},
    {"to", 0, 't', "FILE",
     "Where to write it: a file, or a block device (raw, with --force)."},
    {"format", 0, 'f', "raw|qcow2", "The output format (default raw)."},
    {"force", 0, 'F', NULL,
     "Replace FILE if it exists; write over the block device FILE is."},
    {0},
};

static const struct lb_help_opt delete_opts[] = {
    OPT_REPO,
    {"backup", 0, 'b', "ID", "The backup to delete."},
    {0},
};

#define OPT_KEEP(what, v, text)                                                \
    {                                                                          \
        "keep-" what, 0, v, "N", text                                          \
    }
static const struct lb_help_opt prune_opts[] = {
    OPT_REPO,
    {"name", 0, 'n', "NAME", "Prune only this set."},
    OPT_KEEP("last", 2000, "Keep the N most recent backups."),
    OPT_KEEP("hourly", 2001,
             "Keep the latest backup of each of the N most recent hours "
             "that have one."),
    OPT_KEEP("daily", 2002, "Likewise for days (UTC)."),
    OPT_KEEP("weekly", 2003, "Likewise for ISO weeks (Monday to Sunday)."),
    OPT_KEEP("monthly", 2004, "Likewise for months."),
    OPT_KEEP("yearly", 2005, "Likewise for years."),
    {"dry-run", 0, 'd', NULL, "Say what would be removed; change nothing."},
    {0},
};

static const struct lb_help_opt gc_opts[] = {
    OPT_REPO,
    {"dry-run", 0, 'd', NULL, "Count what would be reclaimed."},
    {0},
};

static const struct lb_help_opt config_opts[] = {
    OPT_REPO,
    {0},
};

const struct lb_help_cmd cli_commands[] = {
    {"backup", "back up libvirt domains (live, incremental)",
     "DOMAIN...|--all [options]",
     "Back up running domains live and shut-off ones from their images at "
     "rest. The first backup of a disk is full; later ones send only the 4 "
     "KiB clusters the guest changed, tracked by a qcow2 overlay. A disk "
     "whose chain was edited, resized or added falls back to a full backup "
     "of that disk, with a message saying why.",
     backup_opts, true},
    {"status", "change tracking state of domains", "[DOMAIN...] [options]",
     "Per disk: tracking, last backup, changes pending, overlay, and any "
     "instant restore or block commit still running.",
     dom_opts, true},
    {"recover", "finish or undo an interrupted run", "DOMAIN... [options]",
     "Thaw, then finish or undo whatever a crash interrupted: commit "
     "acknowledged overlays, drop unacknowledged ones, resume an instant "
     "restore. Every backup does this first.",
     dom_opts, true},
    {"untrack", "stop tracking: return a domain to its images",
     "DOMAIN... [options]",
     "Commit the tracking overlay and return the domain to its own images; "
     "its next backup is full.",
     dom_opts, true},
    {"restore", "restore a VM (disks and definition) from a backup",
     "DOMAIN [--repo REPO] [--backup ID|latest|TIME] --to DIR [options]\n"
     "DOMAIN [--repo REPO] [--backup ...] --instant --to DIR [options]\n"
     "DOMAIN [--repo REPO] [--backup ...] --in-place --force [-c URI]",
     "Rebuild a domain's disks from one backup and rewrite its saved XML "
     "for a second domain beside the first (new name, new UUID, the "
     "restored disks). Checks before writing that every chunk is there, "
     "that DIR has room and that no file exists (--force replaces them).",
     restore_opts, true},
    {"show", "what a backup holds, and its saved domain XML",
     "--backup ID [--name NAME] [options]",
     "Print a backup's metadata, each disk (full or incremental, and why) "
     "and a VM backup's saved domain XML.",
     show_opts, true},
    {"map", "serve a disk of a backup over NBD (read on demand)",
     "--name NAME [--backup ID] --disk DISK (--socket PATH | --port N) "
     "[options]",
     "Serve one disk of one backup as a read-only NBD export (nbdkit and "
     "livebackup's plugin), until SIGTERM. Reads fetch and check only the "
     "windows they touch.",
     map_opts, true},
    {"mount", "backups as read-only files (FUSE), --fs their files",
     "[--name NAME] [--backup ID] [--fs] [options] DIR",
     "Show DIR/NAME/BACKUP/DISK, each disk of each backup a read-only file; "
     "with --fs also the files of their ext2/3/4 and XFS filesystems.",
     mount_opts, true},
    {"umount", "unmount what livebackup mount mounted", "DIR",
     "Unmount the livebackup mounts at or below DIR and what is mounted "
     "inside them, deepest first (never another program's FUSE mount), and "
     "wait for the processes that served them.",
     NULL, false},
    {"init", "create a repository (encrypted unless --encryption none)",
     "[--repo REPO] [--window-size SIZE] [--encryption MODE] "
     "[--key-from KEYFILE] [options]",
     "Create a repository. Keep the passphrase and a copy of the key "
     "(livebackup key export): without both every backup is lost.",
     init_opts, true},
    {"copy", "copy backups to another repository (off-site, or pulled)",
     "--from SRC --to DST [--name GLOB...] [--backup ID...] [--last K] "
     "[--since TIME] [--dry-run] [options]",
     "Copy every selected backup of SRC that DST lacks, with its id, time "
     "and metadata; only the chunks DST lacks travel, and a backup appears "
     "in DST once all its chunks are there. Both repositories unencrypted, "
     "or encrypted with one key (no passphrase needed). A rerun after an "
     "interruption goes on where it stopped.",
     copy_opts, true},
    {"key", "a repository's key: export, import, change-passphrase",
     "export [--repo REPO] --to FILE\n"
     "import [--repo REPO] --from FILE\n"
     "change-passphrase [--repo REPO] [--new-passphrase-file FILE]",
     "Export the wrapped key (keep it apart from the repository), import it "
     "back, or wrap it with a new passphrase.",
     key_opts, true},
    {"backup-image", "back up disk images (full or --since)",
     "--name NAME --disk DISK=PATH... [--since [DISK=]LAYER] [options]",
     "Back up raw or qcow2 images (with their backing chains), read through "
     "qemu-nbd; --since makes it an incremental.",
     backup_image_opts, true},
    {"list", "list backups", "[--name NAME] [--latest] [options]",
     "One row per backup: id, time, set, kind, size, bytes sent and "
     "stored.",
     list_opts, true},
    {"verify", "re-read and check every chunk and manifest",
     "[--key] [options]",
     "Re-read and re-hash everything and name each damaged backup; exits 1 "
     "if it found damage.",
     verify_opts, true},
    {"restore-image", "restore one disk of a backup",
     "--name NAME [--backup ID|latest|TIME] --disk DISK --to FILE "
     "[options]",
     "Write one disk of a backup to FILE, sparse, through a temporary name "
     "renamed at the end; or onto the block device FILE is (an LV), in "
     "place, every byte of the disk, with --force.",
     restore_image_opts, true},
    {"delete", "delete a backup", "--backup ID [options]",
     "Delete one backup; gc reclaims its data.", delete_opts, true},
    {"prune", "remove backups by keep rules (last, hourly, daily, ...)",
     "[--name NAME] --keep-RULE N... [--dry-run] [options]",
     "Remove the backups of each set that no rule keeps (restic's and "
     "borg's semantics); the latest backup of each set is always kept. "
     "Without --keep-* options the keep-* settings of the configuration "
     "apply (livebackup config); any --keep-* option replaces them all.",
     prune_opts, true},
    {"gc", "reclaim the space of chunks no backup uses",
     "[--dry-run] [options]",
     "Delete the chunks no backup references; runs beside backups.", gc_opts,
     true},
    {"config", "show the effective settings and where each comes from",
     "[--json] [options]",
     "Print each setting of livebackup.conf, its value and its source: the "
     "command line, the environment, the user's file or the system's file.",
     config_opts, true},
    {"help", "list the commands, or explain one", "[COMMAND]",
     "Without COMMAND, list the commands; with one, print its --help.", NULL,
     false},
    {0},
};

const struct lb_help_cmd *
cli_command(const char *name)
{
    return lb_help_find(cli_commands, name);
}

void
cli_getopt(const char *name, struct cli_getopt *g)
{
    g->cmd = cli_command(name);
    if (!g->cmd)
        abort(); /* every command parsing options has an entry */
    lb_help_getopt(g->cmd, cli_common_opts, g->opts, g->shortopts);
}

int
cli_help(const char *name)
{
    const struct lb_help_cmd *c = cli_command(name);

    if (!c)
        return cli_usage(NULL, "unknown command '%s'", name);
    lb_help_print(stdout, "livebackup", c, cli_common_opts,
                  "Options every command takes");
    return 0;
}

int
cli_usage(const char *cmd, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        fprintf(stderr, "livebackup%s%s: ", cmd ? " " : "", cmd ? cmd : "");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
    }
    if (cmd)
        fprintf(stderr, "Try 'livebackup %s --help' for its options.\n", cmd);
    else
        fprintf(stderr, "Try 'livebackup help' for the commands.\n");
    return 2;
}

const char *
cli_need_repo(const char *cmd, const char *repo)
{
    const char *r = cli_config_repo(repo);

    if (!r || !*r) {
        /* an empty one is a script's --repo "$REPO" with REPO unset */
        if (r)
            cli_usage(cmd,
                      "--repo is empty: give the repository's path or URL");
        else
            cli_usage(cmd, "--repo is required (or set LIVEBACKUP_REPO, or "
                           "repo in livebackup.conf)");
        r = NULL;
    }
    /* A local path, absolute: map's nbdkit and mount's FUSE process work
     * from /, and an instant restore's journal keeps it for recover. */
    else if (*r && strncmp(r, "ssh://", 6) != 0 && strncmp(r, "rados:", 6) != 0)
        r = cli_abs_path(r);
    return r;
}

int
cli_missing(const char *cmd, const char *what)
{
    return cli_usage(cmd, "%s is required", what);
}
