// macOS samplers. Process and host figures come from Mach (task_info,
// host_processor_info, host_statistics64), the rest from BSD calls. The only
// state kept between calls is the host CPU tick accumulator, which exists
// because the kernel's per-CPU counters are 32-bit (see TickTotals).
#if defined(__APPLE__)

#include "platform.h"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#include <mach/mach.h>
#include <mach/mach_host.h>
#include <mach/processor_info.h>
#include <mach/vm_page_size.h>
#include <sys/types.h>
#include <sys/param.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysctl.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

namespace rg {
namespace {

int errno_from_kern(kern_return_t kr) {
  switch (kr) {
    case KERN_SUCCESS:
      return 0;
    case KERN_INVALID_ARGUMENT:
      return EINVAL;
    case KERN_RESOURCE_SHORTAGE:
    case KERN_NO_SPACE:
      return ENOMEM;
    case KERN_PROTECTION_FAILURE:
    case KERN_NO_ACCESS:
      return EACCES;
    default:
      return EIO;
  }
}

// Every mach_host_self() call adds a user reference to the host port; giving
// it back keeps a 100 Hz sampler from piling up references. Taking a fresh
// one per call (rather than caching the name) also stays correct in a forked
// child, whose port namespace is new.
class HostPort {
 public:
  HostPort() : port_(mach_host_self()) {}
  ~HostPort() {
    if (port_ != MACH_PORT_NULL) mach_port_deallocate(mach_task_self(), port_);
  }
  HostPort(const HostPort&) = delete;
  HostPort& operator=(const HostPort&) = delete;
  host_t get() const { return port_; }

 private:
  host_t port_;
};

// The kernel reports per-CPU ticks as 32-bit counters that wrap after about
// 497 days of one CPU's time at 100 Hz (and the host-wide HOST_CPU_LOAD_INFO
// sum wraps after 497 days / CPUs). Callers take deltas of cumulative values,
// so wrap-aware per-CPU deltas are folded into 64-bit totals that never go
// backwards.
struct TickTotals {
  std::mutex mu;
  std::vector<natural_t> last;  // CPU_STATE_MAX counters per CPU
  uint64_t busy = 0;
  uint64_t idle = 0;
};

TickTotals& tick_totals() {
  // Leaked on purpose: the sampler thread may still read during exit, after
  // static destructors would have run.
  static TickTotals* totals = new TickTotals();
  return *totals;
}

uint64_t us_per_tick() {
  // CPU ticks are 10 ms in XNU; CLK_TCK says so symbolically.
  static const uint64_t value = [] {
    long hz = sysconf(_SC_CLK_TCK);
    return static_cast<uint64_t>(1000000 / (hz > 0 ? hz : 100));
  }();
  return value;
}

}  // namespace

int read_rss(uint64_t* out) {
  mach_task_basic_info_data_t info;
  mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
  kern_return_t kr = task_info(mach_task_self(), MACH_TASK_BASIC_INFO, reinterpret_cast<task_info_t>(&info), &count);
  if (kr != KERN_SUCCESS) return errno_from_kern(kr);
  *out = static_cast<uint64_t>(info.resident_size);
  return 0;
}

int read_peak_rss(uint64_t* out) {
  // Same ledger as ru_maxrss (which is bytes on macOS), but read together
  // with the current size: the ledger's lifetime maximum is refreshed lazily,
  // and a peak below the current RSS would be nonsense to callers.
  mach_task_basic_info_data_t info;
  mach_msg_type_number_t count = MACH_TASK_BASIC_INFO_COUNT;
  kern_return_t kr = task_info(mach_task_self(), MACH_TASK_BASIC_INFO, reinterpret_cast<task_info_t>(&info), &count);
  if (kr != KERN_SUCCESS) return errno_from_kern(kr);
  uint64_t peak = static_cast<uint64_t>(info.resident_size_max);
  uint64_t now = static_cast<uint64_t>(info.resident_size);
  *out = peak > now ? peak : now;
  return 0;
}

int read_process_cpu(CpuTimes* out) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return errno;
  out->user_us = static_cast<uint64_t>(ru.ru_utime.tv_sec) * 1000000 + static_cast<uint64_t>(ru.ru_utime.tv_usec);
  out->system_us = static_cast<uint64_t>(ru.ru_stime.tv_sec) * 1000000 + static_cast<uint64_t>(ru.ru_stime.tv_usec);
  return 0;
}

