/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Domain XML, read and rewritten with libxml2: the disks of a domain, the
 * overlays a backup switches onto, the saved XML with the VM's own images,
 * and the XML of a restored domain (new name, UUID, disks, MACs).
 */
#include "agent/live/virt.h"
#include "agent/live/xmlsafe.h"

#include "agent/live/xml_dl.h"
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static char *
xprop(xmlNodePtr n, const char *name)
{
    xmlChar *p = n ? LX(xmlGetProp, n, (const xmlChar *)name) : NULL;
    char *s = p ? lb_xstrdup((const char *)p) : NULL;

    LX_FREE(p);
    return s;
}

static xmlNodePtr
child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE &&
            strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

/* The path of a <source> element for a file or block disk. */
static char *
source_path(xmlNodePtr src)
{
    char *p = xprop(src, "file");

    if (!p)
        p = xprop(src, "dev");
    return p;
}

/* A document of libvirt's: what it is, for the error. */
static xmlDocPtr
parse_doc(const char *xml, const char *what)
{
    xmlDocPtr doc;

    if (lb_xml_load() < 0)
        return NULL;
    doc = LX(xmlReadMemory, xml, (int)strlen(xml), "libvirt.xml", NULL,
             XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        lb_fail(EPROTO, "cannot parse %s", what);
    return doc;
}

static xmlDocPtr
parse_xml(const char *xml)
{
    return parse_doc(xml, "the domain XML");
}

static xmlXPathObjectPtr
find_disks(xmlDocPtr doc)
{
    xmlXPathContextPtr ctx = LX(xmlXPathNewContext, doc);
    xmlXPathObjectPtr r = ctx ? LX(xmlXPathEvalExpression,
                                   (const xmlChar *)"/domain/devices/disk", ctx)
                              : NULL;

    LX(xmlXPathFreeContext, ctx);
    return r;
}

int
agent_xml_disks(const char *xml, struct agent_vdisk **out, size_t *n)
{
    xmlDocPtr doc;
    xmlXPathObjectPtr r;
    size_t k;

    *out = NULL;
    *n = 0;
    if (!(doc = parse_xml(xml)))
        return -1;
    r = find_disks(doc);
    k = r && r->nodesetval ? (size_t)r->nodesetval->nodeNr : 0;
    *out = lb_xcalloc(k ? k : 1, sizeof **out);
    for (size_t i = 0; i < k; i++) {
        xmlNodePtr disk = r->nodesetval->nodeTab[i];
        struct agent_vdisk *vd = &(*out)[*n];
        CLEANUP_FREE char *type = xprop(disk, "type");
        CLEANUP_FREE char *tdev = xprop(child(disk, "target"), "dev");
        xmlNodePtr bs;

        if (!tdev)
            continue;
        snprintf(vd->target, sizeof vd->target, "%s", tdev);
        vd->device = xprop(disk, "device");
        if (!vd->device)
            vd->device = lb_xstrdup("disk");
        vd->kind = !type                          ? AGENT_DISK_FILE
                   : strcmp(type, "file") == 0    ? AGENT_DISK_FILE
                   : strcmp(type, "block") == 0   ? AGENT_DISK_BLOCK
                   : strcmp(type, "network") == 0 ? AGENT_DISK_NETWORK
                                                  : AGENT_DISK_OTHER;
        vd->source = source_path(child(disk, "source"));
        vd->format = xprop(child(disk, "driver"), "type");
        if (!vd->format)
            vd->format = lb_xstrdup("raw");
        vd->readonly = child(disk, "readonly") != NULL;
        vd->shareable = child(disk, "shareable") != NULL;
        for (bs = child(disk, "backingStore"); bs;
             bs = child(bs, "backingStore")) {
            char *p = source_path(child(bs, "source"));
            if (!p)
                break;
            vd->chain =
                lb_xrealloc(vd->chain, (vd->nchain + 1) * sizeof *vd->chain);
            vd->chain_fmt = lb_xrealloc(
                vd->chain_fmt, (vd->nchain + 1) * sizeof *vd->chain_fmt);
            vd->chain[vd->nchain] = p;
            vd->chain_fmt[vd->nchain] = xprop(child(bs, "format"), "type");
            if (!vd->chain_fmt[vd->nchain])
                vd->chain_fmt[vd->nchain] = lb_xstrdup("raw");
            vd->nchain++;
        }
        (*n)++;
    }
    LX(xmlXPathFreeObject, r);
    LX(xmlFreeDoc, doc);
    return 0;
}

void
agent_vdisks_free(struct agent_vdisk *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].device);
        free(v[i].source);
        free(v[i].format);
        for (size_t k = 0; k < v[i].nchain; k++) {
            free(v[i].chain[k]);
            free(v[i].chain_fmt[k]);
        }
        free(v[i].chain);
        free(v[i].chain_fmt);
    }
    free(v);
}

