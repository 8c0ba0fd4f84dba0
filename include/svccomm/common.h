/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
#ifndef SVCCOMM_COMMON_H
#define SVCCOMM_COMMON_H

/* SVC_EXTERN marks every public declaration. The library is built with
 * -fvisibility=hidden, so only what carries this mark is exported. */
#if defined(_WIN32)
#if defined(SVC_BUILDING_SHARED)
#define SVC_EXTERN __declspec(dllexport)
#elif defined(SVC_USING_SHARED)
#define SVC_EXTERN __declspec(dllimport)
#else
#define SVC_EXTERN
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define SVC_EXTERN __attribute__((visibility("default")))
#else
#define SVC_EXTERN
#endif

#endif /* SVCCOMM_COMMON_H */
