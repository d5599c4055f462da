// The red-team probe: each subcommand tries one escape, with raw system calls where a library
// would hide them, and prints one line:
//   ok WHAT              the escape worked (exit 0)
//   refused CALL ERRNO   CALL failed with ERRNO, by its name (exit 1)
// It only acts on what the test names on its command line: processes, files, sockets and
// listeners the test made. Compiled by the tests at run time (tests/redteam/_redteam.ts).

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

// From arch/x86/include/uapi/asm/unistd.h and the i386/x32 syscall tables.
#define X32_SYSCALL_BIT 0x40000000
#define X32_NR_getpid 39
#define I386_NR_getpid 20
// From include/uapi/asm-generic/unistd.h: the same numbers on x86_64 and aarch64.
#define NR_pidfd_send_signal 424
#define NR_pidfd_open 434
#define NR_pidfd_getfd 438

static int refused(const char *call) {
  const char *name = strerrorname_np(errno);
  printf("refused %s %s\n", call, name ? name : "E?");
  return 1;
}

static int refused_with(const char *call, int error) {
  errno = error;
  return refused(call);
}

static int ok(const char *what) {
  printf("ok %s\n", what);
  return 0;
}

static struct sockaddr_in loopback(const char *port) {
  struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(atoi(port))};
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return address;
}

static socklen_t unix_address(struct sockaddr_un *address, const char *name, int abstract) {
  memset(address, 0, sizeof *address);
  address->sun_family = AF_UNIX;
  size_t length = strlen(name);
  if (length + 1 >= sizeof address->sun_path) exit(2);
  memcpy(address->sun_path + (abstract ? 1 : 0), name, length);
  return offsetof(struct sockaddr_un, sun_path) + length + (abstract ? 1 : 0);
}

static int int80(void) {
#if defined(__x86_64__)
  long result;
  // The 32-bit entry: eax is the i386 number; the kernel clobbers r8-r11 on the way back.
  __asm__ volatile("int $0x80" : "=a"(result) : "a"(I386_NR_getpid) : "r8", "r9", "r10", "r11", "memory");
  if (result != getpid()) return refused_with("int0x80", (int)-result);
  return ok("int 0x80 getpid");
#else
  puts("unsupported");
  return 2;
#endif
}

static int x32(void) {
  long result = syscall(X32_SYSCALL_BIT | X32_NR_getpid);
  if (result != getpid()) return refused("x32_getpid");
  return ok("x32 getpid");
}

static int tcp_connect(const char *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return refused("socket");
  struct sockaddr_in address = loopback(port);
  if (connect(fd, (struct sockaddr *)&address, sizeof address) < 0) return refused("connect");
  return ok("connected");
}

static int tcp_listen(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return refused("socket");
  struct sockaddr_in address = loopback("0");
  if (bind(fd, (struct sockaddr *)&address, sizeof address) < 0) return refused("bind");
  if (listen(fd, 1) < 0) return refused("listen");
  return ok("listening");
}

static int udp_send(const char *port) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return refused("socket");
  struct sockaddr_in address = loopback(port);
  if (sendto(fd, "x", 1, 0, (struct sockaddr *)&address, sizeof address) < 0) {
    return refused("sendto");
  }
  return ok("sent");
}

static int netlink(void) {
  if (socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE) < 0) return refused("socket");
  return ok("created");
}

static int packet(void) {
  // Protocol 0: the socket receives nothing.
  if (socket(AF_PACKET, SOCK_RAW, 0) < 0) return refused("socket");
  return ok("created");
}

static int unix_dgram(const char *path) {
  int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (fd < 0) return refused("socket");
  struct sockaddr_un address;
  socklen_t length = unix_address(&address, path, 0);
  if (sendto(fd, "x", 1, 0, (struct sockaddr *)&address, length) < 0) return refused("sendto");
  return ok("sent");
}

