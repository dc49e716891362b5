/* main.c: calls the models that CMakeLists.txt compiles with attnc_add_model
 * (or that tests/package/package_test.sh compiles with the installed attnc
 * for the pkg-config build). */
#include <stdio.h>

#include "m_model.h"
#include "w_lin.h"

int main(void) {
  const float x[4] = {1, 1, 2, -1};
  float y[4];
  /* scale: y = 2x + 1 */
  attnrt_ctx *s = attnrt_ctx_new(&m_scale_model);
  if (!s || m_scale(s, x, y, 4) != ATTNRT_OK) return 1;
  printf("m_scale: [%g, %g, %g, %g]\n", y[0], y[1], y[2], y[3]);
  attnrt_ctx_free(s);
  /* lin with the weights embedded: y = x W^T + b */
  attnrt_ctx *w = attnrt_ctx_new(&w_lin_model);
  if (!w || w_lin(w, x, y, 2) != ATTNRT_OK) return 1;
  printf("w_lin: [%g, %g, %g, %g]\n", y[0], y[1], y[2], y[3]);
  /* m_lin has no weights embedded: a call without them is an error */
  attnrt_ctx *m = attnrt_ctx_new(&m_lin_model);
  if (!m || m_lin(m, x, y, 2) == ATTNRT_OK) return 1;
  printf("m_lin: %s\n", attnrt_ctx_error(m));
  attnrt_ctx_free(m);
  attnrt_ctx_free(w);
  return 0;
}
