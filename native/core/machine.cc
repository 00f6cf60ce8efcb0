// Machine-wide byte budgets; see machine.h for the design.
#include "machine.h"

#include <cstring>

#if defined(__linux__)
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <vector>
#endif

namespace rg {

bool machine_name_valid(const std::string& name) {
  if (name.empty() || name.size() > 100 || name[0] == '.') return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

#if defined(__linux__)

namespace {

constexpr char kMagic[8] = {'R', 'G', 'M', 'B', 'U', 'D', 'G', 'T'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 512;
constexpr uint64_t kMaxSafe = (uint64_t{1} << 53) - 1;

// One process's share of a budget: one cache line.
struct alignas(64) ProcEntry {
  std::atomic<uint32_t> state;  // 0 free, 1 taken; written last when taken
  uint32_t pid;
  uint64_t start_time;  // /proc/<pid>/stat field 22: clock ticks after boot
  uint64_t pid_ns;      // inode of the process's pid namespace
  std::atomic<uint64_t> held;
  uint64_t successes;
  uint64_t failures;
  uint64_t reserved[2];
};
static_assert(sizeof(ProcEntry) == 64, "one entry per cache line");

struct Header {
  char magic[8];  // written last when the file is made
  uint32_t version;
  uint32_t header_bytes;
  uint32_t entry_bytes;
  uint32_t max_processes;
  uint64_t file_bytes;
  uint32_t word_bits;  // pointer width where the file was made
  uint32_t pad0;
  uint64_t pid_ns;  // the pid namespace of the processes that share the file
  std::atomic<uint64_t> used;  // always the sum of the entries' held
  std::atomic<uint64_t> peak;
  std::atomic<uint64_t> limit;
  std::atomic<uint64_t> successes;
  std::atomic<uint64_t> failures;
  std::atomic<uint64_t> reclaimed_bytes;
  std::atomic<uint64_t> reclaimed_processes;
  std::atomic<int64_t> last_scan_ms;
  // The lock: 0 when free, else the pid of the process that holds it, which
  // then writes its start time to lock_start. The lock is ours rather than a
  // pthread mutex so that nothing the file holds reaches the C library: a
  // damaged word makes a locker wait and give up, never crash.
  std::atomic<uint32_t> lock_word;
  uint32_t pad1;
  std::atomic<uint64_t> lock_start;
};
static_assert(sizeof(Header) <= kHeaderBytes, "header fits its block");
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int64_t>::is_always_lock_free &&
                  std::atomic<uint32_t>::is_always_lock_free,
              "counters shared between processes must be lock-free");

constexpr size_t kFileBytes = kHeaderBytes + sizeof(ProcEntry) * kMachineMaxProcesses;

}  // namespace

struct MachineMapping {
  int fd = -1;
  void* base = nullptr;
  dev_t dev = 0;
  ino_t ino = 0;
  std::string path;
  int entry = -1;
  int refs = 0;
  uint32_t pid = 0;
  uint64_t start_time = 0;
  uint64_t pid_ns = 0;
  Header* h = nullptr;
  ProcEntry* entries = nullptr;
};

namespace {

struct Registry {
  std::mutex mu;
  std::vector<MachineMapping*> maps;
};

Registry& registry() {
  static Registry* r = new Registry();  // leaked: used during process exit
  return *r;
}

int64_t now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);  // one clock for every process
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

// Reads the state letter and start time of `pid` (0 for this process).
// Returns 0, or an errno: ENOENT when there is no such process.
int read_proc_stat(uint32_t pid, uint64_t* start, char* state) {
  char path[64];
  if (pid == 0) {
    std::snprintf(path, sizeof path, "/proc/self/stat");
  } else {
    std::snprintf(path, sizeof path, "/proc/%u/stat", pid);
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[1024];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) return err == ESRCH ? ENOENT : err;
  if (n == 0) return ENOENT;  // the process went away between open and read
  buf[n] = '\0';
  // "pid (comm) S ..." where comm may hold spaces and parentheses.
  char* p = std::strrchr(buf, ')');
  if (p == nullptr || p[1] != ' ' || p[2] == '\0') return EIO;
  p += 2;
  *state = *p;
  int field = 3;
  while (field < 22) {
    p = std::strchr(p, ' ');
    if (p == nullptr) return EIO;
    ++p;
    ++field;
  }
  *start = std::strtoull(p, nullptr, 10);
  return 0;
}

uint64_t own_pid_ns() {
  struct stat st;
  if (stat("/proc/self/ns/pid", &st) != 0) return 0;
  return static_cast<uint64_t>(st.st_ino);
}

// Whether the process an entry names still runs. When that cannot be told
// (another pid namespace, /proc unreadable and kill() inconclusive), it is
// taken as running: bytes are never given back for a process that may hold
// them.
bool entry_alive(const ProcEntry& e, uint64_t my_ns) {
  uint32_t pid = e.pid;
  if (pid == 0) return false;  // never written: the claim did not finish
  if (e.pid_ns != my_ns) return true;
  uint64_t start = 0;
  char state = 0;
  int err = read_proc_stat(pid, &start, &state);
  if (err == ENOENT) return false;
  if (err != 0) {
    if (kill(static_cast<pid_t>(pid), 0) == 0) return true;
    return errno != ESRCH;
  }
  if (start != e.start_time) return false;  // the pid was reused
  return state != 'Z' && state != 'X' && state != 'x';
}

bool owns_entry(const MachineMapping* m) {
  const ProcEntry& e = m->entries[m->entry];
  return e.state.load(std::memory_order_acquire) == 1 && e.pid == m->pid && e.start_time == m->start_time;
}

// Makes `used` the sum of the entries again, after a process died holding
// the lock.
void repair_locked(MachineMapping* m) {
  uint64_t sum = 0;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (m->entries[i].state.load(std::memory_order_relaxed) == 1) sum += m->entries[i].held.load(std::memory_order_relaxed);
  }
  m->h->used.store(sum, std::memory_order_relaxed);
  m->h->last_scan_ms.store(INT64_MIN, std::memory_order_relaxed);
}

// Whether the process `pid` that holds the lock is gone: no such process,
// or a zombie, or (with expect_start) a process of that pid that started at
// another time. When it cannot be told, it is taken as running.
bool lock_owner_gone(uint32_t pid, uint64_t expect_start) {
  uint64_t start = 0;
  char state = 0;
  int err = read_proc_stat(pid, &start, &state);
  if (err == ENOENT) return true;
  if (err != 0) return kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH;
  if (state == 'Z' || state == 'X' || state == 'x') return true;
  return expect_start != 0 && start != expect_start;
}

// Takes the lock. A holder that died is detected from its pid and the lock
// taken over, with `used` recomputed from the entries. The start-time check
// that catches a reused pid is made only after half the timeout, so a
// holder that has not yet written its start time is never mistaken for
// another process.
int lock(MachineMapping* m) {
  std::atomic<uint32_t>& word = m->h->lock_word;
  const uint32_t me = m->pid;
  int64_t began = -1;
  int64_t next_check = 0;
  for (unsigned spins = 0;; ++spins) {
    uint32_t cur = 0;
    if (word.compare_exchange_strong(cur, me, std::memory_order_acquire, std::memory_order_relaxed)) {
      m->h->lock_start.store(m->start_time, std::memory_order_relaxed);
      return kMachineOk;
    }
    if (cur == 0) continue;
    if (spins < 64) continue;
    if (spins < 256) {
      sched_yield();
      continue;
    }
    timespec pause{0, 20000};
    nanosleep(&pause, nullptr);
    int64_t now = now_ms();
    if (began < 0) {
      began = now;
      next_check = now;
    }
    if (now < next_check) continue;
    next_check = now + 1;
    if (cur != me) {
      bool late = now - began >= kMachineLockTimeoutMs / 2;
      uint64_t expect = late ? m->h->lock_start.load(std::memory_order_relaxed) : 0;
      if (lock_owner_gone(cur, expect) &&
          word.compare_exchange_strong(cur, me, std::memory_order_acquire, std::memory_order_relaxed)) {
        m->h->lock_start.store(m->start_time, std::memory_order_relaxed);
        repair_locked(m);
        return kMachineOk;
      }
    }
    if (now - began >= kMachineLockTimeoutMs) return kMachineLockTimeout;
  }
}

void unlock(MachineMapping* m) { m->h->lock_word.store(0, std::memory_order_release); }

void free_entry_locked(MachineMapping* m, int i) {
  ProcEntry& e = m->entries[i];
  uint64_t held = e.held.load(std::memory_order_relaxed);
  uint64_t used = m->h->used.load(std::memory_order_relaxed);
  // Order: the entry's claim goes first, so a process that dies here leaves
  // the entry taken with its bytes, and the repair or the next scan finishes.
  m->h->used.store(used >= held ? used - held : 0, std::memory_order_release);
  e.held.store(0, std::memory_order_relaxed);
  e.state.store(0, std::memory_order_release);
  e.pid = 0;
}

// Gives back what dead processes held. Caller holds the lock.
int scan_locked(MachineMapping* m) {
  int reclaimed = 0;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (i == m->entry) continue;
    ProcEntry& e = m->entries[i];
    if (e.state.load(std::memory_order_acquire) != 1) continue;
    if (entry_alive(e, m->pid_ns)) continue;
    uint64_t held = e.held.load(std::memory_order_relaxed);
    m->h->reclaimed_bytes.fetch_add(held, std::memory_order_relaxed);
    m->h->reclaimed_processes.fetch_add(1, std::memory_order_relaxed);
    free_entry_locked(m, i);
    ++reclaimed;
  }
  m->h->last_scan_ms.store(now_ms(), std::memory_order_relaxed);
  return reclaimed;
}

