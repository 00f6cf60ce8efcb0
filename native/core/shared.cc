// Process-wide budgets and the sampler thread.
//
// Threads: budget counters are updated lock-free (CAS for reserve, fetch_sub
// for release) by any thread, native or JS. Opening, closing and statistics
// take the registry mutex, which also guards the list of live ledgers. The
// sampler thread only ever writes the snapshot.
#include "shared.h"

#include <chrono>
#include <cstddef>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <new>
#include <thread>
#include <unordered_map>
#include <vector>

#include "platform.h"

namespace rg {
namespace {

SharedRegion g_region;  // zero-initialised static storage

struct Registry {
  std::mutex mu;
  std::unordered_map<std::string, int> by_name;
  std::string names[kMaxBudgets];
  uint32_t refs[kMaxBudgets] = {};
  std::vector<Ledger*> ledgers;
};

Registry& registry() {
  // Leaked on purpose: worker threads may still detach during process exit,
  // after static destructors would have run.
  static Registry* r = new Registry();
  return *r;
}

uint64_t limit_of(const BudgetSlot& s) {
  return static_cast<uint64_t>(s.limit.load(std::memory_order_seq_cst));
}

void raise_peak(BudgetSlot& s, uint64_t value) {
  uint64_t peak = s.peak.load(std::memory_order_relaxed);
  while (value > peak && !s.peak.compare_exchange_weak(peak, value, std::memory_order_relaxed)) {
  }
}

void add_double(std::atomic<double>& a, double delta) {
  // Only the owning thread writes its ledger, so load+store is enough.
  a.store(a.load(std::memory_order_relaxed) + delta, std::memory_order_relaxed);
}

bool cell_of(const Ledger* ledger, int slot, int cell) {
  return cell >= 0 && cell < kMaxCells && ledger->cell_slot[cell] == slot + 1;
}

// The counter a reservation or release on (slot, cell) goes to. The caller
// has checked that the cell belongs to the slot.
std::atomic<double>& held_of(Ledger* ledger, int slot, int cell) {
  return cell == kNoCell ? ledger->held[slot] : ledger->cells[cell];
}

// Gives back what `cell` holds and frees it. Caller holds the registry mutex.
void free_cell_locked(Ledger* ledger, int cell) {
  int slot = ledger->cell_slot[cell] - 1;
  double held = ledger->cells[cell].load(std::memory_order_relaxed);
  if (held > 0) g_region.budgets[slot].used.fetch_sub(static_cast<uint64_t>(held), std::memory_order_acq_rel);
  ledger->cells[cell].store(0, std::memory_order_relaxed);
  ledger->cell_slot[cell] = 0;
  --ledger->cells_used;
  if (cell < ledger->cell_hint) ledger->cell_hint = cell;
}

// Takes `ledger`'s lease on `slot` back and gives it to the counter; returns
// the bytes. The owner changes its lease word only with atomic operations, so
// an exchange here and the owner's compare-exchange cannot both take the same
// bytes. Caller holds the registry mutex (which keeps the ledger alive).
uint64_t take_lease_locked(Ledger* ledger, int slot) {
  uint32_t lease = ledger->lease[slot].exchange(0, std::memory_order_seq_cst);
  if (lease > 0) g_region.budgets[slot].used.fetch_sub(lease, std::memory_order_seq_cst);
  return lease;
}

// Every live environment's lease on `slot`, taken back. Caller holds the
// registry mutex.
uint64_t reclaim_leases_locked(const Registry& r, int slot) {
  uint64_t total = 0;
  for (Ledger* l : r.ledgers) total += take_lease_locked(l, slot);
  return total;
}

bool leasing(const BudgetSlot& s) { return (s.flags.load(std::memory_order_seq_cst) & kBudgetLeasing) != 0; }

// Gives back what `ledger` holds on `slot` (its cells there included, and
// its lease and pending bytes) and folds its counts into the slot's retired
// totals. Caller holds the registry mutex.
void settle_locked(Ledger* ledger, int slot) {
  // Each cell belongs to an open handle, so none should be left on the slot;
  // any that are (a handle closed without naming its cell) are given back too.
  for (int cell = 0, seen = 0; cell < kMaxCells && seen < ledger->cells_used; ++cell) {
    if (ledger->cell_slot[cell] == 0) continue;
    if (ledger->cell_slot[cell] == slot + 1) {
      free_cell_locked(ledger, cell);
    } else {
      ++seen;
    }
  }
  BudgetSlot& s = g_region.budgets[slot];
  double held = ledger->held[slot].load(std::memory_order_relaxed);
  if (held > 0) s.used.fetch_sub(static_cast<uint64_t>(held), std::memory_order_acq_rel);
  take_lease_locked(ledger, slot);
  double pending = ledger->pending[slot].load(std::memory_order_relaxed);
  if (pending > 0) s.used.fetch_sub(static_cast<uint64_t>(pending), std::memory_order_acq_rel);
  ledger->pending[slot].store(0, std::memory_order_relaxed);
  s.retired_successes.fetch_add(static_cast<uint64_t>(ledger->successes[slot].load(std::memory_order_relaxed)),
                                std::memory_order_relaxed);
  s.retired_failures.fetch_add(static_cast<uint64_t>(ledger->failures[slot].load(std::memory_order_relaxed)),
                               std::memory_order_relaxed);
  raise_peak(s, static_cast<uint64_t>(ledger->peak[slot].load(std::memory_order_relaxed)));
  ledger->held[slot].store(0, std::memory_order_relaxed);
  ledger->successes[slot].store(0, std::memory_order_relaxed);
  ledger->failures[slot].store(0, std::memory_order_relaxed);
  ledger->peak[slot].store(0, std::memory_order_relaxed);
}

// The slot's peak and every live ledger's, whichever is highest. Caller
// holds the registry mutex.
uint64_t peak_locked(const Registry& r, int slot) {
  uint64_t peak = g_region.budgets[slot].peak.load(std::memory_order_relaxed);
  for (const Ledger* l : r.ledgers) {
    uint64_t own = static_cast<uint64_t>(l->peak[slot].load(std::memory_order_relaxed));
    if (own > peak) peak = own;
  }
  return peak;
}

// Bytes reserved on `slot`: the counter less what the live environments'
// leases and pending windows account for (see Ledger). The words are read
// one after another, so under concurrent use this is a snapshot of each, not
// of all at once; when no reservation is under way it is exact. Caller holds
// the registry mutex.
void used_locked(const Registry& r, int slot, uint64_t* used, uint64_t* leased) {
  const BudgetSlot& s = g_region.budgets[slot];
  uint64_t out = 0;
  if ((s.flags.load(std::memory_order_seq_cst) & kBudgetLeasing) != 0) {
    for (const Ledger* l : r.ledgers) {
      out += l->lease[slot].load(std::memory_order_seq_cst);
      double pending = l->pending[slot].load(std::memory_order_relaxed);
      if (pending > 0) out += static_cast<uint64_t>(pending);
    }
  }
  uint64_t counter = s.used.load(std::memory_order_seq_cst);
  *leased = out < counter ? out : counter;
  *used = counter - *leased;
}

// Drops one handle of `ledger` on `slot`; frees the slot with its last handle.
void close_locked(Registry& r, Ledger* ledger, int slot) {
  // A closing handle may have been the one that leased: what the lease holds
  // goes back now rather than wait for a refusal to reclaim it.
  take_lease_locked(ledger, slot);
  if (--ledger->opens[slot] == 0) settle_locked(ledger, slot);
  if (--r.refs[slot] == 0) {
    BudgetSlot& s = g_region.budgets[slot];
    if (!r.names[slot].empty()) r.by_name.erase(r.names[slot]);
    r.names[slot].clear();
    s.flags.store(0, std::memory_order_release);
    s.generation.fetch_add(1, std::memory_order_relaxed);
    s.used.store(0, std::memory_order_relaxed);
    s.peak.store(0, std::memory_order_relaxed);
    s.limit.store(0, std::memory_order_relaxed);
    s.limit32.store(0, std::memory_order_relaxed);
    s.retired_successes.store(0, std::memory_order_relaxed);
    s.retired_failures.store(0, std::memory_order_relaxed);
  }
}

bool slot_open(const Ledger* ledger, int slot) {
  return ledger != nullptr && slot >= 0 && slot < kMaxBudgets && ledger->opens[slot] > 0;
}

}  // namespace

SharedRegion& region() { return g_region; }

Ledger* ledger_attach() {
  Ledger* ledger = new (std::nothrow) Ledger();
  if (ledger == nullptr) return nullptr;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  r.ledgers.push_back(ledger);
  return ledger;
}

void ledger_detach(Ledger* ledger) {
  if (ledger == nullptr) return;
  Registry& r = registry();
  {
    std::lock_guard<std::mutex> lock(r.mu);
    for (int cell = 0; cell < kMaxCells && ledger->cells_used > 0; ++cell) {
      if (ledger->cell_slot[cell] != 0) free_cell_locked(ledger, cell);
    }
    for (int slot = 0; slot < kMaxBudgets; ++slot) {
      while (ledger->opens[slot] > 0) close_locked(r, ledger, slot);
    }
    for (size_t i = 0; i < r.ledgers.size(); ++i) {
      if (r.ledgers[i] == ledger) {
        r.ledgers.erase(r.ledgers.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }
  delete ledger;
}

int budget_open(Ledger* ledger, const std::string& name, bool has_limit, uint64_t limit, int* slot_out,
                int* cell_out, bool lease) {
  if (ledger == nullptr) return kBudgetClosed;
  if (has_limit && limit > kMaxSafeInteger) return kBudgetBadSize;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  // Find the cell first, so that running out of them changes nothing.
  int cell = kNoCell;
  if (cell_out != nullptr) {
    if (ledger->cells_used >= kMaxCells) return kBudgetTooManyCells;
    for (int i = ledger->cell_hint; i < kMaxCells; ++i) {
      if (ledger->cell_slot[i] == 0) {
        cell = i;
        break;
      }
    }
    if (cell == kNoCell) return kBudgetTooManyCells;  // unreachable: cells_used counts them
  }
  int slot = -1;
  if (!name.empty()) {
    auto it = r.by_name.find(name);
    if (it != r.by_name.end()) {
      slot = it->second;
      if (has_limit && limit_of(g_region.budgets[slot]) != limit) return kBudgetLimitMismatch;
    }
  }
  if (slot < 0) {
    if (!has_limit) return kBudgetNotFound;
    for (int i = 0; i < kMaxBudgets; ++i) {
      if (r.refs[i] == 0) {
        slot = i;
        break;
      }
    }
    if (slot < 0) return kBudgetTooMany;
    BudgetSlot& s = g_region.budgets[slot];
    s.used.store(0, std::memory_order_relaxed);
    s.peak.store(0, std::memory_order_relaxed);
    s.limit.store(static_cast<double>(limit), std::memory_order_relaxed);
    s.limit32.store(limit <= kNarrowMax ? static_cast<uint32_t>(limit) : 0u, std::memory_order_relaxed);
    s.retired_successes.store(0, std::memory_order_relaxed);
    s.retired_failures.store(0, std::memory_order_relaxed);
    s.flags.store(kBudgetActive | (limit <= kNarrowMax ? kBudgetNarrow : 0u), std::memory_order_release);
    r.names[slot] = name;
    if (!name.empty()) r.by_name.emplace(name, slot);
  }
  BudgetSlot& opened = g_region.budgets[slot];
  if (lease && (opened.flags.load(std::memory_order_relaxed) & kBudgetNarrow) != 0) {
    opened.flags.fetch_or(kBudgetLeasing, std::memory_order_seq_cst);
  }
  ++r.refs[slot];
  ++ledger->opens[slot];
  *slot_out = slot;
  if (cell_out != nullptr) {
    ledger->cells[cell].store(0, std::memory_order_relaxed);
    ledger->cell_slot[cell] = slot + 1;
    ++ledger->cells_used;
    ledger->cell_hint = cell + 1;
    *cell_out = cell;
  }
  return kBudgetOk;
}

int budget_close(Ledger* ledger, int slot, int cell) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  if (cell != kNoCell && !cell_of(ledger, slot, cell)) return kBudgetClosed;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (cell != kNoCell) free_cell_locked(ledger, cell);
  close_locked(r, ledger, slot);
  return kBudgetOk;
}

int budget_reserve(Ledger* ledger, int slot, uint64_t bytes, int cell) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  if (cell != kNoCell && !cell_of(ledger, slot, cell)) return kBudgetClosed;
  if (bytes > kMaxSafeInteger) return kBudgetBadSize;
  BudgetSlot& s = g_region.budgets[slot];
  uint64_t limit = limit_of(s);
  uint64_t cur = s.used.load(std::memory_order_relaxed);
  bool reclaimed = false;
  for (;;) {
    // Written as a subtraction so that huge requests cannot overflow.
    if (cur > limit || bytes > limit - cur) {
      // Unused leases of other environments count in the counter: take them
      // back, once, before refusing.
      if (!reclaimed && leasing(s)) {
        reclaimed = true;
        uint64_t got = 0;
        {
          std::lock_guard<std::mutex> lock(registry().mu);
          got = reclaim_leases_locked(registry(), slot);
        }
        if (got > 0) {
          cur = s.used.load(std::memory_order_seq_cst);
          continue;
        }
      }
      add_double(ledger->failures[slot], 1);
      return kBudgetOverLimit;
    }
    if (s.used.compare_exchange_weak(cur, cur + bytes, std::memory_order_seq_cst, std::memory_order_relaxed)) {
      break;
    }
  }
  // budget_set_limit may have lowered the limit after we loaded it. It
  // publishes the limit and then reads `used`; we CAS `used` and then read
  // the limit (all seq_cst), so at least one side sees the other: either it
  // reports kBudgetBelowUsage, or we see the new limit here and back out.
  // (Readers of `used` may see the backed-out bytes for a moment.)
  if (cur + bytes > limit_of(s)) {
    s.used.fetch_sub(bytes, std::memory_order_acq_rel);
    add_double(ledger->failures[slot], 1);
    return kBudgetOverLimit;
  }
  add_double(held_of(ledger, slot, cell), static_cast<double>(bytes));
  add_double(ledger->successes[slot], 1);
  raise_peak(s, cur + bytes);
  return kBudgetOk;
}

int budget_release(Ledger* ledger, int slot, uint64_t bytes, int cell) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  if (cell != kNoCell && !cell_of(ledger, slot, cell)) return kBudgetClosed;
  if (bytes > kMaxSafeInteger) return kBudgetBadSize;
  std::atomic<double>& counter = held_of(ledger, slot, cell);
  double held = counter.load(std::memory_order_relaxed);
  if (static_cast<double>(bytes) > held) return kBudgetExceedsHeld;
  counter.store(held - static_cast<double>(bytes), std::memory_order_relaxed);
  g_region.budgets[slot].used.fetch_sub(bytes, std::memory_order_acq_rel);
  return kBudgetOk;
}

int budget_held(Ledger* ledger, int slot, int cell, double* out) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  if (cell != kNoCell) {
    if (!cell_of(ledger, slot, cell)) return kBudgetClosed;
    *out = ledger->cells[cell].load(std::memory_order_relaxed);
    return kBudgetOk;
  }
  double held = ledger->held[slot].load(std::memory_order_relaxed);
  for (int i = 0, seen = 0; i < kMaxCells && seen < ledger->cells_used; ++i) {
    if (ledger->cell_slot[i] == 0) continue;
    ++seen;
    if (ledger->cell_slot[i] == slot + 1) held += ledger->cells[i].load(std::memory_order_relaxed);
  }
  *out = held;
  return kBudgetOk;
}

