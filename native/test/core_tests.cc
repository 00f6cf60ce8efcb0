// Standalone tests of native/core (no Node, no framework).
//
//   rg_core_tests                 run everything
//
// Prints one line per failed check and one per test, then
// "<N> passed, <N> failed" alone on the last line; exits 1 on any failure.
// Built with plain CMake (-DRG_NATIVE_TESTS=ON), normally under TSan and
// ASan+UBSan by scripts/native-tests.sh. Keep the whole run well under 20 s
// with TSan on two cores.
#include "core/platform.h"
#include "core/shared.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#endif

namespace {

using namespace rg;
using Clock = std::chrono::steady_clock;

std::atomic<int> g_passed{0};
std::atomic<int> g_failed{0};
std::mutex g_print_mu;
const char* g_test = "";

template <typename T>
std::string show(const T& v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}
std::string show(const std::string& v) { return "\"" + v + "\""; }

bool check(bool ok, const char* file, int line, const char* expr, const std::string& detail) {
  if (ok) {
    g_passed.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  g_failed.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(g_print_mu);
  const char* base = std::strrchr(file, '/');
  std::printf("  FAIL [%s] %s:%d: %s%s%s\n", g_test, base ? base + 1 : file, line, expr,
              detail.empty() ? "" : "  -- ", detail.c_str());
  std::fflush(stdout);
  return false;
}

#define CHECK(cond) check(static_cast<bool>(cond), __FILE__, __LINE__, #cond, "")
#define CHECK_MSG(cond, msg) check(static_cast<bool>(cond), __FILE__, __LINE__, #cond, (msg))
template <typename Op, typename A, typename B>
bool check_op(Op op, const A& a, const B& b, const char* file, int line, const char* expr) {
  bool ok = op(a, b);
  return check(ok, file, line, expr, ok ? std::string() : show(a) + " vs " + show(b));
}

#define CHECK_OP(a, op, fn, b) check_op(fn{}, (a), (b), __FILE__, __LINE__, #a " " #op " " #b)
#define CHECK_EQ(a, b) CHECK_OP(a, ==, std::equal_to<>, b)
#define CHECK_NE(a, b) CHECK_OP(a, !=, std::not_equal_to<>, b)
#define CHECK_LE(a, b) CHECK_OP(a, <=, std::less_equal<>, b)
#define CHECK_LT(a, b) CHECK_OP(a, <, std::less<>, b)
#define CHECK_GE(a, b) CHECK_OP(a, >=, std::greater_equal<>, b)
#define CHECK_GT(a, b) CHECK_OP(a, >, std::greater<>, b)

void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

double elapsed_ms(Clock::time_point since) {
  return std::chrono::duration<double, std::milli>(Clock::now() - since).count();
}

// Spin barrier so that threads start an operation at the same moment.
class StartLine {
 public:
  explicit StartLine(int n) : waiting_(n) {}
  void arrive_and_wait() {
    waiting_.fetch_sub(1, std::memory_order_acq_rel);
    while (waiting_.load(std::memory_order_acquire) > 0) std::this_thread::yield();
  }

 private:
  std::atomic<int> waiting_;
};

struct LedgerHandle {
  Ledger* l = ledger_attach();
  ~LedgerHandle() { reset(); }
  void reset() {
    ledger_detach(l);
    l = nullptr;
  }
  Ledger* operator->() const { return l; }
  operator Ledger*() const { return l; }
};

BudgetStats stats_of(Ledger* l, int slot) {
  BudgetStats s;
  int rc = budget_stats(l, slot, &s);
  CHECK_EQ(rc, static_cast<int>(kBudgetOk));
  return s;
}

uint64_t used_of(int slot) { return region().budgets[slot].used.load(std::memory_order_acquire); }

// ---- platform ---------------------------------------------------------------

#if defined(__linux__)

constexpr uint64_t kMiB = 1024 * 1024;

// Resident pages from /proc/self/statm, read independently of the core.
uint64_t statm_rss_bytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  unsigned long long size = 0, resident = 0;
  int n = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  if (n != 2) return 0;
  return resident * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

uint64_t abs_diff(uint64_t a, uint64_t b) { return a > b ? a - b : b - a; }

void test_platform_rss() {
  uint64_t before = statm_rss_bytes();
  uint64_t rss = 0;
  CHECK_EQ(read_rss(&rss), 0);
  uint64_t after = statm_rss_bytes();
  CHECK_GT(rss, 0u);
  CHECK_GT(before, 0u);
  uint64_t lo = std::min(before, after), hi = std::max(before, after);
  CHECK_MSG(rss + kMiB >= lo && rss <= hi + kMiB,
            "read_rss " + show(rss) + " vs statm " + show(before) + ".." + show(after));
  CHECK_EQ(rss % static_cast<uint64_t>(sysconf(_SC_PAGESIZE)), 0u);

  // RSS is read fresh: touching 32 MiB shows up.
  std::vector<char> block(32 * kMiB);
  for (size_t i = 0; i < block.size(); i += 4096) block[i] = static_cast<char>(i);
  uint64_t grown = 0;
  CHECK_EQ(read_rss(&grown), 0);
  CHECK_GE(grown + 4 * kMiB, rss + 32 * kMiB);
  volatile char sink = block[block.size() / 2];
  (void)sink;

  uint64_t peak = 0;
  CHECK_EQ(read_peak_rss(&peak), 0);
  CHECK_GT(peak, 0u);
  CHECK_GE(peak + kMiB, grown);  // the high-water mark covers the current RSS
}

void test_platform_cpu() {
  CpuTimes a;
  CHECK_EQ(read_process_cpu(&a), 0);
  // Burn CPU until getrusage moves (at most 2 s).
  CpuTimes b = a;
  volatile uint64_t x = 0;
  auto start = Clock::now();
  while (b.user_us + b.system_us <= a.user_us + a.system_us && elapsed_ms(start) < 2000) {
    for (int i = 0; i < 200000; ++i) x = x + static_cast<uint64_t>(i) * 7;
    CHECK_EQ(read_process_cpu(&b), 0);
  }
  CHECK_GT(b.user_us + b.system_us, a.user_us + a.system_us);
  CHECK_GE(b.user_us, a.user_us);
  CHECK_GE(b.system_us, a.system_us);

  SystemCpu s1;
  CHECK_EQ(read_system_cpu(&s1), 0);
  CHECK_GT(s1.busy_us + s1.idle_us, 0u);
  SystemCpu s2 = s1;
  start = Clock::now();
  while (s2.busy_us + s2.idle_us <= s1.busy_us + s1.idle_us && elapsed_ms(start) < 2000) {
    sleep_ms(20);
    CHECK_EQ(read_system_cpu(&s2), 0);
  }
  CHECK_GT(s2.busy_us + s2.idle_us, s1.busy_us + s1.idle_us);

  int n = cpu_count();
  CHECK_GE(n, 1);
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  if (online > 0) CHECK_EQ(static_cast<long>(n), online);
}

void test_platform_memory() {
  SystemMemory m;
  CHECK_EQ(read_system_memory(&m), 0);
  uint64_t expected = static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  CHECK_EQ(m.total, expected);
  CHECK_GT(m.available, 0u);
  CHECK_LE(m.available, m.total);
}

void test_platform_cgroup() {
  CgroupInfo c;
  CHECK_EQ(read_cgroup(&c), 0);
  CHECK_MSG(c.version >= 0 && c.version <= 2, "version " + show(c.version));
  if (c.has_memory_limit) CHECK_GT(c.memory_limit, 0u);
  if (c.has_memory_usage) CHECK_GT(c.memory_usage, 0u);
  if (c.has_cpu_quota) CHECK_GT(c.cpu_quota, 0.0);
  if (c.version == 0) CHECK(!c.has_memory_limit && !c.has_memory_usage && !c.has_cpu_quota);
  // Stable across calls (paths are resolved once).
  CgroupInfo c2;
  CHECK_EQ(read_cgroup(&c2), 0);
  CHECK_EQ(c2.version, c.version);
  CHECK_EQ(c2.has_memory_limit, c.has_memory_limit);
  std::printf("  note: cgroup v%d, memory limit %s, usage %s, cpu quota %s\n", c.version,
              c.has_memory_limit ? show(c.memory_limit).c_str() : "none",
              c.has_memory_usage ? show(c.memory_usage).c_str() : "none",
              c.has_cpu_quota ? show(c.cpu_quota).c_str() : "none");
}

// "total=" of the "some" line, read independently.
bool psi_some_total(const char* path, unsigned long long* total) {
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return false;
  double a, b, c;
  int n = std::fscanf(f, "some avg10=%lf avg60=%lf avg300=%lf total=%llu", &a, &b, &c, total);
  std::fclose(f);
  return n == 4;
}

void test_platform_psi() {
  const struct {
    PsiResource r;
    const char* path;
  } kinds[] = {{PsiResource::memory, "/proc/pressure/memory"},
               {PsiResource::cpu, "/proc/pressure/cpu"},
               {PsiResource::io, "/proc/pressure/io"}};
  for (const auto& k : kinds) {
    unsigned long long before = 0, after = 0;
    bool available = psi_some_total(k.path, &before);
    PsiInfo p;
    int rc = read_psi(k.r, &p);
    if (!available) {
      CHECK_MSG(rc != 0, std::string(k.path) + " unreadable but read_psi returned 0");
      std::printf("  note: %s not available (read_psi -> %d)\n", k.path, rc);
      continue;
    }
    psi_some_total(k.path, &after);
    if (!CHECK_EQ(rc, 0)) continue;
    for (double v : {p.some_avg10, p.some_avg60, p.some_avg300}) CHECK_MSG(v >= 0 && v <= 100, show(v));
    CHECK_MSG(p.some_total_us >= before && p.some_total_us <= after,
              show(p.some_total_us) + " not in " + show(before) + ".." + show(after));
    if (p.has_full) {
      for (double v : {p.full_avg10, p.full_avg60, p.full_avg300}) CHECK_MSG(v >= 0 && v <= 100, show(v));
    }
  }
}

void test_platform_disk() {
  DiskInfo d;
  CHECK_EQ(read_disk("/", &d), 0);
  struct statvfs v;
  CHECK_EQ(statvfs("/", &v), 0);
  uint64_t fr = v.f_frsize ? v.f_frsize : v.f_bsize;
  CHECK_EQ(d.total, static_cast<uint64_t>(v.f_blocks) * fr);
  // Free space moves while other processes write; allow 256 MiB of drift.
  CHECK_LE(abs_diff(d.free, static_cast<uint64_t>(v.f_bfree) * fr), 256 * kMiB);
  CHECK_LE(abs_diff(d.available, static_cast<uint64_t>(v.f_bavail) * fr), 256 * kMiB);
  CHECK_GT(d.total, 0u);
  CHECK_LE(d.free, d.total);
  CHECK_LE(d.available, d.free);

  DiskInfo untouched;
  untouched.total = 7;
  CHECK_EQ(read_disk("/definitely/not/here/rg-core-tests", &untouched), ENOENT);
  CHECK_EQ(untouched.total, 7u);  // output untouched on failure
  CHECK_EQ(read_disk("", &untouched), ENOENT);
  CHECK_EQ(read_disk(nullptr, &untouched), ENOENT);

  const char* tmpdir = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmpdir && *tmpdir ? tmpdir : "/tmp") + "/rg-core-tests-XXXXXX";
  std::vector<char> path(tmpl.begin(), tmpl.end());
  path.push_back('\0');
  int fd = mkstemp(path.data());
  if (CHECK_GE(fd, 0)) {
    close(fd);
    CHECK_EQ(read_disk(path.data(), &untouched), ENOTDIR);
    unlink(path.data());
  }
}

void test_platform_clock() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t before = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  uint64_t t1 = monotonic_ns();
  sleep_ms(2);
  uint64_t t2 = monotonic_ns();
  clock_gettime(CLOCK_MONOTONIC, &ts);
  uint64_t after = static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
  CHECK_LE(before, t1);
  CHECK_GE(t2 - t1, 2000000u);
  CHECK_LE(t2, after);
  CHECK_EQ(std::string(platform_name()), std::string("linux"));
}

