// The benchmark's load generator: many WebSocket subscribers in one epoll loop, cheap enough that the
// server under test, not this program, is what gets measured. It speaks just enough of each peer's
// protocol to subscribe, answers pings, and measures the latency of every delivery from the send
// timestamp carried in the payload ("T=<microseconds of CLOCK_MONOTONIC>").
//
// Usage: loadgen HOST PORT PROTO CONNS CHANNEL_MODE [CHANNEL_PREFIX]
//   PROTO: herald | naive | socketio | webdis       CHANNEL_MODE: same | each
// Prints "READY <n>" once every connection is subscribed, then answers each line on stdin:
//   MARK -> "STATS recv=<n> p50=<us> p99=<us> p999=<us> max=<us> cpu_us=<us> open=<n>" (since the last MARK)
//   PEEK -> the same line, without starting a new period (to wait for deliveries still on their way)
//   QUIT -> exits.
// With LOADGEN_TRACE=PATH set, every delivery's arrival time and latency (µs) are also written, one
// line each, to PATH.<PROTO>.<pid>, to see when in a run the slow deliveries came.
// With LOADGEN_BUSY_POLL=1 set, it polls without ever sleeping (its CPU then reads 100%): a server's
// write no longer pays for waking this program's idle CPU, which a remote client would not cost it.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum proto { HERALD, NAIVE, SOCKETIO, WEBDIS };
enum state { CONNECTING, HANDSHAKE, OPEN, CLOSED };

typedef struct {
  int fd;
  enum state st;
  int ready;
  int retries;
  int opening; // counted in `opening` below until the WebSocket handshake is answered or fails
  char *buf;
  size_t len, cap;
  char channel[64];
} conn_t;

static enum proto PROTO;
static const char *TOKEN;
static conn_t *conns;
static int nconns, nready, nopen;
// Sockets connecting or handshaking. New ones open only while fewer than OPENING_MAX are: a socket
// counts until the server has answered its handshake (not merely until TCP connects, which the kernel
// completes before the server accepts), so the server's accept queue never holds more than that. A
// flooded accept queue makes the kernel drop handshakes, which delays some sockets by seconds and
// resets a few: a setup that says more about the queue than about the server.
#define OPENING_MAX 200
static int opening;

static void opened(conn_t *c) {
  if (!c->opening) return;
  c->opening = 0;
  opening--;
}
/** How many unexpected closes were reported on stderr (the first few are enough). */
static int closes_told;
static const char *HOST;
static int PORT;

// Latency histogram: 10 us buckets up to 100 ms, then 1 ms buckets up to 60 s.
#define FINE 10000
#define COARSE 60000
static uint64_t hist[FINE + COARSE + 1];
static uint64_t received, max_lat;
/** Polls without sleeping (LOADGEN_BUSY_POLL=1). */
static int BUSY_POLL;
/**
 * While data flows (any in the last 20 ms), the load generator polls and naps this long between polls
 * instead of blocking in epoll_wait (LOADGEN_NAP_US, default 100; 0 blocks). On loopback the receive
 * side of a write runs on the writer's CPU: a write to a socket whose reader blocks in epoll_wait also
 * wakes the reader's CPU, at the server's expense, which a remote client never costs it. A napping
 * reader is on no wait queue, so the server's writes wake nothing; a delivery then waits about one
 * nap before it is read (0.1-0.2 ms with the timer's slack). Idle for 20 ms, it blocks again, and the
 * next data wakes it once.
 */
static long NAP_US = 100;
static uint64_t last_data_us;

/** Where every delivery is written down (LOADGEN_TRACE), or NULL. */
static FILE *TRACE;

// CLOCK_MONOTONIC, the clock of the publisher's timestamps too (Node's process.hrtime): the wall clock
// can be slewed while a run lasts, which shifted every latency by the drift since the publisher started.
static uint64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000ull;
}

static void record(uint64_t lat) {
  size_t b = lat < 100000 ? lat / 10 : FINE + (lat - 100000) / 1000;
  if (b > FINE + COARSE) b = FINE + COARSE;
  hist[b]++;
  if (lat > max_lat) max_lat = lat;
  received++;
}

