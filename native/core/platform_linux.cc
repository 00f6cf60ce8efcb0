// Linux samplers. Hot files (/proc/self/statm, /proc/stat, the cgroup usage
// file and the PSI files) are opened once and read with pread(), which is
// thread-safe and avoids an open/close pair per sample. The descriptors are
// deliberately process-wide: they are read-only views of kernel state, shared
// by every worker thread, and reset in a forked child (pthread_atfork) so a
// child never reads its parent's /proc/self.
#if defined(__linux__)

#include "platform.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <mutex>
#include <pthread.h>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <atomic>

namespace rg {
namespace {

// v1 reports "no limit" as LONG_MAX rounded down to a page; anything this
// large is not a limit a process can reach.
constexpr uint64_t kUnlimitedThreshold = uint64_t{1} << 62;

// The smallest buffer a seq_file fills per read: one page, 4 KiB at least.
constexpr size_t kMinSeqBuffer = 4096;

// A file kept open for repeated reads. open() is attempted once; a missing
// file stays missing (fd -1) until a fork resets the cache.
class KeptFile {
 public:
  explicit KeptFile(std::string path) : path_(std::move(path)) {}

  // Reads the whole (small) file into buf, NUL-terminated. Returns the byte
  // count, or -errno.
  //
  // procfs, sysfs and cgroupfs files are seq_files: one read returns as many
  // whole records as fit in the caller's buffer or in the kernel's buffer,
  // which is at least one page. So a short read of at most a page is the end
  // of the file, and the usual extra read that returns 0 would only make the
  // kernel generate the text a second time (it doubles the cost of an RSS
  // read).
  ssize_t read(char* buf, size_t cap) {
    int fd = get();
    if (fd < 0) return -ENOENT;
    ssize_t total = 0;
    while (static_cast<size_t>(total) < cap - 1) {
      size_t want = cap - 1 - total;
      ssize_t n = pread(fd, buf + total, want, total);
      if (n < 0) {
        if (errno == EINTR) continue;
        return -errno;
      }
      if (n == 0) break;
      total += n;
      if (static_cast<size_t>(n) < want && want <= kMinSeqBuffer) break;
    }
    buf[total] = '\0';
    return total;
  }

  void reset() {
    int fd = fd_.exchange(-2);
    if (fd >= 0) close(fd);
  }

  const std::string& path() const { return path_; }
  void set_path(std::string p) { path_ = std::move(p); reset(); }

 private:
  int get() {
    int fd = fd_.load(std::memory_order_acquire);
    if (fd != -2) return fd;
    int opened = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    int expected = -2;
    if (!fd_.compare_exchange_strong(expected, opened < 0 ? -1 : opened)) {
      if (opened >= 0) close(opened);  // another thread won the race
      return expected;
    }
    return opened < 0 ? -1 : opened;
  }