#else  // not Linux: only what any platform must satisfy

void test_platform_generic() {
  uint64_t rss = 0;
  int rc = read_rss(&rss);
  CHECK(rc == 0 || rc == ENOSYS);
  if (rc == 0) CHECK_GT(rss, 0u);
  CHECK_GE(cpu_count(), 1);
  uint64_t t1 = monotonic_ns();
  sleep_ms(2);
  CHECK_GT(monotonic_ns(), t1);
  DiskInfo d;
  CHECK_EQ(read_disk("", &d), ENOENT);
  CHECK(platform_name() != nullptr);
}

#endif

// ---- budgets ------------------------------------------------------------------

// JS records a new high of the counter in its own ledger with a plain store
// (Ledger::peak). The budget's peak is the largest of the slot's and every
// live ledger's, and an environment that settles folds its record into the
// slot before its ledger is cleared.
void test_budget_ledger_peak() {
  LedgerHandle a, b;
  int slot = -1;
  CHECK_EQ(budget_open(a, "ledger-peak", true, 1000, &slot), static_cast<int>(kBudgetOk));
  int slot_b = -1;
  CHECK_EQ(budget_open(b, "ledger-peak", false, 0, &slot_b), static_cast<int>(kBudgetOk));
  CHECK_EQ(slot_b, slot);
  uint64_t peak = 99;
  CHECK_EQ(budget_peak(a, slot, &peak), static_cast<int>(kBudgetOk));
  CHECK_EQ(peak, 0u);

  // A native reservation raises the slot's own peak.
  CHECK_EQ(budget_reserve(a, slot, 300), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_release(a, slot, 300), static_cast<int>(kBudgetOk));
  CHECK_EQ(region().budgets[slot].peak.load(), 300u);

  // Records in the ledgers, as JS writes them: each reader sees the largest.
  a->peak[slot].store(700);
  b->peak[slot].store(500);
  CHECK_EQ(budget_peak(a, slot, &peak), static_cast<int>(kBudgetOk));
  CHECK_EQ(peak, 700u);
  CHECK_EQ(budget_peak(b, slot, &peak), static_cast<int>(kBudgetOk));
  CHECK_EQ(peak, 700u);
  CHECK_EQ(stats_of(b, slot).peak, 700u);
  CHECK_EQ(region().budgets[slot].peak.load(), 300u);  // not folded yet

  // a exits: its 700 moves into the slot and its ledger is cleared.
  a.reset();
  CHECK_EQ(region().budgets[slot].peak.load(), 700u);
  CHECK_EQ(budget_peak(b, slot, &peak), static_cast<int>(kBudgetOk));
  CHECK_EQ(peak, 700u);
  // A lower record changes nothing; a higher one wins.
  b->peak[slot].store(900);
  CHECK_EQ(stats_of(b, slot).peak, 900u);

  // Closed or never-opened slots are refused, and peak is left alone.
  LedgerHandle c;
  peak = 42;
  CHECK_EQ(budget_peak(c, slot, &peak), static_cast<int>(kBudgetClosed));
  CHECK_EQ(peak, 42u);
  CHECK_EQ(budget_peak(c, -1, &peak), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_peak(c, kMaxBudgets, &peak), static_cast<int>(kBudgetClosed));

  // Last handle: the slot is freed with its peak, and a budget that takes
  // the slot next starts from 0 in every ledger.
  CHECK_EQ(budget_close(b, slot), static_cast<int>(kBudgetOk));
  CHECK_EQ(b->peak[slot].load(), 0.0);
  int again = -1;
  CHECK_EQ(budget_open(c, "ledger-peak-2", true, 10, &again), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_peak(c, again, &peak), static_cast<int>(kBudgetOk));
  CHECK_EQ(peak, 0u);
  CHECK_EQ(budget_close(c, again), static_cast<int>(kBudgetOk));
}

