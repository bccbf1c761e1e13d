/* Pieces the `tessera` subcommands share: errors, options, sessions, JSON. */
#ifndef TSR_TOOLS_CLI_H
#define TSR_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tessera/tessera.h"

typedef struct cli_opts {
  const char *model;
  const char *devices;
  const char *output_dir;
  int threads, strict, json, repeat, profile;
  int fp16;                     /* --fp16: the session allows float16 (TSR_PRECISION_FP16) */
  int warmup, iterations;       /* bench */
  const char *profile_file;     /* bench --profile FILE */
  bool *is_shape;               /* per --input/--shape: true when it gave dims */
  const char **in_names, **in_files;
  size_t n_in;
} cli_opts;

/* Print "tessera: error: ..." on stderr and return 1. */
int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* fail() with a status' message; frees the status. */
int fail_status(const char *what, tsr_status s);
double now_ms(void);
/* Parses the options after argv[1] (the subcommand). Returns 0 or an exit code. */
int parse_args(int argc, char **argv, cli_opts *o);
void free_args(cli_opts *o);
/* Loads o->model and creates a session for o->devices (or `devices` when non-NULL). */
int load_session(tsr_runtime *rt, const cli_opts *o, const char *devices, tsr_model **model,
                 tsr_session **session);
void json_string(FILE *f, const char *s);
/* "1x3x224x224" -> dims; 0 on success. An empty string is a scalar. */
int parse_shape(const char *text, int64_t *dims, size_t *rank, size_t max);
/* Prints the time per operator type, most expensive first. */
void print_op_profile(const tsr_profile *profile, uint64_t runs);

/* tessera bench (tools/bench.c). */
int cmd_bench(tsr_runtime *rt, const cli_opts *o);

#endif