static int unix_dgram_pair(const char *path) {
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, pair) < 0) return refused("socketpair");
  struct sockaddr_un address;
  struct iovec data = {.iov_base = "x", .iov_len = 1};
  struct msghdr message = {.msg_name = &address, .msg_iov = &data, .msg_iovlen = 1};
  message.msg_namelen = unix_address(&address, path, 0);
  if (sendmsg(pair[0], &message, 0) < 0) return refused("sendmsg");
  return ok("sent");
}

static int unix_stream(const char *name, int abstract) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  if (fd < 0) return refused("socket");
  struct sockaddr_un address;
  socklen_t length = unix_address(&address, name, abstract);
  if (connect(fd, (struct sockaddr *)&address, length) < 0) return refused("connect");
  return ok("connected");
}

// io_uring by hand: one submission at a time, waiting for its completion.
struct ring {
  int fd;
  unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
  struct io_uring_sqe *sqes;
  struct io_uring_cqe *cqes;
};

static int ring_submit(struct ring *ring, const struct io_uring_sqe *sqe, int *result) {
  unsigned tail = *ring->sq_tail;
  unsigned index = tail & *ring->sq_mask;
  ring->sqes[index] = *sqe;
  ring->sq_array[index] = index;
  __atomic_store_n(ring->sq_tail, tail + 1, __ATOMIC_RELEASE);
  if (syscall(__NR_io_uring_enter, ring->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0) return -1;
  unsigned head = __atomic_load_n(ring->cq_head, __ATOMIC_ACQUIRE);
  if (head == __atomic_load_n(ring->cq_tail, __ATOMIC_ACQUIRE)) {
    errno = EAGAIN;
    return -1;
  }
  *result = ring->cqes[head & *ring->cq_mask].res;
  __atomic_store_n(ring->cq_head, head + 1, __ATOMIC_RELEASE);
  return 0;
}

static int io_uring_connect(const char *port) {
  struct io_uring_params params;
  memset(&params, 0, sizeof params);
  int fd = (int)syscall(__NR_io_uring_setup, 4, &params);
  if (fd < 0) return refused("io_uring_setup");
  size_t sq_length = params.sq_off.array + params.sq_entries * sizeof(unsigned);
  size_t cq_length = params.cq_off.cqes + params.cq_entries * sizeof(struct io_uring_cqe);
  int single = params.features & IORING_FEAT_SINGLE_MMAP;
  if (single && cq_length > sq_length) sq_length = cq_length;
  int protection = PROT_READ | PROT_WRITE, flags = MAP_SHARED | MAP_POPULATE;
  char *sq = mmap(NULL, sq_length, protection, flags, fd, IORING_OFF_SQ_RING);
  if (sq == MAP_FAILED) return refused("mmap");
  char *cq = single ? sq : mmap(NULL, cq_length, protection, flags, fd, IORING_OFF_CQ_RING);
  if (cq == MAP_FAILED) return refused("mmap");
  void *sqes = mmap(NULL, params.sq_entries * sizeof(struct io_uring_sqe), protection, flags, fd,
                    IORING_OFF_SQES);
  if (sqes == MAP_FAILED) return refused("mmap");
  struct ring ring = {
      .fd = fd,
      .sq_tail = (unsigned *)(sq + params.sq_off.tail),
      .sq_mask = (unsigned *)(sq + params.sq_off.ring_mask),
      .sq_array = (unsigned *)(sq + params.sq_off.array),
      .cq_head = (unsigned *)(cq + params.cq_off.head),
      .cq_tail = (unsigned *)(cq + params.cq_off.tail),
      .cq_mask = (unsigned *)(cq + params.cq_off.ring_mask),
      .sqes = sqes,
      .cqes = (struct io_uring_cqe *)(cq + params.cq_off.cqes),
  };
  struct io_uring_sqe sqe;
  int result;
  memset(&sqe, 0, sizeof sqe);
  sqe.opcode = IORING_OP_SOCKET;
  sqe.fd = AF_INET;
  sqe.off = SOCK_STREAM;
  if (ring_submit(&ring, &sqe, &result) < 0) return refused("io_uring_enter");
  if (result < 0) return refused_with("IORING_OP_SOCKET", -result);
  struct sockaddr_in address = loopback(port);
  memset(&sqe, 0, sizeof sqe);
  sqe.opcode = IORING_OP_CONNECT;
  sqe.fd = result;
  sqe.addr = (uintptr_t)&address;
  sqe.off = sizeof address;
  if (ring_submit(&ring, &sqe, &result) < 0) return refused("io_uring_enter");
  if (result < 0) return refused_with("IORING_OP_CONNECT", -result);
  return ok("connected");
}

static int tiocsti(const char *hex) {
  for (size_t i = 0; hex[i] && hex[i + 1]; i += 2) {
    char pair[3] = {hex[i], hex[i + 1], 0};
    char c = (char)strtol(pair, NULL, 16);
    if (ioctl(0, TIOCSTI, &c) < 0) return refused("ioctl");
  }
  return ok("injected");
}

// A process for the others to attack: a secret in memory, an optional file held open for
// writing. Prints "PID ADDRESS FD", then answers each line on stdin with the secret.
static int target(const char *file) {
  static char secret[64];
  snprintf(secret, sizeof secret, "llmx-secret-%d", (int)getpid());
  int fd = file ? open(file, O_WRONLY | O_APPEND) : -1;
  if (file && fd < 0) return refused("open");
  printf("%d %p %d\n", (int)getpid(), (void *)secret, fd);
  fflush(stdout);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    printf("%s\n", secret);
    fflush(stdout);
  }
  return 0;
}

