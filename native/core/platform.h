// Platform samplers: the quantities resource-guard measures, read straight
// from the kernel. This header knows nothing of Node; every function is safe
// to call from any thread, never throws, and reports failure as an errno-style
// code (0 = success, ENOSYS = not available on this platform).
#pragma once

#include <cerrno>
#include <cstdint>

namespace rg {

struct CpuTimes {
  uint64_t user_us = 0;    // CPU time spent in user mode, microseconds
  uint64_t system_us = 0;  // CPU time spent in kernel mode, microseconds
};

// Cumulative host-wide CPU time since boot, summed over all CPUs, in
// microseconds. Load over an interval is busy delta / (busy + idle) delta.
struct SystemCpu {
  uint64_t busy_us = 0;
  uint64_t idle_us = 0;
};

struct SystemMemory {
  uint64_t total = 0;      // physical RAM, bytes
  uint64_t available = 0;  // what can be allocated without swapping, bytes
};

// Limits of the control group (Linux) the process runs in. A field that is
// not set by the platform or the container keeps its `has_*` flag false:
// "no limit" is never reported as a huge number or as zero.
struct CgroupInfo {
  int version = 0;  // 0 = not in a cgroup / not Linux, 1 or 2
  bool has_memory_limit = false;
  uint64_t memory_limit = 0;
  bool has_memory_usage = false;
  uint64_t memory_usage = 0;
  bool has_cpu_quota = false;
  double cpu_quota = 0;  // in CPUs, e.g. 1.5
};

enum class PsiResource { memory = 0, cpu = 1, io = 2 };

// Pressure stall information (Linux >= 4.20 with PSI enabled).
struct PsiInfo {
  double some_avg10 = 0, some_avg60 = 0, some_avg300 = 0;
  uint64_t some_total_us = 0;
  bool has_full = false;  // "full" is absent for cpu on older kernels
  double full_avg10 = 0, full_avg60 = 0, full_avg300 = 0;
  uint64_t full_total_us = 0;
};

struct DiskInfo {
  uint64_t total = 0;      // size of the file system, bytes
  uint64_t free = 0;       // free bytes, including those reserved for root
  uint64_t available = 0;  // free bytes an unprivileged user may write
};

// Current resident set size of this process, in bytes, read fresh.
int read_rss(uint64_t* out);
// Highest resident set size this process has reached, in bytes.
int read_peak_rss(uint64_t* out);
// CPU time consumed by this process (all threads).
int read_process_cpu(CpuTimes* out);
// Host-wide cumulative CPU time.
int read_system_cpu(SystemCpu* out);
// Number of logical CPUs online (at least 1).
int cpu_count();
int read_system_memory(SystemMemory* out);
int read_cgroup(CgroupInfo* out);
// Only the cgroup's memory usage (the one cgroup figure that changes from
// sample to sample), read from a kept-open file: what the sampler thread
// calls every interval. ENOENT when the process is in no cgroup with a memory
// controller, ENOSYS where the platform has no cgroups.
int read_cgroup_memory_usage(uint64_t* out);
int read_psi(PsiResource resource, PsiInfo* out);
// Space on the file system holding `path_utf8`, which must name an existing
// directory (ENOENT / ENOTDIR otherwise).
int read_disk(const char* path_utf8, DiskInfo* out);
// A directory kept open for repeated disk reads: one fstatvfs per read
// instead of a path lookup. disk_open fails like read_disk (ENOENT, ENOTDIR);
// ENOSYS where the platform reads by path only (Windows).
int disk_open(const char* path_utf8, intptr_t* handle);
int read_disk_handle(intptr_t handle, DiskInfo* out);
// Identity of a directory: its device and inode.
struct DiskId {
  uint64_t dev = 0;
  uint64_t ino = 0;
};
// The identity of the directory kept open as `handle` (one fstat, at open).
int disk_identity(intptr_t handle, DiskId* out);
// What disk_check returns when the path names another directory now: ESTALE
// where the C library defines it (the Windows runtime does not).
#ifdef ESTALE
constexpr int kDiskReplaced = ESTALE;
#else
constexpr int kDiskReplaced = 116;
#endif
// Whether `path_utf8` still names the directory `id` (one stat): 0 when it
// does; kDiskReplaced when another directory, a mount, or nothing usable sits there
// now (device or inode differ); else the errno of looking the path up
// (ENOENT, ENOTDIR, EACCES, ...). Callers reopen on kDiskReplaced and report
// "unknown" on anything else. While the caller holds the directory open its
// inode cannot be reused, so a match also means it has not been unlinked.
int disk_check(const char* path_utf8, const DiskId& id);
void disk_close(intptr_t handle);
// Monotonic clock, nanoseconds; only differences are meaningful.
uint64_t monotonic_ns();
// Short name of the platform implementation ("linux", "darwin", "win32").
const char* platform_name();

}  // namespace rg
