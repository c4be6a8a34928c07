/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * agent/live/domxml.c and xmlsafe.c: the XML of a restored domain comes
 * from the repository, which a broken-into VM host may have written. What
 * would run host programs or open host files, devices or sockets is left
 * out (or kept, and listed, with keep_host_access); character devices on
 * files go into the restore's directory.
 */
#include "agent/live/virt.h"
#include "tests/unit/testutil.h"

#include <criterion/criterion.h>
#include <libxml/parser.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

static const char hostile[] =
    "<domain type='qemu' "
    "xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>"
    "<name>web1</name><uuid>0b0b0b0b-0000-4000-8000-000000000001</uuid>"
    "<memory unit='MiB'>128</memory>"
    "<seclabel type='none'/>"
    "<sysinfo type='fwcfg'><entry name='opt/x/key' file='/etc/fw-key'/>"
    "<entry name='opt/x/note'>kept</entry></sysinfo>"
    "<os><type arch='x86_64' machine='pc'>hvm</type>"
    "<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>"
    "<nvram>/etc/shadow</nvram>"
    "<kernel>/boot/vmlinuz</kernel><initrd>/etc/shadow</initrd>"
    "<cmdline>console=ttyS0</cmdline><acpi><table type='slic'>/root/x</table>"
    "</acpi></os>"
    "<devices><emulator>/tmp/evil</emulator>"
    "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
    "<source file='/var/lib/x.qcow2'><dataStore type='file'><format "
    "type='raw'/><source file='/etc/passwd'/></dataStore>"
    "<reservations managed='no'><source type='unix' path='/run/x.sock' "
    "mode='client'/></reservations></source>"
    "<target dev='vda' bus='virtio'/></disk>"
    "<disk type='file' device='cdrom'><source file='/etc/shadow'/>"
    "<target dev='hdc' bus='ide'/><readonly/></disk>"
    "<disk type='block' device='lun'><source dev='/dev/sda'/>"
    "<target dev='sdb' bus='scsi'/></disk>"
    "<interface type='network'><source network='default'/>"
    "<mac address='52:54:00:11:22:33'/>"
    "<script path='/tmp/evil.sh'/><downscript path='/tmp/evil2.sh'/>"
    "<backend tap='/dev/net/tun' vhost='/dev/vhost-net'/>"
    "<rom bar='on' file='/etc/rom-key'/></interface>"
    "<interface type='user'><backend type='passt' logFile='/etc/passt.log'/>"
    "</interface>"
    "<interface type='vhostuser'><source type='unix' path='/tmp/vu' "
    "mode='client'/></interface>"
    "<hostdev mode='subsystem' type='pci'><source><address domain='0' "
    "bus='1' slot='0' function='0'/></source></hostdev>"
    "<filesystem type='mount'><source dir='/'/><target dir='root'/>"
    "</filesystem>"
    "<serial type='file'><source path='/etc/cron.d/x'/><target port='0'/>"
    "<log file='/etc/profile' append='on'/></serial>"
    "<serial type='dev'><source path='/dev/sda'/><target port='1'/></serial>"
    "<parallel type='file'><source path='/etc/passwd'/></parallel>"
    "<channel type='pipe'><source path='/tmp/p'/></channel>"
    "<channel type='unix'><source mode='bind' path='/etc/x'/>"
    "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
    "<console type='unix'><source mode='connect' path='/run/docker.sock'/>"
    "</console>"
    "<console type='pty'><target type='serial'/></console>"
    "<tpm model='tpm-tis'><backend type='passthrough'><device "
    "path='/dev/tpm0'/></backend></tpm>"
    "<rng model='virtio'><backend model='random'>/etc/shadow</backend></rng>"
    "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
    "<input type='evdev'><source dev='/dev/input/event0'/></input>"
    "<graphics type='vnc' socket='/etc/vnc.sock'/>"
    "<graphics type='egl-headless'><gl rendernode='/dev/dri/renderX'/>"
    "</graphics>"
    "<video><model type='virtio'><acceleration accel3d='yes' "
    "rendernode='/dev/dri/renderY'/></model></video>"
    "<tpm model='tpm-crb'><backend type='external'><source type='unix' "
    "mode='connect' path='/run/tpm-ext.sock'/></backend></tpm>"
    "<audio id='1' type='file' path='/etc/a.wav'/>"
    "<audio id='2' type='alsa'><input dev='file:/etc/motd'/>"
    "<output dev='hw:0'/></audio>"
    "<audio id='3' type='pulseaudio' serverName='/run/pulse-x'/>"
    "<audio id='4' type='jack'><input serverName='jackd-x'/></audio>"
    "<audio id='5' type='oss'><output dev='/dev/dsp-x'/></audio>"
    "<memory model='nvdimm'><source><path>/etc/nv</path></source>"
    "<target><size unit='KiB'>1024</size></target></memory>"
    "<smartcard mode='passthrough' type='unix'><source mode='connect' "
    "path='/tmp/sc'/></smartcard>"
    "</devices>"
    "<qemu:commandline><qemu:arg value='-chardev'/><qemu:arg "
    "value='file,id=x,path=/etc/passwd'/></qemu:commandline>"
    "<qemu:capabilities><qemu:add capability='blockdev'/>"
    "</qemu:capabilities>"
    "</domain>";

