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
constexpr uint32_t kVersion = 2;
constexpr size_t kHeaderBytes = 512;
constexpr uint64_t kMaxSafe = (uint64_t{1} << 53) - 1;

// One process's share of a budget: one cache line. Which process holds it is
// told by the kernel, not by these fields: the holder keeps an open-file-
// description lock on the entry's first byte (see entry_held_elsewhere).
struct alignas(64) ProcEntry {
  std::atomic<uint32_t> state;  // 0 free, 1 taken
  uint32_t pid;                 // for diagnostics and tamper checks
  uint64_t start_time;          // /proc/self/stat field 22, idem
  uint64_t generation;          // bumped by each process that takes the entry
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
  uint64_t reserved0;
  std::atomic<uint64_t> used;  // always the sum of the entries' held
  std::atomic<uint64_t> peak;
  std::atomic<uint64_t> limit;
  std::atomic<uint64_t> successes;
  std::atomic<uint64_t> failures;
  std::atomic<uint64_t> reclaimed_bytes;
  std::atomic<uint64_t> reclaimed_processes;
  std::atomic<int64_t> last_scan_ms;  // when the last scan for dead holders began
  // The lock: 0 when free, else the word of the process that holds it:
  // its entry's generation << 32 | its token (entry index + 1). A holder is
  // alive exactly while its entry's byte lock is held, so a lock whose
  // holder is gone is taken over with certainty, and a live holder's never;
  // the generation makes a takeover fail when the entry passed to a new
  // process between the check and the swap. The lock is ours rather than a
  // pthread mutex so that nothing the file holds reaches the C library.
  std::atomic<uint64_t> lock_word;
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
  uint32_t token = 0;  // entry + 1
  uint64_t word = 0;   // generation << 32 | token: what the lock word holds while we hold it
  int guard_slot = -1;  // index in g_guarded
  bool entry_released = false;
  int refs = 0;
  uint32_t pid = 0;
  uint64_t start_time = 0;
  // Set when the file was removed or replaced under the mapping, or this
  // process's entry was taken from it: operations fail with kMachineLost and
  // new opens make a new mapping.
  std::atomic<bool> stale{false};
  // Bytes a closing handle could not give back (the lock stayed taken); the
  // periodic check gives them back.
  std::atomic<uint64_t> pending{0};
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

// ---- SIGBUS guard ------------------------------------------------------------
//
// A file shortened while mapped makes an access past its end raise SIGBUS. So
// that nothing the file holds can end the process, a SIGBUS inside one of our
// mappings replaces the mapping with private zeroed memory and lets the
// access retry there; the zeroed entry then fails every operation with
// kMachineLost (and the periodic check marks the mapping stale). A SIGBUS
// anywhere else goes to the previous handler, or ends the process as before.
constexpr int kMaxGuarded = 1024;
std::atomic<uintptr_t> g_guarded[kMaxGuarded];
std::atomic<bool> g_faulted[kMaxGuarded];
struct sigaction g_prev_bus;
std::once_flag g_bus_once;

void on_sigbus(int sig, siginfo_t* info, void* ctx) {
  int saved_errno = errno;
  // Only a fault (si_code > 0) has an address; a SIGBUS sent with kill() is
  // never ours.
  if (info != nullptr && info->si_code > 0) {
    uintptr_t at = reinterpret_cast<uintptr_t>(info->si_addr);
    for (int i = 0; i < kMaxGuarded; ++i) {
      uintptr_t base = g_guarded[i].load(std::memory_order_acquire);
      if (base != 0 && at >= base && at < base + kFileBytes) {
        void* p = mmap(reinterpret_cast<void*>(base), kFileBytes, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p != MAP_FAILED) {
          g_faulted[i].store(true, std::memory_order_release);
          errno = saved_errno;
          return;
        }
      }
    }
  }
  if ((g_prev_bus.sa_flags & SA_SIGINFO) != 0 && g_prev_bus.sa_sigaction != nullptr) {
    errno = saved_errno;
    g_prev_bus.sa_sigaction(sig, info, ctx);
    return;
  }
  if ((g_prev_bus.sa_flags & SA_SIGINFO) == 0 && g_prev_bus.sa_handler == SIG_IGN) {
    errno = saved_errno;
    return;
  }
  if ((g_prev_bus.sa_flags & SA_SIGINFO) == 0 && g_prev_bus.sa_handler != SIG_DFL) {
    errno = saved_errno;
    g_prev_bus.sa_handler(sig);
    return;
  }
  // Not ours and no handler before us: the default action. A fault happens
  // again on return; a signal that was sent is sent again.
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGBUS, &dfl, nullptr);
  if (info == nullptr || info->si_code <= 0) raise(SIGBUS);
  errno = saved_errno;
}

