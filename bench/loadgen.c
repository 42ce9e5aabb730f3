/* loadgen: the HTTP/1.1 Server-Sent-Events load generator of bench/run.
 *
 * One thread, epoll, non-blocking sockets; every connection sends one
 *   GET <route>?to=bench&count=N&interval_ms=M HTTP/1.1   (Connection: close)
 * and reads the response: status line and headers, then the body (chunked or
 * not) split into "\n\n"-terminated SSE blocks. A block with a `data:` line is
 * an event; `event: end` ends the stream, its data's "code" is the gRPC code.
 * Comment-only blocks (keep-alives) are ignored. In an event's data, "seq":"N"
 * is checked (1, 2, ... in order, each once) and, in latency mode, "message"
 * holds the sender's CLOCK_MONOTONIC nanoseconds (bench-server's stamp).
 *
 * Modes (the first argument):
 *   streams  S streams at once; every stream must carry seq 1..count and end
 *            with code 0. Prints events, seconds (first connect to last end),
 *            failures, this process's CPU and that of each --cpu-pid.
 *   latency  as streams, plus latency = now - stamp per event: p50/p99/p999/max
 *            in microseconds.
 *   idle     opens S streams (at most --batch waiting for their headers at a
 *            time), prints "OPEN ..." once every stream has its 200 headers,
 *            holds them until --hold-file exists (or --timeout), closes all.
 *   churn    --cycles times: connect, GET, first event, close; --concurrency
 *            cycles at a time.
 *   soak     for --duration seconds keeps S streams open: each asks for a
 *            random count in [1, --count] at --interval_ms; one in four is
 *            closed by the client after a random number of its events (a
 *            cancel), the others must end with code 0 after seq 1..count; a
 *            finished stream is replaced at once. At the end the open ones
 *            are closed. Prints a PROGRESS line every 10 s.
 *   resume   (a chat room, EventSource behaviour) S subscribers of
 *            GET --route?room=--room (chat.v1.Chat/Subscribe) and a publisher
 *            that POSTs {"room","text":"SEQ:STAMP"} to --post-route at
 *            --post-addr (default --addr), one post at a time. Every stream
 *            honours `retry:` (3000 ms until it gets one), remembers `id:`
 *            and, when cut or refused, reconnects after its retry with
 *            `Last-Event-ID`; a non-200 answer or an `event: end` fails it
 *            for good (as EventSource would). Each stream must get SEQ
 *            1, 2, ... once each, in order, across its reconnects. Phases:
 *            open every stream (--batch at a time waiting for headers); a
 *            barrier (posts of SEQ 0 every 200 ms until every stream has had
 *            an event; SEQ 0 is ignored; "OPEN ..." on stdout before it,
 *            "READY ..." after it); posts at
 *            --rate per second until --hold-file exists; then every stream
 *            must reach the last SEQ (within --timeout). A stream cut after
 *            its 200 counts as cut; it is reopened at its next 200 and
 *            resumed at its first event after that. Once every cut stream
 *            has resumed, "RESUMED cut=.. ..." (reopen and resume delays,
 *            first cut to last resume) is printed (again after a later cut).
 *   broadcast as resume (same room, barrier and checks), but posts at each
 *            rate of --rates (posts/s, e.g. 2,5,10) for --step-seconds;
 *            latency = receipt - STAMP (CLOCK_MONOTONIC before the post's
 *            connect). One "STEP rate=.. posted=.. deliveries_per_s=.. p50_us=
 *            p99_us=.." line per rate (latency of that rate's posts;
 *            deliveries counted by receipt time within the step).
 * Output: one line "RESULT mode=.. key=value ..." on stdout; the first
 * failures on stderr. Exit status 0 when nothing failed, 1 otherwise, 2 on a
 * usage error.
 *
 * Source addresses: towards 127.x.x.x each connection binds 127.0.0.2 ..
 * 127.0.0.251 in turn (port chosen at connect), so tens of thousands of
 * connections (and their TIME_WAITs) never run out of ephemeral ports.
 * (Posts connect from 127.0.0.1.)
 *
 *   loadgen streams --addr=127.0.0.1:8080 --streams=50 --count=2000 --interval_ms=1
 *   loadgen latency --addr=127.0.0.1:8080 --streams=20 --count=5000 --interval_ms=1
 *   loadgen idle --addr=127.0.0.1:8080 --streams=10000 --hold-file=/tmp/x/release
 *   loadgen churn --addr=127.0.0.1:8080 --cycles=50000 --concurrency=32
 *   loadgen resume --addr=127.0.0.1:8000 --streams=15000 --room=storm --rate=2 \
 *           --route=/chat.v1.Chat/Subscribe --hold-file=/tmp/x/stop
 *   loadgen broadcast --addr=127.0.0.1:8080 --streams=10000 --room=b --rates=2,5,10 \
 *           --step-seconds=10 --route=/chat.v1.Chat/Subscribe
 *
 * Descriptors: the soft RLIMIT_NOFILE is raised to the hard limit at start;
 * when S streams (+ 64) do not fit, it says so and exits 2.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

enum mode { M_STREAMS, M_LATENCY, M_IDLE, M_CHURN, M_SOAK, M_RESUME, M_BROADCAST };
enum state { S_FREE, S_CONNECTING, S_HEADERS, S_BODY, S_DONE, S_WAIT };
enum chunk { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_END };

struct conn {
  int fd;
  int index;
  enum state state;
  const char* out; /* request bytes still to send */
  size_t out_len;
  char* buf; /* headers, then undelimited SSE bytes */
  size_t len, cap, scanned;
  int status;
  int chunked;
  enum chunk ch;
  long long chunk_left;
  char size_line[64];
  size_t size_len;
  long long events;
  long long next_seq;
  int end_seen;
  int end_code;
  char error[160];
  /* soak: this stream's own request, its count and the event it closes at (0: never) */
  char own_request[512];
  long long want;
  long long close_at;
};

/* Options. */
static enum mode mode;
static struct sockaddr_in target;
static int streams = 1;
static long long count = 5;
static int interval_ms = 1000;
static const char* route = "/api/streaming/ping";
static double timeout_s = 120;
static int batch = 500;
static const char* hold_file;
static long long cycles = 1000;
static int concurrency = 16;
static int cpu_pids[8];
static int ncpu_pids;
static int rotate_sources;

