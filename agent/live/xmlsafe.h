/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What of a domain XML reaches into the host (xmlsafe.c): for the XML of a
 * restored domain, which comes from the repository. Internal to the live
 * layer (domxml.c).
 */
#ifndef LB_AGENT_LIVE_XMLSAFE_H
#define LB_AGENT_LIVE_XMLSAFE_H

#include "common/common.h"

#include <errno.h>
#include <libxml/tree.h>

/*
 * Find the elements (and attributes) of doc that run host programs or
 * open host files, devices or sockets; remove them unless keep (an rng
 * reading a host file reads /dev/urandom instead). found gets what they
 * were, "<emulator> /usr/bin/x: a host program; ..." (NUL-terminated).
 * Returns how many were found, or -1 (error slot set).
 */
int agent_xml_host_access(xmlDocPtr doc, bool keep, struct lb_buf *found);

#endif /* LB_AGENT_LIVE_XMLSAFE_H */