// A handle with a cell keeps its own held count: what it reserves only it
// can release, the environment's held includes it, and closing the handle
// (or the environment going away) gives back what the cell holds.
void test_budget_cells() {
  LedgerHandle a, b;
  int slot = -1, cell = -1;
  CHECK_EQ(budget_open(a, "cells", true, 1000, &slot, &cell), static_cast<int>(kBudgetOk));
  CHECK(cell >= 0 && cell < kMaxCells);
  CHECK_EQ(a->cell_slot[cell], slot + 1);
  int plain = -1;
  CHECK_EQ(budget_open(a, "cells", false, 0, &plain), static_cast<int>(kBudgetOk));
  CHECK_EQ(plain, slot);

  // Reservations go to the cell or to held[slot], never both.
  CHECK_EQ(budget_reserve(a, slot, 300, cell), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(a, slot, 200), static_cast<int>(kBudgetOk));
  CHECK_EQ(a->cells[cell].load(), 300.0);
  CHECK_EQ(a->held[slot].load(), 200.0);
  CHECK_EQ(used_of(slot), 500u);
  double held = 0;
  CHECK_EQ(budget_held(a, slot, cell, &held), static_cast<int>(kBudgetOk));
  CHECK_EQ(held, 300.0);
  CHECK_EQ(budget_held(a, slot, kNoCell, &held), static_cast<int>(kBudgetOk));
  CHECK_EQ(held, 500.0);
  CHECK_EQ(stats_of(a, slot).successes, 2u);

  // Each side releases only what it holds; a refusal changes nothing.
  CHECK_EQ(budget_release(a, slot, 201), static_cast<int>(kBudgetExceedsHeld));
  CHECK_EQ(budget_release(a, slot, 301, cell), static_cast<int>(kBudgetExceedsHeld));
  CHECK_EQ(used_of(slot), 500u);
  CHECK_EQ(budget_release(a, slot, 100, cell), static_cast<int>(kBudgetOk));
  CHECK_EQ(a->cells[cell].load(), 200.0);
  CHECK_EQ(used_of(slot), 400u);

  // Bad cells: out of range, free, or bound to another slot.
  int other = -1;
  CHECK_EQ(budget_open(a, "", true, 50, &other), static_cast<int>(kBudgetOk));
  for (int bad : {-2, kMaxCells, kMaxCells + 5}) {
    CHECK_EQ(budget_reserve(a, slot, 1, bad), static_cast<int>(kBudgetClosed));
    CHECK_EQ(budget_release(a, slot, 0, bad), static_cast<int>(kBudgetClosed));
    CHECK_EQ(budget_held(a, slot, bad, &held), static_cast<int>(kBudgetClosed));
    CHECK_EQ(budget_close(a, slot, bad), static_cast<int>(kBudgetClosed));
  }
  CHECK_EQ(budget_reserve(a, other, 1, cell), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_reserve(a, slot, 1, cell + 1), static_cast<int>(kBudgetClosed));
  // Another environment cannot use a's cell.
  int slot_b = -1;
  CHECK_EQ(budget_open(b, "cells", false, 0, &slot_b), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_release(b, slot, 1, cell), static_cast<int>(kBudgetClosed));
  CHECK_EQ(used_of(slot), 400u);
  CHECK_EQ(budget_close(a, other), static_cast<int>(kBudgetOk));

  // Closing the cell's handle gives back its 200 at once; the plain handle
  // and held[slot] stay.
  CHECK_EQ(budget_close(a, slot, cell), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(slot), 200u);
  CHECK_EQ(a->cell_slot[cell], 0);
  CHECK_EQ(a->cells[cell].load(), 0.0);
  CHECK_EQ(budget_reserve(a, slot, 1, cell), static_cast<int>(kBudgetClosed));
  CHECK_EQ(stats_of(a, slot).open_handles, 2u);

  // A worker that exits gives back its cells too.
  int cell_b = -1;
  CHECK_EQ(budget_open(b, "cells", false, 0, &slot_b, &cell_b), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(b, slot, 800, cell_b), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(b, slot, 1, cell_b), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(used_of(slot), 1000u);
  b.reset();
  CHECK_EQ(used_of(slot), 200u);
  CHECK_EQ(stats_of(a, slot).open_handles, 1u);

  // Running out of cells opens nothing, and a freed cell is found again.
  int base = budget_count();
  std::vector<int> cells;
  for (int i = 0; i < kMaxCells; ++i) {
    int s = -1, c = -1;
    CHECK_EQ(budget_open(a, "cells", false, 0, &s, &c), static_cast<int>(kBudgetOk));
    cells.push_back(c);
  }
  CHECK_EQ(a->cells_used, kMaxCells);
  int s = -1, c = -1;
  CHECK_EQ(budget_open(a, "cells", false, 0, &s, &c), static_cast<int>(kBudgetTooManyCells));
  CHECK_EQ(budget_open(a, "", true, 10, &s, &c), static_cast<int>(kBudgetTooManyCells));
  CHECK_EQ(budget_count(), base);
  CHECK_EQ(stats_of(a, slot).open_handles, static_cast<uint32_t>(1 + kMaxCells));
  CHECK_EQ(budget_close(a, slot, cells[1234]), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_open(a, "cells", false, 0, &s, &c), static_cast<int>(kBudgetOk));
  CHECK_EQ(c, cells[1234]);
  cells[1234] = c;
  for (int used : cells) CHECK_EQ(budget_close(a, slot, used), static_cast<int>(kBudgetOk));
  CHECK_EQ(a->cells_used, 0);
  CHECK_EQ(budget_release(a, slot, 200), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_close(a, slot), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_count(), base - 1);

  // A handle closed without naming its cell: when the slot's last handle in
  // the environment goes, so do its cells, so none is left bound to a slot
  // that a later budget may take.
  int lone = -1, lone_cell = -1;
  CHECK_EQ(budget_open(a, "", true, 100, &lone, &lone_cell), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(a, lone, 60, lone_cell), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_close(a, lone), static_cast<int>(kBudgetOk));
  CHECK_EQ(a->cells_used, 0);
  CHECK_EQ(a->cell_slot[lone_cell], 0);
  CHECK_EQ(used_of(lone), 0u);
  int next = -1;
  CHECK_EQ(budget_open(a, "", true, 100, &next), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(a, next, 10), static_cast<int>(kBudgetOk));
  a.reset();  // detach: nothing else is taken from whichever slot it got
  CHECK_EQ(used_of(next), 0u);
  CHECK_EQ(budget_count(), base - 1);
}

void test_budget_exact_limit() {
  LedgerHandle l;
  CHECK(l.l != nullptr);
  int base = budget_count();
  int slot = -1;
  CHECK_EQ(budget_open(l, "", true, 1000, &slot), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_count(), base + 1);
  CHECK_EQ(budget_reserve(l, slot, 1000), static_cast<int>(kBudgetOk));
  BudgetStats s = stats_of(l, slot);
  CHECK_EQ(s.used, 1000u);
  CHECK_EQ(s.peak, 1000u);
  CHECK_EQ(s.limit, 1000u);
  CHECK_EQ(s.successes, 1u);
  CHECK_EQ(s.failures, 0u);
  CHECK(s.narrow);
  CHECK_EQ(s.open_handles, 1u);
  CHECK_EQ(s.name, std::string());

  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_reserve(l, slot, 0), static_cast<int>(kBudgetOk));  // zero bytes fit a full budget
  s = stats_of(l, slot);
  CHECK_EQ(s.used, 1000u);
  CHECK_EQ(s.peak, 1000u);
  CHECK_EQ(s.successes, 2u);
  CHECK_EQ(s.failures, 1u);
  CHECK_EQ(l->held[slot].load(), 1000.0);

  CHECK_EQ(budget_release(l, slot, 1000), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(slot), 0u);
  CHECK_EQ(budget_reserve(l, slot, 1001), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(used_of(slot), 0u);
  CHECK_EQ(budget_reserve(l, slot, 600), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(l, slot, 401), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_reserve(l, slot, 400), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(slot), 1000u);

  // Release of more than held fails and changes nothing.
  CHECK_EQ(budget_release(l, slot, 1001), static_cast<int>(kBudgetExceedsHeld));
  s = stats_of(l, slot);
  CHECK_EQ(s.used, 1000u);
  CHECK_EQ(s.peak, 1000u);
  CHECK_EQ(s.successes, 4u);
  CHECK_EQ(s.failures, 3u);
  CHECK_EQ(l->held[slot].load(), 1000.0);
  CHECK_EQ(budget_release(l, slot, 1000), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_release(l, slot, 1), static_cast<int>(kBudgetExceedsHeld));
  CHECK_EQ(used_of(slot), 0u);
  CHECK_EQ(l->held[slot].load(), 0.0);
  s = stats_of(l, slot);
  CHECK_EQ(s.peak, 1000u);  // peak survives releases

  // Limit changes.
  CHECK_EQ(budget_reserve(l, slot, 300), static_cast<int>(kBudgetOk));
  // JS compares against the 32-bit copy of the limit: it follows every
  // change, and a refused change leaves both copies as they were.
  const BudgetSlot& bs = region().budgets[slot];
  CHECK_EQ(bs.limit32.load(), 1000u);
  CHECK_EQ(budget_set_limit(l, slot, 299), static_cast<int>(kBudgetBelowUsage));
  CHECK_EQ(stats_of(l, slot).limit, 1000u);
  CHECK_EQ(bs.limit32.load(), 1000u);
  CHECK_EQ(budget_set_limit(l, slot, 300), static_cast<int>(kBudgetOk));
  CHECK_EQ(bs.limit32.load(), 300u);
  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_set_limit(l, slot, uint64_t{1} << 32), static_cast<int>(kBudgetWidthChange));
  CHECK_EQ(bs.limit32.load(), 300u);
  CHECK_EQ(budget_set_limit(l, slot, kNarrowMax), static_cast<int>(kBudgetOk));
  CHECK_EQ(stats_of(l, slot).limit, kNarrowMax);
  CHECK_EQ(bs.limit32.load(), static_cast<uint32_t>(kNarrowMax));
  CHECK_EQ(budget_release(l, slot, 300), static_cast<int>(kBudgetOk));

  CHECK_EQ(budget_close(l, slot), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_count(), base);
  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_release(l, slot, 0), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_close(l, slot), static_cast<int>(kBudgetClosed));
  BudgetStats ignored;
  CHECK_EQ(budget_stats(l, slot, &ignored), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_reserve(l, -1, 1), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_reserve(l, kMaxBudgets, 1), static_cast<int>(kBudgetClosed));
  CHECK_EQ(budget_reserve(nullptr, 0, 1), static_cast<int>(kBudgetClosed));
  int unused = -1;
  CHECK_EQ(budget_open(nullptr, "x", true, 1, &unused), static_cast<int>(kBudgetClosed));
}

