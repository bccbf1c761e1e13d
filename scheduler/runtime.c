/* The runtime: the built-in CPU plugin, plugin discovery and loading with version
 * negotiation, and the device list. */
#include <dirent.h>
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler/scheduler.h"

/* ---- Host services for plugins -------------------------------------------------------- */

static void host_set_error(tsr_plugin_error *err, const char *message) {
  if (!err) return;
  snprintf(err->message, sizeof err->message, "%s", message ? message : "");
}

static void host_log(int level, const char *message) {
  const char *lvl = getenv("TESSERA_LOG");
  int max = lvl ? atoi(lvl) : 1;
  if (level <= max) fprintf(stderr, "tessera: %s\n", message);
}

static void *host_alloc(size_t size) { return malloc(size ? size : 1); }
static void host_free(void *p) { free(p); }

const tsr_plugin_host tsr__plugin_host = {
    .struct_size = sizeof(tsr_plugin_host),
    .abi_version = TSR_PLUGIN_ABI_VERSION,
    .graph = &tsr__graph_api,
    .set_error = host_set_error,
    .log = host_log,
    .alloc = host_alloc,
    .free = host_free,
};

const char *tsr__plugin_node_note(const tsr__plugin *p, void *executable, uint32_t node) {
  const tsr_plugin_table *t = p ? p->table : NULL;
  if (!t || !executable || t->abi_version < 2 ||
      t->struct_size < offsetof(tsr_plugin_table, node_note) + sizeof t->node_note || !t->node_note)
    return "";
  const char *note = t->node_note(p->state, executable, node);
  return note ? note : "";
}

tsr_status tsr__plugin_status(tsr_plugin_result r, const tsr_plugin_error *err, const char *fmt,
                              ...) {
  if (r == TSR_PLUGIN_OK) return NULL;
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  tsr_status_code code = TSR_STATUS_DEVICE;
  switch (r) {
  case TSR_PLUGIN_ERROR_INVALID: code = TSR_STATUS_INVALID_ARGUMENT; break;
  case TSR_PLUGIN_ERROR_UNSUPPORTED: code = TSR_STATUS_UNSUPPORTED; break;
  case TSR_PLUGIN_ERROR_OUT_OF_MEMORY: code = TSR_STATUS_OUT_OF_MEMORY; break;
  case TSR_PLUGIN_ERROR_INTERNAL: code = TSR_STATUS_INTERNAL; break;
  default: break;
  }
  const char *msg = err && err->message[0] ? err->message : "(the plugin gave no message)";
  return tsr__status_make(code, "%s: %s", what, msg);
}

/* ---- Plugins -------------------------------------------------------------------------- */

