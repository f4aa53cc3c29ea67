// ZSPOOL_API marks what libzspool.so exports: the public C and C++ API and nothing else.
//
// Every zspool library is compiled with -fvisibility=hidden; a declaration marked ZSPOOL_API
// gets default visibility, so the shared library's dynamic symbol table holds exactly the
// marked classes and functions (tests/consumer/run.sh links a consumer against it). The static
// archives carry the same attributes, which change nothing for a static link.
#pragma once

#if defined(__GNUC__) || defined(__clang__)
#define ZSPOOL_API __attribute__((visibility("default")))
#else
#define ZSPOOL_API
#endif
