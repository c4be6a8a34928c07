/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What of a domain XML reaches into the host it is defined on: elements
 * of libvirt's domain schema that run host programs (qemu:commandline,
 * <emulator>, an interface's <script>), or open host files and devices
 * (direct kernel boot, firmware and NVRAM, host devices and directories,
 * character devices on host paths, a disk's data store, a medium in a
 * cdrom, option ROMs and fw_cfg entries from host files, sound devices
 * and servers, render nodes, security labels that change who QEMU runs
 * as). A restore takes
 * the XML from the repository, which a VM host that was broken into may
 * have written (a junk backup): defining it as it is would let the
 * repository run commands or read and write files as root on the host
 * that restores. Such elements are left out of a restored domain unless
 * its user keeps them (--keep-host-access), with a warning either way.
 */
#include "agent/live/xmlsafe.h"

#include "agent/live/xml_dl.h"
#include <string.h>

#define QEMU_NS "http://libvirt.org/schemas/domain/qemu/1.0"
#define CHARDEVS                                                               \
    "/domain/devices/*[self::serial or self::parallel or self::console or "    \
    "self::channel]"

enum action {
    DROP,    /* remove the element or attribute */
    URANDOM, /* an rng reading a host file: read /dev/urandom instead */
};

static const struct rule {
    const char *xpath;
    enum action act;
    const char *why;
} rules[] = {
    {"//*[namespace-uri()='" QEMU_NS
     "' and not(parent::*[namespace-uri()='" QEMU_NS "'])]",
     DROP, "QEMU arguments and properties"},
    {"/domain/devices/emulator", DROP, "a host program"},
    {"/domain/devices/interface/script | /domain/devices/interface/downscript",
     DROP, "a host program"},
    {"/domain/devices/interface[@type='hostdev' or @type='vhostuser' or "
     "@type='vdpa']",
     DROP, "a host device or socket"},
    {"/domain/devices/interface/backend/@tap | "
     "/domain/devices/interface/backend/@vhost",
     DROP, "a host device"},
    {"/domain/devices/hostdev", DROP, "a host device"},
    {"/domain/devices/filesystem", DROP, "a host directory"},
    {"/domain/devices/smartcard | /domain/devices/redirdev | "
     "/domain/devices/shmem",
     DROP, "a host device or socket"},
    {CHARDEVS "[@type='dev' or @type='pipe']", DROP, "a host device or file"},
    {CHARDEVS "[@type='unix'][not(self::channel and target/@type='virtio')]",
     DROP, "a host socket"},
    /* A guest agent's channel: libvirt makes its own socket. */
    {CHARDEVS "[@type='unix']/source", DROP, "a host socket"},
    {"/domain/devices/*/log[@file]", DROP, "a host file"},
    /* Before the kernel: QEMU refuses a command line without it. */
    {"/domain/os[kernel]/cmdline", DROP,
     "the command line of a kernel left out"},
    {"/domain/os/kernel | /domain/os/initrd | /domain/os/dtb | "
     "/domain/os/loader | /domain/os/nvram | /domain/os/acpi/table",
     DROP, "a host file"},
    {"/domain/devices/tpm[backend/@type='passthrough']", DROP, "a host device"},
    {"/domain/devices/rng[backend/@model='egd']", DROP, "a host socket"},
    {"/domain/devices/rng/backend[@model='random'][normalize-space(.) != "
     "'/dev/urandom' and normalize-space(.) != '/dev/random' and "
     "normalize-space(.) != '']",
     URANDOM, "a host file"},
    {"/domain/devices/input[@type='passthrough' or @type='evdev']", DROP,
     "a host device"},
    {"/domain/devices/disk[@device='lun']", DROP, "a host device"},
    {"/domain/devices/disk[@device='cdrom' or @device='floppy']/source | "
     "/domain/devices/disk[@device='cdrom' or @device='floppy']/backingStore",
     DROP, "a host file (the medium)"},
    {"/domain/devices/disk/source/reservations | "
     "/domain/devices/disk/source/dataStore",
     DROP, "a host file or socket"},
    {"/domain/seclabel | /domain/devices//seclabel", DROP,
     "who QEMU runs as, its confinement"},
    {"/domain/devices/graphics/listen[@type='socket'] | "
     "/domain/devices/graphics/@socket",
     DROP, "a host socket"},
    {"/domain/devices/audio[@type='file']", DROP, "a host file"},
    /* ALSA's and OSS's device (an ALSA name may be a plugin writing a
     * file), a PulseAudio or JACK server: the backend's default instead */
    {"/domain/devices/audio/input/@dev | /domain/devices/audio/output/@dev",
     DROP, "a host device"},
    {"/domain/devices/audio/@serverName | "
     "/domain/devices/audio/input/@serverName | "
     "/domain/devices/audio/output/@serverName",
     DROP, "a host sound server"},
    {"/domain/devices/memory[source/path]", DROP, "a host file"},
    /* QEMU reads these files and shows them to the guest: an option ROM
     * (its BAR), an fw_cfg entry */
    {"/domain/devices/*/rom/@file", DROP, "a host file (an option ROM)"},
    {"/domain/sysinfo/entry[@file]", DROP,
     "a host file (given to the guest by fw_cfg)"},
    {"/domain/devices/tpm[backend/@type='external']", DROP, "a host socket"},
    {"/domain/devices/interface/backend/@logFile", DROP, "a host file"},
    {"/domain/devices/graphics/gl/@rendernode | "
     "/domain/devices/video/model/acceleration/@rendernode",
     DROP, "a host device"},
};

