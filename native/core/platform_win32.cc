// Windows samplers, all from plain Win32 calls that are safe on any thread.
// Times arrive as FILETIME (100 ns units) and are reported in microseconds.
// There are no cgroups or PSI; the memory limit of the job object the process
// runs in (Docker's process isolation, CI runners) stands in for the cgroup
// memory limit.
#if defined(_WIN32)

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif

#include "platform.h"

#include <cerrno>
#include <cstdint>
#include <new>
#include <string>

#include <windows.h>
#include <psapi.h>

#if defined(_MSC_VER)
// With _WIN32_WINNT >= 0x0601 GetProcessMemoryInfo resolves to kernel32's
// K32GetProcessMemoryInfo; the library keeps older targets linking too.
#pragma comment(lib, "psapi.lib")
#endif

namespace rg {
namespace {

uint64_t filetime_100ns(const FILETIME& ft) {
  return (static_cast<uint64_t>(ft.dwHighDateTime) << 32) | static_cast<uint64_t>(ft.dwLowDateTime);
}

// The errno the POSIX implementations would report for the same situation,
// so callers see one set of codes on every platform.
int errno_from_win32(DWORD error) {
  switch (error) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
    case ERROR_INVALID_DRIVE:
    case ERROR_BAD_NETPATH:
    case ERROR_BAD_NET_NAME:
      return ENOENT;
    case ERROR_DIRECTORY:
      return ENOTDIR;
    case ERROR_ACCESS_DENIED:
    case ERROR_SHARING_VIOLATION:
      return EACCES;
    case ERROR_FILENAME_EXCED_RANGE:
      return ENAMETOOLONG;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
      return ENOMEM;
    case ERROR_INVALID_PARAMETER:
    case ERROR_NO_UNICODE_TRANSLATION:
      return EINVAL;
    default:
      return EIO;
  }
}

int utf8_to_wide(const char* utf8, std::wstring* out) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, nullptr, 0);
  if (n <= 0) return errno_from_win32(GetLastError());
  try {
    out->resize(static_cast<size_t>(n));
  } catch (const std::bad_alloc&) {
    return ENOMEM;
  }
  if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, utf8, -1, &(*out)[0], n) != n) {
    return errno_from_win32(GetLastError());
  }
  out->resize(static_cast<size_t>(n) - 1);  // drop the terminator the count included
  return 0;
}

}  // namespace

int read_rss(uint64_t* out) {
  PROCESS_MEMORY_COUNTERS pmc;
  pmc.cb = sizeof pmc;
  if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return errno_from_win32(GetLastError());
  *out = static_cast<uint64_t>(pmc.WorkingSetSize);
  return 0;
}

int read_peak_rss(uint64_t* out) {
  PROCESS_MEMORY_COUNTERS pmc;
  pmc.cb = sizeof pmc;
  if (!GetProcessMemoryInfo(GetCurrentProcess(), &pmc, sizeof pmc)) return errno_from_win32(GetLastError());
  *out = static_cast<uint64_t>(pmc.PeakWorkingSetSize);
  return 0;
}

int read_process_cpu(CpuTimes* out) {
  FILETIME creation, exit_time, kernel, user;
  if (!GetProcessTimes(GetCurrentProcess(), &creation, &exit_time, &kernel, &user)) {
    return errno_from_win32(GetLastError());
  }
  out->user_us = filetime_100ns(user) / 10;
  out->system_us = filetime_100ns(kernel) / 10;
  return 0;
}

int read_system_cpu(SystemCpu* out) {
  FILETIME idle_ft, kernel_ft, user_ft;
  if (!GetSystemTimes(&idle_ft, &kernel_ft, &user_ft)) return errno_from_win32(GetLastError());
  uint64_t idle = filetime_100ns(idle_ft);
  uint64_t kernel = filetime_100ns(kernel_ft);
  uint64_t user = filetime_100ns(user_ft);
  // Kernel time includes the idle loop, which runs in kernel mode.
  uint64_t kernel_busy = kernel > idle ? kernel - idle : 0;
  out->busy_us = (kernel_busy + user) / 10;
  out->idle_us = idle / 10;
  return 0;
}

int cpu_count() {
  // Counts every processor group; GetSystemInfo sees only the caller's group
  // (at most 64 CPUs), so it is only the fallback.
  DWORD n = GetActiveProcessorCount(ALL_PROCESSOR_GROUPS);
  if (n == 0) {
    SYSTEM_INFO si;
    GetSystemInfo(&si);
    n = si.dwNumberOfProcessors;
  }
  return n > 0 ? static_cast<int>(n) : 1;
}

