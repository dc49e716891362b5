/* Links only while helper is global: elfjoin -l helper must make it fail. */
int helper(int x);
int main(void) { return helper(1) == 4 ? 0 : 1; }