static tsr_status record_failure(tsr_runtime *rt, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static tsr_status record_failure(tsr_runtime *rt, const char *path, const char *fmt, ...) {
  char reason[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  tsr__plugin_failure *f =
      tsr__realloc(&rt->alloc, rt->failures, (rt->n_failures + 1) * sizeof *rt->failures);
  if (!f) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory recording a plugin");
  rt->failures = f;
  f[rt->n_failures].path = tsr__strdup(&rt->alloc, path ? path : "(built-in)");
  f[rt->n_failures].reason = tsr__strdup(&rt->alloc, reason);
  rt->n_failures++;
  if (rt->log_level >= 2) fprintf(stderr, "tessera: skipped plugin %s: %s\n", path, reason);
  return NULL;
}

/* Checks a table's header and the members a v1 host calls. */
static const char *table_problem(const tsr_plugin_table *t) {
  if (t->struct_size < offsetof(tsr_plugin_table, release_executable) + sizeof(void *))
    return "its table is smaller than ABI version 1 requires";
  if (t->abi_version < 1) return "it reports ABI version 0";
  if (t->abi_version > TSR_PLUGIN_ABI_VERSION)
    return "it answered with an ABI version newer than the host asked for";
  if (!t->name || !*t->name) return "its table has no name";
  /* Name the missing slot: a vendor reading the skip reason should see what to fix. */
#define REQUIRE_SLOT(member) \
  if (!t->member) return "its table lacks the required function '" #member "' (it is NULL)"
  REQUIRE_SLOT(init);
  REQUIRE_SLOT(shutdown);
  REQUIRE_SLOT(device_count);
  REQUIRE_SLOT(device_props);
  REQUIRE_SLOT(supports);
  REQUIRE_SLOT(alloc);
  REQUIRE_SLOT(free);
  REQUIRE_SLOT(write);
  REQUIRE_SLOT(read);
  REQUIRE_SLOT(compile);
  REQUIRE_SLOT(execute);
  REQUIRE_SLOT(release_executable);
#undef REQUIRE_SLOT
  return NULL;
}

tsr_status tsr__runtime_add_plugin(tsr_runtime *rt, const tsr_plugin_table *table,
                                   void *dl_handle, const char *path) {
  const char *problem = table_problem(table);
  if (problem) {
    if (dl_handle) dlclose(dl_handle);
    return record_failure(rt, path, "%s", problem);
  }
  for (size_t i = 0; i < rt->n_plugins; i++)
    if (!strcmp(rt->plugins[i]->table->name, table->name)) {
      if (dl_handle) dlclose(dl_handle);
      return record_failure(rt, path, "a plugin named '%s' is already loaded", table->name);
    }
  tsr_plugin_error err = {{0}};
  void *state = NULL;
  tsr_plugin_result r = table->init(&tsr__plugin_host, &state, &err);
  if (r != TSR_PLUGIN_OK) {
    if (dl_handle) dlclose(dl_handle);
    return record_failure(rt, path, "init failed: %s",
                          err.message[0] ? err.message : "(no message)");
  }
  uint32_t n_dev = table->device_count(state);
  tsr__plugin *p = tsr__calloc(&rt->alloc, 1, sizeof *p);
  tsr__plugin **plugins =
      p ? tsr__realloc(&rt->alloc, rt->plugins, (rt->n_plugins + 1) * sizeof *plugins) : NULL;
  tsr__device *devs = plugins ? tsr__realloc(&rt->alloc, rt->devices,
                                             (rt->n_devices + n_dev + 1) * sizeof *devs)
                              : NULL;
  if (plugins) rt->plugins = plugins;
  if (devs) rt->devices = devs;
  if (!p || !plugins || !devs) {
    table->shutdown(state);
    tsr__free(&rt->alloc, p);
    if (dl_handle) dlclose(dl_handle);
    return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory adding plugin '%s'",
                            table->name);
  }
  p->table = table;
  p->state = state;
  p->dl_handle = dl_handle;
  p->path = tsr__strdup(&rt->alloc, path ? path : "(built-in)");
  rt->plugins[rt->n_plugins++] = p;
  for (uint32_t d = 0; d < n_dev; d++) {
    tsr__device *dev = &rt->devices[rt->n_devices];
    memset(dev, 0, sizeof *dev);
    dev->plugin = p;
    dev->local_index = d;
    dev->props.struct_size = sizeof dev->props;
    if (table->device_props(state, d, &dev->props) != TSR_PLUGIN_OK) continue;
    dev->props.name[sizeof dev->props.name - 1] = '\0';
    dev->props.vendor[sizeof dev->props.vendor - 1] = '\0';
    dev->props.driver[sizeof dev->props.driver - 1] = '\0';
    dev->props.features[sizeof dev->props.features - 1] = '\0';
    snprintf(dev->plugin_name, sizeof dev->plugin_name, "%s", table->name);
    if (n_dev == 1)
      snprintf(dev->id, sizeof dev->id, "%s", table->name);
    else
      snprintf(dev->id, sizeof dev->id, "%s:%u", table->name, d);
    rt->n_devices++;
  }
  return NULL;
}

tsr_status tsr_runtime_load_plugin(tsr_runtime *rt, const char *path) {
  if (!rt || !path) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "runtime and path are required");
  size_t before = rt->n_failures;
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *why = dlerror();
    TSR_RETURN_IF_ERROR(record_failure(rt, path, "cannot load: %s", why ? why : "dlopen failed"));
  } else {
    tsr_plugin_query_fn query = (tsr_plugin_query_fn)dlsym(h, TSR_PLUGIN_QUERY_SYMBOL);
    if (!query) {
      dlclose(h);
      TSR_RETURN_IF_ERROR(
          record_failure(rt, path, "it does not export %s", TSR_PLUGIN_QUERY_SYMBOL));
    } else {
      const tsr_plugin_table *t = query(TSR_PLUGIN_ABI_VERSION);
      if (!t) {
        dlclose(h);
        TSR_RETURN_IF_ERROR(record_failure(
            rt, path, "it cannot serve a host of ABI version %u (its query returned NULL)",
            TSR_PLUGIN_ABI_VERSION));
      } else {
        TSR_RETURN_IF_ERROR(tsr__runtime_add_plugin(rt, t, h, path));
      }
    }
  }
  if (rt->n_failures > before)
    return tsr__status_make(TSR_STATUS_DEVICE, "plugin %s was not loaded: %s", path,
                            rt->failures[rt->n_failures - 1].reason);
  return NULL;
}