/* Run state. */
static int ep;
static char request[1024];
static size_t request_len;
static struct conn* conns;
static int nconns;
static long long total_events;
static int failures;
static int failures_printed;
static int64_t* lat; /* ns */
static size_t lat_len, lat_cap;
static unsigned source_next;
static long long cycles_started, cycles_done, cycles_ok;
static double duration_s = 60;
static char host_header[64];

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double cpu_of_pid(int pid) { /* utime + stime in seconds, -1 if gone */
  char path[64], line[2048];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE* f = fopen(path, "r");
  if (!f) return -1;
  size_t n = fread(line, 1, sizeof line - 1, f);
  fclose(f);
  line[n] = 0;
  char* p = strrchr(line, ')');
  if (!p) return -1;
  unsigned long long utime = 0, stime = 0;
  /* after ") ": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14)
   * stime(15) */
  if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
    return -1;
  return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_self(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return (double)u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + (double)u.ru_stime.tv_sec +
         u.ru_stime.tv_usec / 1e6;
}

static void fail(struct conn* c, const char* fmt, const char* detail) {
  if (c->error[0]) return;
  snprintf(c->error, sizeof c->error, fmt, detail ? detail : "");
}

static void report_failure(struct conn* c) {
  ++failures;
  if (failures_printed < 10) {
    ++failures_printed;
    fprintf(stderr, "  FAILED stream %d: %s (events %lld)\n", c->index, c->error, c->events);
  }
}

static void ensure_cap(struct conn* c, size_t want) {
  if (c->cap >= want) return;
  size_t cap = c->cap ? c->cap : 4096;
  while (cap < want) cap *= 2;
  char* b = realloc(c->buf, cap);
  if (!b) {
    perror("loadgen: realloc");
    exit(2);
  }
  c->buf = b;
  c->cap = cap;
}

static void add_latency(int64_t ns) {
  if (lat_len == lat_cap) {
    lat_cap = lat_cap ? lat_cap * 2 : 65536;
    lat = realloc(lat, lat_cap * sizeof *lat);
    if (!lat) {
      perror("loadgen: realloc");
      exit(2);
    }
  }
  lat[lat_len++] = ns;
}

/* The decimal digits after `key` (e.g. "\"seq\":\"") in [p, end); -1 if none. */
static long long number_after(const char* p, const char* end, const char* key) {
  size_t k = strlen(key);
  const char* at = memmem(p, (size_t)(end - p), key, k);
  if (!at) return -1;
  at += k;
  int neg = 0;
  if (at < end && *at == '-') {
    neg = 1;
    ++at;
  }
  if (at >= end || *at < '0' || *at > '9') return -1;
  long long v = 0;
  while (at < end && *at >= '0' && *at <= '9') v = v * 10 + (*at++ - '0');
  return neg ? -v : v;
}

static void close_conn(struct conn* c);
static void room_block(struct conn* c, const char* p, size_t n, int64_t now);

/* One "\n\n"-terminated block [p, p + n). */
static void on_block(struct conn* c, const char* p, size_t n, int64_t now) {
  if (mode == M_RESUME || mode == M_BROADCAST) {
    room_block(c, p, n, now);
    return;
  }
  const char* end = p + n;
  int is_end = 0, has_data = 0;
  const char* data = NULL;
  for (const char* line = p; line < end;) {
    const char* nl = memchr(line, '\n', (size_t)(end - line));
    const char* le = nl ? nl : end;
    size_t ll = (size_t)(le - line);
    if (ll >= 6 && memcmp(line, "event:", 6) == 0) {
      const char* v = line + 6;
      while (v < le && *v == ' ') ++v;
      if (le - v == 3 && memcmp(v, "end", 3) == 0) is_end = 1;
    } else if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
      has_data = 1;
      if (!data) data = line + 5;
    }
    line = nl ? nl + 1 : end;
  }
  if (is_end) {
    if (c->end_seen) fail(c, "two end events%s", NULL);
    c->end_seen = 1;
    long long code = data ? number_after(data, end, "\"code\":") : -1;
    c->end_code = code < 0 ? 0 : (int)code;
    return;
  }
  if (!has_data) return; /* a comment (keep-alive) */
  if (c->end_seen) fail(c, "event after the end event%s", NULL);
  ++c->events;
  ++total_events;
  long long seq = number_after(data, end, "\"seq\":\"");
  if (seq < 0) seq = number_after(data, end, "\"seq\":");
  if (seq != c->next_seq) {
    char d[64];
    snprintf(d, sizeof d, "%lld, expected %lld", seq, c->next_seq);
    fail(c, "seq %s", d);
  }
  c->next_seq = seq + 1;
  if (mode == M_LATENCY) {
    long long stamp = number_after(data, end, "\"message\":\"");
    if (stamp <= 0)
      fail(c, "message is not a stamp%s", NULL);
    else
      add_latency(now - stamp);
  }
  if (mode == M_CHURN) c->state = S_DONE; /* first event: this cycle is done */
  if (mode == M_SOAK && c->close_at > 0 && c->events == c->close_at) c->state = S_DONE;
}

/* Decoded body bytes. */
static void on_body(struct conn* c, const char* p, size_t n, int64_t now) {
  if (c->state == S_DONE) return;
  ensure_cap(c, c->len + n + 1);
  memcpy(c->buf + c->len, p, n);
  c->len += n;
  size_t start = 0;
  size_t i = c->scanned > 0 ? c->scanned - 1 : 0;
  for (;;) {
    char* hit = c->len > i ? memmem(c->buf + i, c->len - i, "\n\n", 2) : NULL;
    if (!hit) break;
    size_t bend = (size_t)(hit - c->buf);
    on_block(c, c->buf + start, bend - start, now);
    start = bend + 2;
    i = start;
    if (c->state == S_DONE) return;
  }
  if (start > 0) {
    memmove(c->buf, c->buf + start, c->len - start);
    c->len -= start;
  }
  c->scanned = c->len;
}

/* Raw body bytes: de-chunk if needed. */
static void on_raw(struct conn* c, const char* p, size_t n, int64_t now) {
  if (!c->chunked) {
    on_body(c, p, n, now);
    return;
  }
  while (n > 0 && c->state == S_BODY) {
    switch (c->ch) {
      case CH_SIZE:
      case CH_TRAILER: {
        char b = *p++;
        --n;
        if (b != '\n') {
          if (c->size_len < sizeof c->size_line - 1) c->size_line[c->size_len++] = b;
          break;
        }
        c->size_line[c->size_len] = 0;
        size_t line_len = c->size_len;
        if (line_len > 0 && c->size_line[line_len - 1] == '\r') c->size_line[--line_len] = 0;
        c->size_len = 0;
        if (c->ch == CH_TRAILER) {
          if (line_len == 0) c->ch = CH_END;
          break;
        }
        char* e;
        long long size = strtoll(c->size_line, &e, 16);
        if (e == c->size_line || size < 0) {
          fail(c, "bad chunk size line '%s'", c->size_line);
          c->ch = CH_END;
          break;
        }
        c->chunk_left = size;
        c->ch = size == 0 ? CH_TRAILER : CH_DATA;
        break;
      }
      case CH_DATA: {
        size_t take = n < (size_t)c->chunk_left ? n : (size_t)c->chunk_left;
        on_body(c, p, take, now);
        p += take;
        n -= take;
        c->chunk_left -= (long long)take;
        if (c->chunk_left == 0) {
          c->ch = CH_DATA_END;
          c->chunk_left = 2;
        }
        break;
      }
      case CH_DATA_END: /* the CRLF after a chunk's data */
        ++p;
        --n;
        if (--c->chunk_left == 0) c->ch = CH_SIZE;
        break;
      case CH_END:
        n = 0;
        break;
    }
  }
}

static void on_headers_done(struct conn* c, size_t head_len, int64_t now) {
  /* "HTTP/1.1 200 OK\r\n..." */
  c->buf[head_len - 1] = 0;
  if (sscanf(c->buf, "HTTP/1.%*d %d", &c->status) != 1) c->status = -1;
  for (char* h = strstr(c->buf, "\r\n"); h; h = strstr(h + 2, "\r\n")) {
    char *line = h + 2, *line_end = strstr(line, "\r\n");
    if (!line_end) line_end = line + strlen(line);
    if (strncasecmp(line, "transfer-encoding:", 18) == 0) {
      char* chunked = strcasestr(line, "chunked");
      if (chunked && chunked < line_end) c->chunked = 1;
    }
  }
  size_t rest = c->len - head_len;
  char* tmp = NULL;
  if (rest > 0) {
    tmp = malloc(rest);
    if (!tmp) exit(2);
    memcpy(tmp, c->buf + head_len, rest);
  }
  c->len = 0;
  c->scanned = 0;
  c->state = S_BODY;
  c->ch = CH_SIZE;
  if (c->status != 200) {
    char d[32];
    snprintf(d, sizeof d, "%d", c->status);
    fail(c, "HTTP status %s", d);
    c->state = S_DONE;
  } else if (rest > 0) {
    on_raw(c, tmp, rest, now);
  }
  free(tmp);
}

