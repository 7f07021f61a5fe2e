/* LD_PRELOAD counter for bench/bench_soak.py: fsync/fdatasync calls and bytes pwritten to
   regular files by this process (SQLite writes with pwrite64). Read with ctypes. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/stat.h>
static long long n_sync, n_write_bytes;
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
int fsync(int fd) { if (!real_fsync) real_fsync = dlsym(RTLD_NEXT, "fsync"); __atomic_add_fetch(&n_sync, 1, __ATOMIC_RELAXED); return real_fsync(fd); }
int fdatasync(int fd) { if (!real_fdatasync) real_fdatasync = dlsym(RTLD_NEXT, "fdatasync"); __atomic_add_fetch(&n_sync, 1, __ATOMIC_RELAXED); return real_fdatasync(fd); }
static void count(int fd, ssize_t r) { struct stat st; if (r > 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) __atomic_add_fetch(&n_write_bytes, r, __ATOMIC_RELAXED); }
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) { if (!real_pwrite64) real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64"); ssize_t r = real_pwrite64(fd, b, n, o); count(fd, r); return r; }
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) { if (!real_pwrite) real_pwrite = dlsym(RTLD_NEXT, "pwrite"); ssize_t r = real_pwrite(fd, b, n, o); count(fd, r); return r; }
long long fsc_syncs(void) { return n_sync; }
long long fsc_file_bytes(void) { return n_write_bytes; }