/* Strings that must not be in a restored XML made without
 * keep_host_access. */
static const char *const unsafe[] = {
    "commandline",   "qemu:arg",     "qemu:capabilities",
    "/tmp/evil",     "<emulator",    "<kernel",
    "/etc/shadow",   "<loader",      "<nvram",
    "<table",        "dataStore",    "reservations",
    "/dev/sda",      "<script",      "<downscript",
    "tap=",          "vhost=",       "vhostuser",
    "<hostdev",      "<filesystem",  "/etc/cron.d",
    "<log",          "type=\"dev\"", "type=\"pipe\"",
    "/etc/x",        "docker.sock",  "<tpm",
    "/dev/input",    "/etc/vnc",     "/etc/a.wav",
    "<memory model", "<smartcard",   "<seclabel",
    "/etc/passwd",   "/etc/fw-key",  "/etc/rom-key",
    "passt.log",     "renderX",      "renderY",
    "tpm-ext",       "/etc/motd",    "hw:0",
    "pulse-x",       "jackd-x",      "/dev/dsp-x",
};

static char *
restore(bool keep, char **access)
{
    char *t[] = {"vda"}, *p[] = {"/restore/web1-r-vda.qcow2"}, *f[] = {"qcow2"};
    struct agent_restore_xml rx = {.name = "web1-r",
                                   .uuid =
                                       "0b0b0b0b-0000-4000-8000-000000000002",
                                   .n = 1,
                                   .targets = t,
                                   .paths = p,
                                   .formats = f,
                                   .drop_others = true,
                                   .log_dir = "/restore",
                                   .keep_host_access = keep,
                                   .host_access = access};
    char *out = agent_xml_restore(hostile, &rx);

    cr_assert_not_null(out, "%s", lb_error_msg());
    return out;
}

