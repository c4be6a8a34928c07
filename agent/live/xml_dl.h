/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libxml2, loaded when a command first reads or writes a domain's XML
 * (xml_dl.c): the commands that never do (list, show, copy, prune,
 * verify, backup-image, ...) do not load it and ICU behind it (about 15 ms
 * of every start on a cold cache). Each function the live layer calls is
 * named here once; LX(f, args...) calls f through the table, with the type
 * of libxml2's own declaration. xmlFree is a variable in libxml2 (a
 * pointer to the deallocator it was set up with), called as LX_FREE(p).
 */
#ifndef LB_AGENT_XML_DL_H
#define LB_AGENT_XML_DL_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#define LB_XML_FUNCS(X)                                                        \
    X(xmlDocDumpMemory)                                                        \
    X(xmlDocGetRootElement)                                                    \
    X(xmlDocSetRootElement)                                                    \
    X(xmlEncodeSpecialChars)                                                   \
    X(xmlFree)                                                                 \
    X(xmlFreeDoc)                                                              \
    X(xmlFreeNode)                                                             \
    X(xmlGetProp)                                                              \
    X(xmlNewChild)                                                             \
    X(xmlNewDoc)                                                               \
    X(xmlNewNode)                                                              \
    X(xmlNodeAddContent)                                                       \
    X(xmlNodeGetContent)                                                       \
    X(xmlNodeSetContent)                                                       \
    X(xmlReadMemory)                                                           \
    X(xmlRemoveProp)                                                           \
    X(xmlSetProp)                                                              \
    X(xmlUnlinkNode)                                                           \
    X(xmlUnsetProp)                                                            \
    X(xmlXPathEvalExpression)                                                  \
    X(xmlXPathFreeContext)                                                     \
    X(xmlXPathFreeObject)                                                      \
    X(xmlXPathNewContext)

#include "common/dl.h"

/* lb_xml_fn, set by a successful lb_xml_load (once, for the process). */
LB_DL_DECLARE(lb_xml, LB_XML_FUNCS, LB_XML_N);

/* A call of libxml2's function f through the table, with its arguments:
 * LX(xmlFreeDoc, doc). */
#define LX(f, ...) LB_DL_CALL(lb_xml_fn, f, __VA_ARGS__)
/* xmlFree(p): the deallocator the variable xmlFree holds. */
#define LX_FREE(p) ((*(xmlFreeFunc *)lb_xml_fn[LB_DL_IDX_xmlFree])(p))

#endif