static int open_conn(struct conn* c, int index) {
  memset(c, 0, sizeof *c);
  c->index = index;
  c->next_seq = 1;
  c->end_code = -1;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) {
    snprintf(c->error, sizeof c->error, "socket: %s", strerror(errno));
    return -1;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (rotate_sources) {
    struct sockaddr_in src;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(0x7f000002u + (source_next++ % 250u));
    setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(c->fd, (struct sockaddr*)&src, sizeof src) != 0) {
      snprintf(c->error, sizeof c->error, "bind: %s", strerror(errno));
      close(c->fd);
      c->fd = -1;
      return -1;
    }
  }
  if (connect(c->fd, (struct sockaddr*)&target, sizeof target) != 0 && errno != EINPROGRESS) {
    snprintf(c->error, sizeof c->error, "connect: %s", strerror(errno));
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  c->state = S_CONNECTING;
  c->out = request;
  c->out_len = request_len;
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP, .data.ptr = c};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
    snprintf(c->error, sizeof c->error, "epoll_ctl: %s", strerror(errno));
    close(c->fd);
    c->fd = -1;
    return -1;
  }
  return 0;
}

static void close_conn(struct conn* c) {
  if (c->fd >= 0) {
    close(c->fd); /* also leaves the epoll set */
    c->fd = -1;
  }
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
}

/* Fails `c` unless it ended with code 0 after `want` events (in order: on_block
 * checks each seq as it comes). */
static void check_complete(struct conn* c, long long want) {
  if (c->error[0]) return;
  if (!c->end_seen) {
    fail(c, "closed without an end event%s", NULL);
  } else if (c->end_code != 0) {
    char d[32];
    snprintf(d, sizeof d, "%d", c->end_code);
    fail(c, "end code %s", d);
  } else if (c->events != want) {
    char d[64];
    snprintf(d, sizeof d, "%lld events, expected %lld", c->events, want);
    fail(c, "%s", d);
  }
}

/* The verdict on a finished stream (streams / latency modes). */
static void finish_stream(struct conn* c) {
  check_complete(c, count);
  if (c->error[0]) report_failure(c);
  c->state = S_DONE;
  close_conn(c);
}

/* Handles readiness; returns 1 when the connection reached S_DONE now. */
static int on_event(struct conn* c, uint32_t events, int64_t now) {
  static char rbuf[1 << 16];
  if (c->state == S_CONNECTING) {
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
      fail(c, "connect: %s", strerror(err ? err : ECONNREFUSED));
      c->state = S_DONE;
      return 1;
    }
    if (events & EPOLLOUT) {
      ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN) {
        fail(c, "send: %s", strerror(errno));
        c->state = S_DONE;
        return 1;
      }
      if (w > 0) {
        c->out += w;
        c->out_len -= (size_t)w;
      }
      if (c->out_len == 0) {
        c->state = S_HEADERS;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
      }
    }
    return 0;
  }
  for (int rounds = 0; rounds < 4; ++rounds) {
    ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return 0;
      fail(c, "recv: %s", strerror(errno));
      c->state = S_DONE;
      return 1;
    }
    if (r == 0) { /* EOF */
      if (c->state == S_HEADERS) fail(c, "closed before the headers%s", NULL);
      if (c->state == S_BODY && c->chunked && c->ch != CH_END)
        fail(c, "closed inside the chunked body%s", NULL);
      c->state = S_DONE;
      return 1;
    }
    if (c->state == S_HEADERS) {
      ensure_cap(c, c->len + (size_t)r + 1);
      memcpy(c->buf + c->len, rbuf, (size_t)r);
      c->len += (size_t)r;
      c->buf[c->len] = 0;
      char* e = memmem(c->buf, c->len, "\r\n\r\n", 4);
      if (e) on_headers_done(c, (size_t)(e - c->buf) + 4, now);
      if (c->state == S_BODY && (mode == M_IDLE)) return 0;
    } else if (c->state == S_BODY) {
      on_raw(c, rbuf, (size_t)r, now);
    }
    if (c->state == S_BODY && c->chunked && c->ch == CH_END) c->state = S_DONE;
    if (c->state == S_DONE) return 1;
    if ((size_t)r < sizeof rbuf) return 0;
  }
  return 0;
}

static int file_exists(const char* path) {
  struct stat st;
  return stat(path, &st) == 0;
}

static void print_cpu(const double* before) {
  for (int i = 0; i < ncpu_pids; ++i) {
    double after = cpu_of_pid(cpu_pids[i]);
    printf(" cpu_%d=%.3f", cpu_pids[i], before[i] >= 0 && after >= 0 ? after - before[i] : -1.0);
  }
}

static int cmp_i64(const void* a, const void* b) {
  int64_t x = *(const int64_t*)a, y = *(const int64_t*)b;
  return (x > y) - (x < y);
}

static double pct_us(double q) {
  if (lat_len == 0) return 0;
  size_t i = (size_t)(q * (double)lat_len);
  if (i >= lat_len) i = lat_len - 1;
  return (double)lat[i] / 1000.0;
}

static int run_streams(void) {
  double before[8];
  for (int i = 0; i < ncpu_pids; ++i) before[i] = cpu_of_pid(cpu_pids[i]);
  double self0 = cpu_self();
  int64_t start = now_ns(), deadline = start + (int64_t)(timeout_s * 1e9);
  conns = calloc((size_t)streams, sizeof *conns);
  nconns = streams;
  int live = 0;
  for (int i = 0; i < streams; ++i) {
    if (open_conn(&conns[i], i) != 0) {
      conns[i].state = S_DONE;
      report_failure(&conns[i]);
    } else {
      ++live;
    }
  }
  struct epoll_event evs[256];
  while (live > 0) {
    int64_t now = now_ns();
    if (now >= deadline) break;
    int wait_ms = (int)((deadline - now) / 1000000) + 1;
    int n = epoll_wait(ep, evs, 256, wait_ms > 1000 ? 1000 : wait_ms);
    now = now_ns();
    for (int k = 0; k < n; ++k) {
      struct conn* c = evs[k].data.ptr;
      if (c->state == S_DONE) continue;
      if (on_event(c, evs[k].events, now)) {
        finish_stream(c);
        --live;
      }
    }
  }
  int64_t end = now_ns();
  for (int i = 0; i < streams; ++i) {
    if (conns[i].state != S_DONE) {
      fail(&conns[i], "timed out%s", NULL);
      report_failure(&conns[i]);
      close_conn(&conns[i]);
    }
  }
  double secs = (double)(end - start) / 1e9, self = cpu_self() - self0;
  printf(
      "RESULT mode=%s streams=%d events=%lld seconds=%.3f events_per_s=%.0f failed=%d "
      "cpu_self=%.3f self_pct=%.0f",
      mode == M_LATENCY ? "latency" : "streams", streams, total_events, secs,
      (double)total_events / secs, failures, self, 100 * self / secs);
  print_cpu(before);
  if (mode == M_LATENCY) {
    qsort(lat, lat_len, sizeof *lat, cmp_i64);
    printf(" samples=%zu p50_us=%.0f p99_us=%.0f p999_us=%.0f max_us=%.0f", lat_len, pct_us(0.5),
           pct_us(0.99), pct_us(0.999), lat_len ? (double)lat[lat_len - 1] / 1000.0 : 0.0);
  }
  printf("\n");
  return failures ? 1 : 0;
}