  std::string path_;
  std::atomic<int> fd_{-2};  // -2 = not tried yet, -1 = unavailable
};

// Everything cgroup-related is resolved once per process (and per fork).
struct CgroupPaths {
  int version = 0;
  std::string memory_dir;  // directory holding memory.max / memory.limit_in_bytes
  std::string cpu_dir;
};

struct State {
  KeptFile statm{"/proc/self/statm"};
  KeptFile status{"/proc/self/status"};
  KeptFile stat{"/proc/stat"};
  KeptFile psi_memory{"/proc/pressure/memory"};
  KeptFile psi_cpu{"/proc/pressure/cpu"};
  KeptFile psi_io{"/proc/pressure/io"};
  KeptFile cgroup_usage{""};
  long page_size = 4096;
  long clock_ticks = 100;
  CgroupPaths cgroup;
  std::once_flag cgroup_once;
};

State* g_state = nullptr;
std::once_flag g_init_once;

void reset_after_fork() {
  if (g_state == nullptr) return;
  g_state->statm.reset();
  g_state->status.reset();
  g_state->stat.reset();
  g_state->psi_memory.reset();
  g_state->psi_cpu.reset();
  g_state->psi_io.reset();
  g_state->cgroup_usage.reset();
}

State& state() {
  std::call_once(g_init_once, [] {
    // Never freed: samplers may run on the native sampler thread until the
    // very end of the process.
    g_state = new State();
    long ps = sysconf(_SC_PAGESIZE);
    if (ps > 0) g_state->page_size = ps;
    long hz = sysconf(_SC_CLK_TCK);
    if (hz > 0) g_state->clock_ticks = hz;
    pthread_atfork(nullptr, nullptr, reset_after_fork);
  });
  return *g_state;
}

bool read_small_file(const std::string& path, char* buf, size_t cap) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t total = 0;
  while (static_cast<size_t>(total) < cap - 1) {
    ssize_t n = read(fd, buf + total, cap - 1 - total);
    if (n < 0) {
      if (errno == EINTR) continue;
      close(fd);
      return false;
    }
    if (n == 0) break;
    total += n;
  }
  close(fd);
  buf[total] = '\0';
  return true;
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Parses an unsigned decimal at *p, advancing it. Returns false if none.
bool parse_u64(const char*& p, uint64_t* out) {
  while (*p == ' ' || *p == '\t') ++p;
  if (*p < '0' || *p > '9') return false;
  uint64_t v = 0;
  while (*p >= '0' && *p <= '9') {
    v = v * 10 + static_cast<uint64_t>(*p - '0');
    ++p;
  }
  *out = v;
  return true;
}

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// Finds the cgroup directories of this process from /proc/self/cgroup.
void resolve_cgroup(CgroupPaths* out) {
  char buf[4096];
  if (!read_small_file("/proc/self/cgroup", buf, sizeof buf)) return;
  std::string v2_path, v1_memory, v1_cpu;
  bool has_v2 = false;
  char* save = nullptr;
  for (char* line = strtok_r(buf, "\n", &save); line != nullptr; line = strtok_r(nullptr, "\n", &save)) {
    std::string l(line);
    size_t c1 = l.find(':');
    size_t c2 = c1 == std::string::npos ? c1 : l.find(':', c1 + 1);
    if (c2 == std::string::npos) continue;
    std::string id = l.substr(0, c1);
    std::string controllers = l.substr(c1 + 1, c2 - c1 - 1);
    std::string path = l.substr(c2 + 1);
    if (id == "0" && controllers.empty()) {
      has_v2 = true;
      v2_path = path;
      continue;
    }
    // controllers is a comma-separated list such as "cpu,cpuacct".
    std::string list = "," + controllers + ",";
    if (list.find(",memory,") != std::string::npos) v1_memory = path;
    if (list.find(",cpu,") != std::string::npos) v1_cpu = path;
  }
  // Inside a cgroup namespace the path may not exist below the mount point;
  // walk up until a directory with the wanted file exists.
  auto locate = [](const std::string& mount, std::string path, const char* file) -> std::string {
    for (;;) {
      std::string dir = mount + (path == "/" ? "" : path);
      if (file_exists(dir + "/" + file)) return dir;
      if (path.empty() || path == "/") return "";
      size_t slash = path.rfind('/');
      path = slash == 0 || slash == std::string::npos ? "/" : path.substr(0, slash);
    }
  };
  if (!v1_memory.empty() || !v1_cpu.empty()) {
    std::string mem = locate("/sys/fs/cgroup/memory", v1_memory.empty() ? "/" : v1_memory, "memory.limit_in_bytes");
    std::string cpu = locate("/sys/fs/cgroup/cpu", v1_cpu.empty() ? "/" : v1_cpu, "cpu.cfs_quota_us");
    if (mem.empty()) mem = locate("/sys/fs/cgroup/cpu,cpuacct", v1_cpu.empty() ? "/" : v1_cpu, "memory.limit_in_bytes");
    if (cpu.empty()) cpu = locate("/sys/fs/cgroup/cpu,cpuacct", v1_cpu.empty() ? "/" : v1_cpu, "cpu.cfs_quota_us");
    if (!mem.empty() || !cpu.empty()) {
      out->version = 1;
      out->memory_dir = mem;
      out->cpu_dir = cpu;
      return;
    }
  }
  if (has_v2) {
    std::string mem = locate("/sys/fs/cgroup", v2_path, "memory.max");
    std::string cpu = locate("/sys/fs/cgroup", v2_path, "cpu.max");
    if (!mem.empty() || !cpu.empty()) {
      out->version = 2;
      out->memory_dir = mem;
      out->cpu_dir = cpu;
    }
  }
}

CgroupPaths& cgroup_paths() {
  State& s = state();
  std::call_once(s.cgroup_once, [&s] {
    resolve_cgroup(&s.cgroup);
    if (!s.cgroup.memory_dir.empty()) {
      s.cgroup_usage.set_path(s.cgroup.memory_dir +
                              (s.cgroup.version == 2 ? "/memory.current" : "/memory.usage_in_bytes"));
    }
  });
  return s.cgroup;
}

int parse_psi_line(const char* line, double* a10, double* a60, double* a300, uint64_t* total) {
  int n = sscanf(line, "%*s avg10=%lf avg60=%lf avg300=%lf total=%llu", a10, a60, a300,
                 reinterpret_cast<unsigned long long*>(total));
  return n == 4 ? 0 : EIO;
}

}  // namespace

int read_rss(uint64_t* out) {
  State& s = state();
  char buf[256];
  ssize_t n = s.statm.read(buf, sizeof buf);
  if (n < 0) return static_cast<int>(-n);
  const char* p = buf;
  uint64_t size_pages, resident_pages;
  if (!parse_u64(p, &size_pages) || !parse_u64(p, &resident_pages)) return EIO;
  *out = resident_pages * static_cast<uint64_t>(s.page_size);
  return 0;
}

int read_peak_rss(uint64_t* out) {
  // VmHWM of /proc/self/status: the high-water mark of this process's own
  // memory. getrusage's ru_maxrss is not used here: it keeps the high-water
  // mark of the image before execve, so a process forked from a large one
  // would report the parent's peak as its own.
  State& s = state();
  char buf[4096];
  ssize_t n = s.status.read(buf, sizeof buf);
  if (n < 0) return static_cast<int>(-n);
  const char* p = std::strstr(buf, "\nVmHWM:");
  if (p == nullptr) return ENOENT;  // kernel threads have no memory figures
  p += 7;
  uint64_t kib = 0;
  if (!parse_u64(p, &kib)) return EIO;
  *out = kib * 1024;
  return 0;
}

int read_process_cpu(CpuTimes* out) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return errno;
  out->user_us = static_cast<uint64_t>(ru.ru_utime.tv_sec) * 1000000 + ru.ru_utime.tv_usec;
  out->system_us = static_cast<uint64_t>(ru.ru_stime.tv_sec) * 1000000 + ru.ru_stime.tv_usec;
  return 0;
}

