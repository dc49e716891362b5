/* peakrss MAX_MIB CMD ARGS...: runs CMD, prints its peak resident set size
 * (getrusage through wait4) and fails if CMD fails or its peak exceeds
 * MAX_MIB mebibytes. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: peakrss MAX_MIB CMD ARGS...\n");
    return 2;
  }
  long max_mib = atol(argv[1]);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    execvp(argv[2], argv + 2);
    perror("peakrss: exec");
    _exit(127);
  }
  int status;
  struct rusage ru;
  if (wait4(pid, &status, 0, &ru) < 0) return 2;
  double mib = (double)ru.ru_maxrss / 1024.0;
  printf("peakrss: %s: peak RSS %.1f MiB (limit %ld MiB)\n", argv[2], mib, max_mib);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "peakrss: the command failed\n");
    return 1;
  }
  return mib <= (double)max_mib ? 0 : 1;
}