int budget_set_limit(Ledger* ledger, int slot, uint64_t limit) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  if (limit > kMaxSafeInteger) return kBudgetBadSize;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  BudgetSlot& s = g_region.budgets[slot];
  bool narrow = (s.flags.load(std::memory_order_relaxed) & kBudgetNarrow) != 0;
  if (narrow != (limit <= kNarrowMax)) return kBudgetWidthChange;
  // Publish first, then check (see budget_reserve): a reservation racing
  // with a lowering either shows up in `used` here or sees the new limit.
  // JS reads the 32-bit copy of a narrow budget's limit, so both copies are
  // published before the check.
  double old_limit = s.limit.exchange(static_cast<double>(limit), std::memory_order_seq_cst);
  uint32_t old_limit32 = s.limit32.exchange(narrow ? static_cast<uint32_t>(limit) : 0u, std::memory_order_seq_cst);
  // Leases count in the counter but are not in use: take them back first. A
  // lease taken from after this sees the new limit (its refill checks the
  // limit after it commits), and bytes taken from a lease before this are
  // held, so counted below.
  if (leasing(s)) reclaim_leases_locked(r, slot);
  if (s.used.load(std::memory_order_seq_cst) > limit) {
    s.limit32.store(old_limit32, std::memory_order_seq_cst);
    s.limit.store(old_limit, std::memory_order_seq_cst);
    return kBudgetBelowUsage;
  }
  return kBudgetOk;
}