void test_budget_limit_zero() {
  LedgerHandle l;
  int slot = -1;
  CHECK_EQ(budget_open(l, "", true, 0, &slot), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(l, slot, 0), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_release(l, slot, 0), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_release(l, slot, 1), static_cast<int>(kBudgetExceedsHeld));
  BudgetStats s = stats_of(l, slot);
  CHECK_EQ(s.used, 0u);
  CHECK_EQ(s.peak, 0u);
  CHECK_EQ(s.limit, 0u);
  CHECK(s.narrow);
  CHECK_EQ(s.successes, 1u);
  CHECK_EQ(s.failures, 1u);
}

void test_budget_large_sizes() {
  LedgerHandle l;
  const uint64_t max = kMaxSafeInteger;
  int slot = -1, unused = -1;
  CHECK_EQ(budget_open(l, "", true, max + 1, &unused), static_cast<int>(kBudgetBadSize));
  CHECK_EQ(budget_open(l, "", true, UINT64_MAX, &unused), static_cast<int>(kBudgetBadSize));
  CHECK_EQ(budget_open(l, "", true, max, &slot), static_cast<int>(kBudgetOk));
  BudgetStats s = stats_of(l, slot);
  CHECK_EQ(s.limit, max);
  CHECK(!s.narrow);

  CHECK_EQ(budget_reserve(l, slot, max + 1), static_cast<int>(kBudgetBadSize));
  CHECK_EQ(budget_reserve(l, slot, UINT64_MAX), static_cast<int>(kBudgetBadSize));
  CHECK_EQ(budget_reserve(l, slot, max), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(slot), max);
  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_reserve(l, slot, max), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(used_of(slot), max);
  CHECK_EQ(budget_release(l, slot, max + 1), static_cast<int>(kBudgetBadSize));
  CHECK_EQ(budget_release(l, slot, max), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(slot), 0u);

  // Sums that land exactly on 2^53 - 1 stay exact in the double ledger.
  CHECK_EQ(budget_reserve(l, slot, max - 1), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetOk));
  CHECK_EQ(l->held[slot].load(), static_cast<double>(max));
  CHECK_EQ(budget_reserve(l, slot, 1), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_release(l, slot, 1), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_release(l, slot, max - 1), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(slot), 0u);
  CHECK_EQ(l->held[slot].load(), 0.0);
  s = stats_of(l, slot);
  CHECK_EQ(s.peak, max);
  CHECK_EQ(s.successes, 3u);
  CHECK_EQ(s.failures, 3u);  // bad sizes are not counted as failures

  CHECK_EQ(budget_set_limit(l, slot, max + 1), static_cast<int>(kBudgetBadSize));
  CHECK_EQ(budget_set_limit(l, slot, kNarrowMax), static_cast<int>(kBudgetWidthChange));
  CHECK_EQ(budget_set_limit(l, slot, kNarrowMax + 1), static_cast<int>(kBudgetOk));
  CHECK_EQ(region().budgets[slot].limit32.load(), 0u);  // wide budgets have no 32-bit copy

  // The 32-bit boundary decides the width.
  int narrow = -1, wide = -1;
  CHECK_EQ(budget_open(l, "", true, kNarrowMax, &narrow), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_open(l, "", true, kNarrowMax + 1, &wide), static_cast<int>(kBudgetOk));
  CHECK(stats_of(l, narrow).narrow);
  CHECK(!stats_of(l, wide).narrow);
  CHECK_EQ(region().budgets[narrow].flags.load() & kBudgetNarrow, static_cast<uint32_t>(kBudgetNarrow));
  CHECK_EQ(region().budgets[wide].flags.load() & kBudgetNarrow, 0u);
}

