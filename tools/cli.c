/* Pieces the `tessera` subcommands share. */
#include "tools/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "tessera: error: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  return 1;
}

int fail_status(const char *what, tsr_status s) {
  int rc = fail("%s: %s", what, tsr_status_message(s));
  tsr_status_free(s);
  return rc;
}

/* The slowest nodes, with how their device ran them (its plugin's note, when it gives one). */
static void print_top_nodes(const tsr_profile *profile, uint64_t runs, double total) {
  enum { TOP = 10 };
  size_t n = tsr_profile_node_count(profile), top[TOP], n_top = 0;
  double top_ms[TOP];
  for (size_t i = 0; i < n; i++) {
    tsr_profile_entry e = {sizeof e};
    if (tsr_profile_node(profile, i, &e))
      continue;
    double ms = (double)e.total_ns / 1e6 / (double)(runs ? runs : 1);
    size_t k = n_top < TOP ? n_top++ : TOP;
    if (k == TOP && ms <= top_ms[TOP - 1])
      continue;
    if (k == TOP)
      k = TOP - 1;
    for (; k > 0 && top_ms[k - 1] < ms; k--)
      top[k] = top[k - 1], top_ms[k] = top_ms[k - 1];
    top[k] = i, top_ms[k] = ms;
  }
  if (!n_top)
    return;
  printf("\n%-32s %-20s %10s %7s  %s\n", "SLOWEST NODES", "OP", "MS/RUN", "SHARE", "KERNEL");
  for (size_t k = 0; k < n_top; k++) {
    tsr_profile_entry e = {sizeof e};
    if (tsr_profile_node(profile, top[k], &e))
      continue;
    printf("%-32s %-20s %10.3f %6.1f%%  %s\n", e.name, e.op_type, top_ms[k],
           total > 0 ? 100.0 * top_ms[k] / total : 0.0, e.kernel && *e.kernel ? e.kernel : "-");
  }
}

/* Time per operator type, summed over nodes, most expensive first; then the slowest nodes. */
void print_op_profile(const tsr_profile *profile, uint64_t runs) {
  size_t n = tsr_profile_node_count(profile), n_ops = 0;
  struct op_time {
    char op[64];
    double ms;
    size_t nodes;
  } *ops = calloc(n + 1, sizeof *ops);
  if (!ops) return;
  double total = 0;
  for (size_t i = 0; i < n; i++) {
    tsr_profile_entry e = {sizeof e};
    if (tsr_profile_node(profile, i, &e)) continue;
    double ms = (double)e.total_ns / 1e6 / (double)(runs ? runs : 1);
    total += ms;
    size_t k = 0;
    while (k < n_ops && strcmp(ops[k].op, e.op_type)) k++;
    if (k == n_ops) snprintf(ops[n_ops++].op, sizeof ops[k].op, "%s", e.op_type);
    ops[k].ms += ms;
    ops[k].nodes++;
  }
  for (size_t i = 1; i < n_ops; i++)
    for (size_t j = i; j > 0 && ops[j].ms > ops[j - 1].ms; j--) {
      struct op_time t = ops[j];
      ops[j] = ops[j - 1];
      ops[j - 1] = t;
    }
  printf("%-24s %10s %7s %6s\n", "OP", "MS/RUN", "SHARE", "NODES");
  for (size_t i = 0; i < n_ops; i++)
    printf("%-24s %10.3f %6.1f%% %6zu\n", ops[i].op, ops[i].ms,
           total > 0 ? 100.0 * ops[i].ms / total : 0.0, ops[i].nodes);
  free(ops);
  print_top_nodes(profile, runs, total);
}

double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}