// Checks everything the file says against what it must say. Caller holds
// the lock; the header's fixed fields were checked when it was mapped.
bool contents_valid_locked(const MachineMapping* m) {
  uint64_t sum = 0;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    uint32_t state = m->entries[i].state.load(std::memory_order_relaxed);
    if (state > 1) return false;
    if (state == 1) {
      uint64_t held = m->entries[i].held.load(std::memory_order_relaxed);
      if (held > kMaxSafe || sum + held > kMaxSafe) return false;
      sum += held;
    }
  }
  uint64_t used = m->h->used.load(std::memory_order_relaxed);
  uint64_t limit = m->h->limit.load(std::memory_order_relaxed);
  return sum == used && limit <= kMaxSafe && used <= limit;
}

bool header_valid(const Header* h) {
  return std::memcmp(h->magic, kMagic, sizeof kMagic) == 0 && h->version == kVersion &&
         h->header_bytes == kHeaderBytes && h->entry_bytes == sizeof(ProcEntry) &&
         h->max_processes == kMachineMaxProcesses && h->file_bytes == kFileBytes && h->word_bits == 8 * sizeof(void*);
}

std::string file_path(const std::string& dir, const std::string& name) {
  return dir + "/rg-" + std::to_string(static_cast<unsigned long>(geteuid())) + "-" + name + ".budget";
}