Test(domxml, host_access_is_left_out)
{
    CLEANUP_FREE char *access = NULL;
    CLEANUP_FREE char *x = restore(false, &access);

    for (size_t i = 0; i < LB_ARRAY_SIZE(unsafe); i++)
        cr_assert_null(strstr(x, unsafe[i]), "'%s' kept:\n%s", unsafe[i], x);
    /* What stays: the restored disk, the cdrom drive (without its
     * medium), the network interface, the guest agent's channel (its
     * socket chosen by libvirt), the pty console, an rng on
     * /dev/urandom (the one on a host file reads it now). */
    cr_assert(strstr(x, "/restore/web1-r-vda.qcow2"), "%s", x);
    cr_assert(strstr(x, "device=\"cdrom\""), "%s", x);
    cr_assert(strstr(x, "<interface type=\"network\""), "%s", x);
    cr_assert(strstr(x, "org.qemu.guest_agent.0"), "%s", x);
    cr_assert(strstr(x, "<console type=\"pty\""), "%s", x);
    /* an fw_cfg entry of a value, the sound backends, the ROM's BAR */
    cr_assert(strstr(x, ">kept</entry>"), "%s", x);
    cr_assert(strstr(x, "<audio id=\"2\" type=\"alsa\""), "%s", x);
    cr_assert(strstr(x, "<audio id=\"3\" type=\"pulseaudio\""), "%s", x);
    cr_assert(strstr(x, "<rom bar=\"on\"/>"), "%s", x);
    cr_assert_eq(strstr(strstr(x, "/dev/urandom") + 1, "/dev/urandom") != NULL,
                 true, "two rngs on /dev/urandom: %s", x);
    /* A kernel's command line goes with it: QEMU refuses -append alone. */
    cr_assert_null(strstr(x, "<cmdline>"), "%s", x);
    cr_assert(strstr(access, "<cmdline>"), "%s", access);
    /* The serial console's file: into the restore's directory. */
    cr_assert(strstr(x, "/restore/web1-r-x"), "%s", x);
    /* And the warning names them. */
    cr_assert(strstr(access, "<qemu:commandline>: QEMU arguments"), "%s",
              access);
    cr_assert(strstr(access, "<emulator> /tmp/evil: a host program"), "%s",
              access);
    cr_assert(strstr(access, "<script> /tmp/evil.sh: a host program"), "%s",
              access);
    cr_assert(strstr(access, "<initrd> /etc/shadow: a host file"), "%s",
              access);
    cr_assert(strstr(access, "(now /dev/urandom)"), "%s", access);
    cr_assert(strstr(access, "<entry> /etc/fw-key: a host file (given to the "
                             "guest by fw_cfg)"),
              "%s", access);
    cr_assert(strstr(access, "<rom file> /etc/rom-key: a host file (an "
                             "option ROM)"),
              "%s", access);
}

Test(domxml, host_access_is_kept_when_asked_and_still_named)
{
    CLEANUP_FREE char *access = NULL;
    CLEANUP_FREE char *x = restore(true, &access);

    cr_assert(strstr(x, "qemu:commandline"), "%s", x);
    cr_assert(strstr(x, "<emulator>/tmp/evil</emulator>"), "%s", x);
    cr_assert(strstr(x, "<kernel>/boot/vmlinuz</kernel>"), "%s", x);
    cr_assert(strstr(access, "<emulator> /tmp/evil: a host program"), "%s",
              access);
    /* Files of character devices still go into the restore's directory. */
    cr_assert_null(strstr(x, "/etc/cron.d"), "%s", x);
}

Test(domxml, a_plain_domain_has_no_host_access)
{
    static const char plain[] =
        "<domain type='kvm'><name>db1</name><os><type>hvm</type></os>"
        "<devices><disk type='file' device='disk'><source file='/v/db1.qcow2'/>"
        "<target dev='vda'/></disk><console type='pty'/></devices></domain>";
    char *t[] = {"vda"}, *p[] = {"/r/db1-vda.qcow2"}, *f[] = {"qcow2"};
    CLEANUP_FREE char *access = NULL;
    struct agent_restore_xml rx = {
        .n = 1, .targets = t, .paths = p, .formats = f, .host_access = &access};
    CLEANUP_FREE char *x = agent_xml_restore(plain, &rx);

    cr_assert_not_null(x);
    cr_assert_str_eq(access, "");
}

/* ---- agent_xml_snapshot ------------------------------------------------- */

/* The snapshot's XML, read back with libxml2: every character of an
 * overlay's path (an apostrophe broke the printf-built XML) survives. */