int read_system_cpu(SystemCpu* out) {
  // host_processor_info rather than host_statistics(HOST_CPU_LOAD_INFO):
  // host_statistics is rate-limited for third-party processes (a few fresh
  // answers per second, cached ones after that), which would freeze the
  // figures between samples.
  HostPort host;
  natural_t cpus = 0;
  processor_info_array_t info = nullptr;
  mach_msg_type_number_t info_count = 0;
  kern_return_t kr = host_processor_info(host.get(), PROCESSOR_CPU_LOAD_INFO, &cpus, &info, &info_count);
  if (kr != KERN_SUCCESS) return errno_from_kern(kr);

  int err = 0;
  const size_t counters = static_cast<size_t>(cpus) * CPU_STATE_MAX;
  if (cpus == 0 || info_count < counters) {
    err = EIO;
  } else {
    const processor_cpu_load_info_data_t* load = reinterpret_cast<const processor_cpu_load_info_data_t*>(info);
    TickTotals& t = tick_totals();
    std::lock_guard<std::mutex> lock(t.mu);
    // The first reading counts in full; if the number of CPUs ever changes,
    // the new counters become the baseline so that the totals stay monotonic.
    const bool first = t.last.empty();
    const bool rebase = !first && t.last.size() != counters;
    if (first || rebase) {
      // Built aside and swapped in, so a failed allocation leaves the old
      // baseline intact.
      try {
        std::vector<natural_t> fresh(counters, 0);
        t.last.swap(fresh);
      } catch (const std::bad_alloc&) {
        err = ENOMEM;
      }
    }
    for (size_t c = 0; err == 0 && c < cpus; ++c) {
      for (size_t s = 0; s < CPU_STATE_MAX; ++s) {
        natural_t now = load[c].cpu_ticks[s];
        natural_t delta = now - t.last[c * CPU_STATE_MAX + s];  // modulo 2^32: survives a wrap
        t.last[c * CPU_STATE_MAX + s] = now;
        if (rebase) continue;
        if (s == CPU_STATE_IDLE) {
          t.idle += delta;
        } else {
          t.busy += delta;  // user, system and nice
        }
      }
    }
    if (err == 0) {
      out->busy_us = t.busy * us_per_tick();
      out->idle_us = t.idle * us_per_tick();
    }
  }
  vm_deallocate(mach_task_self(), reinterpret_cast<vm_address_t>(info),
                static_cast<vm_size_t>(info_count) * sizeof(integer_t));
  return err;
}

int cpu_count() {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? static_cast<int>(n) : 1;
}

int read_system_memory(SystemMemory* out) {
  int mib[2] = {CTL_HW, HW_MEMSIZE};
  uint64_t total = 0;
  size_t len = sizeof total;
  if (sysctl(mib, 2, &total, &len, nullptr, 0) != 0) return errno;

  // Also rate-limited (see read_system_cpu), so this may be up to about a
  // second old; acceptable for an on-demand figure.
  HostPort host;
  vm_statistics64_data_t vm;
  mach_msg_type_number_t count = HOST_VM_INFO64_COUNT;
  kern_return_t kr = host_statistics64(host.get(), HOST_VM_INFO64, reinterpret_cast<host_info64_t>(&vm), &count);
  if (kr != KERN_SUCCESS) return errno_from_kern(kr);
  if (count < HOST_VM_INFO64_COUNT) return EIO;  // no file-backed page count

  // What the kernel itself treats as available: truly free pages, file-backed
  // pages (clean cache, droppable without swapping) and volatile purgeable
  // memory. free_count already includes the speculative pages, which are
  // file-backed and so counted in external_page_count too; subtract them once.
  // Inactive anonymous memory is left out: reclaiming it means compressing or
  // swapping, as with Linux's MemAvailable.
  uint64_t free_pages = vm.free_count > vm.speculative_count ? vm.free_count - vm.speculative_count : 0;
  uint64_t pages = free_pages + vm.external_page_count + vm.purgeable_count;
  // Counts are in kernel pages, which differ from vm_page_size for an x86_64
  // process under Rosetta (4 KiB task pages on a 16 KiB kernel).
  uint64_t available = pages * static_cast<uint64_t>(vm_kernel_page_size);
  out->total = total;
  out->available = available < total ? available : total;
  return 0;
}

int read_cgroup(CgroupInfo* out) {
  *out = CgroupInfo();
  return 0;
}

int read_cgroup_memory_usage(uint64_t*) { return ENOSYS; }

int read_psi(PsiResource, PsiInfo*) { return ENOSYS; }

int read_disk(const char* path_utf8, DiskInfo* out) {
  if (path_utf8 == nullptr || *path_utf8 == '\0') return ENOENT;
  struct stat st;
  if (::stat(path_utf8, &st) != 0) return errno;
  if (!S_ISDIR(st.st_mode)) return ENOTDIR;
  struct statfs fs;
  if (statfs(path_utf8, &fs) != 0) return errno;
  const uint64_t bsize = static_cast<uint64_t>(fs.f_bsize);
  out->total = static_cast<uint64_t>(fs.f_blocks) * bsize;
  out->free = static_cast<uint64_t>(fs.f_bfree) * bsize;
  out->available = static_cast<uint64_t>(fs.f_bavail) * bsize;
  return 0;
}

uint64_t monotonic_ns() {
  // mach_continuous_time in nanoseconds: the clock libuv (>= 1.38.1) uses for
  // process.hrtime() on macOS, so snapshot timestamps compare with it. It
  // keeps counting during sleep. CLOCK_MONOTONIC would not do: on macOS it is
  // derived from the wall clock and has microsecond resolution.
  return clock_gettime_nsec_np(CLOCK_MONOTONIC_RAW);
}

int disk_open(const char* path_utf8, intptr_t* handle) {
  if (path_utf8 == nullptr || *path_utf8 == '\0') return ENOENT;
  int fd = open(path_utf8, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno;
  *handle = fd;
  return 0;
}

int read_disk_handle(intptr_t handle, DiskInfo* out) {
  struct statfs fs;
  if (fstatfs(static_cast<int>(handle), &fs) != 0) return errno;
  uint64_t bsize = static_cast<uint64_t>(fs.f_bsize);
  out->total = static_cast<uint64_t>(fs.f_blocks) * bsize;
  out->free = static_cast<uint64_t>(fs.f_bfree) * bsize;
  out->available = static_cast<uint64_t>(fs.f_bavail) * bsize;
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

const char* platform_name() { return "darwin"; }

}  // namespace rg

#endif  // __APPLE__