int read_system_cpu(SystemCpu* out) {
  State& s = state();
  // The aggregate "cpu " line comes first; 512 bytes hold it on any kernel.
  char buf[512];
  ssize_t n = s.stat.read(buf, sizeof buf);
  if (n < 0) return static_cast<int>(-n);
  if (strncmp(buf, "cpu ", 4) != 0) return EIO;
  const char* p = buf + 4;
  // user nice system idle iowait irq softirq steal guest guest_nice
  uint64_t f[10] = {0};
  int count = 0;
  while (count < 10 && parse_u64(p, &f[count])) ++count;
  if (count < 4) return EIO;
  // guest and guest_nice are already included in user and nice.
  uint64_t idle = f[3] + f[4];
  uint64_t busy = f[0] + f[1] + f[2] + f[5] + f[6] + f[7];
  uint64_t us_per_tick = 1000000 / static_cast<uint64_t>(s.clock_ticks);
  out->busy_us = busy * us_per_tick;
  out->idle_us = idle * us_per_tick;
  return 0;
}

int cpu_count() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int read_system_memory(SystemMemory* out) {
  char buf[4096];
  if (!read_small_file("/proc/meminfo", buf, sizeof buf)) return errno ? errno : EIO;
  uint64_t total = 0, available = 0, free_kb = 0, buffers = 0, cached = 0;
  bool has_total = false, has_available = false;
  char* save = nullptr;
  for (char* line = strtok_r(buf, "\n", &save); line != nullptr; line = strtok_r(nullptr, "\n", &save)) {
    const char* p = strchr(line, ':');
    if (p == nullptr) continue;
    ++p;
    uint64_t v;
    if (!parse_u64(p, &v)) continue;
    if (strncmp(line, "MemTotal:", 9) == 0) { total = v; has_total = true; }
    else if (strncmp(line, "MemAvailable:", 13) == 0) { available = v; has_available = true; }
    else if (strncmp(line, "MemFree:", 8) == 0) free_kb = v;
    else if (strncmp(line, "Buffers:", 8) == 0) buffers = v;
    else if (strncmp(line, "Cached:", 7) == 0) cached = v;
  }
  if (!has_total) return EIO;
  // Kernels before 3.14 have no MemAvailable; approximate it as they did.
  if (!has_available) available = free_kb + buffers + cached;
  out->total = total * 1024;
  out->available = available * 1024;
  return 0;
}