int budget_stats(Ledger* ledger, int slot, BudgetStats* out) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  const BudgetSlot& s = g_region.budgets[slot];
  used_locked(r, slot, &out->used, &out->leased);
  out->peak = peak_locked(r, slot);
  out->limit = limit_of(s);
  out->narrow = (s.flags.load(std::memory_order_relaxed) & kBudgetNarrow) != 0;
  out->successes = s.retired_successes.load(std::memory_order_relaxed);
  out->failures = s.retired_failures.load(std::memory_order_relaxed);
  for (const Ledger* l : r.ledgers) {
    out->successes += static_cast<uint64_t>(l->successes[slot].load(std::memory_order_relaxed));
    out->failures += static_cast<uint64_t>(l->failures[slot].load(std::memory_order_relaxed));
  }
  out->open_handles = r.refs[slot];
  out->name = r.names[slot];
  return kBudgetOk;
}

int budget_reclaim_leases(Ledger* ledger, int slot, uint64_t* out) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  uint64_t got = reclaim_leases_locked(r, slot);
  if (out != nullptr) *out = got;
  return kBudgetOk;
}

int budget_used(Ledger* ledger, int slot, uint64_t* out) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  const BudgetSlot& s = g_region.budgets[slot];
  if (!leasing(s)) {
    *out = s.used.load(std::memory_order_seq_cst);
    return kBudgetOk;
  }
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  uint64_t leased = 0;
  used_locked(r, slot, out, &leased);
  return kBudgetOk;
}

