/* Part a of the elfjoin tests: code, data, bss, read-only data, strings,
 * and a function (helper) that b.c calls and that elfjoin -l makes local. */
static int calls;                      /* .bss */
double table[4] = {1.5, 2.5, 3.5, 4.5}; /* .data */
static const float weights[8] = {0.5f, 1, 2, 4, 8, 16, 32, 64};   /* .rodata */

int helper(int x) {
  calls++;
  return x * 3 + (int)weights[x & 7];
}

int helper_calls(void) { return calls; }

const char *a_name(void) { return "part a"; }