// Guards a mapping; the slot, or -1 when every slot is taken.
int guard(void* base) {
  std::call_once(g_bus_once, [] {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, &g_prev_bus);
  });
  for (int i = 0; i < kMaxGuarded; ++i) {
    uintptr_t expected = 0;
    if (g_guarded[i].compare_exchange_strong(expected, reinterpret_cast<uintptr_t>(base))) {
      g_faulted[i].store(false, std::memory_order_release);
      return i;
    }
  }
  return -1;
}

void unguard(int slot) {
  if (slot >= 0) g_guarded[slot].store(0, std::memory_order_release);
}

bool faulted(const MachineMapping* m) {
  return m->guard_slot >= 0 && g_faulted[m->guard_slot].load(std::memory_order_acquire);
}

// ---- liveness: open-file-description locks -------------------------------------
//
// A process holds a write lock on the first byte of its entry for as long as
// it has the budget open. The kernel drops the lock when the process ends,
// however it ends, so "no lock on the byte" means "no live holder" in every
// pid namespace, with hidden /proc, across pid reuse.

// The lock request for entry i's byte (l_pid 0, as OFD locks require).
struct flock entry_lock(int i, short type) {
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = static_cast<off_t>(kHeaderBytes + sizeof(ProcEntry) * static_cast<size_t>(i));
  fl.l_len = 1;
  return fl;
}

bool lock_entry(int fd, int i) {
  struct flock fl = entry_lock(i, F_WRLCK);
  return fcntl(fd, F_OFD_SETLK, &fl) == 0;
}

void unlock_entry(int fd, int i) {
  struct flock fl = entry_lock(i, F_UNLCK);
  fcntl(fd, F_OFD_SETLK, &fl);
}

// Whether an open file description other than `fd`'s holds entry i's lock.
// When the kernel cannot answer, the holder is taken as alive.
bool entry_held_elsewhere(int fd, int i) {
  struct flock fl = entry_lock(i, F_WRLCK);
  if (fcntl(fd, F_OFD_GETLK, &fl) != 0) return true;
  return fl.l_type != F_UNLCK;
}

int read_own_start(uint64_t* start) {
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno;
  char buf[1024];
  ssize_t n;
  do {
    n = read(fd, buf, sizeof buf - 1);
  } while (n < 0 && errno == EINTR);
  close(fd);
  if (n <= 0) return EIO;
  buf[n] = '\0';
  char* p = std::strrchr(buf, ')');
  if (p == nullptr) return EIO;
  for (int field = 2; field < 22; ++field) {
    p = std::strchr(p + 1, ' ');
    if (p == nullptr) return EIO;
  }
  *start = std::strtoull(p + 1, nullptr, 10);
  return 0;
}

bool owns_entry(const MachineMapping* m) {
  const ProcEntry& e = m->entries[m->entry];
  return e.state.load(std::memory_order_acquire) == 1 && e.pid == m->pid && e.start_time == m->start_time;
}

// Makes `used` the sum of the entries again, after a process died holding
// the lock (it may have died between the two stores of an update).
void repair_locked(MachineMapping* m) {
  uint64_t sum = 0;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (m->entries[i].state.load(std::memory_order_relaxed) == 1) sum += m->entries[i].held.load(std::memory_order_relaxed);
  }
  m->h->used.store(sum, std::memory_order_relaxed);
  m->h->last_scan_ms.store(INT64_MIN, std::memory_order_relaxed);
}

