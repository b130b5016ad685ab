/* Preloaded into the stand-in Scaphandre image (scripts/kube-node/build-images.sh).
 *
 * Scaphandre 1.0 reads /proc/modules to check that a RAPL kernel module is loaded, and
 * panics when the file does not exist - as on this test machine's kernel, built without
 * loadable modules. Opening exactly "/proc/modules" opens GREENFLOW_PROC_MODULES instead,
 * a one-line file naming intel_rapl_common; every other path is untouched. Only the test
 * image carries this: it simulates the kernel module list, nothing about energy. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>

static const char *FAKE = "/etc/greenflow-standin/proc-modules";

static const char *redirect(const char *path) {
    return (path && strcmp(path, "/proc/modules") == 0) ? FAKE : path;
}

static mode_t mode_arg(int flags, va_list ap) {
    return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

#define WRAP_OPEN(name)                                                        \
    int name(const char *path, int flags, ...) {                               \
        static int (*real)(const char *, int, ...);                            \
        va_list ap;                                                            \
        va_start(ap, flags);                                                   \
        mode_t mode = mode_arg(flags, ap);                                     \
        va_end(ap);                                                            \
        if (!real) real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        return real(redirect(path), flags, mode);                              \
    }

#define WRAP_OPENAT(name)                                                      \
    int name(int dirfd, const char *path, int flags, ...) {                    \
        static int (*real)(int, const char *, int, ...);                       \
        va_list ap;                                                            \
        va_start(ap, flags);                                                   \
        mode_t mode = mode_arg(flags, ap);                                     \
        va_end(ap);                                                            \
        if (!real) real = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, #name); \
        return real(dirfd, redirect(path), flags, mode);                       \
    }

WRAP_OPEN(open)
WRAP_OPEN(open64)
WRAP_OPENAT(openat)
WRAP_OPENAT(openat64)