/* A block device: what path names (a symlink followed, such as one to an
 * LV outside /dev; QEMU's file driver refuses a device), or a path under
 * /dev when there is nothing there (yet). */
static bool
block_path(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) == 0)
        return S_ISBLK(sb.st_mode);
    return strncmp(path, "/dev/", 5) == 0;
}

/* Point a <disk> at a file or a block device of a format, without a stale
 * backingStore. */
static void
set_disk_source(xmlNodePtr disk, const char *path, const char *fmt)
{
    bool block = block_path(path);
    xmlNodePtr src = child(disk, "source"), drv = child(disk, "driver"), bs;

    LX(xmlSetProp, disk, (const xmlChar *)"type",
       (const xmlChar *)(block ? "block" : "file"));
    if (!src)
        src = LX(xmlNewChild, disk, NULL, (const xmlChar *)"source", NULL);
    LX(xmlUnsetProp, src, (const xmlChar *)(block ? "file" : "dev"));
    LX(xmlUnsetProp, src, (const xmlChar *)"index");
    LX(xmlSetProp, src, (const xmlChar *)(block ? "dev" : "file"),
       (const xmlChar *)path);
    if (!drv) {
        drv = LX(xmlNewChild, disk, NULL, (const xmlChar *)"driver", NULL);
        LX(xmlSetProp, drv, (const xmlChar *)"name", (const xmlChar *)"qemu");
    }
    LX(xmlSetProp, drv, (const xmlChar *)"type", (const xmlChar *)fmt);
    while ((bs = child(disk, "backingStore")) != NULL) {
        LX(xmlUnlinkNode, bs);
        LX(xmlFreeNode, bs);
    }
}

static char *
dump_xml(xmlDocPtr doc)
{
    xmlChar *outx = NULL;
    int outlen = 0;
    char *out = NULL;

    LX(xmlDocDumpMemory, doc, &outx, &outlen);
    if (outx)
        out = lb_xstrdup((const char *)outx);
    else
        lb_fail(ENOMEM, "cannot write the domain XML");
    LX_FREE(outx);
    return out;
}

char *
agent_xml_set_disks(const char *xml, size_t n, char *const *targets,
                    char *const *paths, char *const *formats)
{
    xmlDocPtr doc = parse_xml(xml);
    xmlXPathObjectPtr r;
    char *out;

    if (!doc)
        return NULL;
    r = find_disks(doc);
    for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++) {
        xmlNodePtr disk = r->nodesetval->nodeTab[i];
        CLEANUP_FREE char *tdev = xprop(child(disk, "target"), "dev");

        for (size_t k = 0; tdev && k < n; k++)
            if (strcmp(tdev, targets[k]) == 0)
                set_disk_source(disk, paths[k], formats[k]);
    }
    out = dump_xml(doc);
    LX(xmlXPathFreeObject, r);
    LX(xmlFreeDoc, doc);
    return out;
}

char *
agent_xml_snapshot(const struct agent_vdisk *disks, size_t nd, size_t n,
                   char *const *targets, char *const *overlays)
{
    xmlDocPtr doc;
    xmlNodePtr root, list;
    char *out;

    if (lb_xml_load() < 0)
        return NULL;
    doc = LX(xmlNewDoc, (const xmlChar *)"1.0");
    root = LX(xmlNewNode, NULL, (const xmlChar *)"domainsnapshot");
    LX(xmlDocSetRootElement, doc, root);
    list = LX(xmlNewChild, root, NULL, (const xmlChar *)"disks", NULL);
    for (size_t i = 0; i < nd; i++) {
        xmlNodePtr disk =
            LX(xmlNewChild, list, NULL, (const xmlChar *)"disk", NULL);
        size_t k;

        for (k = 0; k < n && strcmp(targets[k], disks[i].target) != 0; k++)
            ;
        LX(xmlSetProp, disk, (const xmlChar *)"name",
           (const xmlChar *)disks[i].target);
        if (k == n) {
            LX(xmlSetProp, disk, (const xmlChar *)"snapshot",
               (const xmlChar *)"no");
            continue;
        }
        LX(xmlSetProp, disk, (const xmlChar *)"snapshot",
           (const xmlChar *)"external");
        LX(xmlSetProp, disk, (const xmlChar *)"type", (const xmlChar *)"file");
        LX(xmlSetProp,
           LX(xmlNewChild, disk, NULL, (const xmlChar *)"driver", NULL),
           (const xmlChar *)"type", (const xmlChar *)"qcow2");
        LX(xmlSetProp,
           LX(xmlNewChild, disk, NULL, (const xmlChar *)"source", NULL),
           (const xmlChar *)"file", (const xmlChar *)overlays[k]);
    }
    out = dump_xml(doc);
    LX(xmlFreeDoc, doc);
    return out;
}