void test_budget_names() {
  int base = budget_count();
  LedgerHandle a, b;
  const std::string name = "rg-core-tests/names";
  int s1 = -1, s2 = -1, s3 = -1, unused = -1;
  CHECK_EQ(budget_open(a, name, false, 0, &unused), static_cast<int>(kBudgetNotFound));
  CHECK_EQ(budget_count(), base);
  CHECK_EQ(budget_open(a, name, true, 500, &s1), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_open(a, name, true, 500, &s2), static_cast<int>(kBudgetOk));
  CHECK_EQ(s2, s1);
  CHECK_EQ(budget_open(b, name, false, 0, &s3), static_cast<int>(kBudgetOk));
  CHECK_EQ(s3, s1);
  CHECK_EQ(budget_open(b, name, true, 501, &unused), static_cast<int>(kBudgetLimitMismatch));
  CHECK_EQ(budget_open(b, "rg-core-tests/missing", false, 0, &unused), static_cast<int>(kBudgetNotFound));
  CHECK_EQ(budget_count(), base + 1);
  BudgetStats s = stats_of(b, s1);
  CHECK_EQ(s.name, name);
  CHECK_EQ(s.open_handles, 3u);
  CHECK_EQ(s.limit, 500u);

  // Private budgets are never shared, not even with each other.
  int p1 = -1, p2 = -1;
  CHECK_EQ(budget_open(a, "", true, 500, &p1), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_open(a, "", true, 500, &p2), static_cast<int>(kBudgetOk));
  CHECK_NE(p1, p2);
  CHECK_NE(p1, s1);
  CHECK_EQ(budget_open(a, "", false, 0, &unused), static_cast<int>(kBudgetNotFound));

  // Both environments draw from the same budget; each releases only its own.
  CHECK_EQ(budget_reserve(a, s1, 300), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(b, s1, 200), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(a, s1, 1), static_cast<int>(kBudgetOverLimit));
  CHECK_EQ(budget_release(b, s1, 300), static_cast<int>(kBudgetExceedsHeld));
  CHECK_EQ(used_of(s1), 500u);
  s = stats_of(a, s1);
  CHECK_EQ(s.successes, 2u);
  CHECK_EQ(s.failures, 1u);

  // a has two handles: the first close keeps its reservation.
  CHECK_EQ(budget_close(a, s1), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(s1), 500u);
  CHECK_EQ(budget_close(a, s1), static_cast<int>(kBudgetOk));
  CHECK_EQ(used_of(s1), 200u);  // its last handle gives its bytes back
  CHECK_EQ(budget_reserve(a, s1, 1), static_cast<int>(kBudgetClosed));
  s = stats_of(b, s1);
  CHECK_EQ(s.open_handles, 1u);
  CHECK_EQ(s.successes, 2u);  // a's counts are folded into the totals
  CHECK_EQ(s.failures, 1u);

  uint32_t generation = region().budgets[s1].generation.load();
  CHECK_EQ(budget_close(b, s1), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_close(a, p1), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_close(a, p2), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_count(), base);
  CHECK_EQ(region().budgets[s1].flags.load(), 0u);
  CHECK_NE(region().budgets[s1].generation.load(), generation);
  CHECK_EQ(used_of(s1), 0u);
  CHECK_EQ(budget_open(b, name, false, 0, &unused), static_cast<int>(kBudgetNotFound));
  // The name is free again, with any limit and fresh counters.
  int s4 = -1;
  CHECK_EQ(budget_open(b, name, true, 7, &s4), static_cast<int>(kBudgetOk));
  s = stats_of(b, s4);
  CHECK_EQ(s.limit, 7u);
  CHECK_EQ(s.successes, 0u);
  CHECK_EQ(s.peak, 0u);
}

void test_budget_detach() {
  int base = budget_count();
  const std::string name = "rg-core-tests/detach";
  LedgerHandle b;
  int slot = -1;
  {
    LedgerHandle a;
    int sa = -1, sa2 = -1;
    CHECK_EQ(budget_open(a, name, true, 1000, &sa), static_cast<int>(kBudgetOk));
    CHECK_EQ(budget_open(a, name, true, 1000, &sa2), static_cast<int>(kBudgetOk));  // two handles
    CHECK_EQ(budget_open(b, name, true, 1000, &slot), static_cast<int>(kBudgetOk));
    CHECK_EQ(slot, sa);
    CHECK_EQ(budget_reserve(a, sa, 400), static_cast<int>(kBudgetOk));
    CHECK_EQ(budget_reserve(a, sa, 100), static_cast<int>(kBudgetOk));
    CHECK_EQ(budget_reserve(a, sa, 1000), static_cast<int>(kBudgetOverLimit));
    CHECK_EQ(budget_reserve(b, slot, 300), static_cast<int>(kBudgetOk));
    CHECK_EQ(used_of(slot), 800u);
    a.reset();  // ledger_detach
  }
  BudgetStats s = stats_of(b, slot);
  CHECK_EQ(s.used, 300u);
  CHECK_EQ(s.open_handles, 1u);
  CHECK_EQ(s.successes, 3u);
  CHECK_EQ(s.failures, 1u);
  CHECK_EQ(s.peak, 800u);
  CHECK_EQ(budget_reserve(b, slot, 700), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_release(b, slot, 1000), static_cast<int>(kBudgetOk));
  CHECK_EQ(budget_reserve(b, slot, 250), static_cast<int>(kBudgetOk));
  b.reset();  // detaching the last user frees the budget and its bytes
  CHECK_EQ(budget_count(), base);
  CHECK_EQ(used_of(slot), 0u);
  ledger_detach(nullptr);  // no-op
  LedgerHandle c;
  int unused = -1;
  CHECK_EQ(budget_open(c, name, false, 0, &unused), static_cast<int>(kBudgetNotFound));
}