static int run_idle(void) {
  int64_t start = now_ns(), deadline = start + (int64_t)(timeout_s * 1e9);
  conns = calloc((size_t)streams, sizeof *conns);
  nconns = streams;
  int opened = 0, waiting = 0, ready = 0, dead = 0, announced = 0;
  struct epoll_event evs[256];
  double open_secs = 0;
  for (;;) {
    int64_t now = now_ns();
    if (now >= deadline) break;
    while (opened < streams && waiting < batch) {
      if (open_conn(&conns[opened], opened) != 0) {
        conns[opened].state = S_DONE;
        report_failure(&conns[opened]);
        ++dead;
      } else {
        ++waiting;
      }
      ++opened;
    }
    if (!announced && ready + dead == streams) {
      announced = 1;
      open_secs = (double)(now - start) / 1e9;
      printf("OPEN streams=%d ok=%d failed=%d seconds=%.3f\n", streams, ready, dead, open_secs);
      fflush(stdout);
      if (!hold_file) break;
    }
    if (announced && file_exists(hold_file)) break;
    int n = epoll_wait(ep, evs, 256, 20);
    now = now_ns();
    for (int k = 0; k < n; ++k) {
      struct conn* c = evs[k].data.ptr;
      if (c->state == S_DONE) continue;
      enum state was = c->state;
      int done = on_event(c, evs[k].events, now);
      if (was != S_BODY && c->state == S_BODY) { /* got its 200 headers */
        --waiting;
        ++ready;
      }
      if (done) {
        if (!c->error[0]) fail(c, "the stream ended while idle%s", NULL);
        if (was != S_BODY)
          --waiting;
        else
          --ready;
        ++dead;
        report_failure(c);
        close_conn(c);
      }
    }
  }
  if (!announced) {
    fprintf(stderr, "loadgen: %d of %d streams open after %.0f s\n", ready, streams, timeout_s);
    failures += streams - ready - dead;
  }
  for (int i = 0; i < opened; ++i) close_conn(&conns[i]);
  printf("RESULT mode=idle streams=%d ok=%d failed=%d open_seconds=%.3f held_seconds=%.3f\n",
         streams, ready, failures, open_secs, (double)(now_ns() - start) / 1e9 - open_secs);
  return failures ? 1 : 0;
}

static int run_churn(void) {
  double before[8];
  for (int i = 0; i < ncpu_pids; ++i) before[i] = cpu_of_pid(cpu_pids[i]);
  int64_t start = now_ns(), deadline = start + (int64_t)(timeout_s * 1e9);
  conns = calloc((size_t)concurrency, sizeof *conns);
  nconns = concurrency;
  int live = 0;
  struct epoll_event evs[256];
  for (;;) {
    for (int i = 0; i < concurrency && cycles_started < cycles; ++i) {
      if (conns[i].state != S_FREE) continue;
      ++cycles_started;
      if (open_conn(&conns[i], (int)cycles_started) != 0) {
        report_failure(&conns[i]);
        ++cycles_done;
        conns[i].state = S_FREE;
        continue;
      }
      ++live;
    }
    if (live == 0) break;
    int64_t now = now_ns();
    if (now >= deadline) break;
    int n = epoll_wait(ep, evs, 256, 100);
    now = now_ns();
    for (int k = 0; k < n; ++k) {
      struct conn* c = evs[k].data.ptr;
      if (c->state == S_DONE || c->state == S_FREE) continue;
      if (on_event(c, evs[k].events, now)) {
        if (!c->error[0] && c->events < 1) fail(c, "ended before its first event%s", NULL);
        ++cycles_done;
        if (c->error[0])
          report_failure(c);
        else
          ++cycles_ok;
        close_conn(c); /* the disconnect */
        c->state = S_FREE;
        --live;
      }
    }
  }
  for (int i = 0; i < concurrency; ++i) {
    if (conns[i].state != S_FREE) {
      fail(&conns[i], "timed out%s", NULL);
      report_failure(&conns[i]);
      close_conn(&conns[i]);
    }
  }
  failures += (int)(cycles - cycles_started); /* never started: timed out */
  double secs = (double)(now_ns() - start) / 1e9;
  printf("RESULT mode=churn cycles=%lld ok=%lld failed=%d seconds=%.3f cycles_per_s=%.0f", cycles,
         cycles_ok, failures, secs, (double)cycles_ok / secs);
  print_cpu(before);
  printf("\n");
  return failures ? 1 : 0;
}

/* The request of one stream of `events` events into `out`; its length, or
 * <= 0 / >= size when it does not fit. */
static int format_request(char* out, size_t size, const char* to, long long events) {
  return snprintf(out, size,
                  "GET %s?to=%s&count=%lld&interval_ms=%d HTTP/1.1\r\nHost: %s\r\n"
                  "Accept: text/event-stream\r\nConnection: close\r\n\r\n",
                  route, to, events, interval_ms, host_header);
}

