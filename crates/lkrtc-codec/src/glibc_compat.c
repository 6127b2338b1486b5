/* Linked into musl builds only. Debian's libvpx.a and libaom.a are built for glibc with
 * _FORTIFY_SOURCE, so they call glibc's checked variants of a few C library functions (and the
 * LFS name fopen64), which musl does not have. These definitions do what glibc's do: the check,
 * then the standard function; a failed check aborts, as glibc's __chk_fail does. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__memcpy_chk(void *dest, const void *src, size_t len, size_t destlen) {
  if (len > destlen) abort();
  return memcpy(dest, src, len);
}

void *__memset_chk(void *dest, int c, size_t len, size_t destlen) {
  if (len > destlen) abort();
  return memset(dest, c, len);
}

int __vsnprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *format, va_list ap) {
  (void)flag;
  if (maxlen > slen) abort();
  return vsnprintf(s, maxlen, format, ap);
}

int __snprintf_chk(char *s, size_t maxlen, int flag, size_t slen, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  int n = __vsnprintf_chk(s, maxlen, flag, slen, format, ap);
  va_end(ap);
  return n;
}

int __fprintf_chk(FILE *stream, int flag, const char *format, ...) {
  (void)flag;
  va_list ap;
  va_start(ap, format);
  int n = vfprintf(stream, format, ap);
  va_end(ap);
  return n;
}

int __printf_chk(int flag, const char *format, ...) {
  (void)flag;
  va_list ap;
  va_start(ap, format);
  int n = vprintf(format, ap);
  va_end(ap);
  return n;
}

/* glibc's checks that the jump goes up the stack; musl's longjmp restores the same jmp_buf that
 * musl's _setjmp filled (both libraries call the C library's _setjmp, resolved to musl's). */
_Noreturn void __longjmp_chk(jmp_buf env, int val) { longjmp(env, val); }

FILE *fopen64(const char *path, const char *mode) { return fopen(path, mode); }
