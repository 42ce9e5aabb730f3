/* send_floor: the send floor under bench/run's T1 (bridge CPU per delivered
 * event). Measures the CPU a process spends per event when it does nothing
 * but what every SSE bridge must do for each event at T1's load: one sendmsg
 * of one chunk-framed SSE event to a browser's loopback TCP connection.
 *
 *   send_floor --streams=50 --count=1000 --interval_ms=1
 *
 * The process listens on 127.0.0.1 (an ephemeral port) and forks the reader:
 * a second process (one thread, epoll) that opens --streams connections,
 * reads everything until EOF and counts the events (blocks ending in
 * "\n\n"). The sender (this process, one thread) accepts them, sets
 * TCP_NODELAY (as gravity-bridge does), writes an HTTP/1.1 200 head with
 * chunked encoding once per connection (not measured), then, every
 * --interval_ms (a periodic timerfd in epoll), writes one event to every
 * connection: one sendmsg(MSG_DONTWAIT | MSG_NOSIGNAL) of three parts, as
 * gravity-bridge's DirectWriter sends it: the chunk size line, the event,
 * "\r\n"; the event is what the bridge makes of bench-server's Ping reply:
 *   5a\r\nid: 12\ndata: {"message":"<19-digit CLOCK_MONOTONIC ns>","seq":"12"}\n\n\r\n
 * (about 90 bytes). A late timer tick (more than one expiration) sends as
 * many events per connection, each with its own sendmsg, so the rate holds.
 *
 * Measured: this process's utime + stime (getrusage, all of it charged to
 * the one thread) from the first tick to the last event sent, divided by the
 * events sent. On loopback that includes the receiver's TCP processing that
 * the kernel runs in the sender's context (softirq), as it does for a
 * bridge. It is a floor: one wake-up per tick serves every connection, and
 * nothing else (no gRPC, no JSON) is done.
 *
 * Output: one line on stdout
 *   RESULT mode=send_floor streams=S events=E seconds=T cpu_s=C
 *          us_per_event=X bytes_per_event=B wakeups=W reader_ok=0|1 reader_cpu_s=RC
 *          failed=F
 * Exit status 0 when every event was sent whole and read, 1 otherwise, 2 on
 * a usage error. Every wait is bounded by --timeout (seconds); the reader
 * dies with the sender (PR_SET_PDEATHSIG) and is killed after the timeout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int streams = 50;
static long long count = 1000;
static int interval_ms = 1;
static double timeout_s = 120;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static double cpu_of(const struct rusage* u) {
  return (double)u->ru_utime.tv_sec + u->ru_utime.tv_usec / 1e6 + (double)u->ru_stime.tv_sec +
         u->ru_stime.tv_usec / 1e6;
}

static double cpu_self(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return cpu_of(&u);
}

/* The reader (the forked process): connects, reads to EOF, counts events.
 * Its exit status is 0 when it read streams * count events, 1 otherwise. */