/* xorshift64: reproducible, no libc state */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint64_t next_random(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int open_soak_stream(struct conn* c, int index) {
  long long want = 1 + (long long)(next_random() % (uint64_t)count);
  long long close_at = next_random() % 4 == 0 ? 1 + (long long)(next_random() % (uint64_t)want) : 0;
  if (close_at == want) close_at = 0; /* the last event: let it end by itself */
  if (open_conn(c, index) != 0) return -1;
  c->want = want;
  c->close_at = close_at;
  c->out = c->own_request;
  c->out_len = (size_t)format_request(c->own_request, sizeof c->own_request, "soak", want);
  return 0;
}

static int run_soak(void) {
  int64_t start = now_ns();
  int64_t stop_opening = start + (int64_t)(duration_s * 1e9);
  int64_t deadline = stop_opening + (int64_t)(timeout_s * 1e9);
  int64_t next_progress = start + 10 * (int64_t)1000000000;
  conns = calloc((size_t)streams, sizeof *conns);
  nconns = streams;
  long long opened = 0, completed = 0, closed_early = 0;
  int live = 0;
  struct epoll_event evs[256];
  for (;;) {
    int64_t now = now_ns();
    const int opening = now < stop_opening;
    for (int i = 0; opening && i < streams; ++i) {
      if (conns[i].state != S_FREE) continue;
      ++opened;
      if (open_soak_stream(&conns[i], i) != 0) {
        report_failure(&conns[i]);
        close_conn(&conns[i]);
        continue; /* stays S_FREE: tried again next round */
      }
      ++live;
    }
    if (!opening) break;
    if (now >= next_progress) {
      printf("PROGRESS seconds=%.0f open=%d opened=%lld completed=%lld closed_early=%lld events=%lld failed=%d\n",
             (double)(now - start) / 1e9, live, opened, completed, closed_early, total_events,
             failures);
      next_progress += 10 * (int64_t)1000000000;
    }
    int n = epoll_wait(ep, evs, 256, 100);
    now = now_ns();
    for (int k = 0; k < n; ++k) {
      struct conn* c = evs[k].data.ptr;
      if (c->state == S_DONE || c->state == S_FREE) continue;
      if (!on_event(c, evs[k].events, now)) continue;
      if (!c->error[0] && c->close_at > 0 && c->events == c->close_at) {
        ++closed_early; /* the client's cancel: seq 1..close_at seen, in order */
      } else if (!c->error[0]) {
        check_complete(c, c->want);
        if (!c->error[0]) ++completed;
      }
      if (c->error[0]) report_failure(c);
      close_conn(c);
      c->state = S_FREE;
      --live;
    }
    if (now >= deadline) break;
  }
  /* The open ones are closed mid-stream: cancels, as a leaving browser's. */
  for (int i = 0; i < streams; ++i) {
    if (conns[i].state == S_FREE) continue;
    if (conns[i].error[0]) report_failure(&conns[i]);
    close_conn(&conns[i]);
  }
  double secs = (double)(now_ns() - start) / 1e9;
  printf("RESULT mode=soak streams=%d seconds=%.0f opened=%lld completed=%lld closed_early=%lld "
         "closed_at_end=%d events=%lld failed=%d\n",
         streams, secs, opened, completed, closed_early, live, total_events, failures);
  return failures ? 1 : 0;
}

/* --- resume and broadcast: a chat room, EventSource behaviour -------------- */

/* What one subscriber keeps across its connections (EventSource's state). */
struct sub {
  char last_id[64];  /* the last `id:` (sent as Last-Event-ID) */
  int retry_ms;      /* the last `retry:` */
  long long next_seq;
  long long events;   /* SEQ >= 1 received */
  long long barrier;  /* SEQ 0 received */
  int64_t reconnect_at; /* S_WAIT: when to reconnect */
  int64_t cut_at;       /* last cut (a 200 stream that ended) */
  int cut_pending;      /* cut, not resumed yet */
  int reopened;         /* has its 200 since the cut */
  int cuts, attempts, refused;
  int dead; /* failed for good (non-200, `end`), as EventSource */
  int first_waiting; /* its first connection is waiting for headers */
  char error[160];
};

static struct sub* subs;
static const char* room = "bench";
static const char* post_route = "/chat.v1.Chat/Post";
static struct sockaddr_in post_target;
static char post_host[64];
static double rate = 2;
static double rates[16];
static int nrates;
static double step_seconds = 10;
static int default_retry_ms = 3000;

/* Room-mode counters. */
static long long cuts_total, reopen_total, resume_total, attempts_total, refused_total;
static int cut_pending_now;
static int64_t first_cut_at, last_resume_at;
static int64_t *reopen_delay, *resume_delay; /* ns, one per resume */
static size_t reopen_len, resume_len, delay_cap;
static size_t lat_step_cap;
static int dead_total;
static int room_failures_printed;
/* Broadcast: latency per step (by the seq's step), deliveries per step (by receipt). */
static uint8_t* lat_step;
static int cur_step = -1;
static long long step_first_seq[17];
static long long step_deliveries[16];

static void sub_fail(struct sub* s, int index, const char* fmt, const char* detail) {
  if (s->error[0]) return;
  snprintf(s->error, sizeof s->error, fmt, detail ? detail : "");
  if (room_failures_printed < 10) {
    ++room_failures_printed;
    fprintf(stderr, "  FAILED stream %d: %s (events %lld)\n", index, s->error, s->events);
  }
}

static int step_of_seq(long long seq) {
  for (int k = nrates - 1; k >= 0; --k)
    if (step_first_seq[k] > 0 && seq >= step_first_seq[k]) return k;
  return 0;
}

static void room_block(struct conn* c, const char* p, size_t n, int64_t now) {
  struct sub* s = &subs[c->index];
  const char* end = p + n;
  int is_end = 0;
  const char* data = NULL;
  const char* data_end = end;
  for (const char* line = p; line < end;) {
    const char* nl = memchr(line, '\n', (size_t)(end - line));
    const char* le = nl ? nl : end;
    size_t ll = (size_t)(le - line);
    const char* v = NULL;
    if (ll >= 6 && memcmp(line, "event:", 6) == 0) {
      v = line + 6;
      while (v < le && *v == ' ') ++v;
      if (le - v == 3 && memcmp(v, "end", 3) == 0) is_end = 1;
    } else if (ll >= 5 && memcmp(line, "data:", 5) == 0) {
      if (!data) {
        data = line + 5;
        data_end = le;
      }
    } else if (ll >= 3 && memcmp(line, "id:", 3) == 0) {
      v = line + 3;
      if (v < le && *v == ' ') ++v;
      size_t idl = (size_t)(le - v);
      if (idl < sizeof s->last_id) { /* EventSource: an id is kept even without data */
        memcpy(s->last_id, v, idl);
        s->last_id[idl] = 0;
      }
    } else if (ll >= 6 && memcmp(line, "retry:", 6) == 0) {
      v = line + 6;
      if (v < le && *v == ' ') ++v;
      long long r = 0;
      int digits = 0;
      while (v < le && *v >= '0' && *v <= '9') r = r * 10 + (*v++ - '0'), ++digits;
      if (digits > 0 && v == le) s->retry_ms = (int)r;
    }
    line = nl ? nl + 1 : end;
  }
  if (is_end) { /* the server ended the stream: final */
    char d[128];
    snprintf(d, sizeof d, "%.*s", data ? (int)(data_end - data) : 0, data ? data : "");
    sub_fail(s, c->index, "event: end %s", d);
    s->dead = 1;
    c->state = S_DONE;
    return;
  }
  if (!data) return; /* retry:, a keep-alive */
  long long seq = number_after(data, data_end, "\"text\":\"");
  if (seq < 0) {
    sub_fail(s, c->index, "an event without \"text\":\"SEQ:STAMP\"%s", NULL);
    return;
  }
  if (s->cut_pending && s->reopened) { /* its first event since the cut */
    s->cut_pending = 0;
    --cut_pending_now;
    ++resume_total;
    last_resume_at = now;
    if (resume_len < delay_cap) resume_delay[resume_len++] = now - s->cut_at;
  }
  if (seq == 0) {
    ++s->barrier;
    if (s->next_seq != 1) sub_fail(s, c->index, "a barrier event after SEQ 1%s", NULL);
    return;
  }
  ++s->events;
  ++total_events;
  if (cur_step >= 0) ++step_deliveries[cur_step];
  if (seq != s->next_seq) {
    char d[64];
    snprintf(d, sizeof d, "%lld, expected %lld", seq, s->next_seq);
    sub_fail(s, c->index, "seq %s", d);
  }
  if (seq >= s->next_seq) s->next_seq = seq + 1;
  const char* colon = memchr(data, ':', (size_t)(data_end - data));
  const char* text = memmem(data, (size_t)(data_end - data), "\"text\":\"", 8);
  colon = text ? memchr(text + 8, ':', (size_t)(data_end - text - 8)) : NULL;
  long long stamp = colon ? number_after(colon, data_end, ":") : -1;
  if (stamp > 0) {
    add_latency(now - stamp);
    if (mode == M_BROADCAST) {
      if (lat_step_cap < lat_cap) {
        lat_step_cap = lat_cap;
        lat_step = realloc(lat_step, lat_step_cap);
        if (!lat_step) exit(2);
      }
      lat_step[lat_len - 1] = (uint8_t)step_of_seq(seq);
    }
  }
}

/* The publisher: one POST at a time (so the log's order is SEQ's). */
static struct {
  int fd;
  int state; /* 0 idle, 1 connecting/sending, 2 reading */
  char req[512];
  size_t req_len, sent;
  char resp[256];
  size_t resp_len;
  long long seq;
  int64_t started, retry_at;
} poster = {.fd = -1};
static long long posts_ok, posts_failed, last_posted; /* last_posted: highest SEQ acknowledged */
static int64_t post_rtt_sum, post_rtt_max;

static void post_start(long long seq, int64_t now) {
  poster.seq = seq;
  poster.started = now;
  int body_len;
  char body[200];
  body_len = snprintf(body, sizeof body, "{\"room\":\"%s\",\"text\":\"%lld:%lld\"}", room, seq,
                      (long long)now_ns());
  poster.req_len = (size_t)snprintf(poster.req, sizeof poster.req,
                                    "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                    "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                                    post_route, post_host, body_len, body);
  poster.sent = 0;
  poster.resp_len = 0;
  poster.resp[0] = 0;
  poster.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (poster.fd >= 0) setsockopt(poster.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (poster.fd < 0 || (connect(poster.fd, (struct sockaddr*)&post_target, sizeof post_target) != 0 &&
                        errno != EINPROGRESS)) {
    if (poster.fd >= 0) close(poster.fd);
    poster.fd = -1;
    ++posts_failed;
    poster.state = 0;
    poster.retry_at = now + 50 * 1000000LL;
    poster.resp[0] = 0;
    return;
  }
  struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN | EPOLLRDHUP, .data.ptr = &poster};
  epoll_ctl(ep, EPOLL_CTL_ADD, poster.fd, &ev);
  poster.state = 1;
}

/* Returns 1 when the post finished (ok or not). */
static int post_event(uint32_t events, int64_t now) {
  if (poster.state == 1 && (events & EPOLLOUT)) {
    ssize_t w = send(poster.fd, poster.req + poster.sent, poster.req_len - poster.sent, MSG_NOSIGNAL);
    if (w > 0) poster.sent += (size_t)w;
    if (w < 0 && errno != EAGAIN) goto failed;
    if (poster.sent == poster.req_len) {
      poster.state = 2;
      struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = &poster};
      epoll_ctl(ep, EPOLL_CTL_MOD, poster.fd, &ev);
    }
    return 0;
  }
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
    for (;;) {
      char tmp[4096];
      ssize_t r = recv(poster.fd, tmp, sizeof tmp, 0);
      if (r < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
      if (r < 0) goto failed;
      if (r == 0) break;
      size_t take = (size_t)r;
      if (take > sizeof poster.resp - 1 - poster.resp_len) take = sizeof poster.resp - 1 - poster.resp_len;
      memcpy(poster.resp + poster.resp_len, tmp, take);
      poster.resp_len += take;
    }
    poster.resp[poster.resp_len] = 0;
    int status = 0;
    if (sscanf(poster.resp, "HTTP/1.%*d %d", &status) != 1 || status != 200) goto failed;
    close(poster.fd);
    poster.fd = -1;
    poster.state = 0;
    ++posts_ok;
    if (poster.seq > last_posted) last_posted = poster.seq;
    int64_t rtt = now - poster.started;
    post_rtt_sum += rtt;
    if (rtt > post_rtt_max) post_rtt_max = rtt;
    return 1;
  }
  return 0;
failed:
  if (posts_failed < 5) {
    char* nl = strchr(poster.resp, '\r');
    if (nl) *nl = 0;
    fprintf(stderr, "  post of SEQ %lld failed: '%s'\n", poster.seq,
            poster.resp_len ? poster.resp : "no answer (connect refused or closed)");
  }
  close(poster.fd);
  poster.fd = -1;
  poster.state = 0;
  ++posts_failed;
  poster.retry_at = now + 50 * 1000000LL; /* the same SEQ again */
  return 1;
}

