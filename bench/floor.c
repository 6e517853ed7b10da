// Not a gateway: the least any server on this machine spends per WebSocket delivery, in C. It does
// what bench/peers/floor.mjs does without Node: one epoll loop, the upgrade handshake answered by hand,
// a client's channel taken from its URL path, each Redis message framed once and written to every
// socket of its channel with one write(2), no limit and no coalescing. What the kernel does not take
// at once waits in a buffer of the socket's own and goes out when it is writable, so nothing is lost.
// The benchmark measures it as a reference, never as a peer (reference "floor-c"):
// - without REDIS_PORT (s3): the memory a server must hold per idle WebSocket, its own only;
// - with REDIS_PORT (s1, s2): the CPU and latency of fan-out itself, mostly the kernel's.
// Libraries: OpenSSL (SHA-1 and base64 of the handshake) and hiredis (RESP: its reply reader and
// command formatter).
//
// Usage: PORT=<port> [REDIS_PORT=<port>] floor-c      Prints "LISTENING" once it accepts sockets.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEAD_MAX 8192
#define GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

typedef struct room room_t;

typedef struct {
  int fd;
  int open;             // the handshake is answered
  int dead;             // a write failed: closed after the fan-out that found it
  char *in;             // the handshake request until it is whole; afterwards unused
  size_t inlen;
  char *out;            // bytes the kernel did not take yet
  size_t outlen, outcap;
  room_t *room;
  int slot;             // index in room->conns
} conn_t;

struct room {
  char *name;           // not NUL-terminated: a channel name may hold any byte
  size_t len;
  conn_t **conns;
  int n, cap;
  room_t *next;         // hash chain
};

static int ep;
static conn_t **byfd;   // fd -> connection (the listener and Redis are not in it)
static int maxfd;
static unsigned write_failures; // writes that marked a socket dead, so far
static int redis_fd = -1;
static conn_t redis_conn; // only its output buffer is used
static redisReader *reader;
static room_t *rooms[65536];

static void die(const char *what) {
  perror(what);
  exit(1);
}

static unsigned hash(const char *s, size_t n) {
  unsigned h = 2166136261u;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 16777619u;
  return h & 65535;
}

static room_t *find_room(const char *name, size_t n) {
  for (room_t *r = rooms[hash(name, n)]; r; r = r->next)
    if (r->len == n && !memcmp(r->name, name, n)) return r;
  return NULL;
}

static void watch(int fd, uint32_t events, int op) {
  struct epoll_event ev = {.events = events, .data.fd = fd};
  if (epoll_ctl(ep, op, fd, &ev) < 0) die("epoll_ctl");
}

// Writes what can go now and keeps the rest for when the socket is writable (EPOLLOUT).
static void send_bytes(conn_t *c, int fd, const char *p, size_t n) {
  if (c->outlen == 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0) {
      if (errno != EAGAIN && errno != EINTR) {
        c->dead = 1;
        write_failures++;
        return;
      }
      w = 0;
    }
    if ((size_t)w == n) return;
    p += w;
    n -= (size_t)w;
    watch(fd, EPOLLIN | EPOLLOUT, EPOLL_CTL_MOD);
  }
  if (c->outlen + n > c->outcap) {
    c->outcap = (c->outlen + n) * 2;
    c->out = realloc(c->out, c->outcap);
    if (!c->out) die("realloc");
  }
  memcpy(c->out + c->outlen, p, n);
  c->outlen += n;
}

static void flush_out(conn_t *c, int fd) {
  ssize_t w = write(fd, c->out, c->outlen);
  if (w < 0) {
    if (errno != EAGAIN && errno != EINTR) {
      c->dead = 1;
      write_failures++;
    }
    return;
  }
  memmove(c->out, c->out + w, c->outlen - (size_t)w);
  c->outlen -= (size_t)w;
  if (c->outlen == 0) watch(fd, EPOLLIN, EPOLL_CTL_MOD);
}

static void redis_command(const char *cmd, const char *arg, size_t n) {
  if (redis_fd < 0) return;
  char *out;
  int len = redisFormatCommand(&out, "%s %b", cmd, arg, n);
  if (len < 0) die("redisFormatCommand");
  send_bytes(&redis_conn, redis_fd, out, (size_t)len);
  redisFreeCommand(out);
  if (redis_conn.dead) {
    fprintf(stderr, "floor-c: lost Redis\n");
    exit(1);
  }
}

