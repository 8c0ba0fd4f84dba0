/* Copyright libsvccomm contributors. SPDX-License-Identifier: MIT */
/* Runs a libFuzzer target over saved inputs without libFuzzer, so that any
 * compiler (and valgrind or the sanitizers) can replay the corpus in CI.
 * Arguments are directories, whose regular files are each one input, or
 * single files (a crash file to reproduce). Exits non-zero when no input
 * was found, so that a missing corpus fails rather than passes. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs one file. Returns 1 when it was an input, 0 when skipped, -1 on a
 * read error. */
static int replay_file(const char *path) {
  struct stat st;
  FILE *fp;
  uint8_t *buf;
  size_t size;

  if (stat(path, &st) != 0) {
    perror(path);
    return -1;
  }
  if (!S_ISREG(st.st_mode))
    return 0;
  size = (size_t)st.st_size;
  /* An exact-size copy, so that the sanitizers catch reads past the end. */
  buf = malloc(size > 0 ? size : 1);
  fp = fopen(path, "rb");
  if (buf == NULL || fp == NULL || fread(buf, 1, size, fp) != size) {
    perror(path);
    free(buf);
    if (fp != NULL)
      fclose(fp);
    return -1;
  }
  fclose(fp);
  LLVMFuzzerTestOneInput(buf, size);
  free(buf);
  return 1;
}

static int replay_dir(const char *dir, size_t *count) {
  DIR *d = opendir(dir);
  struct dirent *e;
  char path[4096];
  int rc;

  if (d == NULL) {
    perror(dir);
    return -1;
  }
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >=
        sizeof(path)) {
      fprintf(stderr, "%s/%s: path too long\n", dir, e->d_name);
      closedir(d);
      return -1;
    }
    rc = replay_file(path);
    if (rc < 0) {
      closedir(d);
      return -1;
    }
    *count += (size_t)rc;
  }
  closedir(d);
  return 0;
}

int main(int argc, char **argv) {
  struct stat st;
  size_t count = 0;
  int i;
  int rc;

  for (i = 1; i < argc; i++) {
    if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
      if (replay_dir(argv[i], &count) != 0)
        return 1;
    } else {
      rc = replay_file(argv[i]);
      if (rc < 0)
        return 1;
      count += (size_t)rc;
    }
  }
  if (count == 0) {
    fprintf(stderr, "%s: no inputs found\n", argv[0]);
    return 1;
  }
  printf("%zu inputs replayed without a failure\n", count);
  return 0;
}