void test_budget_contention() {
  constexpr int kThreads = 4;
  constexpr int kAttempts = 200000;  // reserve attempts per thread
  constexpr uint64_t kLimit = 4096;
  constexpr uint64_t kMaxSize = 1024;
  const std::string name = "rg-core-tests/contention";

  int base = budget_count();
  LedgerHandle main_ledger;
  int slot = -1;
  CHECK_EQ(budget_open(main_ledger, name, true, kLimit, &slot), static_cast<int>(kBudgetOk));

  struct Worker {
    Ledger* ledger = nullptr;
    int slot = -1;
    uint64_t successes = 0, failures = 0, errors = 0;
  };
  std::vector<Worker> workers(kThreads);
  std::atomic<bool> done{false};
  std::atomic<uint64_t> reads{0}, over_limit{0}, max_seen{0}, peak_over{0};
  StartLine start(kThreads + 1);

  std::thread reader([&] {
    start.arrive_and_wait();
    const BudgetSlot& s = region().budgets[slot];
    uint64_t n = 0, over = 0, mx = 0, pover = 0;
    while (!done.load(std::memory_order_acquire)) {
      uint64_t u = s.used.load(std::memory_order_acquire);
      if (u > kLimit) ++over;
      if (s.peak.load(std::memory_order_relaxed) > kLimit) ++pover;
      mx = std::max(mx, u);
      if (++n % 64 == 0) std::this_thread::yield();  // leave the CPUs to the workers
    }
    reads = n;
    over_limit = over;
    max_seen = mx;
    peak_over = pover;
  });

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Worker& w = workers[t];
      w.ledger = ledger_attach();
      if (w.ledger == nullptr || budget_open(w.ledger, name, false, 0, &w.slot) != kBudgetOk) {
        w.errors = 1;
        start.arrive_and_wait();
        return;
      }
      start.arrive_and_wait();
      std::mt19937_64 rng(0x5eed + static_cast<uint64_t>(t));
      std::uniform_int_distribution<uint64_t> size(1, kMaxSize);
      // Up to two reservations outstanding per thread, so four threads ask
      // for twice the limit and many attempts fail.
      uint64_t held[2];
      int n_held = 0;
      for (int i = 0; i < kAttempts; ++i) {
        uint64_t bytes = size(rng);
        int rc = budget_reserve(w.ledger, w.slot, bytes);
        if (rc == kBudgetOk) {
          ++w.successes;
          held[n_held++] = bytes;
        } else if (rc == kBudgetOverLimit) {
          ++w.failures;
        } else {
          ++w.errors;
        }
        // Switch threads now and then while holding bytes, so that the
        // threads interleave even when they outnumber the CPUs.
        if (i % 1024 == 0) std::this_thread::yield();
        if (n_held == 2 || (rc != kBudgetOk && n_held > 0)) {
          if (budget_release(w.ledger, w.slot, held[0]) != kBudgetOk) ++w.errors;
          held[0] = held[1];
          --n_held;
        }
      }
      for (int i = 0; i < n_held; ++i) {
        if (budget_release(w.ledger, w.slot, held[i]) != kBudgetOk) ++w.errors;
      }
    });
  }
  auto t0 = Clock::now();
  for (auto& th : threads) th.join();
  done.store(true, std::memory_order_release);
  reader.join();
  double ms = elapsed_ms(t0);

  uint64_t successes = 0, failures = 0, errors = 0;
  for (const Worker& w : workers) {
    successes += w.successes;
    failures += w.failures;
    errors += w.errors;
    CHECK_EQ(w.slot, slot);
  }
  CHECK_EQ(errors, 0u);
  CHECK_EQ(over_limit.load(), 0u);
  CHECK_EQ(peak_over.load(), 0u);
  CHECK_LE(max_seen.load(), kLimit);
  CHECK_GT(reads.load(), 0u);
  CHECK_EQ(successes + failures, static_cast<uint64_t>(kThreads) * kAttempts);
  CHECK_GT(failures, 0u);  // the limit was actually contended
  CHECK_GT(successes, 0u);

  // Statistics while the worker ledgers are still attached (live sums) ...
  BudgetStats s = stats_of(main_ledger, slot);
  CHECK_EQ(s.used, 0u);
  CHECK_EQ(s.successes, successes);
  CHECK_EQ(s.failures, failures);
  CHECK_EQ(s.successes + s.failures, static_cast<uint64_t>(kThreads) * kAttempts);
  CHECK_LE(s.peak, kLimit);
  CHECK_GT(s.peak, kLimit / 2);
  CHECK_EQ(s.open_handles, static_cast<uint32_t>(kThreads + 1));
  // ... and after they detach (retired totals).
  for (Worker& w : workers) {
    if (w.ledger == nullptr) continue;
    CHECK_EQ(w.ledger->held[slot].load(), 0.0);
    ledger_detach(w.ledger);
    w.ledger = nullptr;
  }
  s = stats_of(main_ledger, slot);
  CHECK_EQ(s.used, 0u);
  CHECK_EQ(s.successes + s.failures, static_cast<uint64_t>(kThreads) * kAttempts);
  CHECK_EQ(s.successes, successes);
  CHECK_EQ(s.open_handles, 1u);
  main_ledger.reset();
  CHECK_EQ(budget_count(), base);
  std::printf("  note: %d x %d attempts in %.0f ms: %llu ok, %llu over limit, %llu concurrent reads\n", kThreads,
              kAttempts, ms, static_cast<unsigned long long>(successes), static_cast<unsigned long long>(failures),
              static_cast<unsigned long long>(reads.load()));
}

// ---- sampler ------------------------------------------------------------------

// Reads the snapshot as JS does (sequence lock). Returns false if no
// consistent copy could be taken.
bool read_snapshot(double out[kSnapshotSlots]) {
  auto& snap = region().snapshot;
  for (int attempt = 0; attempt < 1000000; ++attempt) {
    double seq = snap[kSnapSeq].load(std::memory_order_acquire);
    if (std::fmod(seq, 2.0) != 0) {
      std::this_thread::yield();
      continue;
    }
    for (int i = 0; i < kSnapshotSlots; ++i) out[i] = snap[i].load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (snap[kSnapSeq].load(std::memory_order_relaxed) == seq && out[kSnapSeq] == seq) return true;
  }
  return false;
}

double snap_field(int field) { return region().snapshot[field].load(std::memory_order_acquire); }

// Checks of one consistent snapshot. Every sample (thread or sample_now)
// bumps seq by 2 and `samples` by 1, and every stop bumps seq by 2 and
// `stops` by 1, all from zero, so in a consistent copy
// seq == 2 * (samples + stops): a torn read would break it. A stopped
// sampler leaves RSS unknown (NaN) until the next sample.
struct SnapshotCheck {
  int bad_seq = 0, torn = 0, bad_values = 0, backwards = 0;
  double last_seq = -1, last_ts = -1;
  void take(const double* s) {
    if (std::fmod(s[kSnapSeq], 2.0) != 0) ++bad_seq;
    if (s[kSnapSeq] != 2 * (s[kSnapSamples] + s[kSnapStops])) ++torn;
    if (!(s[kSnapRss] > 0 || (s[kSnapRunning] == 0 && std::isnan(s[kSnapRss]))) || !(s[kSnapCpuCount] >= 1) || !(s[kSnapTimestampMs] > 0) ||
        !(s[kSnapErrors] >= 0 && s[kSnapErrors] <= s[kSnapSamples]) ||
        !(std::isnan(s[kSnapSysLoad]) || (s[kSnapSysLoad] >= 0 && s[kSnapSysLoad] <= 1)) ||
        !(std::isnan(s[kSnapProcessLoad]) || s[kSnapProcessLoad] >= 0) || !(s[kSnapLoadWindowMs] >= 0)) {
      ++bad_values;
    }
    if (s[kSnapSeq] < last_seq || s[kSnapTimestampMs] < last_ts) ++backwards;
    last_seq = s[kSnapSeq];
    last_ts = s[kSnapTimestampMs];
  }
  void verify() {
    CHECK_EQ(bad_seq, 0);
    CHECK_EQ(torn, 0);
    CHECK_EQ(bad_values, 0);
    CHECK_EQ(backwards, 0);
  }
};

void test_sampler_interval() {
  CHECK_EQ(sampler_users(), 0);
  sampler_set_interval(0);
  CHECK_EQ(snap_field(kSnapIntervalMs), kMinIntervalMs);
  sampler_set_interval(NAN);
  CHECK_EQ(snap_field(kSnapIntervalMs), kMinIntervalMs);
  sampler_set_interval(1e12);
  CHECK_EQ(snap_field(kSnapIntervalMs), kMaxIntervalMs);
  sampler_set_interval(2);
  CHECK_EQ(snap_field(kSnapIntervalMs), 2.0);

  // sample_now works without the thread and keeps the snapshot consistent.
  double before[kSnapshotSlots], after[kSnapshotSlots];
  CHECK(read_snapshot(before));
  sampler_sample_now();
  CHECK(read_snapshot(after));
  CHECK_EQ(after[kSnapSeq], before[kSnapSeq] + 2);
  CHECK_EQ(after[kSnapSamples], before[kSnapSamples] + 1);
  CHECK_GT(after[kSnapRss], 0.0);
  CHECK_EQ(after[kSnapIntervalMs], 2.0);
  CHECK_EQ(after[kSnapCpuCount], static_cast<double>(cpu_count()));
  double now_ms = static_cast<double>(monotonic_ns()) / 1e6;
  CHECK_LE(after[kSnapTimestampMs], now_ms);
  CHECK_GT(after[kSnapTimestampMs], now_ms - 5000);
  CHECK_EQ(after[kSnapRunning], 0.0);
  SnapshotCheck sc;
  sc.take(after);
  sc.verify();
}