static int run_reader(const struct sockaddr_in* addr) {
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() == 1) return 1; /* the sender is already gone */
  alarm((unsigned)timeout_s + 5);
  int ep = epoll_create1(0);
  char* prev = calloc((size_t)streams, 1); /* last byte read per connection */
  long long events = 0;
  int open = 0;
  for (int i = 0; i < streams; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr*)addr, sizeof *addr) != 0) {
      perror("send_floor reader: connect");
      return 1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event e = {.events = EPOLLIN, .data.u64 = (uint64_t)i << 32 | (uint32_t)fd};
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
    ++open;
  }
  char buf[65536];
  while (open > 0) {
    struct epoll_event ev[64];
    int n = epoll_wait(ep, ev, 64, (int)(timeout_s * 1000));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr, "send_floor reader: no data for %.0f s\n", timeout_s);
      return 1;
    }
    for (int k = 0; k < n; ++k) {
      int i = (int)(ev[k].data.u64 >> 32), fd = (int)(uint32_t)ev[k].data.u64;
      for (;;) {
        ssize_t got = read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && errno == EAGAIN) break;
        if (got <= 0) {
          close(fd);
          --open;
          break;
        }
        char p = prev[i];
        for (ssize_t j = 0; j < got; ++j) {
          if (buf[j] == '\n' && p == '\n') ++events;
          p = buf[j];
        }
        prev[i] = p;
      }
    }
  }
  if (events != (long long)streams * count) {
    fprintf(stderr, "send_floor reader: read %lld events of %lld\n", events,
            (long long)streams * count);
    return 1;
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: send_floor [--streams=S] [--count=N] [--interval_ms=M] [--timeout=SECS]\n");
  exit(2);
}

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = strchr(a, '=');
    if (!v) usage();
    ++v;
    if (strncmp(a, "--streams=", 10) == 0)
      streams = atoi(v);
    else if (strncmp(a, "--count=", 8) == 0)
      count = atoll(v);
    else if (strncmp(a, "--interval_ms=", 14) == 0)
      interval_ms = atoi(v);
    else if (strncmp(a, "--timeout=", 10) == 0)
      timeout_s = atof(v);
    else
      usage();
  }
  if (streams <= 0 || count <= 0 || interval_ms <= 0 || timeout_s <= 0) usage();

  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET};
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof addr;
  if (lfd < 0 || bind(lfd, (struct sockaddr*)&addr, sizeof addr) != 0 ||
      listen(lfd, streams + 16) != 0 || getsockname(lfd, (struct sockaddr*)&addr, &alen) != 0) {
    perror("send_floor: listen");
    return 1;
  }
  fflush(stdout);
  pid_t reader = fork();
  if (reader < 0) {
    perror("send_floor: fork");
    return 1;
  }
  if (reader == 0) {
    close(lfd);
    _exit(run_reader(&addr));
  }

  int failed = 0;
  int* fds = calloc((size_t)streams, sizeof *fds);
  static const char head[] =
      "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < streams; ++i) {
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, (int)(timeout_s * 1000)) != 1 || (fds[i] = accept(lfd, NULL, NULL)) < 0) {
      fprintf(stderr, "send_floor: accepted %d of %d connections\n", i, streams);
      kill(reader, SIGKILL);
      waitpid(reader, NULL, 0);
      return 1;
    }
    int one = 1;
    setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
    if (send(fds[i], head, sizeof head - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof head - 1)) ++failed;
  }

  int ep = epoll_create1(0);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
  struct epoll_event te = {.events = EPOLLIN};
  epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
  struct itimerspec spec = {
      .it_interval = {.tv_sec = interval_ms / 1000,
                      .tv_nsec = (long)(interval_ms % 1000) * 1000000},
  };
  spec.it_value = spec.it_interval;
  timerfd_settime(tfd, 0, &spec, NULL);

  long long* seq = calloc((size_t)streams, sizeof *seq);
  long long sent_events = 0, bytes = 0, wakeups = 0, left = (long long)streams * count;
  double cpu0 = 0, cpu1 = 0;
  int64_t t0 = 0, t1 = 0;
  const int64_t deadline = now_ns() + (int64_t)(timeout_s * 1e9);
  while (left > 0) {
    struct epoll_event ev;
    int n = epoll_wait(ep, &ev, 1, 1000);
    if (n < 0 && errno == EINTR) continue;
    if (now_ns() > deadline) {
      fprintf(stderr, "send_floor: timed out after %lld events\n", sent_events);
      failed = 1;
      break;
    }
    if (n <= 0) continue;
    uint64_t ticks = 0;
    if (read(tfd, &ticks, sizeof ticks) != (ssize_t)sizeof ticks) continue;
    ++wakeups;
    if (t0 == 0) {
      t0 = now_ns();
      cpu0 = cpu_self();
    }
    for (uint64_t k = 0; k < ticks && left > 0; ++k) {
      for (int i = 0; i < streams; ++i) {
        if (seq[i] >= count) continue;
        ++seq[i];
        char body[160], size_line[24];
        int body_len = snprintf(
            body, sizeof body, "id: %lld\ndata: {\"message\":\"%" PRId64 "\",\"seq\":\"%lld\"}\n\n",
            seq[i], now_ns(), seq[i]);
        int size_len = snprintf(size_line, sizeof size_line, "%x\r\n", (unsigned)body_len);
        static char crlf[] = "\r\n";
        struct iovec parts[3] = {
            {size_line, (size_t)size_len}, {body, (size_t)body_len}, {crlf, 2}};
        struct msghdr m = {.msg_iov = parts, .msg_iovlen = 3};
        ssize_t total = size_len + body_len + 2, s;
        do {
          s = sendmsg(fds[i], &m, MSG_DONTWAIT | MSG_NOSIGNAL);
        } while (s < 0 && errno == EINTR);
        if (s != total) {
          if (failed++ < 3) fprintf(stderr, "send_floor: sendmsg sent %zd of %zd\n", s, total);
        } else {
          bytes += s;
        }
        ++sent_events;
        --left;
      }
    }
  }
  cpu1 = cpu_self();
  t1 = now_ns();

  /* The last chunk, then EOF: the reader ends. */
  for (int i = 0; i < streams; ++i) {
    send(fds[i], "0\r\n\r\n", 5, MSG_NOSIGNAL);
    close(fds[i]);
  }
  int status = 0;
  struct rusage ru = {0};
  pid_t got = 0;
  for (int64_t wait_until = now_ns() + (int64_t)(timeout_s * 1e9); got == 0;) {
    got = wait4(reader, &status, WNOHANG, &ru);
    if (got == 0 && now_ns() > wait_until) {
      fprintf(stderr, "send_floor: the reader did not end; killing it\n");
      kill(reader, SIGKILL);
      got = wait4(reader, &status, 0, &ru);
      failed = 1;
    } else if (got == 0) {
      usleep(10000);
    }
  }
  int reader_ok = got == reader && WIFEXITED(status) && WEXITSTATUS(status) == 0;
  if (!reader_ok) failed = 1;
  double cpu = cpu1 - cpu0;
  printf(
      "RESULT mode=send_floor streams=%d events=%lld seconds=%.3f cpu_s=%.3f us_per_event=%.2f "
      "bytes_per_event=%.1f wakeups=%lld reader_ok=%d reader_cpu_s=%.3f failed=%d\n",
      streams, sent_events, (double)(t1 - t0) / 1e9, cpu,
      sent_events > 0 ? cpu * 1e6 / (double)sent_events : 0.0,
      sent_events > 0 ? (double)bytes / (double)sent_events : 0.0, wakeups, reader_ok, cpu_of(&ru),
      failed);
  return failed ? 1 : 0;
}