int read_system_memory(SystemMemory* out) {
  MEMORYSTATUSEX ms;
  ms.dwLength = sizeof ms;
  if (!GlobalMemoryStatusEx(&ms)) return errno_from_win32(GetLastError());
  out->total = static_cast<uint64_t>(ms.ullTotalPhys);
  out->available = static_cast<uint64_t>(ms.ullAvailPhys);
  return 0;
}

int read_cgroup(CgroupInfo* out) {
  *out = CgroupInfo();
  BOOL in_job = FALSE;
  if (!IsProcessInJob(GetCurrentProcess(), nullptr, &in_job) || !in_job) return 0;
  // A null handle names the job the process belongs to (the innermost one
  // when jobs are nested). Failing to read it is treated like a job without
  // limits, as an unreadable cgroup file is on Linux.
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION info;
  ZeroMemory(&info, sizeof info);
  if (!QueryInformationJobObject(nullptr, JobObjectExtendedLimitInformation, &info, sizeof info, nullptr)) return 0;
  // Both limits cap committed (private) memory, which is what makes an
  // allocation fail; the tighter one is the one the process meets first.
  const DWORD flags = info.BasicLimitInformation.LimitFlags;
  uint64_t limit = 0;
  bool has_limit = false;
  if (flags & JOB_OBJECT_LIMIT_JOB_MEMORY) {
    limit = static_cast<uint64_t>(info.JobMemoryLimit);
    has_limit = true;
  }
  if (flags & JOB_OBJECT_LIMIT_PROCESS_MEMORY) {
    uint64_t per_process = static_cast<uint64_t>(info.ProcessMemoryLimit);
    if (!has_limit || per_process < limit) limit = per_process;
    has_limit = true;
  }
  out->has_memory_limit = has_limit;
  out->memory_limit = limit;
  return 0;
}

int read_cgroup_memory_usage(uint64_t*) { return ENOSYS; }

int read_psi(PsiResource, PsiInfo*) { return ENOSYS; }

int read_disk(const char* path_utf8, DiskInfo* out) {
  if (path_utf8 == nullptr || *path_utf8 == '\0') return ENOENT;
  std::wstring path;
  int err = utf8_to_wide(path_utf8, &path);
  if (err != 0) return err;
  DWORD attrs = GetFileAttributesW(path.c_str());
  if (attrs == INVALID_FILE_ATTRIBUTES) return errno_from_win32(GetLastError());
  if ((attrs & FILE_ATTRIBUTE_DIRECTORY) == 0) return ENOTDIR;
  // GetDiskFreeSpaceExW needs the trailing separator on UNC shares; on any
  // other directory it changes nothing.
  wchar_t last = path[path.size() - 1];
  if (last != L'\\' && last != L'/') {
    try {
      path.push_back(L'\\');
    } catch (const std::bad_alloc&) {
      return ENOMEM;
    }
  }
  ULARGE_INTEGER available, total, free_bytes;
  if (!GetDiskFreeSpaceExW(path.c_str(), &available, &total, &free_bytes)) return errno_from_win32(GetLastError());
  out->total = static_cast<uint64_t>(total.QuadPart);
  out->free = static_cast<uint64_t>(free_bytes.QuadPart);
  out->available = static_cast<uint64_t>(available.QuadPart);
  return 0;
}

uint64_t monotonic_ns() {
  // The performance counter is the clock libuv reads for process.hrtime()
  // on Windows. Its frequency is fixed at boot.
  static const uint64_t freq = [] {
    LARGE_INTEGER f;
    return QueryPerformanceFrequency(&f) && f.QuadPart > 0 ? static_cast<uint64_t>(f.QuadPart) : uint64_t{1};
  }();
  LARGE_INTEGER counter;
  QueryPerformanceCounter(&counter);
  const uint64_t ticks = static_cast<uint64_t>(counter.QuadPart);
  // Whole seconds and the remainder separately: ticks * 1e9 overflows after
  // about half an hour at a 10 MHz counter.
  return ticks / freq * 1000000000ull + ticks % freq * 1000000000ull / freq;
}

// GetDiskFreeSpaceExW takes a path, not a handle: callers read by path.
int disk_open(const char*, intptr_t*) { return ENOSYS; }
int read_disk_handle(intptr_t, DiskInfo*) { return ENOSYS; }
// Nothing is kept open, so every read already looks the path up afresh.
int disk_identity(intptr_t, DiskId*) { return ENOSYS; }
int disk_check(const char*, const DiskId&) { return ENOSYS; }
void disk_close(intptr_t) {}

const char* platform_name() { return "win32"; }

}  // namespace rg

#endif  // _WIN32
