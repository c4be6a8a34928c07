/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxml2, loaded when a command first handles a domain's XML (see
 * xml_dl.h and common/dl.h).
 */
#include "agent/live/xml_dl.h"

void *lb_xml_fn[LB_XML_N];

static const char *const names[] = {LB_XML_FUNCS(LB_DL_NAME)};

static struct lb_dl xml = {
    .soname = "libxml2.so.2",
    .package = "libxml2",
    .names = names,
    .n = LB_XML_N,
    .fn = lb_xml_fn,
};

int
lb_xml_load(void)
{
    return lb_dl_load(&xml, "a domain's XML");
}
