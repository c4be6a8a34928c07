/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxml2, loaded when a command first handles a domain's XML (see
 * xml_dl.h and common/dl.h).
 */
#include "agent/live/xml_dl.h"

LB_DL_DEFINE(lb_xml, LB_XML_FUNCS, LB_XML_N, "libxml2.so.2", "libxml2",
             "a domain's XML");