static xmlXPathObjectPtr
xpath(xmlDocPtr doc, const char *expr)
{
    xmlXPathContextPtr ctx = LX(xmlXPathNewContext, doc);
    xmlXPathObjectPtr r =
        ctx ? LX(xmlXPathEvalExpression, (const xmlChar *)expr, ctx) : NULL;

    LX(xmlXPathFreeContext, ctx);
    return r;
}

static void
set_text(xmlDocPtr doc, const char *elem, const char *text)
{
    xmlNodePtr root = LX(xmlDocGetRootElement, doc), n = child(root, elem);

    if (!n)
        n = LX(xmlNewChild, root, NULL, (const xmlChar *)elem, NULL);
    LX(xmlNodeSetContent, n, NULL);
    LX(xmlNodeAddContent, n, (const xmlChar *)text);
}

char *
agent_xml_restore(const char *xml, const struct agent_restore_xml *o)
{
    xmlDocPtr doc = parse_xml(xml);
    xmlXPathObjectPtr r;
    char *out;

    if (!doc)
        return NULL;
    /* libvirt never writes a DTD; one in a saved XML is junk, and its
     * entities would pass what they hold by the checks below unseen
     * (libxml2 keeps them unexpanded) to whatever expands them later. */
    if (doc->intSubset || doc->extSubset) {
        LX(xmlFreeDoc, doc);
        lb_fail(EPROTO, "the saved domain XML has a <!DOCTYPE>, which "
                        "libvirt never writes: refused");
        lb_error_hint("its disks restore without it (livebackup "
                      "restore-image); check the backup with livebackup show");
        return NULL;
    }
    if (o->name)
        set_text(doc, "name", o->name);
    if (o->uuid)
        set_text(doc, "uuid", o->uuid);
    /* Disks: the restored ones point at their files (a restored lun
     * becomes a disk on its image); the others are left out rather than
     * shared with the original, but for drives of removable media
     * (xmlsafe.c takes out their medium) and lun disks not restored
     * (xmlsafe.c's, so that --keep-host-access keeps them). */
    r = find_disks(doc);
    for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++) {
        xmlNodePtr disk = r->nodesetval->nodeTab[i];
        CLEANUP_FREE char *tdev = xprop(child(disk, "target"), "dev");
        CLEANUP_FREE char *dev = xprop(disk, "device");
        bool lun = dev && strcmp(dev, "lun") == 0;
        bool is_disk = !dev || strcmp(dev, "disk") == 0 || lun, found = false;

        /* (a drive of removable media under a restored disk's target is
         * not that disk: its medium stays out) */
        for (size_t k = 0; is_disk && tdev && k < o->n; k++)
            if (strcmp(tdev, o->targets[k]) == 0) {
                set_disk_source(disk, o->paths[k], o->formats[k]);
                /* a LUN's data, restored into an image: a disk now */
                if (lun)
                    LX(xmlSetProp, disk, (const xmlChar *)"device",
                       (const xmlChar *)"disk");
                found = true;
                if (o->stop_on_error) {
                    xmlNodePtr drv = child(disk, "driver");
                    LX(xmlSetProp, drv, (const xmlChar *)"error_policy",
                       (const xmlChar *)"stop");
                    LX(xmlSetProp, drv, (const xmlChar *)"rerror_policy",
                       (const xmlChar *)"stop");
                }
            }
        if (!found && o->drop_others &&
            (is_disk ? !lun
                     : !(strcmp(dev, "cdrom") == 0 ||
                         strcmp(dev, "floppy") == 0))) {
            LX(xmlUnlinkNode, disk);
            LX(xmlFreeNode, disk);
        }
    }
    LX(xmlXPathFreeObject, r);
    if (o->new_mac) {
        r = xpath(doc, "/domain/devices/interface/mac");
        for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++) {
            uint8_t b[3] = {0};
            char mac[18];
            lb_random(b, sizeof b);
            snprintf(mac, sizeof mac, "52:54:00:%02x:%02x:%02x", b[0], b[1],
                     b[2]);
            LX(xmlSetProp, r->nodesetval->nodeTab[i],
               (const xmlChar *)"address", (const xmlChar *)mac);
        }
        LX(xmlXPathFreeObject, r);
    }
    if (o->log_dir && o->name) {
        /* Character devices on files (consoles' logs): one file per
         * domain, next to the restore, never a path the repository
         * chose. */
        r = xpath(doc, "/domain/devices/*[self::serial or self::console or "
                       "self::parallel or self::channel]"
                       "[@type='file']/source[@path]");
        for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++) {
            CLEANUP_FREE char *p = xprop(r->nodesetval->nodeTab[i], "path");
            const char *base = strrchr(p, '/');
            CLEANUP_FREE char *np = lb_xasprintf("%s/%s-%s", o->log_dir,
                                                 o->name, base ? base + 1 : p);
            LX(xmlSetProp, r->nodesetval->nodeTab[i], (const xmlChar *)"path",
               (const xmlChar *)np);
        }
        LX(xmlXPathFreeObject, r);
    }
    {
        struct lb_buf found = {0};
        if (agent_xml_host_access(doc, o->keep_host_access, &found) < 0) {
            lb_buf_free(&found);
            LX(xmlFreeDoc, doc);
            return NULL;
        }
        if (o->host_access)
            *o->host_access = lb_xstrdup(found.len ? (char *)found.data : "");
        lb_buf_free(&found);
    }
    out = dump_xml(doc);
    LX(xmlFreeDoc, doc);
    return out;
}