static int format_room_request(struct conn* c, struct sub* s) {
  char last[96] = "";
  if (s->last_id[0]) snprintf(last, sizeof last, "Last-Event-ID: %s\r\n", s->last_id);
  int len = snprintf(c->own_request, sizeof c->own_request,
                     "GET %s?room=%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n%sConnection: close\r\n\r\n",
                     route, room, host_header, last);
  c->out = c->own_request;
  c->out_len = (size_t)len;
  return len;
}

/* Opens (or reopens) subscriber i; 0 when under way. */
static int room_open(int i) {
  struct sub* s = &subs[i];
  ++s->attempts;
  ++attempts_total;
  if (open_conn(&conns[i], i) != 0) return -1;
  format_room_request(&conns[i], s);
  return 0;
}

static void room_wait(int i, int64_t now) { /* EventSource: reconnect after retry */
  conns[i].state = S_WAIT;
  subs[i].reconnect_at = now + (int64_t)subs[i].retry_ms * 1000000;
}

static int cmp_i64(const void* a, const void* b);

static double q_ms(int64_t* v, size_t n, double q) {
  if (n == 0) return 0;
  size_t i = (size_t)(q * (double)n);
  if (i >= n) i = n - 1;
  return (double)v[i] / 1e6;
}

static void print_resumed(int64_t now) {
  size_t n = reopen_len, m = resume_len;
  int64_t* a = malloc((n ? n : 1) * sizeof *a);
  int64_t* b = malloc((m ? m : 1) * sizeof *b);
  memcpy(a, reopen_delay, n * sizeof *a);
  memcpy(b, resume_delay, m * sizeof *b);
  qsort(a, n, sizeof *a, cmp_i64);
  qsort(b, m, sizeof *b, cmp_i64);
  printf("RESUMED cut=%lld resumed=%lld attempts=%lld refused=%lld first_cut_to_last_resume_s=%.3f "
         "reopen_p50_ms=%.0f reopen_p99_ms=%.0f reopen_max_ms=%.0f resume_p50_ms=%.0f "
         "resume_p99_ms=%.0f resume_max_ms=%.0f at_s=%.3f\n",
         cuts_total, resume_total, attempts_total, refused_total,
         (double)(last_resume_at - first_cut_at) / 1e9, q_ms(a, n, 0.5), q_ms(a, n, 0.99),
         n ? (double)a[n - 1] / 1e6 : 0.0, q_ms(b, m, 0.5), q_ms(b, m, 0.99),
         m ? (double)b[m - 1] / 1e6 : 0.0, (double)now / 1e9);
  fflush(stdout);
  free(a);
  free(b);
}