// Makes a fully written file under a temporary name and links it into
// place, so that the name only ever shows a finished file. Returns
// kMachineOk, kMachineIo, or -1 when another process linked its file first.
int create_file(const std::string& path, uint64_t limit, int* sys_errno) {
  static std::atomic<unsigned> counter{0};
  std::string tmp = path + ".tmp-" + std::to_string(static_cast<long>(getpid())) + "-" +
                    std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    *sys_errno = errno;
    return kMachineIo;
  }
  // Nobody can see the file before it is linked, so it is written with one
  // pwrite (no mapping to tear down): the header, then zeros to full size.
  int err = 0;
  if (ftruncate(fd, static_cast<off_t>(kFileBytes)) != 0) err = errno;
  if (err == 0) {
    alignas(64) unsigned char block[kHeaderBytes] = {};
    Header* h = reinterpret_cast<Header*>(block);
    std::memcpy(h->magic, kMagic, sizeof kMagic);
    h->version = kVersion;
    h->header_bytes = kHeaderBytes;
    h->entry_bytes = sizeof(ProcEntry);
    h->max_processes = kMachineMaxProcesses;
    h->file_bytes = kFileBytes;
    h->word_bits = 8 * sizeof(void*);
    h->pid_ns = own_pid_ns();
    h->limit.store(limit, std::memory_order_relaxed);
    h->last_scan_ms.store(INT64_MIN, std::memory_order_relaxed);
    ssize_t n;
    do {
      n = pwrite(fd, block, sizeof block, 0);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof block)) err = n < 0 ? errno : EIO;
  }
  int linked = err == 0 ? link(tmp.c_str(), path.c_str()) : -1;
  int link_err = errno;
  unlink(tmp.c_str());
  close(fd);
  if (err != 0) {
    *sys_errno = err;
    return kMachineIo;
  }
  if (linked != 0) {
    if (link_err == EEXIST) return -1;
    *sys_errno = link_err;
    return kMachineIo;
  }
  return kMachineOk;
}