void test_sampler_concurrent() {
  constexpr int kUsers = 4;
  sampler_set_interval(2);
  CHECK_EQ(sampler_users(), 0);
  CHECK_EQ(snap_field(kSnapRunning), 0.0);

  // Several environments start the sampler at once.
  {
    StartLine line(kUsers);
    std::vector<std::thread> ts;
    std::atomic<int> not_running{0};
    for (int i = 0; i < kUsers; ++i) {
      ts.emplace_back([&] {
        line.arrive_and_wait();
        sampler_acquire();
        // The snapshot is valid and the thread runs as soon as acquire returns.
        if (snap_field(kSnapRunning) != 1.0 || !(snap_field(kSnapSamples) >= 1)) ++not_running;
      });
    }
    for (auto& t : ts) t.join();
    CHECK_EQ(not_running.load(), 0);
  }
  CHECK_EQ(sampler_users(), kUsers);
  CHECK_EQ(snap_field(kSnapRunning), 1.0);

  // While it runs, concurrent readers see consistent, advancing snapshots;
  // sample_now and interval changes from other threads interleave with it.
  std::atomic<bool> stop{false};
  std::thread poker([&] {
    int i = 0;
    while (!stop.load(std::memory_order_acquire)) {
      sampler_sample_now();
      sampler_set_interval(i++ % 2 ? 1 : 2);
      sleep_ms(3);
    }
  });
  std::vector<SnapshotCheck> checks(2);
  std::vector<double> first_seq(2), last_seq(2), first_ts(2), last_ts(2);
  std::vector<int> failed_reads(2, 0);
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      double s[kSnapshotSlots];
      auto t0 = Clock::now();
      bool first = true;
      while (elapsed_ms(t0) < 300) {
        if (!read_snapshot(s)) {
          ++failed_reads[r];
          continue;
        }
        checks[r].take(s);
        if (first) {
          first_seq[r] = s[kSnapSeq];
          first_ts[r] = s[kSnapTimestampMs];
          first = false;
        }
        last_seq[r] = s[kSnapSeq];
        last_ts[r] = s[kSnapTimestampMs];
      }
    });
  }
  for (auto& t : readers) t.join();
  stop.store(true, std::memory_order_release);
  poker.join();
  sampler_set_interval(2);
  for (int r = 0; r < 2; ++r) {
    CHECK_EQ(failed_reads[r], 0);
    checks[r].verify();
    CHECK_GE(last_seq[r], first_seq[r] + 2 * 10);  // at least 10 samples in 300 ms
    CHECK_GT(last_ts[r], first_ts[r]);
  }

  // The thread alone (no sample_now) keeps sampling.
  double a[kSnapshotSlots], b[kSnapshotSlots];
  CHECK(read_snapshot(a));
  sleep_ms(100);
  CHECK(read_snapshot(b));
  CHECK_GE(b[kSnapSamples], a[kSnapSamples] + 5);
  CHECK_GT(b[kSnapTimestampMs], a[kSnapTimestampMs]);
  CHECK_EQ(b[kSnapRunning], 1.0);

  // All users release at once: the thread stops.
  {
    StartLine line(kUsers);
    std::vector<std::thread> ts;
    for (int i = 0; i < kUsers; ++i) {
      ts.emplace_back([&] {
        line.arrive_and_wait();
        sampler_release();
      });
    }
    for (auto& t : ts) t.join();
  }
  CHECK_EQ(sampler_users(), 0);
  CHECK_EQ(snap_field(kSnapRunning), 0.0);
  CHECK(read_snapshot(a));
  sleep_ms(50);
  CHECK(read_snapshot(b));
  CHECK_EQ(b[kSnapSeq], a[kSnapSeq]);  // nothing samples any more
  sampler_release();  // extra release is ignored
  CHECK_EQ(sampler_users(), 0);
}

void test_sampler_cycles() {
  constexpr int kThreads = 2;
  constexpr int kCycles = 400;
  sampler_set_interval(1);
  std::atomic<int> violations{0}, torn{0};
  std::atomic<bool> stop{false};
  // A third thread keeps sampling by hand and changing the interval.
  std::thread poker([&] {
    int i = 0;
    while (!stop.load(std::memory_order_acquire)) {
      sampler_sample_now();
      sampler_set_interval(1 + (i++ % 3));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  StartLine line(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&, t] {
      // Random pauses inside and outside the held span, so that the user
      // count often drops to zero (a stop) while the other thread is just
      // starting again.
      std::mt19937 rng(0xc0ffee + t);
      auto pause = [&rng] {
        switch (rng() % 4) {
          case 0: break;
          case 1: std::this_thread::yield(); break;
          case 2: std::this_thread::sleep_for(std::chrono::microseconds(50)); break;
          default: std::this_thread::sleep_for(std::chrono::microseconds(300)); break;
        }
      };
      line.arrive_and_wait();
      double s[kSnapshotSlots];
      for (int i = 0; i < kCycles; ++i) {
        sampler_acquire();
        // Between our acquire and release, the sampler runs.
        if (sampler_users() < 1 || snap_field(kSnapRunning) != 1.0) ++violations;
        if (!read_snapshot(s) || s[kSnapSeq] != 2 * (s[kSnapSamples] + s[kSnapStops])) ++torn;
        pause();
        if (snap_field(kSnapRunning) != 1.0) ++violations;
        sampler_release();
        pause();
      }
    });
  }
  for (auto& t : ts) t.join();
  stop.store(true, std::memory_order_release);
  poker.join();
  CHECK_EQ(violations.load(), 0);
  CHECK_EQ(torn.load(), 0);
  CHECK_EQ(sampler_users(), 0);
  CHECK_EQ(snap_field(kSnapRunning), 0.0);
  double a[kSnapshotSlots], b[kSnapshotSlots];
  CHECK(read_snapshot(a));
  sleep_ms(30);
  CHECK(read_snapshot(b));
  CHECK_EQ(b[kSnapSeq], a[kSnapSeq]);
  SnapshotCheck sc;
  sc.take(b);
  sc.verify();
  sampler_set_interval(kDefaultIntervalMs);
}

// ---- races around changing settings ---------------------------------------------

// Lowering the interval takes effect promptly: the sampler thread re-targets
// its current (long) wait instead of finishing it.
void test_interval_wakeup() {
  sampler_set_interval(2000);
  sampler_acquire();
  sleep_ms(50);  // the thread took its first sample and now waits 2 s
  double a = snap_field(kSnapSamples);
  sampler_set_interval(5);
  sleep_ms(300);
  double b = snap_field(kSnapSamples);
  CHECK_MSG(b >= a + 10, "samples " + show(a) + " -> " + show(b) + " in 300 ms after lowering the interval to 5 ms");
  sampler_release();
  sampler_set_interval(kDefaultIntervalMs);
}

// A reserve that loaded the old, higher limit must not complete after the
// limit was lowered: set_limit publishes then checks `used`, reserve CASes
// then re-reads the limit, so two reservations that together exceed the new
// limit are never both held.
void test_set_limit_race() {
  constexpr uint64_t kHigh = 1 << 20, kLow = 64, kBytes = 40;  // under kLow, one reservation at a time
  const std::string name = "rg-core-tests/set-limit-race";
  LedgerHandle ctl;
  int slot = -1;
  CHECK_EQ(budget_open(ctl, name, true, kHigh, &slot), static_cast<int>(kBudgetOk));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> epoch{0};  // odd while the limit is kLow
  std::atomic<int> live{0};     // successful reservations not yet released
  std::atomic<int> violations{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < 2; ++t) {
    ts.emplace_back([&] {
      Ledger* l = ledger_attach();
      int s = -1;
      budget_open(l, name, false, 0, &s);
      while (!stop.load(std::memory_order_relaxed)) {
        if (budget_reserve(l, s, kBytes) != kBudgetOk) continue;
        uint64_t e1 = epoch.load();
        int n = live.fetch_add(1) + 1;
        uint64_t e2 = epoch.load();
        // At our fetch_add two successful reservations of kBytes were in
        // `used`, while the limit was kLow (set before e1 turned odd, not
        // raised before e2). The lowering saw used <= kLow, so one of them
        // succeeded after it: the budget is over its limit for good.
        if (n >= 2 && e1 % 2 == 1 && e2 == e1) ++violations;
        live.fetch_sub(1);
        budget_release(l, s, kBytes);
      }
      ledger_detach(l);
    });
  }
  int lowerings = 0, raise_errors = 0;
  auto t0 = Clock::now();
  while (elapsed_ms(t0) < 1500 && violations.load() == 0) {
    if (budget_set_limit(ctl, slot, kLow) != kBudgetOk) continue;
    epoch.fetch_add(1);  // odd: lowered
    ++lowerings;
    for (volatile int i = 0; i < 2000; i = i + 1) {
    }
    epoch.fetch_add(1);  // even: about to raise
    if (budget_set_limit(ctl, slot, kHigh) != kBudgetOk) ++raise_errors;
  }
  stop = true;
  for (auto& t : ts) t.join();
  CHECK_EQ(raise_errors, 0);
  CHECK_MSG(violations.load() == 0, "two reservations of " + show(kBytes) + " held under a limit of " + show(kLow) +
                                        " (" + show(lowerings) + " lowerings)");
}

struct Test {
  const char* name;
  void (*fn)();
};

}  // namespace