// Takes the lock with this mapping's word. With `once`, gives up at once
// (kMachineLockTimeout) when a live holder has it.
int lock(MachineMapping* m, bool once = false) {
  std::atomic<uint64_t>& word = m->h->lock_word;
  const uint64_t me = m->word;
  int64_t began = -1;
  int64_t next_check = 0;
  for (unsigned spins = 0;; ++spins) {
    uint64_t cur = 0;
    if (word.compare_exchange_strong(cur, me, std::memory_order_acquire, std::memory_order_relaxed)) return kMachineOk;
    if (cur == 0) continue;
    bool check = once;
    if (!once) {
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
      if (now - began >= kMachineLockTimeoutMs) return kMachineLockTimeout;
      if (now >= next_check) {
        next_check = now + 1;
        check = true;
      }
    }
    if (check && cur != me) {
      // A token that names no entry, or an entry nobody holds: the holder
      // is gone (or the word is damaged). Take over and repair. The swap is
      // on the whole word, generation included, so it fails if the entry
      // passed to a new process that took the lock meanwhile.
      uint32_t token = static_cast<uint32_t>(cur & 0xFFFFFFFFu);
      bool gone = token == 0 || token > static_cast<uint32_t>(kMachineMaxProcesses) ||
                  !entry_held_elsewhere(m->fd, static_cast<int>(token) - 1);
      if (gone && word.compare_exchange_strong(cur, me, std::memory_order_acquire, std::memory_order_relaxed)) {
        repair_locked(m);
        return kMachineOk;
      }
    }
    if (once) return kMachineLockTimeout;
  }
}

void unlock(MachineMapping* m) { m->h->lock_word.store(0, std::memory_order_release); }

// Gives back what entry i holds and frees it. Caller holds the lock.
void free_entry_locked(MachineMapping* m, int i) {
  ProcEntry& e = m->entries[i];
  uint64_t held = e.held.load(std::memory_order_relaxed);
  uint64_t used = m->h->used.load(std::memory_order_relaxed);
  // A process that dies between these stores leaves `used` below the sum;
  // the next locker's repair recomputes it.
  m->h->used.store(used >= held ? used - held : 0, std::memory_order_release);
  e.held.store(0, std::memory_order_relaxed);
  e.state.store(0, std::memory_order_release);
  e.pid = 0;
}

void reclaim_entry_locked(MachineMapping* m, int i) {
  m->h->reclaimed_bytes.fetch_add(m->entries[i].held.load(std::memory_order_relaxed), std::memory_order_relaxed);
  m->h->reclaimed_processes.fetch_add(1, std::memory_order_relaxed);
  free_entry_locked(m, i);
}

