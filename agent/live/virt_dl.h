/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvirt, loaded when a command first talks to a hypervisor (virt_dl.c):
 * the commands that never do (list, show, restore-image, backup-image,
 * copy, map, mount, verify, ...) do not load it and the sixty libraries
 * behind it, about 8 ms of every start on a warm cache and 50 ms or more
 * on a cold one. Each function the live layer calls is named here once;
 * LV(f, args...) calls f through the table, with the type of libvirt's
 * own declaration: LV(virGetLastError) is virGetLastError().
 */
#ifndef LB_AGENT_VIRT_DL_H
#define LB_AGENT_VIRT_DL_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#define LB_VIRT_FUNCS(X)                                                       \
    X(virConnectClose)                                                         \
    X(virConnectDomainEventDeregisterAny)                                      \
    X(virConnectDomainEventRegisterAny)                                        \
    X(virConnectGetCapabilities)                                               \
    X(virConnectIsAlive)                                                       \
    X(virConnectListAllDomains)                                                \
    X(virConnectOpen)                                                          \
    X(virConnectOpenReadOnly)                                                  \
    X(virConnectRegisterCloseCallback)                                         \
    X(virConnectSetKeepAlive)                                                  \
    X(virConnectUnregisterCloseCallback)                                       \
    X(virDomainAgentSetResponseTimeout)                                        \
    X(virDomainBlockCommit)                                                    \
    X(virDomainBlockCopy)                                                      \
    X(virDomainBlockJobAbort)                                                  \
    X(virDomainCreate)                                                         \
    X(virDomainDefineXML)                                                      \
    X(virDomainDestroy)                                                        \
    X(virDomainFSFreeze)                                                       \
    X(virDomainFSThaw)                                                         \
    X(virDomainFree)                                                           \
    X(virDomainGetBlockJobInfo)                                                \
    X(virDomainGetName)                                                        \
    X(virDomainGetState)                                                       \
    X(virDomainGetUUIDString)                                                  \
    X(virDomainGetXMLDesc)                                                     \
    X(virDomainIsActive)                                                       \
    X(virDomainIsPersistent)                                                   \
    X(virDomainLookupByName)                                                   \
    X(virDomainLookupByUUIDString)                                             \
    X(virDomainManagedSave)                                                    \
    X(virDomainResume)                                                         \
    X(virDomainSnapshotCreateXML)                                              \
    X(virDomainSnapshotFree)                                                   \
    X(virDomainSuspend)                                                        \
    X(virDomainUndefine)                                                       \
    X(virEventAddTimeout)                                                      \
    X(virEventRegisterDefaultImpl)                                             \
    X(virEventRemoveTimeout)                                                   \
    X(virEventRunDefaultImpl)                                                  \
    X(virGetLastError)                                                         \
    X(virGetLastErrorCode)                                                     \
    X(virGetLastErrorMessage)                                                  \
    X(virSetErrorFunc)

#include "common/dl.h"

/* lb_virt_fn, set by a successful lb_virt_load (once, for the process). */
LB_DL_DECLARE(lb_virt, LB_VIRT_FUNCS, LB_VIRT_N);

/* A call of libvirt's function f through the table, with its arguments:
 * LV(virConnectOpen, uri). */
#define LV(f, ...) LB_DL_CALL(lb_virt_fn, f, __VA_ARGS__)

#endif
