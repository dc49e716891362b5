/* Part b: calls a.c's helper, reads its table, and holds a pointer to
 * helper in data (an absolute relocation across the parts). */
#include <string.h>

int helper(int x);
int helper_calls(void);
extern double table[4];
const char *a_name(void);

static int (*const hook)(int) = helper;
static char buf[32];                   /* .bss of the second part */

int api(int x) { return hook(x) + (int)table[x & 3]; }

const char *names(void) {
  strcpy(buf, a_name());
  strcat(buf, " and part b");
  return buf;
}

int api_calls(void) { return helper_calls(); }