static int attach(pid_t pid, const char *address) {
  if (ptrace(PTRACE_ATTACH, pid, NULL, NULL) < 0) return refused("ptrace");
  int status;
  if (waitpid(pid, &status, __WALL) < 0) return refused("waitpid");
  errno = 0;
  long word = ptrace(PTRACE_PEEKDATA, pid, (void *)strtoull(address, NULL, 0), NULL);
  if (errno) return refused("PTRACE_PEEKDATA");
  ptrace(PTRACE_DETACH, pid, NULL, NULL);
  char text[sizeof word + 1] = {0};
  memcpy(text, &word, sizeof word);
  printf("ok read %s\n", text);
  return 0;
}

static int vm_read(pid_t pid, const char *address) {
  char text[64] = {0};
  struct iovec local = {.iov_base = text, .iov_len = sizeof text - 1};
  struct iovec remote = {.iov_base = (void *)strtoull(address, NULL, 0), .iov_len = sizeof text - 1};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) < 0) return refused("process_vm_readv");
  printf("ok read %s\n", text);
  return 0;
}

static int vm_write(pid_t pid, const char *address, const char *text) {
  struct iovec local = {.iov_base = (void *)text, .iov_len = strlen(text) + 1};
  struct iovec remote = {.iov_base = (void *)strtoull(address, NULL, 0), .iov_len = local.iov_len};
  if (process_vm_writev(pid, &local, 1, &remote, 1, 0) < 0) return refused("process_vm_writev");
  return ok("wrote");
}

static int pidfd_of(pid_t pid) {
  return (int)syscall(NR_pidfd_open, pid, 0);
}

static int borrow_fd(pid_t pid, const char *fd, const char *text) {
  int pidfd = pidfd_of(pid);
  if (pidfd < 0) return refused("pidfd_open");
  int borrowed = (int)syscall(NR_pidfd_getfd, pidfd, atoi(fd), 0);
  if (borrowed < 0) return refused("pidfd_getfd");
  if (write(borrowed, text, strlen(text)) < 0) return refused("write");
  return ok("wrote");
}

static int pidfd_signal(pid_t pid) {
  int pidfd = pidfd_of(pid);
  if (pidfd < 0) return refused("pidfd_open");
  if (syscall(NR_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) < 0) return refused("pidfd_send_signal");
  return ok("sent");
}

static int write_text(int fd, const char *text) {
  if (write(fd, text, strlen(text)) < 0) return refused("write");
  return ok("wrote");
}

