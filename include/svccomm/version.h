/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_VERSION_H
#define SVCCOMM_VERSION_H

/* The version is written here once; CMakeLists.txt reads these three lines
 * with a regular expression, so keep their shape. */
#define SVC_VERSION_MAJOR 0
#define SVC_VERSION_MINOR 1
#define SVC_VERSION_PATCH 0

#define SVC_VERSION_HEX \
  ((SVC_VERSION_MAJOR << 16) | (SVC_VERSION_MINOR << 8) | SVC_VERSION_PATCH)

#endif /* SVCCOMM_VERSION_H */