/* A short name for what node is: <name type='x'> and its path or text. */
static void
describe(xmlNodePtr n, struct lb_buf *out)
{
    static const char *const attrs[] = {"path", "file", "dev", "socket"};
    xmlNodePtr el = n->type == XML_ATTRIBUTE_NODE ? n->parent : n;
    xmlChar *v = NULL;

    lb_buf_append(out, "<", 1);
    if (el->ns && el->ns->prefix) {
        lb_buf_append(out, el->ns->prefix, strlen((char *)el->ns->prefix));
        lb_buf_append(out, ":", 1);
    }
    lb_buf_append(out, el->name, strlen((const char *)el->name));
    if (n->type == XML_ATTRIBUTE_NODE) {
        lb_buf_append(out, " ", 1);
        lb_buf_append(out, n->name, strlen((const char *)n->name));
    } else if ((v = LX(xmlGetProp, el, (const xmlChar *)"type")) != NULL) {
        lb_buf_append(out, " type='", 7);
        lb_buf_append(out, v, strlen((char *)v));
        lb_buf_append(out, "'", 1);
        LX_FREE(v);
        v = NULL;
    }
    lb_buf_append(out, ">", 1);
    if (n->type == XML_ATTRIBUTE_NODE)
        v = LX(xmlNodeGetContent, n);
    for (size_t i = 0; !v && i < LB_ARRAY_SIZE(attrs); i++)
        v = LX(xmlGetProp, el, (const xmlChar *)attrs[i]);
    for (xmlNodePtr c = el->children; !v && c; c = c->next)
        if (c->type == XML_ELEMENT_NODE &&
            strcmp((const char *)c->name, "source") == 0)
            for (size_t i = 0; !v && i < LB_ARRAY_SIZE(attrs); i++)
                v = LX(xmlGetProp, c, (const xmlChar *)attrs[i]);
    if (!v && el->children && el->children->type == XML_TEXT_NODE &&
        !el->children->next)
        v = LX(xmlNodeGetContent, el);
    if (v) {
        size_t len = strlen((char *)v);
        lb_buf_append(out, " ", 1);
        lb_buf_append(out, v, LB_MIN(len, (size_t)120));
        if (len > 120)
            lb_buf_append(out, "...", 3);
        LX_FREE(v);
    }
}

int
agent_xml_host_access(xmlDocPtr doc, bool keep, struct lb_buf *found)
{
    xmlXPathContextPtr ctx = LX(xmlXPathNewContext, doc);
    int n = 0;

    if (!ctx)
        return lb_fail(ENOMEM, "cannot read the domain XML");
    for (size_t r = 0; r < LB_ARRAY_SIZE(rules); r++) {
        /* Evaluated after the rules before it changed the document: a
         * node is never one an earlier rule freed. */
        xmlXPathObjectPtr res =
            LX(xmlXPathEvalExpression, (const xmlChar *)rules[r].xpath, ctx);
        int k = res && res->nodesetval ? res->nodesetval->nodeNr : 0;

        for (int i = 0; i < k; i++) {
            xmlNodePtr node = res->nodesetval->nodeTab[i];
            if (found->len)
                lb_buf_append(found, "; ", 2);
            describe(node, found);
            lb_buf_append(found, ": ", 2);
            lb_buf_append(found, rules[r].why, strlen(rules[r].why));
            n++;
            if (keep)
                continue;
            if (rules[r].act == URANDOM) {
                LX(xmlNodeSetContent, node, (const xmlChar *)"/dev/urandom");
                lb_buf_append(found, " (now /dev/urandom)", 19);
            } else if (node->type == XML_ATTRIBUTE_NODE) {
                LX(xmlRemoveProp, (xmlAttrPtr)node);
            } else {
                LX(xmlUnlinkNode, node);
                LX(xmlFreeNode, node);
            }
        }
        LX(xmlXPathFreeObject, res);
    }
    LX(xmlXPathFreeContext, ctx);
    lb_buf_put_u8(found, 0);
    found->len--;
    return n;
}
