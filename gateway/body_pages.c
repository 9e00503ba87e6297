#include "body_pages.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int gw_body_file_backed(const void *p, size_t len) {
  if (!p || len < (32u << 20)) return 0;
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return 0;
  uintptr_t a = (uintptr_t)p, b = a + len;
  char line[512];
  int ok = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi, off, inode;
    char perms[8], dev[16];
    int path_at = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &lo, &hi, perms, &off, dev, &inode, &path_at) < 6) continue;
    if (a >= lo && b <= hi) {
      /* shared ('s'), backed by a file (an inode) */
      ok = perms[3] == 's' && inode != 0;
      break;
    }
  }
  fclose(f);
  return ok;
}

void gw_body_release(const void *base, size_t from, size_t to) {
  uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
  uintptr_t lo = ((uintptr_t)base + from + page - 1) & ~(page - 1);
  uintptr_t hi = ((uintptr_t)base + to) & ~(page - 1);
  if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