bool same_file(const std::string& path, dev_t dev, ino_t ino) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

// Opens `path`, which exists, for this process. Returns kMachineOk, an
// error, or -1 when the file was removed meanwhile (the caller starts over).
// Caller holds the registry mutex.
int attach(Registry& r, const std::string& path, int fd, const struct stat& st, bool has_limit, uint64_t limit,
           MachineMapping** out, int* sys_errno) {
  for (MachineMapping* m : r.maps) {
    if (m->dev == st.st_dev && m->ino == st.st_ino) {
      close(fd);
      if (has_limit && m->h->limit.load(std::memory_order_acquire) != limit) return kMachineLimitMismatch;
      ++m->refs;
      *out = m;
      return kMachineOk;
    }
  }
  void* base = mmap(nullptr, kFileBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    *sys_errno = errno;
    close(fd);
    return kMachineIo;
  }
  auto* m = new MachineMapping();
  m->fd = fd;
  m->base = base;
  m->dev = st.st_dev;
  m->ino = st.st_ino;
  m->path = path;
  m->h = static_cast<Header*>(base);
  m->entries = reinterpret_cast<ProcEntry*>(static_cast<char*>(base) + kHeaderBytes);
  m->pid = static_cast<uint32_t>(getpid());
  m->pid_ns = own_pid_ns();
  char state = 0;
  if (read_proc_stat(0, &m->start_time, &state) != 0) m->start_time = 0;
  auto discard = [&](int code) {
    munmap(base, kFileBytes);
    close(fd);
    delete m;
    return code;
  };
  std::atomic_thread_fence(std::memory_order_acquire);
  if (!header_valid(m->h)) return discard(kMachineCorrupt);
  // Lock holders are told apart by pid, so every process that shares the
  // file must see the same pids.
  if (m->h->pid_ns != 0 && m->pid_ns != 0 && m->h->pid_ns != m->pid_ns) return discard(kMachineForeign);
  int err = lock(m);
  if (err != kMachineOk) return discard(err);
  if (!contents_valid_locked(m)) {
    unlock(m);
    return discard(kMachineCorrupt);
  }
  if (has_limit && m->h->limit.load(std::memory_order_relaxed) != limit) {
    unlock(m);
    return discard(kMachineLimitMismatch);
  }
  scan_locked(m);
  int slot = -1;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (m->entries[i].state.load(std::memory_order_relaxed) == 0) {
      slot = i;
      break;
    }
  }
  if (slot < 0) {
    unlock(m);
    return discard(kMachineFull);
  }
  // The last process to close removes the file under the lock; one that
  // did so before we took the lock leaves us a file nobody else will open.
  if (!same_file(path, st.st_dev, st.st_ino)) {
    unlock(m);
    return discard(-1);
  }
  ProcEntry& e = m->entries[slot];
  e.pid = m->pid;
  e.start_time = m->start_time;
  e.pid_ns = m->pid_ns;
  e.held.store(0, std::memory_order_relaxed);
  e.successes = 0;
  e.failures = 0;
  e.state.store(1, std::memory_order_release);
  m->entry = slot;
  unlock(m);
  m->refs = 1;
  r.maps.push_back(m);
  *out = m;
  return kMachineOk;
}

}  // namespace

