/* Lowering of DFT and STFT (opset 17) on float32 and float64, as devices/cpu/signal.c defines
 * them (forward e^{-2 pi i k n / N}; the inverse conjugated and scaled by 1/N; a signal shorter
 * than dft_length zero-padded, a longer one cut). The sizes that shape the output (dft_length,
 * frame_step, frame_length) must be constants. One work item per output bin sums the line
 * directly (O(N) each, O(N^2) per line, unlike the CPU plugin's FFTs), with the twiddle's
 * angle reduced exactly (k * n mod N) and computed in double where the device has
 * cl_khr_fp64, else in float. */
#include "ops_util.h"

static int signal_dtype(ocl_lower *L, uint32_t dt) {
  if (dt != TSR_DTYPE_FLOAT32 && dt != TSR_DTYPE_FLOAT64)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "dtype %s not supported (float32 and float64 are)",
                  dtype_name(dt));
  return numeric_dtype_ok(L, dt);
}

/* The kernel of dtype dt computing in double where possible. */
static const char *signal_kernel(ocl_lower *L, uint32_t dt, const char *base, char *buf,
                                 size_t size) {
  snprintf(buf, size, "%s_%s", base,
           dt == TSR_DTYPE_FLOAT64 ? "f64"
           : L->dev->fp64          ? "f32d"
                                   : "f32");
  return buf;
}

static bool const_scalar(ocl_lower *L, int32_t v, int64_t *out) {
  size_t n = 0;
  int64_t buf[1];
  return v >= 0 && const_ints(L, v, buf, 1, &n) && n == 1 && (*out = buf[0], true);
}

static int lower_dft(ocl_lower *L) {
  int32_t x = in_idx(L, 0), y = out_idx(L, 0), dl = in_idx(L, 1);
  if (x < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "absent input or output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y);
  TRY(signal_dtype(L, vx.dtype));
  if (vy.dtype != vx.dtype)
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "output dtype differs");
  int64_t r = vx.rank;
  if (r < 3 || r > 16 || (vx.dims[r - 1] != 1 && vx.dims[r - 1] != 2))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "input must be [batch, signal dims..., 1 or 2]");
  int64_t axis = attr_int(L, "axis", 1);
  if (axis < 0)
    axis += r;
  if (axis < 1 || axis > r - 2)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "axis must name a signal dim");
  bool onesided = attr_int(L, "onesided", 0) != 0, inverse = attr_int(L, "inverse", 0) != 0;
  if (onesided && vx.dims[r - 1] == 2)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "onesided output needs a real input");
  int64_t len = vx.dims[axis];
  if (dl >= 0 && !const_scalar(L, dl, &len))
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "dft_length must be a constant scalar");
  if (len < 1 || len > MAX_ELEMS)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "bad DFT length");
  int64_t bins = onesided ? len / 2 + 1 : len;
  if (vy.rank != vx.rank || vy.dims[axis] != bins || vy.dims[r - 1] != 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
  if (!L->exe)
    return 0;
  int64_t outer = prod(vx.dims, 0, (uint32_t)axis),
          inner = prod(vx.dims, (uint32_t)axis + 1, (uint32_t)r - 1);
  /* p: [outer, inner, n_sig, comps, len, bins, inverse] */
  int32_t p[7] = {
      (int32_t)outer, (int32_t)inner, (int32_t)vx.dims[axis], (int32_t)vx.dims[r - 1], (int32_t)len,
      (int32_t)bins,  inverse};
  char name[32];
  uint32_t es = dtype_size(vx.dtype);
  STEP(s, signal_kernel(L, vx.dtype, "dft", name, sizeof name));
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_params(L, s, p, 7));
  ocl__launch_1d(s, (uint64_t)(outer * bins * inner));
  return 0;
}

static int lower_stft(ocl_lower *L) {
  int32_t x = in_idx(L, 0), fs = in_idx(L, 1), win = in_idx(L, 2), fl = in_idx(L, 3),
          y = out_idx(L, 0);
  if (x < 0 || fs < 0 || y < 0)
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "expects a signal, a frame_step and an output");
  tsr_plugin_value vx = vinfo(L, x), vy = vinfo(L, y), vw = vinfo(L, win);
  TRY(signal_dtype(L, vx.dtype));
  if (vy.dtype != vx.dtype || (win >= 0 && vw.dtype != vx.dtype))
    return refuse(L, TSR_PLUGIN_REASON_DTYPE, "signal, window and output dtypes differ");
  if (vx.rank != 3 || (vx.dims[2] != 1 && vx.dims[2] != 2))
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "signal must be [batch, length, 1 or 2]");
  if (win >= 0 && vw.rank != 1)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "window must be 1-D");
  int64_t step, len = win >= 0 ? vw.dims[0] : 0;
  if (!const_scalar(L, fs, &step))
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "frame_step must be a constant scalar");
  if (fl >= 0 && !const_scalar(L, fl, &len))
    return refuse(L, TSR_PLUGIN_REASON_OTHER, "frame_length must be a constant scalar");
  if (win < 0 && fl < 0)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "needs a window or a frame_length");
  if ((win >= 0 && vw.dims[0] != len) || step < 1 || len < 1 || len > vx.dims[1])
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "bad frame_step, frame_length or window");
  bool onesided = attr_int(L, "onesided", 1) != 0;
  if (onesided && vx.dims[2] == 2)
    return refuse(L, TSR_PLUGIN_REASON_ATTRIBUTE, "onesided output needs a real signal");
  int64_t frames = (vx.dims[1] - len) / step + 1, bins = onesided ? len / 2 + 1 : len;
  if (vy.rank != 4 || vy.dims[0] != vx.dims[0] || vy.dims[1] != frames || vy.dims[2] != bins ||
      vy.dims[3] != 2)
    return refuse(L, TSR_PLUGIN_REASON_SHAPE, "unexpected output shape");
  if (!L->exe)
    return 0;
  /* p: [batch, frames, bins, length, comps, step, frame_length, has_window] */
  int32_t p[8] = {(int32_t)vx.dims[0], (int32_t)frames, (int32_t)bins, (int32_t)vx.dims[1],
                  (int32_t)vx.dims[2], (int32_t)step,   (int32_t)len,  win >= 0};
  char name[32];
  uint32_t es = dtype_size(vx.dtype);
  STEP(s, signal_kernel(L, vx.dtype, "stft", name, sizeof name));
  TRY(ocl__arg_value(L, s, y, es));
  TRY(ocl__arg_value(L, s, x, es));
  TRY(ocl__arg_value(L, s, win, es));
  TRY(ocl__arg_params(L, s, p, 8));
  ocl__launch_1d(s, (uint64_t)(vx.dims[0] * frames * bins));
  return 0;
}

int ocl__lower_signal(ocl_lower *L, const char *op) {
  if (!strcmp(op, "DFT"))
    return lower_dft(L);
  if (!strcmp(op, "STFT"))
    return lower_stft(L);
  return OCL_LOWER_NOT_MINE;
}
