// SHA-256 of a file's chunks read through mmap instead of read(): no copy out of the page cache;
// and a file's holes through SEEK_DATA/SEEK_HOLE without starting `qemu-img map`.
// On two cores the copy costs ~8% of SHA-256 throughput (measured; see README "Hash at the CPU's
// limit"), which is what the engine needs to come near `openssl speed`. Used by the hash workers
// (hash-worker.ts) for dense SHA-256 batches; everything else stays in JavaScript.
//
// The digest is OpenSSL's, taken from the symbols the node binary exports (no libcrypto is linked
// or loaded: the few prototypes are below). A file that shrinks while it is mapped raises SIGBUS on
// the next access to a page past its end: the handler returns to the batch with siglongjmp (only
// when the faulting thread is inside a batch; any other SIGBUS keeps the default action), and the
// batch fails with code EFILECHANGED, as a short read does in JavaScript.
#define _GNU_SOURCE
#include <errno.h>
#include <node_api.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
const EVP_MD *EVP_sha256(void);
int EVP_DigestInit_ex(EVP_MD_CTX *ctx, const EVP_MD *type, ENGINE *impl);
int EVP_DigestUpdate(EVP_MD_CTX *ctx, const void *d, size_t cnt);
int EVP_DigestFinal_ex(EVP_MD_CTX *ctx, unsigned char *md, unsigned int *s);

/** Bytes mapped at a time (MAP_POPULATE: the page tables are filled in one call). */
#define WINDOW (4u << 20)
/** All-zero chunks are recognised by comparing pieces of this size (no hashing needed). */
#define ZERO_PIECE (64u << 10)

static unsigned char zeros[ZERO_PIECE]; // never written
static __thread sigjmp_buf *guard;
static struct sigaction previous;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *context) {
  if (guard) siglongjmp(*guard, 1);
  // not a mapped batch: what SIGBUS did before
  if (previous.sa_flags & SA_SIGINFO && previous.sa_sigaction) {
    previous.sa_sigaction(sig, info, context);
    return;
  }
  if (previous.sa_handler != SIG_IGN && previous.sa_handler != SIG_DFL && previous.sa_handler) {
    previous.sa_handler(sig);
    return;
  }
  // the default action: pending until this handler returns (a fault would also repeat)
  signal(SIGBUS, SIG_DFL);
  raise(SIGBUS);
}

static void install(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &previous);
}

static int is_zero(const unsigned char *p, size_t n) {
  for (size_t o = 0; o < n; o += ZERO_PIECE) {
    size_t k = n - o < ZERO_PIECE ? n - o : ZERO_PIECE;
    if (p[o] != 0 || memcmp(p + o, zeros, k) != 0) return 0;
  }
  return 1;
}

static napi_value fail(napi_env env, const char *code, const char *message) {
  napi_throw_error(env, code, message);
  return NULL;
}

/**
 * sha256Chunks(fd, offset, length, chunkSize, digests, zeroFlags) → undefined
 * Hashes [offset, offset + length) of fd as chunks of chunkSize bytes (the last may be shorter):
 * digests (Uint8Array, 32 bytes per chunk) gets each non-zero chunk's SHA-256, zeroFlags
 * (Uint8Array, one byte per chunk) is 1 for a chunk of zeros only (its digest is left to the caller).
 * offset and chunkSize are multiples of the page size.
 */
