#include <stdio.h>
int api(int x);
int api_calls(void);
const char *names(void);
int main(void) {
  int s = 0;
  for (int i = 0; i < 10; i++) s += api(i);
  printf("%d %d %s\n", s, api_calls(), names());
  return 0;
}