/* The folders discovery has scanned, by real path, so that one folder named twice (say the
 * library's own folder again in TESSERA_PLUGIN_PATH) is not scanned twice. */
typedef struct scanned_dirs {
  char paths[16][PATH_MAX];
  size_t n;
} scanned_dirs;

/* Loads every "libtessera_*.so" in a folder; failures are recorded, not returned. */
static tsr_status discover_in(tsr_runtime *rt, const char *dir, scanned_dirs *seen) {
  char real[PATH_MAX];
  if (realpath(dir, real)) {
    for (size_t i = 0; i < seen->n; i++)
      if (!strcmp(seen->paths[i], real)) return NULL;
    if (seen->n < sizeof seen->paths / sizeof seen->paths[0])
      memcpy(seen->paths[seen->n++], real, sizeof real);
  }
  DIR *d = opendir(dir);
  if (!d) return NULL;
  struct dirent *e;
  char **names = NULL;
  size_t n = 0;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (strncmp(e->d_name, "libtessera_", 11) != 0 || len < 4 ||
        strcmp(e->d_name + len - 3, ".so") != 0)
      continue;
    char **nn = realloc(names, (n + 1) * sizeof *names);
    if (!nn) break;
    names = nn;
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  /* Sorted, so that device order does not depend on the file system. */
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0 && names[j] && names[j - 1] && strcmp(names[j - 1], names[j]) > 0;
         j--) {
      char *t = names[j];
      names[j] = names[j - 1];
      names[j - 1] = t;
    }
  tsr_status st = NULL;
  for (size_t i = 0; i < n; i++) {
    if (!st && names[i]) {
      char path[4096];
      snprintf(path, sizeof path, "%s/%s", dir, names[i]);
      tsr_status s = tsr_runtime_load_plugin(rt, path);
      if (s && tsr_status_code_of(s) == TSR_STATUS_OUT_OF_MEMORY)
        st = s;
      else
        tsr_status_free(s);
    }
    free(names[i]);
  }
  free(names);
  return st;
}

/* The folder libtessera itself was loaded from. */
static bool library_dir(char *out, size_t size) {
  Dl_info info;
  if (!dladdr((void *)&tsr_runtime_create, &info) || !info.dli_fname) return false;
  snprintf(out, size, "%s", info.dli_fname);
  char *slash = strrchr(out, '/');
  if (!slash) return false;
  *slash = '\0';
  return true;
}

