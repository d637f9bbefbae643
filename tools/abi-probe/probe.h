/*
 * Shared macros of the ABI probe. Each macro expands to an inline-asm statement whose template
 * is a marker line ("@@ ...") with the value printed by the compiler itself ("%c0" prints an
 * integer constant without punctuation). The probe is compiled with -S only, so nothing is
 * assembled or run; probe.sh collects the marker lines from the generated assembly.
 */
#ifndef ABI_PROBE_H
#define ABI_PROBE_H

#include <stddef.h>

#define PROBE_STR(x) #x
#define PROBE_XSTR(x) PROBE_STR(x)

/* size and alignment of a type */
#define P_SIZE(T)                                                                 \
  __asm__ volatile("\n@@ size " #T " %c0\n@@ align " #T " %c1\n"                \
                   : : "i"((unsigned)sizeof(T)), "i"((unsigned)_Alignof(T)))

/* offset of a field (C name; members of anonymous unions are named directly) */
#define P_OFF(T, F)                                                               \
  __asm__ volatile("\n@@ offset " #T " " #F " %c0\n"                           \
                   : : "i"((unsigned)offsetof(T, F)))

/* value of an integer constant (macro or enumerator), as a 32-bit pattern */
#define P_CONST(N)                                                                \
  __asm__ volatile("\n@@ const " #N " %c0\n" : : "i"((unsigned)(N)))

/* a GUID given by its STATIC_<name> macro (ks.h, ksproxy.h) */
#define GUID_OPS(l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8)                   \
  "i"((unsigned)(l)), "i"((unsigned)(w1)), "i"((unsigned)(w2)),                \
  "i"((unsigned)(b1)), "i"((unsigned)(b2)), "i"((unsigned)(b3)),               \
  "i"((unsigned)(b4)), "i"((unsigned)(b5)), "i"((unsigned)(b6)),               \
  "i"((unsigned)(b7)), "i"((unsigned)(b8))
#define GUID_EMIT(name, ...)                                                    \
  __asm__ volatile("\n@@ guid " name                                           \
                   " %c0 %c1 %c2 %c3 %c4 %c5 %c6 %c7 %c8 %c9 %c10\n"           \
                   : : GUID_OPS(__VA_ARGS__))
#define GUID_STATIC(name) GUID_EMIT(#name, STATIC_##name)

/* a GUID that a header only spells as a string, e.g. L"{091BB63B-...}" */
#define GUID_STRING(name)                                                       \
  __asm__ volatile("\n@@ guidstr " #name " " PROBE_XSTR(name) "\n")

/* a GUID defined with DEFINE_GUID (wdmguid.h): redefine DEFINE_GUID before including such a
 * header so that each definition becomes a function emitting a "dguid" line; probe.sh keeps
 * only the names asked for with WANT_DGUID. */
#define PROBE_DEFINE_GUID(name, l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8)     \
  void probe_dguid_##name(void) {                                               \
    __asm__ volatile("\n@@ dguid " #name                                       \
                     " %c0 %c1 %c2 %c3 %c4 %c5 %c6 %c7 %c8 %c9 %c10\n"         \
                     : : GUID_OPS(l, w1, w2, b1, b2, b3, b4, b5, b6, b7, b8)); \
  }
#define WANT_DGUID(name) __asm__ volatile("\n@@ want " #name "\n")

#endif