int budget_peak(Ledger* ledger, int slot, uint64_t* out) {
  if (!slot_open(ledger, slot)) return kBudgetClosed;
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  *out = peak_locked(r, slot);
  return kBudgetOk;
}

int budget_count() {
  Registry& r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  int n = 0;
  for (uint32_t ref : r.refs) n += ref > 0 ? 1 : 0;
  return n;
}

// ---- sampler ------------------------------------------------------------------

namespace {

constexpr double kLoadWindowMs = 1000;
constexpr int kRing = 256;

// One reading for a load window: a time and a cumulative figure (process
// CPU microseconds, or the host's busy and idle microseconds).
struct Sample {
  double t_ms;
  uint64_t busy, idle, proc_us;
};

// The samples of one load window, newest last.
struct Window {
  Sample ring[kRing];
  int len = 0, head = 0;

  void push(const Sample& s) {
    ring[head] = s;
    head = (head + 1) % kRing;
    if (len < kRing) ++len;
  }
  // The newest sample at least kLoadWindowMs older than `now`, or the
  // oldest there is; nullptr when empty.
  const Sample* base(double now) const {
    const Sample* b = nullptr;
    for (int i = 0; i < len; ++i) {
      b = &ring[(head - 1 - i + kRing) % kRing];
      if (now - b->t_ms >= kLoadWindowMs) break;
    }
    return b;
  }
};

struct SamplerState {
  std::mutex mu;  // guards users, thread start/stop and the ring
  std::condition_variable cv;
  std::thread thread;
  int users = 0;
  bool stop = false;
  std::atomic<double> interval_ms{kDefaultIntervalMs};
  uint64_t interval_changes = 0;  // guarded by mu; wakes the thread
  Window process_window;  // process CPU time, every sample
  Window system_window;   // host CPU times, every read of them
  // The host figures of the last read (see kSystemCpuSpacingMs): when, and
  // the load computed then; NaN when never read or the last read failed.
  double sys_read_ms = NAN;
  SystemCpu sys{};
  double sys_load = NAN;
  uint64_t samples = 0, errors = 0;
  double peak_rss = NAN;  // highest RSS sampled; NaN until one is read
  // Static figures (see kStaticRefreshMs), guarded by sample_mu.
  double static_read_ms = NAN;  // when they were last read; NaN forces a read
  double cpus = NAN;
  std::mutex sample_mu;  // one sample at a time (thread vs sample_now)
  std::mutex life_mu;    // serialises start/stop, including the join
};

SamplerState& sampler() {
  static SamplerState* s = new SamplerState();  // leaked: see registry()
  return *s;
}

void store(int field, double v) {
  g_region.snapshot[field].store(v, std::memory_order_relaxed);
}

void take_sample(SamplerState& st) {
  std::lock_guard<std::mutex> lock(st.sample_mu);
  // A figure that could not be read is stored as NaN: unknown, never 0 and
  // never the last value read (see "Failure semantics" in the docs).
  uint64_t rss_bytes = 0;
  bool rss_ok = read_rss(&rss_bytes) == 0 && rss_bytes > 0;
  double rss = rss_ok ? static_cast<double>(rss_bytes) : NAN;
  CpuTimes cpu;
  bool cpu_ok = read_process_cpu(&cpu) == 0;
  // The host's CPU times at most every kSystemCpuSpacingMs; a failed read is
  // tried again at the next sample and leaves the figures unknown till then.
  bool sys_due = system_cpu_due(st.sys_read_ms, static_cast<double>(monotonic_ns()) / 1e6);
  bool sys_ok = true;
  SystemCpu sys;
  if (sys_due) sys_ok = read_system_cpu(&sys) == 0;
  bool failed = !rss_ok || !cpu_ok || !sys_ok;
  // Only the usage changes between samples; the limits are not sampled.
  uint64_t cg_bytes = 0;
  double cg_usage = read_cgroup_memory_usage(&cg_bytes) == 0 ? static_cast<double>(cg_bytes) : NAN;
  double now = static_cast<double>(monotonic_ns()) / 1e6;
  if (static_refresh_due(st.static_read_ms, now)) {
    st.cpus = static_cast<double>(cpu_count());
    st.static_read_ms = now;
  }
  uint64_t proc_us = cpu.user_us + cpu.system_us;

  // Loads over the window: compare with the newest reading at least a window
  // old, or the oldest one there is. A figure that could not be read joins
  // no window. Before the first delta, the host load is the average since
  // boot, which is a real (if coarse) figure, never 0.
  double proc_load = NAN, window = 0;
  if (cpu_ok) {
    if (const Sample* base = st.process_window.base(now)) {
      window = now - base->t_ms;
      if (window > 0) proc_load = static_cast<double>(proc_us - base->proc_us) / (window * 1000.0);
    }
    st.process_window.push(Sample{now, 0, 0, proc_us});
  }
  if (sys_due) {
    st.sys_load = NAN;
    st.sys_read_ms = NAN;
    if (sys_ok) {
      if (const Sample* base = st.system_window.base(now)) {
        uint64_t db = sys.busy_us - base->busy, di = sys.idle_us - base->idle;
        if (db + di > 0) st.sys_load = static_cast<double>(db) / static_cast<double>(db + di);
      }
      if (std::isnan(st.sys_load) && sys.busy_us + sys.idle_us > 0) {
        st.sys_load = static_cast<double>(sys.busy_us) / static_cast<double>(sys.busy_us + sys.idle_us);
      }
      st.system_window.push(Sample{now, sys.busy_us, sys.idle_us, 0});
      st.sys = sys;
      st.sys_read_ms = now;
    }
  }
  bool sys_known = !std::isnan(st.sys_read_ms);
  ++st.samples;
  if (failed) ++st.errors;
  // The highest RSS seen; NaN until one has been read.
  if (rss_ok && !(rss <= st.peak_rss)) st.peak_rss = rss;

  // Sequence lock: odd while writing; readers retry on odd or changed seq.
  double seq = g_region.snapshot[kSnapSeq].load(std::memory_order_relaxed);
  store(kSnapSeq, seq + 1);
  std::atomic_thread_fence(std::memory_order_release);
  store(kSnapTimestampMs, now);
  store(kSnapRss, rss);
  store(kSnapPeakRss, st.peak_rss);
  store(kSnapCpuUserUs, cpu_ok ? static_cast<double>(cpu.user_us) : NAN);
  store(kSnapCpuSystemUs, cpu_ok ? static_cast<double>(cpu.system_us) : NAN);
  store(kSnapSysBusyUs, sys_known ? static_cast<double>(st.sys.busy_us) : NAN);
  store(kSnapSysIdleUs, sys_known ? static_cast<double>(st.sys.idle_us) : NAN);
  store(kSnapSysLoad, sys_known ? st.sys_load : NAN);
  store(kSnapSysCpuMs, st.sys_read_ms);
  store(kSnapProcessLoad, proc_load);
  store(kSnapIntervalMs, st.interval_ms.load(std::memory_order_relaxed));
  store(kSnapSamples, static_cast<double>(st.samples));
  store(kSnapCgroupUsage, cg_usage);
  store(kSnapErrors, static_cast<double>(st.errors));
  store(kSnapCpuCount, st.cpus);
  store(kSnapLoadWindowMs, window);
  g_region.snapshot[kSnapSeq].store(seq + 2, std::memory_order_release);
}

// Marks the snapshot as no longer sampled, as one more sequence-locked
// write: `running` 0 and the momentary figures (RSS, the two loads) NaN, so
// that a reader still comparing against the snapshot sees "unknown" rather
// than a value that silently stops moving. Cumulative figures keep their
// last reading, which stays true as of its timestamp.
void mark_stopped(SamplerState& st) {
  std::lock_guard<std::mutex> lock(st.sample_mu);
  double seq = g_region.snapshot[kSnapSeq].load(std::memory_order_relaxed);
  store(kSnapSeq, seq + 1);
  std::atomic_thread_fence(std::memory_order_release);
  store(kSnapRss, NAN);
  store(kSnapSysLoad, NAN);
  store(kSnapProcessLoad, NAN);
  store(kSnapRunning, 0);
  store(kSnapStops, g_region.snapshot[kSnapStops].load(std::memory_order_relaxed) + 1);
  g_region.snapshot[kSnapSeq].store(seq + 2, std::memory_order_release);
}

void run(SamplerState* st) {
  using Clock = std::chrono::steady_clock;
  auto now_ns = [] {
    return static_cast<int64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
  };
  std::unique_lock<std::mutex> lock(st->mu);
  // Deadlines are absolute (see next_deadline_ns): the time a sample takes
  // and the wake-up latency do not add to the period.
  int64_t due = now_ns();
  while (!st->stop) {
    lock.unlock();
    take_sample(*st);
    lock.lock();
    // Wait for the next deadline. A new interval re-targets the wait (from
    // the deadline of this sample); a stop ends it.
    while (!st->stop) {
      uint64_t changes = st->interval_changes;
      int64_t interval = static_cast<int64_t>(st->interval_ms.load(std::memory_order_relaxed) * 1e6);
      int64_t next = next_deadline_ns(due, now_ns(), interval);
      Clock::time_point at{std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(next))};
      if (!st->cv.wait_until(lock, at, [st, changes] { return st->stop || st->interval_changes != changes; })) {
        due = next;
        break;  // due: take the next sample
      }
    }
  }
}

}  // namespace