/* ---- who QEMU runs as --------------------------------------------------- */

/* The string value of XPath expr in doc ("" when it selects nothing);
 * caller frees. */
static char *
xpath_string(xmlDocPtr doc, const char *expr)
{
    xmlXPathObjectPtr r = xpath(doc, expr);
    char *s = lb_xstrdup(r && r->type == XPATH_STRING && r->stringval
                             ? (const char *)r->stringval
                             : "");

    LX(xmlXPathFreeObject, r);
    return s;
}

/* One side of a DAC label: +N, or a user's (a group's) name. */
static int
label_id(const char *s, bool group, unsigned *id)
{
    char buf[4096];

    if (s[0] == '+') {
        char *end;
        unsigned long v;
        errno = 0;
        v = strtoul(s + 1, &end, 10);
        if (s[1] < '0' || s[1] > '9' || *end || errno || v > 0xfffffffeUL)
            return -1;
        *id = (unsigned)v;
        return 0;
    }
    if (group) {
        struct group g, *gp = NULL;
        if (getgrnam_r(s, &g, buf, sizeof buf, &gp) != 0 || !gp)
            return -1;
        *id = gp->gr_gid;
    } else {
        struct passwd pw, *pp = NULL;
        if (getpwnam_r(s, &pw, buf, sizeof buf, &pp) != 0 || !pp)
            return -1;
        *id = pp->pw_uid;
    }
    return 0;
}

int
agent_xml_qemu_owner(const char *xml, const char *caps, uid_t *uid, gid_t *gid)
{
    xmlDocPtr doc = parse_xml(xml), cdoc = NULL;
    CLEANUP_FREE char *label = NULL, *type = NULL, *expr = NULL;
    char *colon;
    unsigned u, g;
    int r = -1;

    *uid = 0;
    *gid = 0;
    if (!doc)
        return -1;
    label = xpath_string(doc, "normalize-space(/domain/seclabel"
                              "[@model='dac']/label)");
    type = xpath_string(doc, "string(/domain/@type)");
    if (!*label) {
        if (!*type || strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789") !=
                          strlen(type)) {
            lb_fail(EPROTO, "the domain XML has no valid type");
            goto out;
        }
        if (!(cdoc = parse_doc(caps, "libvirt's capabilities")))
            goto out;
        expr = lb_xasprintf("normalize-space(/capabilities/host/secmodel"
                            "[model='dac']/baselabel[@type='%s'])",
                            type);
        free(label);
        label = xpath_string(cdoc, expr);
        if (!*label) { /* no DAC driver: QEMU runs as libvirtd does */
            r = 0;
            goto out;
        }
    }
    colon = strchr(label, ':');
    if (colon)
        *colon = '\0';
    if (!colon || label_id(label, false, &u) < 0 ||
        label_id(colon + 1, true, &g) < 0) {
        if (colon)
            *colon = ':';
        lb_fail(EPROTO, "QEMU's DAC label '%s' is not USER:GROUP", label);
        goto out;
    }
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    r = 0;
out:
    if (cdoc)
        LX(xmlFreeDoc, cdoc);
    LX(xmlFreeDoc, doc);
    return r;
}