static uint64_t percentile(double p) {
  if (received == 0) return 0;
  uint64_t want = (uint64_t)(p * (double)received), seen = 0;
  if (want >= received) want = received - 1;
  for (size_t b = 0; b <= FINE + COARSE; b++) {
    seen += hist[b];
    if (seen > want) return b < FINE ? b * 10 + 5 : 100000 + (b - FINE) * 1000 + 500;
  }
  return max_lat;
}

static uint64_t cpu_us(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (uint64_t)ru.ru_utime.tv_sec * 1000000ull + ru.ru_utime.tv_usec + (uint64_t)ru.ru_stime.tv_sec * 1000000ull + ru.ru_stime.tv_usec;
}

static void die(const char *msg) {
  perror(msg);
  exit(1);
}

static void write_all(conn_t *c, const void *data, size_t n) {
  const char *p = data;
  while (n > 0) {
    ssize_t w = write(c->fd, p, n);
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) continue; // small control frames only: spin briefly
      c->st = CLOSED;
      return;
    }
    p += w;
    n -= (size_t)w;
  }
}

// A masked client text frame (mask key zero: the payload is sent as is).
static void send_text(conn_t *c, const char *text) {
  size_t n = strlen(text);
  unsigned char hdr[14];
  size_t h = 0;
  hdr[h++] = 0x81;
  if (n < 126) hdr[h++] = 0x80 | (unsigned char)n;
  else {
    hdr[h++] = 0x80 | 126;
    hdr[h++] = (unsigned char)(n >> 8);
    hdr[h++] = (unsigned char)n;
  }
  memset(hdr + h, 0, 4);
  h += 4;
  char *frame = malloc(h + n);
  memcpy(frame, hdr, h);
  memcpy(frame + h, text, n);
  write_all(c, frame, h + n);
  free(frame);
}

static void send_pong(conn_t *c, const unsigned char *payload, size_t n) {
  unsigned char frame[2 + 4 + 125];
  frame[0] = 0x8A;
  frame[1] = 0x80 | (unsigned char)n;
  memset(frame + 2, 0, 4);
  memcpy(frame + 6, payload, n);
  write_all(c, frame, 6 + n);
}

static void mark_ready(conn_t *c) {
  if (!c->ready) {
    c->ready = 1;
    nready++;
  }
}

// Every "T=<digits>" in a message is one delivery. The scans use memchr (vectorised in libc), not a
// loop over every byte: at 1.5M deliveries a second, reading each byte twice took 40% of this
// process's CPU, which made it slower than the servers it measures.
static void count_deliveries(const char *p, size_t n) {
  uint64_t t_now = 0;
  const char *end = p + n;
  for (const char *q = p; end - q > 2 && (q = memchr(q, 'T', (size_t)(end - q - 2))) != NULL;) {
    if (q[1] != '=') {
      q++;
      continue;
    }
    const char *d = q + 2;
    uint64_t t = 0;
    while (d < end && *d >= '0' && *d <= '9') t = t * 10 + (uint64_t)(*d++ - '0');
    if (d == q + 2) {
      q = d;
      continue;
    }
    if (!t_now) t_now = now_us();
    uint64_t lat = t_now > t ? t_now - t : 0;
    record(lat);
    if (TRACE) fprintf(TRACE, "%llu %llu\n", (unsigned long long)t_now, (unsigned long long)lat);
    q = d;
  }
}