// Gives back what dead processes held. Caller holds the lock. The time is
// taken when the scan begins, so a scan that began before a death never
// stands in for one after it.
int scan_locked(MachineMapping* m) {
  m->h->last_scan_ms.store(now_ms(), std::memory_order_relaxed);
  int reclaimed = 0;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (i == m->entry) continue;
    if (m->entries[i].state.load(std::memory_order_acquire) != 1) continue;
    if (entry_held_elsewhere(m->fd, i)) continue;
    reclaim_entry_locked(m, i);
    ++reclaimed;
  }
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
  int fd = -1;
  std::string tmp;
  for (int attempt = 0; attempt < 8 && fd < 0; ++attempt) {
    // A name no live process uses: pid, a counter and the clock. One left by
    // a process that died while making its file only costs another attempt.
    tmp = path + ".tmp-" + std::to_string(static_cast<long>(getpid())) + "-" +
          std::to_string(counter.fetch_add(1, std::memory_order_relaxed)) + "-" + std::to_string(now_ms());
    fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0) {
    *sys_errno = errno;
    return kMachineIo;
  }
  // Nobody can see the file before it is linked, so it is written whole
  // with one pwrite (no mapping to tear down). Writing every byte, rather
  // than extending the file, makes the filesystem give it all its pages
  // now: on a full tmpfs that fails here with ENOSPC instead of faulting
  // on a page later.
  int err = 0;
  {
    std::vector<unsigned char> file(kFileBytes, 0);
    alignas(64) unsigned char block[kHeaderBytes] = {};
    Header* h = reinterpret_cast<Header*>(block);
    std::memcpy(h->magic, kMagic, sizeof kMagic);
    h->version = kVersion;
    h->header_bytes = kHeaderBytes;
    h->entry_bytes = sizeof(ProcEntry);
    h->max_processes = kMachineMaxProcesses;
    h->file_bytes = kFileBytes;
    h->word_bits = 8 * sizeof(void*);
    h->limit.store(limit, std::memory_order_relaxed);
    h->last_scan_ms.store(INT64_MIN, std::memory_order_relaxed);
    std::memcpy(file.data(), block, sizeof block);
    ssize_t n;
    do {
      n = pwrite(fd, file.data(), file.size(), 0);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(file.size())) err = n < 0 ? errno : ENOSPC;  // a short write: the filesystem is full
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

// Whether the mapping still shows the file its path names, whole: the file
// was not removed, replaced or shortened. Marks it stale when not.
// Marks a mapping lost: its operations fail with kMachineLost from now on,
// and its entry's byte lock is let go, so other processes take over a lock
// word it may have left in the file and give back what its entry holds.
// Caller holds the registry mutex, or the mapping is not shared yet.
void mark_lost(MachineMapping* m) {
  m->stale.store(true, std::memory_order_relaxed);
  if (!m->entry_released && m->entry >= 0) {
    unlock_entry(m->fd, m->entry);
    m->entry_released = true;
  }
}

bool still_current(MachineMapping* m) {
  if (m->stale.load(std::memory_order_relaxed)) return false;
  struct stat st;
  bool ok = !faulted(m) && same_file(m->path, m->dev, m->ino) && fstat(m->fd, &st) == 0 &&
            static_cast<uint64_t>(st.st_size) == kFileBytes && owns_entry(m);
  if (!ok) mark_lost(m);
  return ok;
}

void drop_mapping(MachineMapping* m) {
  unguard(m->guard_slot);
  munmap(m->base, kFileBytes);
  close(m->fd);  // drops the entry's byte lock
  delete m;
}

// Opens `path`, which exists, for this process. Returns kMachineOk, an
// error, or -1 when the file was removed meanwhile (the caller starts over).
// Caller holds the registry mutex.
int attach(Registry& r, const std::string& path, int fd, const struct stat& st, bool has_limit, uint64_t limit,
           MachineMapping** out, int* sys_errno, uint64_t* existing_limit) {
  for (MachineMapping* m : r.maps) {
    // A mapping of the same name whose file was removed or replaced is found
    // out here, so that its handles fail rather than count on the old file.
    if (m->path == path && !still_current(m)) continue;
    if (m->dev == st.st_dev && m->ino == st.st_ino && !m->stale.load(std::memory_order_relaxed)) {
      uint64_t have = m->h->limit.load(std::memory_order_acquire);
      if (has_limit && have != limit) {
        close(fd);
        *existing_limit = have;
        return kMachineLimitMismatch;
      }
      close(fd);
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
  int guard_slot = guard(base);
  if (guard_slot < 0) {
    munmap(base, kFileBytes);
    close(fd);
    *sys_errno = EMFILE;
    return kMachineIo;
  }
  auto* m = new MachineMapping();
  m->guard_slot = guard_slot;
  m->fd = fd;
  m->base = base;
  m->dev = st.st_dev;
  m->ino = st.st_ino;
  m->path = path;
  m->h = static_cast<Header*>(base);
  m->entries = reinterpret_cast<ProcEntry*>(static_cast<char*>(base) + kHeaderBytes);
  m->pid = static_cast<uint32_t>(getpid());
  if (read_own_start(&m->start_time) != 0) m->start_time = 0;  // only a tamper check uses it
  std::atomic_thread_fence(std::memory_order_acquire);
  if (!header_valid(m->h)) {
    drop_mapping(m);
    return kMachineCorrupt;
  }
  // Claim an entry: the kernel gives its byte lock to one process only. An
  // entry whose lock is free has no live holder, whatever it still says.
  int slot = -1;
  for (int i = 0; i < kMachineMaxProcesses; ++i) {
    if (lock_entry(fd, i)) {
      slot = i;
      break;
    }
  }
  if (slot < 0) {
    drop_mapping(m);
    return kMachineFull;
  }
  m->entry = slot;
  m->token = static_cast<uint32_t>(slot) + 1;
  // The entry is ours alone now (the kernel gave us its byte lock): a new
  // generation makes our lock word differ from every earlier holder's.
  const uint64_t old_generation = m->entries[slot].generation;
  uint64_t generation = (old_generation + 1) & 0xFFFFFFFFu;
  if (generation == 0) generation = 1;
  m->entries[slot].generation = generation;
  m->word = (generation << 32) | m->token;
  // A lock word with our token was left by the dead process whose entry we
  // took (no thread of ours has used it yet): take it over, swapping in our
  // own word so that a waiter that judged the dead holder cannot swap too.
  int err = kMachineOk;
  uint64_t seen = m->h->lock_word.load(std::memory_order_acquire);
  if ((seen & 0xFFFFFFFFu) == m->token &&
      m->h->lock_word.compare_exchange_strong(seen, m->word, std::memory_order_acquire)) {
    repair_locked(m);
  } else {
    err = lock(m);
  }
  if (err != kMachineOk) {
    drop_mapping(m);
    return err;
  }
  auto fail = [&](int code) {
    unlock(m);
    drop_mapping(m);
    return code;
  };
  if (!contents_valid_locked(m)) {
    m->entries[slot].generation = old_generation;  // a refused file is left as it was
    return fail(kMachineCorrupt);
  }
  if (faulted(m)) return fail(kMachineLost);  // the file is shorter than its size says
  if (m->entries[slot].state.load(std::memory_order_relaxed) == 1) reclaim_entry_locked(m, slot);
  scan_locked(m);
  if (has_limit && m->h->limit.load(std::memory_order_relaxed) != limit) {
    bool alone = true;
    for (int i = 0; i < kMachineMaxProcesses && alone; ++i) {
      if (m->entries[i].state.load(std::memory_order_relaxed) == 1) alone = false;
    }
    if (!alone) {
      *existing_limit = m->h->limit.load(std::memory_order_relaxed);
      return fail(kMachineLimitMismatch);
    }
    // Left behind by processes that all ended without closing it: a new
    // budget, with the new limit.
    m->h->limit.store(limit, std::memory_order_relaxed);
    m->h->peak.store(0, std::memory_order_relaxed);
    m->h->successes.store(0, std::memory_order_relaxed);
    m->h->failures.store(0, std::memory_order_relaxed);
  }
  // The last process to close removes the file under the lock; one that
  // did so before we took the lock leaves us a file nobody else will open.
  if (!same_file(path, st.st_dev, st.st_ino)) return fail(-1);
  ProcEntry& e = m->entries[slot];
  e.pid = m->pid;
  e.start_time = m->start_time;
  e.held.store(0, std::memory_order_relaxed);
  e.successes = 0;
  e.failures = 0;
  e.state.store(1, std::memory_order_release);
  unlock(m);
  if (faulted(m)) {
    drop_mapping(m);
    return kMachineLost;
  }
  m->refs = 1;
  r.maps.push_back(m);
  *out = m;
  return kMachineOk;
}

// Locks a mapping for an operation: kMachineLost when it is stale or its
// entry was taken from it.
int lock_for_op(MachineMapping* m) {
  if (m->stale.load(std::memory_order_relaxed) || faulted(m)) return kMachineLost;
  int err = lock(m);
  if (err != kMachineOk) return err;
  if (!owns_entry(m) || faulted(m)) {
    unlock(m);
    m->stale.store(true, std::memory_order_relaxed);  // the periodic check lets go of the entry
    return kMachineLost;
  }
  return kMachineOk;
}

}  // namespace

int machine_open(const std::string& dir, const std::string& name, bool has_limit, uint64_t limit,
                 MachineMapping** out, int* sys_errno, uint64_t* existing_limit) {
  *out = nullptr;
  *sys_errno = 0;
  *existing_limit = 0;
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
    std::lock_guard<std::mutex> guard_registry(r.mu);
    int a = attach(r, path, fd, st, has_limit, limit, out, sys_errno, existing_limit);
    if (a != -1) return a;
  }
  *sys_errno = EAGAIN;
  return kMachineIo;
}

void machine_unref(MachineMapping* m) {
  Registry& r = registry();
  std::lock_guard<std::mutex> guard_registry(r.mu);
  if (--m->refs > 0) return;
  if (!m->stale.load(std::memory_order_relaxed) && !faulted(m) && lock(m) == kMachineOk) {
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
  drop_mapping(m);
}

int machine_reserve(MachineMapping* m, uint64_t bytes, uint64_t* used_after) {
  int err = lock_for_op(m);
  if (err != kMachineOk) return err;
  Header* h = m->h;
  ProcEntry& e = m->entries[m->entry];
  uint64_t used = h->used.load(std::memory_order_relaxed);
  uint64_t limit = h->limit.load(std::memory_order_relaxed);
  if (used > limit || bytes > limit - used) {
    int64_t last = h->last_scan_ms.load(std::memory_order_relaxed);
    int64_t now = now_ms();
    if (last == INT64_MIN || last > now || last <= now - kMachineReclaimSpacingMs) {
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
  // `used` below the sum, which the next locker's repair restores.
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
  int err = lock_for_op(m);
  if (err != kMachineOk) return err;
  ProcEntry& e = m->entries[m->entry];
  uint64_t held = e.held.load(std::memory_order_relaxed);
  if (bytes > held) {
    unlock(m);
    return kMachineExceedsHeld;
  }
  uint64_t used = m->h->used.load(std::memory_order_relaxed);
  // The counter first: a process that dies between the stores leaves `used`
  // below the sum, which the repair recomputes (undoing this release, whose
  // bytes the dead process's entry still holds and the scan gives back).
  uint64_t next = used >= bytes ? used - bytes : 0;
  m->h->used.store(next, std::memory_order_release);
  e.held.store(held - bytes, std::memory_order_relaxed);
  unlock(m);
  *used_after = next;
  return kMachineOk;
}

void machine_defer_release(MachineMapping* m, uint64_t bytes) {
  m->pending.fetch_add(bytes, std::memory_order_relaxed);
}

int machine_set_limit(MachineMapping* m, uint64_t limit) {
  if (limit > kMaxSafe) return kMachineCorrupt;
  int err = lock_for_op(m);
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
  int err = lock_for_op(m);
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
    if (m->entries[i].state.load(std::memory_order_relaxed) == 1 &&
        (i == m->entry || entry_held_elsewhere(m->fd, i))) {
      ++holders;
    }
  }
  out->holders = holders;
  out->process_held = m->entries[m->entry].held.load(std::memory_order_relaxed);
  unlock(m);
  return kMachineOk;
}

uint64_t machine_used(const MachineMapping* m) { return m->h->used.load(std::memory_order_acquire); }
uint64_t machine_limit(const MachineMapping* m) { return m->h->limit.load(std::memory_order_acquire); }
// Lost: marked stale, or the file was shortened under the mapping (a read
// past its end faulted and now reads zeros), or its header no longer says
// what it is (zeroed or overwritten in place). Read the figure first and ask
// this after, so that a figure read from zeros is never taken for a count.
bool machine_lost(const MachineMapping* m) {
  return m->stale.load(std::memory_order_relaxed) || std::memcmp(m->h->magic, kMagic, sizeof kMagic) != 0 ||
         faulted(m);
}

int machine_reclaim(MachineMapping* m, int* reclaimed) {
  *reclaimed = 0;
  int err = lock_for_op(m);
  if (err != kMachineOk) return err;
  *reclaimed = scan_locked(m);
  unlock(m);
  return kMachineOk;
}

void machine_reclaim_all() {
  Registry& r = registry();
  // Never waits: an open or close of this process may be waiting for a lock
  // word; the check runs again in a second.
  std::unique_lock<std::mutex> guard_registry(r.mu, std::try_to_lock);
  if (!guard_registry.owns_lock()) return;
  for (MachineMapping* m : r.maps) {
    if (!still_current(m)) continue;
    // Never waits: a lock held by a live process is left for the next turn.
    if (lock(m, true) != kMachineOk) continue;
    if (!owns_entry(m) || faulted(m)) {
      unlock(m);
      mark_lost(m);
      continue;
    }
    uint64_t pending = m->pending.exchange(0, std::memory_order_relaxed);
    if (pending > 0) {
      ProcEntry& e = m->entries[m->entry];
      uint64_t held = e.held.load(std::memory_order_relaxed);
      uint64_t give = pending < held ? pending : held;
      uint64_t used = m->h->used.load(std::memory_order_relaxed);
      m->h->used.store(used >= give ? used - give : 0, std::memory_order_release);
      e.held.store(held - give, std::memory_order_relaxed);
    }
    scan_locked(m);
    unlock(m);
  }
}

std::string machine_default_dir() {
  struct stat st;
  if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && faccessat(AT_FDCWD, "/dev/shm", W_OK | X_OK, AT_EACCESS) == 0) {
    return "/dev/shm";
  }
  return "";
}

#else  // not Linux: machine budgets are not offered

struct MachineMapping {};

int machine_open(const std::string&, const std::string& name, bool, uint64_t, MachineMapping** out, int* sys_errno,
                 uint64_t* existing_limit) {
  *out = nullptr;
  *sys_errno = 0;
  *existing_limit = 0;
  if (!machine_name_valid(name)) return kMachineBadName;
  return kMachineUnsupported;
}
void machine_unref(MachineMapping*) {}
int machine_reserve(MachineMapping*, uint64_t, uint64_t*) { return kMachineUnsupported; }
int machine_release(MachineMapping*, uint64_t, uint64_t*) { return kMachineUnsupported; }
void machine_defer_release(MachineMapping*, uint64_t) {}
bool machine_lost(const MachineMapping*) { return true; }
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