static napi_value sha256_chunks(napi_env env, napi_callback_info cb) {
  size_t argc = 6;
  napi_value argv[6];
  if (napi_get_cb_info(env, cb, &argc, argv, NULL, NULL) != napi_ok || argc != 6)
    return fail(env, "EINVAL", "sha256Chunks: 6 arguments");
  int32_t fd;
  int64_t offset, length, chunk;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok ||
      napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok ||
      napi_get_value_int64(env, argv[3], &chunk) != napi_ok)
    return fail(env, "EINVAL", "sha256Chunks: numbers expected");
  long page = sysconf(_SC_PAGESIZE);
  if (offset < 0 || length < 0 || chunk <= 0 || offset % page || chunk % page || WINDOW % chunk)
    return fail(env, "EINVAL", "sha256Chunks: offset and chunk size must be page multiples dividing the window");
  void *out;
  void *flags;
  size_t out_len, flags_len;
  napi_typedarray_type t1, t2;
  if (napi_get_typedarray_info(env, argv[4], &t1, &out_len, &out, NULL, NULL) != napi_ok ||
      napi_get_typedarray_info(env, argv[5], &t2, &flags_len, &flags, NULL, NULL) != napi_ok ||
      t1 != napi_uint8_array || t2 != napi_uint8_array)
    return fail(env, "EINVAL", "sha256Chunks: Uint8Array outputs expected");
  size_t chunks = (size_t)((length + chunk - 1) / chunk);
  if (out_len < chunks * 32 || flags_len < chunks) return fail(env, "EINVAL", "sha256Chunks: outputs too small");
  pthread_once(&installed, install);

  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx) return fail(env, "ENOMEM", "sha256Chunks: no digest context");
  const EVP_MD *sha256 = EVP_sha256();
  unsigned char *volatile map = NULL; // read after a siglongjmp
  volatile size_t mapped = 0;
  sigjmp_buf jump;
  const char *code = NULL;
  const char *message = NULL;
  if (sigsetjmp(jump, 1) != 0) {
    guard = NULL;
    code = "EFILECHANGED";
    message = "file shrank while hashing (SIGBUS on a mapped page)";
  } else {
    int64_t done = 0;
    size_t index = 0;
    while (done < length) {
      size_t span = (size_t)(length - done < WINDOW ? length - done : WINDOW);
      void *m = mmap(NULL, span, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, (off_t)(offset + done));
      if (m == MAP_FAILED) {
        code = errno == ENODEV || errno == EACCES ? "ENOTSUP" : "EIO";
        message = strerror(errno);
        break;
      }
      map = (unsigned char *)m;
      mapped = span;
      guard = &jump;
      for (size_t o = 0; o < span; o += (size_t)chunk, index++) {
        const unsigned char *p = (const unsigned char *)m + o;
        size_t n = span - o < (size_t)chunk ? span - o : (size_t)chunk;
        if (is_zero(p, n)) {
          ((unsigned char *)flags)[index] = 1;
          continue;
        }
        ((unsigned char *)flags)[index] = 0;
        unsigned int len = 0;
        if (!EVP_DigestInit_ex(ctx, sha256, NULL) || !EVP_DigestUpdate(ctx, p, n) ||
            !EVP_DigestFinal_ex(ctx, (unsigned char *)out + index * 32, &len)) {
          code = "EIO";
          message = "SHA-256 failed";
          break;
        }
      }
      guard = NULL;
      munmap(m, span);
      map = NULL;
      mapped = 0;
      if (code) break;
      done += (int64_t)span;
    }
  }
  if (map) munmap((void *)map, mapped);
  EVP_MD_CTX_free(ctx);
  if (code) return fail(env, code, message);
  return NULL;
}

/** Holes listed at most (a file more fragmented than this is left to `qemu-img map`). */
#define MAX_HOLES 65536

/**
 * holes(fd, size) → Float64Array [start, length, …] of the ranges of [0, size) that are holes
 * (SEEK_DATA/SEEK_HOLE, which Node does not offer), or null when the file system cannot say or the
 * file has more than MAX_HOLES holes.
 */
static napi_value holes(napi_env env, napi_callback_info cb) {
  size_t argc = 2;
  napi_value argv[2];
  int32_t fd;
  int64_t size;
  napi_value null;
  napi_get_null(env, &null);
  if (napi_get_cb_info(env, cb, &argc, argv, NULL, NULL) != napi_ok || argc != 2 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &size) != napi_ok ||
      size < 0)
    return fail(env, "EINVAL", "holes: (fd, size) expected");
  static __thread double found[2 * MAX_HOLES];
  size_t n = 0;
  for (off_t pos = 0; pos < size;) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0 && errno != ENXIO) return null; // no SEEK_DATA here
    if (data < 0 || data > size) data = size;    // ENXIO: a hole up to the end
    if (data > pos) {
      if (n == MAX_HOLES) return null;
      found[2 * n] = (double)pos;
      found[2 * n + 1] = (double)(data - pos);
      n++;
    }
    if (data >= size) break;
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0) return null;
    pos = hole;
  }
  napi_value buffer, array;
  void *bytes;
  if (napi_create_arraybuffer(env, n * 2 * sizeof(double), &bytes, &buffer) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, n * 2, buffer, 0, &array) != napi_ok)
    return fail(env, "ENOMEM", "holes: no memory");
  if (n) memcpy(bytes, found, n * 2 * sizeof(double));
  return array;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "sha256Chunks", NAPI_AUTO_LENGTH, sha256_chunks, NULL, &fn);
  napi_set_named_property(env, exports, "sha256Chunks", fn);
  napi_create_function(env, "holes", NAPI_AUTO_LENGTH, holes, NULL, &fn);
  napi_set_named_property(env, exports, "holes", fn);
  return exports;
}