static void on_message(conn_t *c, const char *p, size_t n) {
  switch (PROTO) {
  case HERALD: {
    // One frame may hold several JSON lines: replies, pushes and pings ("{}").
    const char *end = p + n;
    for (const char *line = p;;) {
      const char *nl = memchr(line, '\n', (size_t)(end - line));
      size_t len = (size_t)((nl ? nl : end) - line);
      if (len == 2 && line[0] == '{' && line[1] == '}') send_text(c, "{}");
      else if (!c->ready && memmem(line, len, "\"id\":2", 6)) {
        if (!memmem(line, len, "\"error\"", 7)) mark_ready(c);
        else if (c->retries++ < 50) {
          // A temporary error (the server's engine busy or away): subscribe again, as the SDK would.
          char msg[160];
          snprintf(msg, sizeof msg, "{\"subscribe\":{\"channel\":\"%s\"},\"id\":2}", c->channel);
          send_text(c, msg);
        }
      }
      if (!nl) break;
      line = nl + 1;
    }
    count_deliveries(p, n);
    break;
  }
  case NAIVE:
    count_deliveries(p, n);
    break;
  case SOCKETIO:
    if (n >= 1 && p[0] == '0' && !c->ready) send_text(c, "40");
    else if (n == 1 && p[0] == '2') send_text(c, "3");
    else if (n >= 2 && p[0] == '4' && p[1] == '0' && !c->ready) {
      char msg[128];
      snprintf(msg, sizeof msg, "421[\"subscribe\",\"%s\"]", c->channel);
      send_text(c, msg);
    } else if (n >= 3 && p[0] == '4' && p[1] == '3' && p[2] == '1') mark_ready(c);
    else count_deliveries(p, n);
    break;
  case WEBDIS:
    if (!c->ready && memmem(p, n, "\"subscribe\"", 11)) mark_ready(c);
    else count_deliveries(p, n);
    break;
  }
}

static void after_open(conn_t *c) {
  char msg[2048];
  nopen++;
  switch (PROTO) {
  case HERALD:
    // LOADGEN_TOKEN: a connection token to connect with (the benchmark's --tokens).
    if (TOKEN) snprintf(msg, sizeof msg, "{\"connect\":{\"token\":\"%s\"},\"id\":1}\n{\"subscribe\":{\"channel\":\"%s\"},\"id\":2}", TOKEN, c->channel);
    else snprintf(msg, sizeof msg, "{\"connect\":{},\"id\":1}\n{\"subscribe\":{\"channel\":\"%s\"},\"id\":2}", c->channel);
    send_text(c, msg);
    break;
  case NAIVE:
    mark_ready(c);
    break;
  case SOCKETIO:
    break; // waits for the open packet
  case WEBDIS:
    snprintf(msg, sizeof msg, "[\"SUBSCRIBE\",\"%s\"]", c->channel);
    send_text(c, msg);
    break;
  }
}

static void send_handshake(conn_t *c) {
  char req[512], path[128];
  switch (PROTO) {
  case HERALD: snprintf(path, sizeof path, "/connection/websocket"); break;
  case NAIVE: snprintf(path, sizeof path, "/%s", c->channel); break;
  case SOCKETIO: snprintf(path, sizeof path, "/socket.io/?EIO=4&transport=websocket"); break;
  case WEBDIS: snprintf(path, sizeof path, "/.json"); break;
  }
  // Webdis (0.1.9) answers the handshake only when it carries an Origin, as browsers' always do.
  char origin[128] = "";
  if (PROTO == WEBDIS) snprintf(origin, sizeof origin, "Origin: http://%s:%d\r\n", HOST, PORT);
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n%s"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path, HOST, PORT, origin);
  write_all(c, req, (size_t)n);
  c->st = HANDSHAKE;
}

// Reports an unexpected close of a socket on stderr (the bench shows it when a setup stalls).
static void tell_close(const conn_t *c, const char *fmt, ...) {
  if (closes_told++ >= 20) return;
  fprintf(stderr, "socket %s (state %d): ", c->ready ? "subscribed" : "not subscribed yet", c->st);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
}