int read_cgroup_memory_usage(uint64_t* out) {
  CgroupPaths& paths = cgroup_paths();
  if (paths.memory_dir.empty()) return ENOENT;
  char buf[64];
  ssize_t n = state().cgroup_usage.read(buf, sizeof buf);
  if (n < 0) return static_cast<int>(-n);
  const char* p = buf;
  uint64_t usage;
  if (!parse_u64(p, &usage)) return EIO;
  *out = usage;
  return 0;
}

int read_cgroup(CgroupInfo* out) {
  CgroupPaths& paths = cgroup_paths();
  *out = CgroupInfo();
  out->version = paths.version;
  if (paths.version == 0) return 0;
  char buf[256];
  if (!paths.memory_dir.empty()) {
    const char* limit_file = paths.version == 2 ? "/memory.max" : "/memory.limit_in_bytes";
    if (read_small_file(paths.memory_dir + limit_file, buf, sizeof buf)) {
      std::string v = trim(buf);
      const char* p = v.c_str();
      uint64_t limit;
      if (v != "max" && parse_u64(p, &limit) && limit < kUnlimitedThreshold) {
        out->has_memory_limit = true;
        out->memory_limit = limit;
      }
    }
    uint64_t usage;
    if (read_cgroup_memory_usage(&usage) == 0) {
      out->has_memory_usage = true;
      out->memory_usage = usage;
    }
  }
  if (!paths.cpu_dir.empty()) {
    if (paths.version == 2) {
      // "max 100000" or "<quota> <period>"
      if (read_small_file(paths.cpu_dir + "/cpu.max", buf, sizeof buf)) {
        const char* p = buf;
        uint64_t quota, period;
        if (parse_u64(p, &quota) && parse_u64(p, &period) && period > 0) {
          out->has_cpu_quota = true;
          out->cpu_quota = static_cast<double>(quota) / static_cast<double>(period);
        }
      }
    } else {
      char qbuf[64], pbuf[64];
      if (read_small_file(paths.cpu_dir + "/cpu.cfs_quota_us", qbuf, sizeof qbuf) &&
          read_small_file(paths.cpu_dir + "/cpu.cfs_period_us", pbuf, sizeof pbuf)) {
        long long quota = strtoll(qbuf, nullptr, 10);  // -1 = unlimited
        long long period = strtoll(pbuf, nullptr, 10);
        if (quota > 0 && period > 0) {
          out->has_cpu_quota = true;
          out->cpu_quota = static_cast<double>(quota) / static_cast<double>(period);
        }
      }
    }
  }
  return 0;
}