Test(domxml, snapshot_paths_survive_any_character)
{
    static const char dom[] =
        "<domain type='qemu'><name>x</name><devices>"
        "<disk type='file' device='disk'><source file='/a.qcow2'/>"
        "<target dev='vda'/></disk>"
        "<disk type='file' device='disk'><source file='/b.qcow2'/>"
        "<target dev='vdb'/></disk>"
        "<disk type='file' device='cdrom'><target dev='hdc'/></disk>"
        "</devices></domain>";
    char *targets[] = {"vda"};
    char *overlays[] = {"/var/lib/o'brien's \"vms\" & <co>/vda.qcow2"};
    struct agent_vdisk *d = NULL;
    size_t nd = 0;
    char *xml;
    xmlDocPtr doc;
    xmlNodePtr disk;
    int seen = 0;

    cr_assert_eq(agent_xml_disks(dom, &d, &nd), 0);
    cr_assert_eq(nd, 3);
    xml = agent_xml_snapshot(d, nd, 1, targets, overlays);
    cr_assert_not_null(xml);
    doc = xmlReadMemory(xml, (int)strlen(xml), NULL, NULL, XML_PARSE_NONET);
    cr_assert_not_null(doc, "the snapshot XML does not parse: %s", xml);
    disk = xmlDocGetRootElement(doc)->children->children;
    for (; disk; disk = disk->next) {
        xmlChar *name = xmlGetProp(disk, (const xmlChar *)"name");
        xmlChar *snap = xmlGetProp(disk, (const xmlChar *)"snapshot");
        if (strcmp((char *)name, "vda") == 0) {
            xmlNodePtr src = disk->children->next;
            xmlChar *file = xmlGetProp(src, (const xmlChar *)"file");
            cr_expect_str_eq((char *)snap, "external");
            cr_expect_str_eq((char *)src->name, "source");
            cr_expect_str_eq((char *)file, overlays[0], "%s", xml);
            xmlFree(file);
        } else {
            cr_expect_str_eq((char *)snap, "no", "%s", (char *)name);
        }
        seen++;
        xmlFree(name);
        xmlFree(snap);
    }
    cr_expect_eq(seen, 3, "%s", xml);
    xmlFreeDoc(doc);
    free(xml);
    agent_vdisks_free(d, nd);
}

/* xml restored with its vda on /r/a-vda.qcow2, the other disks left out,
 * host access kept if keep (NULL: refused, the error set). */
static char *
restore_vda(const char *xml, bool keep)
{
    char *t[] = {"vda"}, *p[] = {"/r/a-vda.qcow2"}, *f[] = {"qcow2"};
    CLEANUP_FREE char *access = NULL;
    struct agent_restore_xml rx = {.n = 1,
                                   .targets = t,
                                   .paths = p,
                                   .formats = f,
                                   .drop_others = true,
                                   .keep_host_access = keep,
                                   .host_access = &access};

    return agent_xml_restore(xml, &rx);
}

/* An entity hides markup from the checks (libxml2 keeps it unexpanded),
 * and libvirt expands it when it defines the domain: a saved XML with a
 * DTD is refused, libvirt never writes one. */
Test(domxml, a_dtd_is_refused)
{
    static const char *const hidden[] = {
        "<!DOCTYPE domain [<!ENTITY e \"<emulator>/tmp/evil</emulator>\">]>"
        "<domain type='qemu'><name>a</name><devices>&e;</devices></domain>",
        "<!DOCTYPE domain SYSTEM \"file:///etc/x.dtd\">"
        "<domain type='qemu'><name>a</name></domain>",
        "<!DOCTYPE domain><domain type='qemu'><name>a</name></domain>",
    };

    for (size_t i = 0; i < LB_ARRAY_SIZE(hidden); i++) {
        CLEANUP_FREE char *x = restore_vda(hidden[i], false);

        cr_assert_null(x, "accepted: %s", x);
        cr_assert(strstr(lb_error_msg(), "DOCTYPE"), "%s", lb_error_msg());
    }
}

/* A drive of removable media under a restored disk's target is not that
 * disk (the restore pointed it at the image, then took the medium out);
 * a disk of a device kind libvirt does not know is left out. */
Test(domxml, only_disks_are_restored)
{
    static const char xml[] =
        "<domain type='qemu'><name>a</name><devices>"
        "<disk type='file' device='cdrom'><source file='/iso/a.iso'/>"
        "<target dev='vda'/></disk>"
        "<disk type='file' device='dis'><source file='/etc/shadow'/>"
        "<target dev='vda'/></disk>"
        "<disk type='file'><source file='/v/a.qcow2'/><target dev='vda'/>"
        "</disk></devices></domain>";
    CLEANUP_FREE char *x = restore_vda(xml, false);
    const char *cd, *img;

    cr_assert_not_null(x, "%s", lb_error_msg());
    cd = strstr(x, "device=\"cdrom\"");
    img = strstr(x, "/r/a-vda.qcow2");
    cr_assert(cd && img, "%s", x);
    cr_assert_null(strstr(img + 1, "/r/a-vda.qcow2"), "restored twice: %s", x);
    cr_assert_null(strstr(x, "a.iso"), "%s", x);
    cr_assert_null(strstr(x, "device=\"dis\""), "%s", x);
    cr_assert_null(strstr(x, "/etc/shadow"), "%s", x);
    /* the cdrom's own element holds no source */
    cr_assert(strstr(cd, "</disk>") < strstr(cd, "<source") ||
                  !strstr(cd, "<source"),
              "%s", x);
}