// Consumes whole frames from the connection's buffer.
static void parse(conn_t *c) {
  size_t off = 0;
  if (c->st == HANDSHAKE) {
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) return;
    if (c->len < 12 || memcmp(c->buf + 9, "101", 3) != 0) {
      fprintf(stderr, "handshake refused: %.*s\n", (int)(end - c->buf), c->buf);
      c->st = CLOSED;
      return;
    }
    off = (size_t)(end - c->buf) + 4;
    opened(c);
    c->st = OPEN;
    after_open(c);
  }
  while (c->st == OPEN) {
    size_t avail = c->len - off;
    if (avail < 2) break;
    unsigned char *f = (unsigned char *)c->buf + off;
    int opcode = f[0] & 0x0f;
    uint64_t plen = f[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
      if (avail < 4) break;
      plen = ((uint64_t)f[2] << 8) | f[3];
      h = 4;
    } else if (plen == 127) {
      if (avail < 10) break;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = (plen << 8) | f[2 + i];
      h = 10;
    }
    if (avail < h + plen) break;
    const char *payload = (const char *)f + h;
    if (opcode == 1 || opcode == 2 || opcode == 0) on_message(c, payload, (size_t)plen);
    else if (opcode == 9) send_pong(c, (const unsigned char *)payload, (size_t)plen);
    else if (opcode == 8) {
      tell_close(c, "closed by the server: %d %.*s", plen >= 2 ? ((unsigned char)payload[0] << 8) | (unsigned char)payload[1] : 0, plen > 2 ? (int)plen - 2 : 0, payload + 2);
      c->st = CLOSED;
      break;
    }
    off += h + (size_t)plen;
  }
  if (off > 0) {
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
  }
}