int parse_args(int argc, char **argv, cli_opts *o) {
  memset(o, 0, sizeof *o);
  o->repeat = 1;
  o->in_names = calloc((size_t)argc, sizeof(char *));
  o->in_files = calloc((size_t)argc, sizeof(char *));
  o->is_shape = calloc((size_t)argc, sizeof(bool));
  o->warmup = 3;
  o->iterations = 20;
  if (!o->in_names || !o->in_files || !o->is_shape) return fail("out of memory");
  bool bench = !strcmp(argv[1], "bench");
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    bool has_val = i + 1 < argc;
    if (!strcmp(a, "--input") || !strcmp(a, "--shape")) {
      if (!has_val) return fail("%s needs NAME=VALUE", a);
      char *eq = strchr(argv[i + 1], '=');
      if (!eq || eq == argv[i + 1]) return fail("%s '%s' is not NAME=VALUE", a, argv[i + 1]);
      *eq = '\0';
      o->is_shape[o->n_in] = !strcmp(a, "--shape");
      o->in_names[o->n_in] = argv[i + 1];
      o->in_files[o->n_in++] = eq + 1;
      i++;
    } else if (!strcmp(a, "--output-dir")) {
      if (!has_val) return fail("--output-dir needs a folder");
      o->output_dir = argv[++i];
    } else if (!strcmp(a, "--device")) {
      if (!has_val) return fail("--device needs a list");
      o->devices = argv[++i];
    } else if (!strcmp(a, "--threads") || !strcmp(a, "--repeat") || !strcmp(a, "--warmup") ||
               !strcmp(a, "--iterations")) {
      if (!has_val) return fail("%s needs a number", a);
      char *end;
      long v = strtol(argv[++i], &end, 10);
      long min = !strcmp(a, "--repeat") || !strcmp(a, "--iterations") ? 1 : 0;
      if (*end || v < min || v > 1000000) return fail("%s '%s' is not a valid number", a, argv[i]);
      if (!strcmp(a, "--threads"))
        o->threads = (int)v;
      else if (!strcmp(a, "--repeat"))
        o->repeat = (int)v;
      else if (!strcmp(a, "--warmup"))
        o->warmup = (int)v;
      else
        o->iterations = (int)v;
    } else if (!strcmp(a, "--strict")) {
      o->strict = 1;
    } else if (!strcmp(a, "--fp16")) {
      o->fp16 = 1;
    } else if (!strcmp(a, "--json")) {
      o->json = 1;
    } else if (!strcmp(a, "--profile") && bench) {
      if (!has_val) return fail("--profile needs a file for the trace");
      o->profile_file = argv[++i];
    } else if (!strcmp(a, "--profile")) {
      o->profile = 1;
    } else if (a[0] == '-') {
      return fail("unknown option '%s' (see 'tessera --help')", a);
    } else if (!o->model) {
      o->model = a;
    } else {
      return fail("unexpected argument '%s'", a);
    }
  }
  if (!o->model) return fail("no model file given");
  return 0;
}

int load_session(tsr_runtime *rt, const cli_opts *o, const char *devices, tsr_model **model,
                 tsr_session **session) {
  tsr_status s = tsr_model_load_file(rt, o->model, model);
  if (s) return fail_status("loading model", s);
  tsr_session_options so = {sizeof so};
  so.devices = devices ? devices : o->devices;
  so.threads = o->threads;
  so.strict = o->strict;
  so.precisions = TSR_PRECISION_FP32 | (o->fp16 ? TSR_PRECISION_FP16 : 0u);
  s = tsr_session_create(rt, *model, &so, session);
  if (s) return fail_status("creating session", s);
  return 0;
}

void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

int parse_shape(const char *text, int64_t *dims, size_t *rank, size_t max) {
  *rank = 0;
  if (!*text) return 0; /* a scalar */
  const char *p = text;
  while (*p) {
    char *end;
    long long v = strtoll(p, &end, 10);
    if (end == p || v < 0 || *rank == max) return -1;
    dims[(*rank)++] = v;
    if (*end == 'x' || *end == ',') end++;
    else if (*end) return -1;
    p = end;
  }
  return 0;
}


void free_args(cli_opts *o) {
  free(o->in_names);
  free(o->in_files);
  free(o->is_shape);
}