/* A lun disk's data, restored into an image, is a disk on that image: not
 * the original's host device, with --keep-host-access or without. */
Test(domxml, a_restored_lun_is_a_disk_on_its_image)
{
    static const char xml[] =
        "<domain type='qemu'><name>a</name><devices>"
        "<disk type='block' device='lun'><source dev='/dev/sdb'/>"
        "<target dev='vda' bus='scsi'/></disk>"
        "<disk type='block' device='lun'><source dev='/dev/sdc'/>"
        "<target dev='sdz' bus='scsi'/></disk></devices></domain>";

    for (int keep = 0; keep < 2; keep++) {
        CLEANUP_FREE char *x = restore_vda(xml, keep);

        cr_assert_not_null(x, "%s", lb_error_msg());
        cr_assert(strstr(x, "<disk type=\"file\" device=\"disk\"><source "
                            "file=\"/r/a-vda.qcow2\"/>"),
                  "keep %d: %s", keep, x);
        cr_assert_null(strstr(x, "/dev/sdb"), "keep %d: %s", keep, x);
        /* the lun not restored is host access: kept only on request */
        cr_assert_eq(strstr(x, "/dev/sdc") != NULL, keep, "keep %d: %s", keep,
                     x);
    }
}

/* A disk pointed back at its own image (untrack, recover, an in-place
 * restore) is a block disk when that image is a block device, also
 * through a symlink outside /dev (QEMU's file driver refuses a device:
 * the domain would not start), and a file disk on a file. */
Test(domxml, a_disk_set_on_a_device_is_a_block_disk)
{
    static const char xml[] =
        "<domain type='qemu'><name>a</name><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        "<source file='/o/a-vda.lbtrack-1.qcow2'/><target dev='vda'/></disk>"
        "</devices></domain>";
    CLEANUP_FREE char *dir = tu_mkdtemp();
    CLEANUP_FREE char *node = lb_xasprintf("%s/lv", dir);
    CLEANUP_FREE char *link = lb_xasprintf("%s/web1.img", dir);
    CLEANUP_FREE char *file = lb_xasprintf("%s/web1.raw", dir);
    CLEANUP_FREE char *want_link = NULL, *want_file = NULL;
    char *t[] = {"vda"}, *f[] = {"raw"};

    /* a device node (no device behind it: only its type is looked at) */
    cr_assert_eq(mknod(node, S_IFBLK | 0600, makedev(7, 0)), 0, "mknod %s: %m",
                 node);
    cr_assert_eq(symlink(node, link), 0);
    tu_write_file(file, "", 0);
    want_link = lb_xasprintf("<disk type=\"block\" device=\"disk\"><driver "
                             "name=\"qemu\" type=\"raw\"/><source "
                             "dev=\"%s\"/>",
                             link);
    want_file = lb_xasprintf("<disk type=\"file\" device=\"disk\"><driver "
                             "name=\"qemu\" type=\"raw\"/><source "
                             "file=\"%s\"/>",
                             file);
    {
        char *p[] = {link};
        CLEANUP_FREE char *x = agent_xml_set_disks(xml, 1, t, p, f);
        cr_assert_not_null(x, "%s", lb_error_msg());
        cr_assert(strstr(x, want_link), "%s", x);
        cr_assert_null(strstr(x, "file="), "%s", x);
    }
    {
        char *p[] = {file};
        CLEANUP_FREE char *x = agent_xml_set_disks(xml, 1, t, p, f);
        cr_assert_not_null(x, "%s", lb_error_msg());
        cr_assert(strstr(x, want_file), "%s", x);
    }
    {
        /* nothing there: a path under /dev is taken for a device */
        char *p[] = {"/dev/lb-no-such-vg/lv"};
        CLEANUP_FREE char *x = agent_xml_set_disks(xml, 1, t, p, f);
        cr_assert_not_null(x, "%s", lb_error_msg());
        cr_assert(strstr(x, "<disk type=\"block\" device=\"disk\">"), "%s", x);
        cr_assert(strstr(x, "dev=\"/dev/lb-no-such-vg/lv\""), "%s", x);
    }
    tu_rm_rf(dir);
}