static int run_room(void) {
  double self0 = cpu_self();
  int64_t start = now_ns(), deadline = start + (int64_t)(timeout_s * 1e9);
  conns = calloc((size_t)streams, sizeof *conns);
  subs = calloc((size_t)streams, sizeof *subs);
  nconns = streams;
  delay_cap = 4 * (size_t)streams + 1024;
  reopen_delay = calloc(delay_cap, sizeof *reopen_delay);
  resume_delay = calloc(delay_cap, sizeof *resume_delay);
  for (int i = 0; i < streams; ++i) {
    subs[i].next_seq = 1;
    subs[i].retry_ms = default_retry_ms;
    conns[i].fd = -1;
    conns[i].state = S_FREE;
    conns[i].index = i;
  }
  enum { P_OPEN, P_BARRIER, P_RUN, P_DRAIN } phase = P_OPEN;
  int opened = 0, waiting = 0, open_now = 0;
  int64_t phase_at = start, next_post = 0, run_start = 0, run_end = 0, step_start = 0;
  long long seq = 0; /* the next SEQ to post (in P_RUN) */
  double open_secs = 0, barrier_secs = 0;
  int resumed_printed = 1;
  struct epoll_event evs[256];
  for (;;) {
    int64_t now = now_ns();
    if (now >= deadline) break;
    /* Open the first connections, --batch at a time waiting for headers. */
    while (opened < streams && waiting < batch) {
      if (room_open(opened) != 0) {
        room_wait(opened, now);
      } else {
        ++waiting;
        subs[opened].first_waiting = 1;
      }
      ++opened;
    }
    /* Reconnects that are due (scanned every 5 ms). */
    static int64_t next_scan;
    if (now >= next_scan) {
      next_scan = now + 5000000;
      for (int i = 0; i < opened; ++i) {
        if (conns[i].state != S_WAIT || subs[i].reconnect_at > now) continue;
        if (room_open(i) != 0) room_wait(i, now);
      }
    }
    static int64_t next_check;
    const int check = now >= next_check; /* the O(streams) checks: every 20 ms */
    if (check) next_check = now + 20000000;
    if (phase == P_OPEN && opened == streams && open_now + dead_total == streams) {
      open_secs = (double)(now - start) / 1e9;
      printf("OPEN streams=%d ok=%d failed=%d seconds=%.3f\n", streams, open_now, dead_total,
             open_secs);
      fflush(stdout);
      phase = P_BARRIER;
      phase_at = now;
      next_post = now;
    }
    if (phase == P_BARRIER && check) {
      int all = 1;
      for (int i = 0; i < streams && all; ++i) all = subs[i].barrier > 0 || subs[i].dead;
      if (all && poster.state == 0) {
        barrier_secs = (double)(now - phase_at) / 1e9;
        printf("READY streams=%d open=%d open_seconds=%.3f barrier_seconds=%.3f\n", streams,
               open_now, open_secs, barrier_secs);
        fflush(stdout);
        phase = P_RUN;
        run_start = step_start = next_post = now;
        seq = 1;
        if (mode == M_BROADCAST) {
          cur_step = 0;
          step_first_seq[0] = 1;
        }
      } else if (poster.state == 0 && now >= next_post && now >= poster.retry_at) {
        post_start(0, now);
        next_post = now + 200000000;
      }
    }
    if (phase == P_RUN) {
      int stop = 0;
      double r = rate;
      if (mode == M_RESUME) {
        if (hold_file ? check && file_exists(hold_file) : now - run_start >= (int64_t)(duration_s * 1e9))
          stop = 1;
      } else {
        r = rates[cur_step];
        if (now - step_start >= (int64_t)(step_seconds * 1e9)) {
          if (cur_step + 1 >= nrates) {
            stop = 1;
          } else { /* the next SEQ to post opens the step */
            step_first_seq[++cur_step] = (poster.state != 0 || last_posted == seq) ? seq + 1 : seq;
            step_start = next_post = now;
            r = rates[cur_step];
          }
        }
      }
      if (stop) {
        phase = P_DRAIN;
        run_end = phase_at = now;
        deadline = now + (int64_t)(timeout_s * 1e9);
      } else if (poster.state == 0 && now >= next_post && now >= poster.retry_at) {
        if (last_posted == seq) ++seq; /* the last one was acknowledged */
        post_start(seq, now);
        next_post += (int64_t)(1e9 / r);
        if (next_post < now - 1000000000) next_post = now; /* far behind: do not burst */
      }
    }
    if (phase == P_DRAIN && poster.state == 0 && check) {
      if (seq > last_posted && now >= poster.retry_at && seq > 0) {
        post_start(seq, now); /* a failed last post, again */
      } else {
        int all = 1;
        for (int i = 0; i < streams && all; ++i) all = subs[i].dead || subs[i].next_seq > last_posted;
        if (all) break;
      }
    }
    if (cut_pending_now == 0 && !resumed_printed) {
      resumed_printed = 1;
      print_resumed(now);
    }
    int n = epoll_wait(ep, evs, 256, 5);
    now = now_ns();
    for (int k = 0; k < n; ++k) {
      if (evs[k].data.ptr == &poster) {
        post_event(evs[k].events, now);
        continue;
      }
      struct conn* c = evs[k].data.ptr;
      if (c->state == S_DONE || c->state == S_WAIT || c->state == S_FREE) continue;
      int i = c->index;
      struct sub* s = &subs[i];
      enum state was = c->state;
      int done = on_event(c, evs[k].events, now);
      if (was != S_BODY && (c->status != 0 || done) && s->first_waiting) {
        s->first_waiting = 0;
        --waiting;
      }
      if (was != S_BODY && c->status == 200) { /* its 200 headers now */
        ++open_now;
        if (s->cut_pending && !s->reopened) {
          s->reopened = 1;
          ++reopen_total;
          if (reopen_len < delay_cap) reopen_delay[reopen_len++] = now - s->cut_at;
        }
      }
      if (!done && c->state != S_DONE) continue;
      if (c->status == 200) --open_now;
      if (s->dead) { /* `end` */
        ++dead_total;
        close_conn(c);
        c->state = S_DONE;
        continue;
      }
      if (c->status > 0 && c->status != 200) { /* EventSource fails for good */
        char d[32];
        snprintf(d, sizeof d, "%d", c->status);
        sub_fail(s, i, "HTTP status %s (final, as in EventSource)", d);
        s->dead = 1;
        ++dead_total;
        close_conn(c);
        c->state = S_DONE;
        continue;
      }
      if (c->status == 200) { /* a cut: reconnect with Last-Event-ID */
        ++s->cuts;
        ++cuts_total;
        if (first_cut_at == 0 || cut_pending_now == 0) first_cut_at = now;
        if (!s->cut_pending) {
          ++cut_pending_now;
          s->cut_at = now; /* delays count from the first cut */
        }
        s->cut_pending = 1;
        s->reopened = 0;
        resumed_printed = 0;
      } else {
        ++refused_total; /* connect refused or closed before the headers */
      }
      close_conn(c);
      room_wait(i, now);
    }
  }
  int64_t end = now_ns();
  double secs = (double)(end - start) / 1e9, self = cpu_self() - self0;
  if (phase != P_DRAIN) fprintf(stderr, "loadgen: timed out in phase %d\n", (int)phase);
  int behind = 0, dead = 0;
  for (int i = 0; i < streams; ++i) {
    struct sub* s = &subs[i];
    if (s->dead) ++dead;
    if (!s->error[0] && s->next_seq <= last_posted) {
      char d[64];
      snprintf(d, sizeof d, "%lld of %lld", s->next_seq - 1, last_posted);
      sub_fail(s, i, "got seq 1..%s", d);
      ++behind;
    }
    if (s->error[0]) ++failures;
    close_conn(&conns[i]);
  }
  if (phase != P_DRAIN) ++failures;
  double run_s = (double)((run_end ? run_end : end) - run_start) / 1e9;
  if (mode == M_BROADCAST) {
    /* Per step: its posts' latencies, deliveries received while it ran. */
    for (int k = 0; k <= cur_step && k < nrates; ++k) {
      size_t m = 0;
      int64_t* v = malloc((lat_len ? lat_len : 1) * sizeof *v);
      for (size_t j = 0; j < lat_len; ++j)
        if (lat_step[j] == k) v[m++] = lat[j];
      qsort(v, m, sizeof *v, cmp_i64);
      long long first = step_first_seq[k];
      long long last = k + 1 <= cur_step ? step_first_seq[k + 1] - 1 : last_posted;
      printf("STEP rate=%g posted=%lld seconds=%g deliveries=%zu deliveries_per_s=%.0f p50_us=%.0f "
             "p99_us=%.0f p999_us=%.0f max_us=%.0f received_in_step=%lld\n",
             rates[k], last - first + 1, step_seconds, m,
             (double)step_deliveries[k] / step_seconds, q_ms(v, m, 0.5) * 1000,
             q_ms(v, m, 0.99) * 1000, q_ms(v, m, 0.999) * 1000,
             m ? (double)v[m - 1] / 1000.0 : 0.0, step_deliveries[k]);
      free(v);
    }
  }
  qsort(lat, lat_len, sizeof *lat, cmp_i64);
  printf("RESULT mode=%s streams=%d posts=%lld post_failures=%lld events=%lld seconds=%.3f "
         "run_seconds=%.3f deliveries_per_s=%.0f cuts=%lld resumed=%lld attempts=%lld refused=%lld "
         "behind=%d dead=%d failed=%d post_rtt_avg_us=%.0f post_rtt_max_us=%.0f p50_us=%.0f "
         "p99_us=%.0f cpu_self=%.3f self_pct=%.0f\n",
         mode == M_RESUME ? "resume" : "broadcast", streams, last_posted, posts_failed,
         total_events, secs, run_s, run_s > 0 ? (double)total_events / run_s : 0.0, cuts_total,
         resume_total, attempts_total, refused_total, behind, dead, failures,
         posts_ok ? (double)post_rtt_sum / (double)posts_ok / 1000.0 : 0.0,
         (double)post_rtt_max / 1000.0, pct_us(0.5), pct_us(0.99), self, 100 * self / secs);
  return failures ? 1 : 0;
}