tsr_status tsr_runtime_create(const tsr_runtime_options *options, tsr_runtime **out) {
  if (!out) return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "out is NULL");
  *out = NULL;
  tsr_runtime_options opts = {sizeof opts, NULL, 1, 1};
  if (options) {
    size_t n = options->struct_size < sizeof opts ? options->struct_size : sizeof opts;
    memcpy(&opts, options, n);
  }
  const tsr_allocator *a = opts.allocator ? opts.allocator : tsr__default_allocator();
  tsr_runtime *rt = tsr__calloc(a, 1, sizeof *rt);
  if (!rt) return tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory creating a runtime");
  rt->alloc = *a;
  rt->log_level = opts.log_level;
  tsr_status s = tsr__runtime_add_plugin(rt, tsr__cpu_plugin_query(TSR_PLUGIN_ABI_VERSION), NULL,
                                         NULL);
  if (!s && rt->n_devices == 0)
    s = tsr__status_make(TSR_STATUS_INTERNAL, "the built-in CPU plugin failed to start: %s",
                         rt->n_failures ? rt->failures[0].reason : "no device");
  if (!s && opts.discover_plugins) {
    scanned_dirs *seen = calloc(1, sizeof *seen);
    if (!seen) s = tsr__status_make(TSR_STATUS_OUT_OF_MEMORY, "out of memory finding plugins");
    char dir[4096];
    if (seen && library_dir(dir, sizeof dir)) {
      char sub[4200];
      snprintf(sub, sizeof sub, "%s/tessera", dir);
      s = discover_in(rt, sub, seen);
      if (!s) s = discover_in(rt, dir, seen);
    }
    const char *env = getenv("TESSERA_PLUGIN_PATH");
    if (!s && env && *env) {
      char *copy = strdup(env), *save = NULL;
      for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok && !s;
           tok = strtok_r(NULL, ":", &save))
        s = discover_in(rt, tok, seen);
      free(copy);
    }
    free(seen);
  }
  if (s) {
    tsr_runtime_destroy(rt);
    return s;
  }
  *out = rt;
  return NULL;
}

void tsr_runtime_destroy(tsr_runtime *rt) {
  if (!rt) return;
  tsr_allocator a = rt->alloc;
  for (size_t i = 0; i < rt->n_plugins; i++) {
    tsr__plugin *p = rt->plugins[i];
    p->table->shutdown(p->state);
    if (p->dl_handle) dlclose(p->dl_handle);
    tsr__free(&a, p->path);
    tsr__free(&a, p);
  }
  for (size_t i = 0; i < rt->n_failures; i++) {
    tsr__free(&a, rt->failures[i].path);
    tsr__free(&a, rt->failures[i].reason);
  }
  tsr__free(&a, rt->failures);
  tsr__free(&a, rt->plugins);
  tsr__free(&a, rt->devices);
  tsr__free(&a, rt);
}

size_t tsr_runtime_device_count(const tsr_runtime *rt) { return rt ? rt->n_devices : 0; }

tsr_status tsr_runtime_device_info(const tsr_runtime *rt, size_t index, tsr_device_info *out) {
  if (!rt || !out || index >= rt->n_devices)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "device index %zu out of range (%zu devices)",
                            index, rt ? rt->n_devices : 0);
  const tsr__device *d = &rt->devices[index];
  tsr_device_info info = {0};
  info.struct_size = sizeof info;
  info.id = d->id;
  info.plugin = d->plugin_name;
  info.name = d->props.name;
  info.vendor = d->props.vendor;
  info.driver = d->props.driver;
  info.features = d->props.features;
  info.kind = (tsr_device_kind)d->props.kind;
  info.flags = d->props.flags;
  info.memory_bytes = d->props.memory_bytes;
  info.compute_units = d->props.compute_units;
  tsr__copy_info(out, &info, sizeof info);
  return NULL;
}

size_t tsr_runtime_plugin_failure_count(const tsr_runtime *rt) {
  return rt ? rt->n_failures : 0;
}

tsr_status tsr_runtime_plugin_failure(const tsr_runtime *rt, size_t index, const char **out_path,
                                      const char **out_reason) {
  if (out_path) *out_path = NULL;
  if (out_reason) *out_reason = NULL;
  if (!rt || index >= rt->n_failures)
    return tsr__status_make(TSR_STATUS_INVALID_ARGUMENT, "plugin failure index %zu out of range",
                            index);
  if (out_path) *out_path = rt->failures[index].path;
  if (out_reason) *out_reason = rt->failures[index].reason;
  return NULL;
}
