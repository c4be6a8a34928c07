/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libFuzzer target: agent_xml_restore (agent/live/domxml.c, xmlsafe.c) on
 * a domain XML, as a restore reads one from a repository that a broken-into
 * VM host may have written.
 *
 * Oracle beyond "no crash, no leak": what it makes of an accepted XML is
 * XML it accepts again, in which a second pass finds nothing that reaches
 * into the host (the first left none); every disk left is a restored one
 * on the path it was given, or a cdrom or floppy drive without a medium;
 * every character device on a file writes into the restore's directory;
 * there is no DTD. Kept (--keep-host-access), the same XML is accepted,
 * and host access is found in it exactly when it was without. Who QEMU
 * runs as (agent_xml_qemu_owner, an instant restore's question) is the
 * host's base label for a restored XML (its <seclabel> went), whatever
 * the saved one said; the kept one's label is parsed without harm.
 */
#include "agent/live/virt.h"
#include "fuzz/fuzz.h"

#include <libxml/parser.h>
#include <libxml/xpath.h>
#include <string.h>

#define LOG_DIR "/restore"
#define NAME "r"

static char *targets[] = {"vda", "sdb"};
static char *paths[] = {LOG_DIR "/" NAME "-vda.qcow2", "/dev/restore-sdb"};
static char *formats[] = {"qcow2", "raw"};

static char *
restore(const char *xml, bool keep, bool stop, char **access)
{
    struct agent_restore_xml rx = {.name = NAME,
                                   .uuid =
                                       "0b0b0b0b-0000-4000-8000-000000000002",
                                   .n = 2,
                                   .targets = targets,
                                   .paths = paths,
                                   .formats = formats,
                                   .drop_others = true,
                                   .new_mac = true,
                                   .log_dir = LOG_DIR,
                                   .keep_host_access = keep,
                                   .host_access = access,
                                   .stop_on_error = stop};
    char *out = agent_xml_restore(xml, &rx);

    lb_error_clear();
    return out;
}

static char *
prop(xmlNodePtr n, const char *name)
{
    return (char *)xmlGetProp(n, (const xmlChar *)name);
}

static xmlNodePtr
child(xmlNodePtr n, const char *name)
{
    for (xmlNodePtr c = n->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE &&
            strcmp((const char *)c->name, name) == 0)
            return c;
    return NULL;
}

/* One disk of the restored XML: restored, or a drive without a medium. */
static void
check_disk(xmlNodePtr disk)
{
    char *dev = prop(disk, "device");
    xmlNodePtr t = child(disk, "target"), src = child(disk, "source");
    char *tdev = t ? prop(t, "dev") : NULL;

    if (dev && (strcmp(dev, "cdrom") == 0 || strcmp(dev, "floppy") == 0)) {
        CHECK(!src);
    } else {
        size_t k = 0;
        char *file, *bdev;
        CHECK(tdev);
        while (k < LB_ARRAY_SIZE(targets) && strcmp(tdev, targets[k]) != 0)
            k++;
        CHECK(k < LB_ARRAY_SIZE(targets));
        CHECK(src);
        file = prop(src, "file");
        bdev = prop(src, "dev");
        CHECK((file ? file : bdev) &&
              strcmp(file ? file : bdev, paths[k]) == 0);
        CHECK(!child(disk, "backingStore"));
        xmlFree(file);
        xmlFree(bdev);
    }
    xmlFree(dev);
    xmlFree(tdev);
}

/* What the restore wrote: disks, file character devices, no DTD. */
static void
check_doc(const char *xml)
{
    xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "r.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR |
                                      XML_PARSE_NOWARNING);
    xmlXPathContextPtr ctx;
    xmlXPathObjectPtr r;

    CHECK(doc && !doc->intSubset && !doc->extSubset);
    ctx = xmlXPathNewContext(doc);
    r = xmlXPathEvalExpression((const xmlChar *)"/domain/devices/disk", ctx);
    for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++)
        check_disk(r->nodesetval->nodeTab[i]);
    xmlXPathFreeObject(r);
    r = xmlXPathEvalExpression(
        (const xmlChar *)"/domain/devices/*[self::serial or self::console or "
                         "self::parallel or self::channel][@type='file']/"
                         "source/@path",
        ctx);
    for (int i = 0; r && r->nodesetval && i < r->nodesetval->nodeNr; i++) {
        char *p = (char *)xmlNodeGetContent(r->nodesetval->nodeTab[i]);
        static const char prefix[] = LOG_DIR "/" NAME "-";
        CHECK(p && strncmp(p, prefix, sizeof prefix - 1) == 0 &&
              !strchr(p + sizeof prefix - 1, '/'));
        xmlFree(p);
    }
    xmlXPathFreeObject(r);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
}

static const char caps[] =
    "<capabilities><host><secmodel><model>dac</model><doi>0</doi>"
    "<baselabel type='qemu'>+999:+995</baselabel></secmodel></host>"
    "</capabilities>";

static void
check_owner(const char *out, const char *kept)
{
    uid_t u;
    gid_t g;

    if (agent_xml_qemu_owner(out, caps, &u, &g) == 0)
        CHECK((u == 999 && g == 995) || (u == 0 && g == 0));
    lb_error_clear();
    (void)agent_xml_qemu_owner(kept, caps, &u, &g);
    lb_error_clear();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *xml = lb_xmalloc(size + 1);
    char *a1 = NULL, *a2 = NULL, *a3 = NULL;
    char *out, *again, *kept;
    bool stop = size & 1;

    memcpy(xml, data, size);
    xml[size] = '\0';
    out = restore(xml, false, stop, &a1);
    if (!out) {
        free(xml);
        return 0;
    }
    again = restore(out, false, stop, &a2);
    CHECK(again && a2 && a2[0] == '\0');
    check_doc(out);
    kept = restore(xml, true, stop, &a3);
    CHECK(kept && a1 && a3 && (a1[0] == '\0') == (a3[0] == '\0'));
    check_owner(out, kept);
    free(out);
    free(again);
    free(kept);
    free(a1);
    free(a2);
    free(a3);
    free(xml);
    return 0;
}