int read_psi(PsiResource resource, PsiInfo* out) {
  State& s = state();
  KeptFile* file = resource == PsiResource::memory ? &s.psi_memory
                   : resource == PsiResource::cpu  ? &s.psi_cpu
                                                    : &s.psi_io;
  char buf[512];
  ssize_t n = file->read(buf, sizeof buf);
  if (n < 0) return static_cast<int>(-n) == ENOENT ? ENOSYS : static_cast<int>(-n);
  *out = PsiInfo();
  char* nl = strchr(buf, '\n');
  if (nl != nullptr) *nl = '\0';
  if (strncmp(buf, "some ", 5) != 0 ||
      parse_psi_line(buf, &out->some_avg10, &out->some_avg60, &out->some_avg300, &out->some_total_us) != 0) {
    return EIO;
  }
  if (nl != nullptr && strncmp(nl + 1, "full ", 5) == 0) {
    if (parse_psi_line(nl + 1, &out->full_avg10, &out->full_avg60, &out->full_avg300, &out->full_total_us) == 0) {
      out->has_full = true;
    }
  }
  return 0;
}

int read_disk(const char* path_utf8, DiskInfo* out) {
  if (path_utf8 == nullptr || *path_utf8 == '\0') return ENOENT;
  // Resolving "<path>/." fails with ENOTDIR unless path is a directory, so a
  // single statvfs both validates the path and reads the file system.
  char buf[4096];
  size_t len = strlen(path_utf8);
  if (len + 3 > sizeof buf) return ENAMETOOLONG;
  memcpy(buf, path_utf8, len);
  memcpy(buf + len, "/.", 3);
  struct statvfs vfs;
  if (statvfs(buf, &vfs) != 0) return errno;
  uint64_t frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
  out->total = static_cast<uint64_t>(vfs.f_blocks) * frsize;
  out->free = static_cast<uint64_t>(vfs.f_bfree) * frsize;
  out->available = static_cast<uint64_t>(vfs.f_bavail) * frsize;
  return 0;
}

int disk_open(const char* path_utf8, intptr_t* handle) {
  if (path_utf8 == nullptr || *path_utf8 == '\0') return ENOENT;
  int fd = open(path_utf8, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  *handle = fd;
  return 0;
}

int read_disk_handle(intptr_t handle, DiskInfo* out) {
  struct statvfs vfs;
  if (fstatvfs(static_cast<int>(handle), &vfs) != 0) return errno;
  uint64_t frsize = vfs.f_frsize ? vfs.f_frsize : vfs.f_bsize;
  out->total = static_cast<uint64_t>(vfs.f_blocks) * frsize;
  out->free = static_cast<uint64_t>(vfs.f_bfree) * frsize;
  out->available = static_cast<uint64_t>(vfs.f_bavail) * frsize;
  return 0;
}

int disk_identity(intptr_t handle, DiskId* out) {
  struct stat st;
  if (fstat(static_cast<int>(handle), &st) != 0) return errno;
  out->dev = static_cast<uint64_t>(st.st_dev);
  out->ino = static_cast<uint64_t>(st.st_ino);
  return 0;
}

int disk_check(const char* path_utf8, const DiskId& id) {
  if (path_utf8 == nullptr || *path_utf8 == '\0') return ENOENT;
  struct stat now;
  if (::stat(path_utf8, &now) != 0) return errno;
  if (!S_ISDIR(now.st_mode)) return ENOTDIR;
  if (static_cast<uint64_t>(now.st_dev) != id.dev || static_cast<uint64_t>(now.st_ino) != id.ino) return kDiskReplaced;
  return 0;
}

void disk_close(intptr_t handle) {
  if (handle >= 0) close(static_cast<int>(handle));
}

uint64_t monotonic_ns() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

const char* platform_name() { return "linux"; }

}  // namespace rg

#endif  // __linux__