static int create(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
  if (fd < 0) return refused("open");
  return write_text(fd, "pwned\n");
}

static int append(const char *path) {
  int fd = open(path, O_WRONLY | O_APPEND);
  if (fd < 0) return refused("open");
  return write_text(fd, "pwned\n");
}

static int reopen(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return refused("open_read_only");
  char magic[64];
  snprintf(magic, sizeof magic, "/proc/self/fd/%d", fd);
  int writable = open(magic, O_WRONLY | O_APPEND);
  if (writable < 0) return refused("open");
  return write_text(writable, "pwned\n");
}

static int set_times(const char *path) {
  struct timespec epoch[2] = {{0, 0}, {0, 0}};
  if (utimensat(AT_FDCWD, path, epoch, 0) < 0) return refused("utimensat");
  return ok("changed");
}

static int add_key_to_process_keyring(void) {
  // KEY_SPEC_PROCESS_KEYRING (-2): this process's own keyring, gone when it exits.
  long serial = syscall(SYS_add_key, "user", "llmx-redteam", "secret", 6, -2);
  if (serial < 0) return refused("add_key");
  return ok("added");
}

// Reads a file: prints its first line (the test's marker), or how the open or read failed.
static int read_file(const char *path) {
  int fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return refused("open");
  char buffer[256] = {0};
  ssize_t n = read(fd, buffer, sizeof buffer - 1);
  if (n < 0 && errno != EAGAIN) return refused("read");
  buffer[n > 0 ? strcspn(buffer, "\n") : 0] = 0;
  printf("ok %s\n", buffer);
  return 0;
}

// A System V shared-memory segment of its own, removed again: the command could make one.
static int shm_create(void) {
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
  if (id < 0) return refused("shmget");
  shmctl(id, IPC_RMID, NULL);
  return ok("created");
}

// A segment for the others to attack: prints its id, then answers each line on stdin with the
// segment's content ("reset" puts "keep" back first); removes it at the end of its input.
static int shm_hold(void) {
  int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0666);
  if (id < 0) return refused("shmget");
  char *memory = shmat(id, NULL, 0);
  if (memory == (void *)-1) return refused("shmat");
  strcpy(memory, "keep");
  printf("%d\n", id);
  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "reset", 5) == 0) strcpy(memory, "keep");
    printf("%s\n", memory);
  }
  shmdt(memory);
  shmctl(id, IPC_RMID, NULL);
  return 0;
}

// Attaches the segment the test made (by id) and overwrites its start.
static int shm_write(const char *id, const char *text) {
  char *memory = shmat(atoi(id), NULL, 0);
  if (memory == (void *)-1) return refused("shmat");
  strcpy(memory, text);
  shmdt(memory);
  return ok("written");
}

// Starts a child straight into another cgroup (clone3 with CLONE_INTO_CGROUP and an O_PATH
// descriptor of that cgroup's folder); prints the cgroup the child found itself in.
static int clone3_into(const char *folder) {
  int cgroup = open(folder, O_PATH | O_DIRECTORY);
  if (cgroup < 0) return refused("open");
  struct clone_args args = {
    .flags = CLONE_INTO_CGROUP,
    .exit_signal = SIGCHLD,
    .cgroup = (uint64_t)cgroup,
  };
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) return refused("clone3");
  if (pid == 0) _exit(0);
  int status;
  waitpid((pid_t)pid, &status, 0);
  return ok("cloned");
}

// listen() on a TCP socket never bound: the kernel binds a free port on every interface.
static int listen_unbound(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return refused("socket");
  if (listen(fd, 1) < 0) return refused("listen");
  struct sockaddr_in address;
  socklen_t length = sizeof address;
  getsockname(fd, (struct sockaddr *)&address, &length);
  printf("ok listening %d\n", ntohs(address.sin_port));
  return 0;
}