// The cgroup usage the sampler reads alone agrees with the full read: both
// come from the same kept-open file, and either both find it or neither does.
void test_platform_cgroup_usage() {
  CgroupInfo c;
  CHECK_EQ(read_cgroup(&c), 0);
  uint64_t usage = 0;
  int rc = read_cgroup_memory_usage(&usage);
  CHECK_EQ(rc == 0, c.has_memory_usage);
  if (rc == 0) CHECK_GT(usage, 0u);
  if (c.version == 0) CHECK_EQ(rc, ENOENT);
}

// Static figures: read at start (never read: NaN), then again only once
// kStaticRefreshMs has passed on the clock given, or when that clock moved
// backwards.
void test_static_refresh() {
  CHECK(static_refresh_due(NAN, 0));
  CHECK(static_refresh_due(NAN, 123456));
  const double t0 = 1000;
  CHECK(!static_refresh_due(t0, t0));
  CHECK(!static_refresh_due(t0, t0 + 1));
  CHECK(!static_refresh_due(t0, t0 + kStaticRefreshMs - 0.001));
  CHECK(static_refresh_due(t0, t0 + kStaticRefreshMs));
  CHECK(static_refresh_due(t0, t0 + 10 * kStaticRefreshMs));
  CHECK(static_refresh_due(t0, t0 - 1));
  CHECK(static_refresh_due(t0, NAN));
  CHECK(static_refresh_due(t0, INFINITY));
  // A sampler that refreshes on this rule over a simulated minute at 1 ms
  // reads the static figures once at start and then every kStaticRefreshMs.
  double last = NAN;
  int reads = 0;
  for (double now = 0; now < 60000; now += 1) {
    if (static_refresh_due(last, now)) {
      ++reads;
      last = now;
    }
  }
  CHECK_EQ(reads, static_cast<int>(60000 / kStaticRefreshMs));
  // The snapshot carries the figure read at start, not 0 and not NaN.
  sampler_sample_now();
  CHECK_EQ(snap_field(kSnapCpuCount), static_cast<double>(cpu_count()));
  // The cgroup usage in the snapshot is NaN exactly when it cannot be read.
  uint64_t usage = 0;
  bool has_usage = read_cgroup_memory_usage(&usage) == 0;
  CHECK_EQ(std::isnan(snap_field(kSnapCgroupUsage)), !has_usage);
}

// Absolute deadlines: the period does not grow by the time a sample takes,
// and a stall skips the missed samples instead of taking them in a burst.
void test_next_deadline() {
  const int64_t ms = 1000000;
  // On time, or late by less than an interval: one interval after the last due time.
  CHECK_EQ(next_deadline_ns(0, 0, ms), ms);
  CHECK_EQ(next_deadline_ns(0, ms / 2, ms), ms);
  CHECK_EQ(next_deadline_ns(5 * ms, 5 * ms + ms - 1, ms), 6 * ms);
  CHECK_EQ(next_deadline_ns(5 * ms, 6 * ms, ms), 6 * ms);  // due exactly now
  // A stall of 10.5 intervals: the next deadline is the next grid point, not the missed ones.
  CHECK_EQ(next_deadline_ns(0, 10 * ms + ms / 2, ms), 11 * ms);
  CHECK_EQ(next_deadline_ns(0, 10 * ms, ms), 10 * ms);
  CHECK_EQ(next_deadline_ns(0, 10 * ms + 1, ms), 11 * ms);
  // Degenerate intervals never loop or go backwards.
  CHECK_EQ(next_deadline_ns(7, 7, 0), 8);
  CHECK_EQ(next_deadline_ns(7, 100, -5), 100);
  // Simulated: each sample takes 0.3 intervals and wakes 0.1 late; every
  // 50th wake is a stall of 7 intervals. Samples stay on the grid, the next
  // deadline is always ahead of now, and after a stall no two samples come
  // closer than the time one takes.
  int64_t due = 0, taken = 0;
  int64_t last_start = -ms;
  for (int i = 1; i <= 1000; ++i) {
    int64_t wake = due + ms / 10 + (i % 50 == 0 ? 7 * ms : 0);
    CHECK_GE(wake - last_start, ms / 10);
    last_start = wake;
    int64_t end = wake + 3 * ms / 10;
    int64_t next = next_deadline_ns(due, end, ms);
    CHECK_GE(next, end);
    CHECK_EQ(next % ms, 0);
    due = next;
    ++taken;
  }
  CHECK_EQ(taken, 1000);
  // 1000 samples, 20 stalls of 7 intervals each skipped: 1000 + 20 * 7 intervals.
  CHECK_EQ(due, (1000 + 20 * 7) * ms);
}

int main(int argc, char** argv) {
#if !defined(_WIN32)  // the CRT rejects a zero-size line buffer
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
#endif
  (void)argc;
  (void)argv;

  std::vector<Test> tests = {
#if defined(__linux__)
      {"platform: rss", test_platform_rss},
      {"platform: cpu", test_platform_cpu},
      {"platform: system memory", test_platform_memory},
      {"platform: cgroup", test_platform_cgroup},
      {"platform: cgroup memory usage alone", test_platform_cgroup_usage},
      {"platform: psi", test_platform_psi},
      {"platform: disk", test_platform_disk},
      {"platform: clock", test_platform_clock},
#else
      {"platform: generic", test_platform_generic},
#endif
      {"budget: exact limit, over-release, limits", test_budget_exact_limit},
      {"budget: limit 0", test_budget_limit_zero},
      {"budget: sizes near 2^53 - 1", test_budget_large_sizes},
      {"budget: names", test_budget_names},
      {"budget: ledger_detach", test_budget_detach},
      {"budget: per-environment peak", test_budget_ledger_peak},
      {"budget: cells", test_budget_cells},
      {"budget: contention", test_budget_contention},
      {"sampler: interval and sample_now", test_sampler_interval},
      {"sampler: static figures refresh", test_static_refresh},
      {"sampler: absolute deadlines", test_next_deadline},
      {"sampler: concurrent acquire/read/release", test_sampler_concurrent},
      {"sampler: acquire/release cycles", test_sampler_cycles},
      {"sampler: lowering the interval wakes the sampler", test_interval_wakeup},
      {"budget: set_limit lowering races reserve", test_set_limit_race},
  };

  auto t0 = Clock::now();
  for (const Test& t : tests) {
    g_test = t.name;
    int failed_before = g_failed.load();
    auto start = Clock::now();
    t.fn();
    std::printf("%s %s (%.0f ms)\n", g_failed.load() == failed_before ? "ok  " : "FAIL", t.name, elapsed_ms(start));
  }
  int leftover = budget_count();
  g_test = "end";
  CHECK_EQ(leftover, 0);
  CHECK_EQ(sampler_users(), 0);
  std::printf("total %.0f ms\n", elapsed_ms(t0));
  int passed = g_passed.load(), failed = g_failed.load();
  std::printf("%d passed, %d failed\n", passed, failed);
  std::fflush(stdout);
  return failed == 0 ? 0 : 1;
}