void sampler_acquire() {
  SamplerState& st = sampler();
  std::lock_guard<std::mutex> life(st.life_mu);
  std::lock_guard<std::mutex> lock(st.mu);
  if (st.users++ > 0) return;
  st.stop = false;
  {
    std::lock_guard<std::mutex> sample(st.sample_mu);
    st.static_read_ms = NAN;  // read the static figures afresh at start
    st.sys_read_ms = NAN;     // and the host's CPU times
  }
  take_sample(st);
  store(kSnapRunning, 1);
  st.thread = std::thread(run, &st);
}

void sampler_release() {
  SamplerState& st = sampler();
  std::lock_guard<std::mutex> life(st.life_mu);
  std::thread to_join;
  {
    std::lock_guard<std::mutex> lock(st.mu);
    if (st.users == 0 || --st.users > 0) return;
    st.stop = true;
    to_join = std::move(st.thread);
  }
  st.cv.notify_all();
  if (to_join.joinable()) to_join.join();
  mark_stopped(st);
}

void sampler_set_interval(double ms) {
  if (!(ms >= kMinIntervalMs)) ms = kMinIntervalMs;
  if (ms > kMaxIntervalMs) ms = kMaxIntervalMs;
  SamplerState& st = sampler();
  {
    std::lock_guard<std::mutex> lock(st.mu);
    st.interval_ms.store(ms, std::memory_order_relaxed);
    ++st.interval_changes;
  }
  st.cv.notify_all();
  store(kSnapIntervalMs, ms);
}

void sampler_sample_now() { take_sample(sampler()); }

int sampler_users() {
  SamplerState& st = sampler();
  std::lock_guard<std::mutex> lock(st.mu);
  return st.users;
}

}  // namespace rg