/* Who QEMU runs as for a restored domain (an instant restore gives it its
 * exports' sockets): the domain's own DAC label, else the host's base
 * label for the domain's type, else root; names or +N. */
Test(domxml, qemu_owner_from_the_domain_or_the_host)
{
    static const char caps[] =
        "<capabilities><host><secmodel><model>none</model><doi>0</doi>"
        "</secmodel><secmodel><model>dac</model><doi>0</doi>"
        "<baselabel type='kvm'>+64055:+108</baselabel>"
        "<baselabel type='qemu'>+999:+995</baselabel></secmodel></host>"
        "</capabilities>";
    static const char plain[] =
        "<domain type='qemu'><name>a</name><devices/></domain>";
    static const char kvm[] =
        "<domain type='kvm'><name>a</name><devices/></domain>";
    static const char labelled[] =
        "<domain type='qemu'><name>a</name><devices/>"
        "<seclabel type='static' model='dac' relabel='yes'>"
        "<label>+1234:+5678</label></seclabel></domain>";
    static const char named[] =
        "<domain type='qemu'><name>a</name><devices/>"
        "<seclabel type='static' model='dac'><label> root:root </label>"
        "</seclabel></domain>";
    static const char bad[] =
        "<domain type='qemu'><name>a</name><devices/>"
        "<seclabel type='static' model='dac'><label>+12</label>"
        "</seclabel></domain>";
    static const char unknown[] =
        "<domain type='qemu'><name>a</name><devices/>"
        "<seclabel type='static' model='dac'>"
        "<label>lb-no-such-user:root</label></seclabel></domain>";
    uid_t u = 7;
    gid_t g = 7;

    cr_assert_eq(agent_xml_qemu_owner(plain, caps, &u, &g), 0, "%s",
                 lb_error_msg());
    cr_assert(u == 999 && g == 995, "%u:%u", (unsigned)u, (unsigned)g);
    cr_assert_eq(agent_xml_qemu_owner(kvm, caps, &u, &g), 0);
    cr_assert(u == 64055 && g == 108, "%u:%u", (unsigned)u, (unsigned)g);
    cr_assert_eq(agent_xml_qemu_owner(labelled, caps, &u, &g), 0);
    cr_assert(u == 1234 && g == 5678, "%u:%u", (unsigned)u, (unsigned)g);
    u = g = 7;
    cr_assert_eq(agent_xml_qemu_owner(named, caps, &u, &g), 0, "%s",
                 lb_error_msg());
    cr_assert(u == 0 && g == 0, "%u:%u", (unsigned)u, (unsigned)g);
    /* a host without the DAC driver: QEMU runs as libvirtd, root */
    u = g = 7;
    cr_assert_eq(agent_xml_qemu_owner(plain,
                                      "<capabilities><host/>"
                                      "</capabilities>",
                                      &u, &g),
                 0);
    cr_assert(u == 0 && g == 0, "%u:%u", (unsigned)u, (unsigned)g);
    cr_assert_eq(agent_xml_qemu_owner(bad, caps, &u, &g), -1);
    cr_assert(strstr(lb_error_msg(), "'+12' is not USER:GROUP"), "%s",
              lb_error_msg());
    cr_assert_eq(agent_xml_qemu_owner(unknown, caps, &u, &g), -1);
    cr_assert(strstr(lb_error_msg(), "lb-no-such-user:root"), "%s",
              lb_error_msg());
    cr_assert_eq(agent_xml_qemu_owner(plain, "<capabilities", &u, &g), -1);
}