static void on_readable(conn_t *c) {
  for (;;) {
    if (c->cap - c->len < 65536) {
      c->cap = c->cap ? c->cap * 2 : 131072;
      c->buf = realloc(c->buf, c->cap);
    }
    size_t room = c->cap - c->len;
    ssize_t r = read(c->fd, c->buf + c->len, room);
    if (r > 0) {
      c->len += (size_t)r;
      // Less than asked for: the socket is drained for now. epoll is level-triggered and reports it
      // again when more arrives, so no second read to hear EAGAIN (one syscall per wake-up, not two).
      if ((size_t)r < room) break;
      continue;
    }
    if (r == 0) {
      tell_close(c, "connection ended by the server");
      c->st = CLOSED;
    } else if (errno != EAGAIN && errno != EINTR) {
      tell_close(c, "read failed: %s", strerror(errno));
      c->st = CLOSED;
    }
    break;
  }
  if (c->st != CLOSED) parse(c);
  if (c->st == CLOSED && c->fd >= 0) {
    opened(c);
    close(c->fd);
    c->fd = -1;
    if (nopen > 0) nopen--;
  }
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: loadgen HOST PORT PROTO CONNS same|each [CHANNEL_PREFIX]\n");
    return 2;
  }
  TOKEN = getenv("LOADGEN_TOKEN");
  if (TOKEN && strlen(TOKEN) > 1500) {
    fprintf(stderr, "LOADGEN_TOKEN is too long (at most 1500 bytes)\n");
    exit(1);
  }
  BUSY_POLL = getenv("LOADGEN_BUSY_POLL") && !strcmp(getenv("LOADGEN_BUSY_POLL"), "1");
  const char *nap = getenv("LOADGEN_NAP_US");
  if (nap) {
    char *end;
    errno = 0;
    NAP_US = strtol(nap, &end, 10);
    if (errno || end == nap || *end) NAP_US = -1;
  }
  if (NAP_US < 0 || NAP_US > 999999) {
    fprintf(stderr, "LOADGEN_NAP_US takes 0 to 999999 (microseconds)\n");
    return 2;
  }
  if (getenv("LOADGEN_TRACE")) {
    char path[512];
    snprintf(path, sizeof path, "%s.%s.%d", getenv("LOADGEN_TRACE"), argv[3], (int)getpid());
    TRACE = fopen(path, "w");
    if (!TRACE) {
      fprintf(stderr, "loadgen: cannot write %s: %s\n", path, strerror(errno));
      return 2;
    }
  }
  HOST = argv[1];
  PORT = atoi(argv[2]);
  PROTO = !strcmp(argv[3], "herald") ? HERALD : !strcmp(argv[3], "naive") ? NAIVE : !strcmp(argv[3], "socketio") ? SOCKETIO : WEBDIS;
  nconns = atoi(argv[4]);
  int each = !strcmp(argv[5], "each");
  const char *prefix = argc > 6 ? argv[6] : "bench";
  struct rlimit rl = {nconns + 64, nconns + 64};
  setrlimit(RLIMIT_NOFILE, &rl);

  int ep = epoll_create1(0);
  conns = calloc((size_t)nconns, sizeof(conn_t));
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)PORT)};
  inet_pton(AF_INET, HOST, &addr.sin_addr);
  struct epoll_event ev, events[1024];
  // stdin carries the commands.
  ev.events = EPOLLIN;
  ev.data.u64 = UINT64_MAX;
  epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev);

  int next = 0;
  uint64_t cpu_mark = cpu_us();
  int announced = 0;
  char cmd[256];
  size_t cmdlen = 0;
  for (;;) {
    // Connect in waves so the server's accept queue is not flooded (see OPENING_MAX).
    while (next < nconns && opening < OPENING_MAX) {
      conn_t *c = &conns[next];
      if (each) snprintf(c->channel, sizeof c->channel, "%s%d", prefix, next);
      else snprintf(c->channel, sizeof c->channel, "%s", prefix);
      c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      if (c->fd < 0) die("socket");
      int one = 1;
      setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0 && errno != EINPROGRESS) die("connect");
      c->st = CONNECTING;
      ev.events = EPOLLIN | EPOLLOUT;
      ev.data.u64 = (uint64_t)next;
      epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
      next++;
      c->opening = 1;
      opening++;
    }
    if (!announced && nready == nconns) {
      printf("READY %d\n", nready);
      fflush(stdout);
      announced = 1;
      cpu_mark = cpu_us();
    }
    // NAP_US: while deliveries flow, poll and nap instead of blocking in epoll_wait.
    int flowing = NAP_US > 0 && now_us() - last_data_us < 20000;
    int n = epoll_wait(ep, events, 1024, BUSY_POLL || flowing ? 0 : 100);
    if (n > 0) last_data_us = now_us();
    else if (flowing && !BUSY_POLL) {
      struct timespec nap = {0, NAP_US * 1000};
      nanosleep(&nap, NULL);
    }
    for (int i = 0; i < n; i++) {
      if (events[i].data.u64 == UINT64_MAX) {
        ssize_t r = read(0, cmd + cmdlen, sizeof cmd - cmdlen - 1);
        if (r <= 0) return 0;
        cmdlen += (size_t)r;
        cmd[cmdlen] = 0;
        char *nl;
        while ((nl = strchr(cmd, '\n'))) {
          *nl = 0;
          if (!strcmp(cmd, "QUIT")) return 0;
          int mark = !strcmp(cmd, "MARK");
          if (mark || !strcmp(cmd, "PEEK")) {
            uint64_t cpu = cpu_us();
            printf("STATS recv=%llu p50=%llu p99=%llu p999=%llu max=%llu cpu_us=%llu open=%d ready=%d\n", (unsigned long long)received,
                   (unsigned long long)percentile(0.5), (unsigned long long)percentile(0.99), (unsigned long long)percentile(0.999),
                   (unsigned long long)max_lat, (unsigned long long)(cpu - cpu_mark), nopen, nready);
            fflush(stdout);
            if (mark) {
              memset(hist, 0, sizeof hist);
              received = max_lat = 0;
              cpu_mark = cpu;
            }
          }
          size_t rest = cmdlen - (size_t)(nl + 1 - cmd);
          memmove(cmd, nl + 1, rest);
          cmdlen = rest;
          cmd[cmdlen] = 0;
        }
        continue;
      }
      conn_t *c = &conns[events[i].data.u64];
      if (c->fd < 0) continue;
      if (c->st == CONNECTING && (events[i].events & EPOLLOUT)) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
          opened(c);
          fprintf(stderr, "connect failed: %s\n", strerror(err));
          close(c->fd);
          c->fd = -1;
          c->st = CLOSED;
          continue;
        }
        ev.events = EPOLLIN;
        ev.data.u64 = events[i].data.u64;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        send_handshake(c);
      }
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }
}