int machine_open(const std::string& dir, const std::string& name, bool has_limit, uint64_t limit,
                 MachineMapping** out, int* sys_errno) {
  *out = nullptr;
  *sys_errno = 0;
  if (!machine_name_valid(name)) return kMachineBadName;
  if (dir.empty() || dir.find('\0') != std::string::npos) return kMachineBadName;
  if (has_limit && limit > kMaxSafe) return kMachineCorrupt;
  std::string path = file_path(dir, name);
  Registry& r = registry();
  for (int attempt = 0; attempt < 16; ++attempt) {
    int fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == ENOENT) {
        if (!has_limit) return kMachineNotFound;
        int c = create_file(path, limit, sys_errno);
        if (c == kMachineOk || c == -1) continue;  // open what is there now
        return c;
      }
      if (err == ELOOP || err == EISDIR) return kMachineForeign;  // a symbolic link, a directory
      *sys_errno = err;
      return kMachineIo;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
      *sys_errno = errno;
      close(fd);
      return kMachineIo;
    }
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
      close(fd);
      return kMachineForeign;
    }
    if (static_cast<uint64_t>(st.st_size) != kFileBytes) {
      close(fd);
      return kMachineCorrupt;
    }
    std::lock_guard<std::mutex> guard(r.mu);
    int a = attach(r, path, fd, st, has_limit, limit, out, sys_errno);
    if (a != -1) return a;
  }
  *sys_errno = EAGAIN;
  return kMachineIo;
}

void machine_unref(MachineMapping* m) {
  Registry& r = registry();
  std::lock_guard<std::mutex> guard(r.mu);
  if (--m->refs > 0) return;
  if (lock(m) == kMachineOk) {
    if (owns_entry(m)) free_entry_locked(m, m->entry);
    scan_locked(m);
    bool empty = true;
    for (int i = 0; i < kMachineMaxProcesses && empty; ++i) {
      if (m->entries[i].state.load(std::memory_order_relaxed) != 0) empty = false;
    }
    if (empty && same_file(m->path, m->dev, m->ino)) unlink(m->path.c_str());
    unlock(m);
  }
  for (size_t i = 0; i < r.maps.size(); ++i) {
    if (r.maps[i] == m) {
      r.maps.erase(r.maps.begin() + static_cast<long>(i));
      break;
    }
  }
  munmap(m->base, kFileBytes);
  close(m->fd);
  delete m;
}