static int pdeathsig(void) {
  int signal = -1;
  if (prctl(PR_GET_PDEATHSIG, &signal) < 0) return refused("prctl");
  printf("ok pdeathsig %d\n", signal);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *command = argc > 1 ? argv[1] : "";
  const char *a = argc > 2 ? argv[2] : NULL, *b = argc > 3 ? argv[3] : NULL;
  const char *c = argc > 4 ? argv[4] : NULL;
#define IS(name, count) (strcmp(command, name) == 0 && argc == 2 + (count))
  if (IS("int80", 0)) return int80();
  if (IS("x32", 0)) return x32();
  if (IS("tcp-connect", 1)) return tcp_connect(a);
  if (IS("tcp-listen", 0)) return tcp_listen();
  if (IS("udp-send", 1)) return udp_send(a);
  if (IS("netlink", 0)) return netlink();
  if (IS("packet", 0)) return packet();
  if (IS("unix-dgram", 1)) return unix_dgram(a);
  if (IS("unix-dgram-pair", 1)) return unix_dgram_pair(a);
  if (IS("unix-stream", 1)) return unix_stream(a, 0);
  if (IS("unix-abstract", 1)) return unix_stream(a, 1);
  if (IS("io-uring-connect", 1)) return io_uring_connect(a);
  if (IS("tiocsti", 1)) return tiocsti(a);
  if (IS("target", 0)) return target(NULL);
  if (IS("target", 1)) return target(a);
  if (IS("ptrace", 2)) return attach(atoi(a), b);
  if (IS("vm-read", 2)) return vm_read(atoi(a), b);
  if (IS("vm-write", 3)) return vm_write(atoi(a), b, c);
  if (IS("pidfd-getfd", 3)) return borrow_fd(atoi(a), b, c);
  if (IS("pidfd-signal", 1)) return pidfd_signal(atoi(a));
  if (IS("kill", 2)) return kill(atoi(a), atoi(b)) < 0 ? refused("kill") : ok("sent");
  if (IS("create", 1)) return create(a);
  if (IS("append", 1)) return append(a);
  if (IS("reopen", 1)) return reopen(a);
  if (IS("truncate", 1)) return truncate(a, 0) < 0 ? refused("truncate") : ok("truncated");
  if (IS("mknod", 1)) {
    return mknod(a, S_IFCHR | 0600, makedev(1, 3)) < 0 ? refused("mknod") : ok("made");
  }
  if (IS("chown", 3)) return chown(a, atoi(b), atoi(c)) < 0 ? refused("chown") : ok("changed");
  if (IS("chmod", 2)) {
    return chmod(a, (mode_t)strtol(b, NULL, 8)) < 0 ? refused("chmod") : ok("changed");
  }
  if (IS("utime", 1)) return set_times(a);
  if (IS("setxattr", 3)) {
    return setxattr(a, b, c, strlen(c), 0) < 0 ? refused("setxattr") : ok("set");
  }
  if (IS("getxattr", 2)) {
    char value[256] = {0};
    if (getxattr(a, b, value, sizeof value - 1) < 0) return refused("getxattr");
    printf("ok %s\n", value);
    return 0;
  }
  if (IS("removexattr", 2)) return removexattr(a, b) < 0 ? refused("removexattr") : ok("removed");
  if (IS("write-fd", 2)) return write_text(atoi(a), b);
  if (IS("pdeathsig", 0)) return pdeathsig();
  if (IS("read", 1)) return read_file(a);
  if (IS("shm-create", 0)) return shm_create();
  if (IS("shm-write", 2)) return shm_write(a, b);
  if (IS("shm-hold", 0)) return shm_hold();
  if (IS("clone3-into", 1)) return clone3_into(a);
  if (IS("listen-unbound", 0)) return listen_unbound();
  if (IS("link", 2)) return link(a, b) < 0 ? refused("link") : ok("linked");
  if (IS("list", 1)) {
    int fd = open(a, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return refused("open");
    return ok("listed");
  }
  if (IS("add-key", 0)) return add_key_to_process_keyring();
  fprintf(stderr, "probe: unknown command or wrong argument count: %s\n", command);
  return 2;
}