static int usage(const char* msg) {
  fprintf(stderr,
          "loadgen: %s\nusage: loadgen streams|latency|idle|churn|soak --addr=HOST:PORT "
          "[--streams=S] [--count=N] [--interval_ms=M] [--route=/api/streaming/ping] "
          "[--timeout=SECS] [--cpu-pid=PID]... [--batch=N] [--hold-file=PATH] [--cycles=N] "
          "[--concurrency=C] [--duration=SECS] [--room=NAME] [--post-addr=HOST:PORT] "
          "[--post-route=/chat.v1.Chat/Post] [--rate=POSTS_PER_S] [--rates=R1,R2,..] "
          "[--step-seconds=SECS] [--retry-default=MS]\n",
          msg);
  return 2;
}

int main(int argc, char** argv) {
  if (argc < 2) return usage("no mode");
  if (strcmp(argv[1], "streams") == 0)
    mode = M_STREAMS;
  else if (strcmp(argv[1], "latency") == 0)
    mode = M_LATENCY;
  else if (strcmp(argv[1], "idle") == 0)
    mode = M_IDLE;
  else if (strcmp(argv[1], "churn") == 0)
    mode = M_CHURN;
  else if (strcmp(argv[1], "soak") == 0)
    mode = M_SOAK;
  else if (strcmp(argv[1], "resume") == 0)
    mode = M_RESUME;
  else if (strcmp(argv[1], "broadcast") == 0)
    mode = M_BROADCAST;
  else
    return usage("unknown mode");
  const char* addr = NULL;
  const char* post_addr = NULL;
  for (int i = 2; i < argc; ++i) {
    const char *a = argv[i], *v = strchr(a, '=');
    if (!v) return usage(a);
    ++v;
    if (strncmp(a, "--addr=", 7) == 0)
      addr = v;
    else if (strncmp(a, "--streams=", 10) == 0)
      streams = atoi(v);
    else if (strncmp(a, "--count=", 8) == 0)
      count = atoll(v);
    else if (strncmp(a, "--interval_ms=", 14) == 0)
      interval_ms = atoi(v);
    else if (strncmp(a, "--route=", 8) == 0)
      route = v;
    else if (strncmp(a, "--timeout=", 10) == 0)
      timeout_s = atof(v);
    else if (strncmp(a, "--batch=", 8) == 0)
      batch = atoi(v);
    else if (strncmp(a, "--hold-file=", 12) == 0)
      hold_file = v;
    else if (strncmp(a, "--cycles=", 9) == 0)
      cycles = atoll(v);
    else if (strncmp(a, "--concurrency=", 14) == 0)
      concurrency = atoi(v);
    else if (strncmp(a, "--duration=", 11) == 0)
      duration_s = atof(v);
    else if (strncmp(a, "--room=", 7) == 0)
      room = v;
    else if (strncmp(a, "--post-addr=", 12) == 0)
      post_addr = v;
    else if (strncmp(a, "--post-route=", 13) == 0)
      post_route = v;
    else if (strncmp(a, "--rate=", 7) == 0)
      rate = atof(v);
    else if (strncmp(a, "--step-seconds=", 15) == 0)
      step_seconds = atof(v);
    else if (strncmp(a, "--retry-default=", 16) == 0)
      default_retry_ms = atoi(v);
    else if (strncmp(a, "--rates=", 8) == 0) {
      for (const char* r = v; *r && nrates < 16;) {
        rates[nrates++] = atof(r);
        const char* comma = strchr(r, ',');
        if (!comma) break;
        r = comma + 1;
      }
    } else if (strncmp(a, "--cpu-pid=", 10) == 0 && ncpu_pids < 8)
      cpu_pids[ncpu_pids++] = atoi(v);
    else
      return usage(a);
  }
  if (!addr) return usage("--addr is required");
  if (streams < 1 || count < 1 || interval_ms < 0 || batch < 1 || concurrency < 1 || cycles < 1)
    return usage("bad number");
  char host[64];
  const char* colon = strrchr(addr, ':');
  if (!colon || (size_t)(colon - addr) >= sizeof host) return usage("--addr=HOST:PORT");
  memcpy(host, addr, (size_t)(colon - addr));
  host[colon - addr] = 0;
  memset(&target, 0, sizeof target);
  target.sin_family = AF_INET;
  target.sin_port = htons((uint16_t)atoi(colon + 1));
  if (inet_pton(AF_INET, host, &target.sin_addr) != 1) return usage("--addr: an IPv4 address");
  rotate_sources = strncmp(host, "127.", 4) == 0;
  snprintf(host_header, sizeof host_header, "%s", addr);
  if (mode == M_RESUME || mode == M_BROADCAST) {
    if (mode == M_BROADCAST && nrates == 0) return usage("broadcast needs --rates");
    for (int k = 0; k < nrates; ++k)
      if (rates[k] <= 0) return usage("--rates: positive numbers");
    if (rate <= 0 || step_seconds <= 0 || default_retry_ms < 0) return usage("bad number");
    if (strcmp(route, "/api/streaming/ping") == 0) route = "/chat.v1.Chat/Subscribe";
    if (!post_addr) post_addr = addr;
    const char* pc = strrchr(post_addr, ':');
    if (!pc || (size_t)(pc - post_addr) >= sizeof host) return usage("--post-addr=HOST:PORT");
    char ph[64];
    memcpy(ph, post_addr, (size_t)(pc - post_addr));
    ph[pc - post_addr] = 0;
    post_target.sin_family = AF_INET;
    post_target.sin_port = htons((uint16_t)atoi(pc + 1));
    if (inet_pton(AF_INET, ph, &post_target.sin_addr) != 1) return usage("--post-addr: IPv4");
    snprintf(post_host, sizeof post_host, "%s", post_addr);
  }
  /* Descriptors: as many as the hard limit allows. */
  struct rlimit nofile;
  if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
      getrlimit(RLIMIT_NOFILE, &nofile);
    }
    int want = (mode == M_CHURN ? concurrency : streams) + 64;
    if (nofile.rlim_cur != RLIM_INFINITY && (rlim_t)want > nofile.rlim_cur) {
      fprintf(stderr,
              "loadgen: %d streams need about %d descriptors; the limit is %llu (hard %llu): "
              "split them over several loadgen processes\n",
              mode == M_CHURN ? concurrency : streams, want, (unsigned long long)nofile.rlim_cur,
              (unsigned long long)nofile.rlim_max);
      return 2;
    }
  }
  int len = format_request(request, sizeof request, "bench", count);
  if (len <= 0 || (size_t)len >= sizeof request) return usage("--route too long");
  request_len = (size_t)len;
  ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) {
    perror("loadgen: epoll_create1");
    return 2;
  }
  setvbuf(stdout, NULL, _IOLBF, 0);
  switch (mode) {
    case M_STREAMS:
    case M_LATENCY:
      return run_streams();
    case M_IDLE:
      return run_idle();
    case M_CHURN:
      return run_churn();
    case M_SOAK:
      return run_soak();
    case M_RESUME:
    case M_BROADCAST:
      return run_room();
  }
  return 2;
}