int machine_reserve(MachineMapping* m, uint64_t bytes, uint64_t* used_after) {
  int err = lock(m);
  if (err != kMachineOk) return err;
  if (!owns_entry(m)) {
    unlock(m);
    return kMachineLost;
  }
  Header* h = m->h;
  ProcEntry& e = m->entries[m->entry];
  uint64_t used = h->used.load(std::memory_order_relaxed);
  uint64_t limit = h->limit.load(std::memory_order_relaxed);
  if (used > limit || bytes > limit - used) {
    int64_t last = h->last_scan_ms.load(std::memory_order_relaxed);
    int64_t now = now_ms();
    if (last == INT64_MIN || now - last >= kMachineReclaimSpacingMs || now < last) {
      scan_locked(m);
      used = h->used.load(std::memory_order_relaxed);
    }
  }
  if (used > limit || bytes > limit - used) {
    h->failures.fetch_add(1, std::memory_order_relaxed);
    ++e.failures;
    unlock(m);
    *used_after = used;
    return kMachineOverLimit;
  }
  // The entry first: a process that dies between the two stores leaves
  // `used` short of the sum, which the next locker's repair restores.
  e.held.store(e.held.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
  uint64_t next = used + bytes;
  h->used.store(next, std::memory_order_release);
  if (next > h->peak.load(std::memory_order_relaxed)) h->peak.store(next, std::memory_order_relaxed);
  h->successes.fetch_add(1, std::memory_order_relaxed);
  ++e.successes;
  unlock(m);
  *used_after = next;
  return kMachineOk;
}

int machine_release(MachineMapping* m, uint64_t bytes, uint64_t* used_after) {
  int err = lock(m);
  if (err != kMachineOk) return err;
  if (!owns_entry(m)) {
    unlock(m);
    return kMachineLost;
  }
  ProcEntry& e = m->entries[m->entry];
  uint64_t held = e.held.load(std::memory_order_relaxed);
  if (bytes > held) {
    unlock(m);
    return kMachineExceedsHeld;
  }
  uint64_t used = m->h->used.load(std::memory_order_relaxed);
  // The counter first here, so that a process dying between the stores
  // leaves `used` above the sum, never below what someone holds; the repair
  // recomputes it either way.
  uint64_t next = used >= bytes ? used - bytes : 0;
  m->h->used.store(next, std::memory_order_release);
  e.held.store(held - bytes, std::memory_order_relaxed);
  unlock(m);
  *used_after = next;
  return kMachineOk;
}

int machine_set_limit(MachineMapping* m, uint64_t limit) {
  if (limit > kMaxSafe) return kMachineCorrupt;
  int err = lock(m);
  if (err != kMachineOk) return err;
  if (limit < m->h->used.load(std::memory_order_relaxed)) {
    scan_locked(m);
    if (limit < m->h->used.load(std::memory_order_relaxed)) {
      unlock(m);
      return kMachineBelowUsage;
    }
  }
  m->h->limit.store(limit, std::memory_order_release);
  unlock(m);
  return kMachineOk;
}

int machine_stats(MachineMapping* m, MachineStats* out) {
  int err = lock(m);
  if (err != kMachineOk) return err;
  const Header* h = m->h;
  out->used = h->used.load(std::memory_order_relaxed);
  out->peak = h->peak.load(std::memory_order_relaxed);
  out->limit = h->limit.load(std::memory_order_relaxed);
  out->successes = h->successes.load(std::memory_order_relaxed);
  out->failures = h->failures.load(std::memory_order_relaxed);
  out->reclaimed_bytes = h->reclaimed_bytes.load(std::memory_order_relaxed);
  out->reclaimed_processes = h->reclaimed_processes.load(std::memory_order_relaxed);
  uint32_t holders = 0;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (m->entries[i].state.load(std::memory_order_relaxed) == 1) ++holders;
  }
  out->holders = holders;
  bool owned = owns_entry(m);
  out->process_held = owned ? m->entries[m->entry].held.load(std::memory_order_relaxed) : 0;
  unlock(m);
  return owned ? kMachineOk : kMachineLost;
}

uint64_t machine_used(const MachineMapping* m) { return m->h->used.load(std::memory_order_acquire); }
uint64_t machine_limit(const MachineMapping* m) { return m->h->limit.load(std::memory_order_acquire); }

int machine_reclaim(MachineMapping* m, int* reclaimed) {
  int err = lock(m);
  if (err != kMachineOk) return err;
  *reclaimed = scan_locked(m);
  unlock(m);
  return kMachineOk;
}

void machine_reclaim_all() {
  Registry& r = registry();
  std::lock_guard<std::mutex> guard(r.mu);
  for (MachineMapping* m : r.maps) {
    int n = 0;
    machine_reclaim(m, &n);
  }
}

std::string machine_default_dir() {
  struct stat st;
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
  return "";
}

#else  // not Linux: machine budgets are not offered

struct MachineMapping {};

int machine_open(const std::string&, const std::string& name, bool, uint64_t, MachineMapping** out, int* sys_errno) {
  *out = nullptr;
  *sys_errno = 0;
  if (!machine_name_valid(name)) return kMachineBadName;
  return kMachineUnsupported;
}
void machine_unref(MachineMapping*) {}
int machine_reserve(MachineMapping*, uint64_t, uint64_t*) { return kMachineUnsupported; }
int machine_release(MachineMapping*, uint64_t, uint64_t*) { return kMachineUnsupported; }
int machine_set_limit(MachineMapping*, uint64_t) { return kMachineUnsupported; }
int machine_stats(MachineMapping*, MachineStats*) { return kMachineUnsupported; }
uint64_t machine_used(const MachineMapping*) { return 0; }
uint64_t machine_limit(const MachineMapping*) { return 0; }
int machine_reclaim(MachineMapping*, int* reclaimed) {
  *reclaimed = 0;
  return kMachineUnsupported;
}
void machine_reclaim_all() {}
std::string machine_default_dir() { return ""; }

#endif

}  // namespace rg