static void join_room(conn_t *c, const char *name, size_t n) {
  room_t *r = find_room(name, n);
  if (!r) {
    r = calloc(1, sizeof *r);
    r->name = malloc(n ? n : 1);
    memcpy(r->name, name, n);
    r->len = n;
    unsigned h = hash(name, n);
    r->next = rooms[h];
    rooms[h] = r;
    redis_command("SUBSCRIBE", name, n);
  }
  if (r->n == r->cap) {
    r->cap = r->cap ? r->cap * 2 : 4;
    r->conns = realloc(r->conns, (size_t)r->cap * sizeof *r->conns);
  }
  c->room = r;
  c->slot = r->n;
  r->conns[r->n++] = c;
}

static void leave_room(conn_t *c) {
  room_t *r = c->room;
  if (!r) return;
  r->conns[c->slot] = r->conns[--r->n];
  r->conns[c->slot]->slot = c->slot;
  c->room = NULL;
  if (r->n > 0) return;
  redis_command("UNSUBSCRIBE", r->name, r->len);
  room_t **p = &rooms[hash(r->name, r->len)];
  while (*p != r) p = &(*p)->next;
  *p = r->next;
  free(r->name);
  free(r->conns);
  free(r);
}

static void drop(conn_t *c) {
  leave_room(c);
  byfd[c->fd] = NULL;
  close(c->fd);
  free(c->in);
  free(c->out);
  free(c);
}

// A header's value (case-insensitive name), or NULL.
static const char *header(const char *req, const char *name, size_t *len) {
  size_t nl = strlen(name);
  for (const char *line = strstr(req, "\r\n"); line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
    const char *l = line + 2;
    if (!strncasecmp(l, name, nl) && l[nl] == ':') {
      const char *v = l + nl + 1;
      while (*v == ' ') v++;
      const char *e = v;
      while (*e && *e != '\r' && *e != ' ') e++;
      *len = (size_t)(e - v);
      return v;
    }
  }
  return NULL;
}

// The channel named by the request's path ("/<channel>", percent-decoded), into out; its length.
static size_t channel_of(const char *req, char *out, size_t cap) {
  const char *p = strchr(req, ' ');
  size_t n = 0;
  if (!p || p[1] != '/') return 0;
  for (p += 2; *p && *p != ' ' && *p != '?' && n + 1 < cap; p++) {
    if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
      char hex[3] = {p[1], p[2], 0};
      out[n++] = (char)strtol(hex, NULL, 16);
      p += 2;
    } else {
      out[n++] = *p;
    }
  }
  return n;
}

static void handshake(conn_t *c) {
  char *end = memmem(c->in, c->inlen, "\r\n\r\n", 4);
  if (!end) {
    if (c->inlen >= HEAD_MAX - 1) c->dead = 1;
    return;
  }
  end[2] = 0; // the request's lines, each ending in CRLF, as one string
  size_t klen;
  const char *key = header(c->in, "Sec-WebSocket-Key", &klen);
  if (!key || klen > 64) {
    c->dead = 1;
    return;
  }
  char src[128];
  memcpy(src, key, klen);
  memcpy(src + klen, GUID, sizeof GUID - 1);
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1((const unsigned char *)src, klen + sizeof GUID - 1, digest);
  char accept[64];
  EVP_EncodeBlock((unsigned char *)accept, digest, SHA_DIGEST_LENGTH);
  char res[256];
  int n = snprintf(res, sizeof res,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n", accept);
  send_bytes(c, c->fd, res, (size_t)n);
  char channel[256];
  size_t clen = redis_fd >= 0 ? channel_of(c->in, channel, sizeof channel) : 0;
  free(c->in);
  c->in = NULL;
  c->open = 1;
  join_room(c, channel, clen);
}

static void on_client(conn_t *c, uint32_t events) {
  if (events & EPOLLOUT) flush_out(c, c->fd);
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
    char scratch[4096];
    char *buf = c->open ? scratch : c->in + c->inlen;
    size_t room = c->open ? sizeof scratch : HEAD_MAX - 1 - c->inlen;
    ssize_t r = read(c->fd, buf, room);
    if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) c->dead = 1;
    else if (r > 0 && !c->open) { // whatever an open client sends is read and dropped
      c->inlen += (size_t)r;
      handshake(c);
    }
  }
  if (c->dead) drop(c);
}

static void on_accept(int lfd) {
  for (;;) {
    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
    if (fd < 0) return;
    if (fd >= maxfd) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    conn_t *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->in = malloc(HEAD_MAX);
    byfd[fd] = c;
    watch(fd, EPOLLIN, EPOLL_CTL_ADD);
  }
}

// One publication: framed once (an unmasked text frame), one write to every socket of its channel.
static void fan_out(const char *channel, size_t clen, const char *payload, size_t n) {
  room_t *r = find_room(channel, clen);
  if (!r) return;
  static char *frame;
  static size_t cap;
  if (n + 10 > cap) {
    cap = (n + 10) * 2;
    frame = realloc(frame, cap);
  }
  size_t h = 2;
  frame[0] = (char)0x81;
  if (n < 126) {
    frame[1] = (char)n;
  } else if (n < 65536) {
    frame[1] = 126;
    frame[2] = (char)(n >> 8);
    frame[3] = (char)n;
    h = 4;
  } else {
    frame[1] = 127;
    for (int i = 0; i < 8; i++) frame[2 + i] = (char)((uint64_t)n >> (56 - 8 * i));
    h = 10;
  }
  memcpy(frame + h, payload, n);
  unsigned failures = write_failures;
  for (int i = 0; i < r->n; i++) send_bytes(r->conns[i], r->conns[i]->fd, frame, h + n);
  if (write_failures == failures) return;
  // Sockets whose write failed leave the room only now, not while it is walked.
  for (int i = r->n - 1; i >= 0; i--) {
    if (!r->conns[i]->dead) continue;
    int last = r->n == 1; // dropping the room's last socket frees the room
    drop(r->conns[i]);
    if (last) break;
  }
}

static void on_redis(uint32_t events) {
  if (events & EPOLLOUT) flush_out(&redis_conn, redis_fd);
  char buf[65536];
  ssize_t got = read(redis_fd, buf, sizeof buf);
  if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
    fprintf(stderr, "floor-c: lost Redis\n");
    exit(1);
  }
  if (got < 0) return;
  redisReaderFeed(reader, buf, (size_t)got);
  void *v;
  for (;;) {
    if (redisReaderGetReply(reader, &v) != REDIS_OK) {
      fprintf(stderr, "floor-c: unreadable reply from Redis\n");
      exit(1);
    }
    if (!v) break;
    redisReply *m = v;
    if (m->type == REDIS_REPLY_ARRAY && m->elements == 3 && m->element[0]->type == REDIS_REPLY_STRING && !strcmp(m->element[0]->str, "message"))
      fan_out(m->element[1]->str, m->element[1]->len, m->element[2]->str, m->element[2]->len);
    freeReplyObject(m);
  }
}

int main(void) {
  const char *port = getenv("PORT");
  if (!port) {
    fprintf(stderr, "usage: PORT=<port> [REDIS_PORT=<port>] floor-c\n");
    return 2;
  }
  // A write to a socket its client has closed fails (EPIPE) and the socket is dropped; without this,
  // the signal that comes with it would end the process.
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  maxfd = rl.rlim_cur > 1 << 20 ? 1 << 20 : (int)rl.rlim_cur;
  byfd = calloc((size_t)maxfd, sizeof *byfd);
  ep = epoll_create1(0);

  struct sockaddr_in addr = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (getenv("REDIS_PORT")) {
    redis_fd = socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_port = htons((uint16_t)atoi(getenv("REDIS_PORT")));
    if (connect(redis_fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect to Redis");
    fcntl(redis_fd, F_SETFL, O_NONBLOCK);
    reader = redisReaderCreate();
    watch(redis_fd, EPOLLIN, EPOLL_CTL_ADD);
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  addr.sin_port = htons((uint16_t)atoi(port));
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0) die("bind");
  if (listen(lfd, 4096) < 0) die("listen");
  watch(lfd, EPOLLIN, EPOLL_CTL_ADD);
  printf("LISTENING\n");
  fflush(stdout);

  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int i = 0; i < n; i++) {
      int fd = evs[i].data.fd;
      if (fd == lfd) on_accept(lfd);
      else if (fd == redis_fd) on_redis(evs[i].events);
      else if (byfd[fd]) on_client(byfd[fd], evs[i].events);
    }
  }
}
