// Process-wide state of resource-guard: the sampler snapshot and the named
// byte budgets. Both live in one statically allocated region that every
// JavaScript environment (main thread and each worker) maps as an external
// ArrayBuffer, so hot reads and budget updates from JS need no native call.
// Nothing here includes a Node header.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

namespace rg {

// ---- snapshot -------------------------------------------------------------

// Indices into the snapshot, an array of doubles written by the sampler
// thread under a sequence lock: `seq` is odd while a write is in progress.
enum SnapshotField : int {
  kSnapSeq = 0,
  kSnapTimestampMs,   // monotonic_ns() in ms: the clock process.hrtime uses
  kSnapRss,           // bytes
  kSnapPeakRss,       // bytes, highest RSS this process reached
  kSnapCpuUserUs,     // process CPU time, user, microseconds
  kSnapCpuSystemUs,   // process CPU time, kernel, microseconds
  kSnapSysBusyUs,     // host CPU busy time, cumulative, microseconds
  kSnapSysIdleUs,     // host CPU idle time, cumulative, microseconds
  kSnapSysLoad,       // host CPU load 0..1 over the load window
  kSnapProcessLoad,   // process CPU time / wall time over the load window
  kSnapIntervalMs,    // current sampling interval
  kSnapSamples,       // samples taken since the sampler started
  kSnapCgroupUsage,   // cgroup memory usage in bytes, NaN when not in one
  kSnapErrors,        // samples in which a read failed
  kSnapCpuCount,      // logical CPUs online
  kSnapRunning,       // 1 while the sampler thread runs
  kSnapLoadWindowMs,  // the span the two load figures cover
  kSnapStops,         // times the thread stopped; each stop is one more
                      // sequence-locked write, so seq == 2 * (samples + stops)
  kSnapSysCpuMs,      // when the host CPU figures (busy, idle, load) were read
                      // (see kSystemCpuSpacingMs); NaN before the first read
  kSnapshotFieldCount
};
constexpr int kSnapshotSlots = 32;  // room to grow without moving budgets

// ---- budgets ----------------------------------------------------------------

constexpr int kMaxBudgets = 1024;
constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;
// Budgets whose limit fits in 32 bits keep their counter in the low word, so
// JS can update it with 32-bit Atomics (no BigInt); the high word stays 0.
constexpr uint64_t kNarrowMax = 0xFFFFFFFFull;

enum BudgetFlags : uint32_t {
  kBudgetActive = 1u << 0,
  kBudgetNarrow = 1u << 1,
  // Some handle opened the budget with leases (narrow budgets only): threads
  // may hold unused bytes of the counter in their ledger's lease word, so a
  // refusal first reclaims them and `used` is the counter minus the leases.
  kBudgetLeasing = 1u << 2,
};

// One budget, one cache line. JS reads and writes `used` and `peak` with
// Atomics and reads `limit` as a double.
struct alignas(64) BudgetSlot {
  std::atomic<uint64_t> used;       // word 0
  std::atomic<uint64_t> peak;       // word 1
  std::atomic<double> limit;        // word 2
  std::atomic<uint64_t> retired_successes;  // word 3: from closed environments
  std::atomic<uint64_t> retired_failures;   // word 4
  std::atomic<uint32_t> flags;      // word 5, low half
  std::atomic<uint32_t> generation; // word 5, high half: bumps on reuse
  // Word 6, low half: the limit again, as a 32-bit integer, for narrow
  // budgets (0 for wide ones). The JS hot path compares against this one: an
  // integer comparison is cheaper there than one against a double.
  std::atomic<uint32_t> limit32;
  uint32_t pad_;
  uint64_t reserved_;
};
static_assert(sizeof(BudgetSlot) == 64, "BudgetSlot must be one cache line");
static_assert(sizeof(std::atomic<uint64_t>) == 8 && std::atomic<uint64_t>::is_always_lock_free,
              "64-bit atomics must be lock-free");
static_assert(sizeof(std::atomic<double>) == 8 && std::atomic<double>::is_always_lock_free,
              "double atomics must be lock-free");

struct alignas(64) SharedRegion {
  std::atomic<double> snapshot[kSnapshotSlots];
  BudgetSlot budgets[kMaxBudgets];
};

// Byte offsets JS needs to build its typed-array views.
constexpr size_t kRegionSnapshotOffset = 0;
constexpr size_t kRegionBudgetsOffset = sizeof(std::atomic<double>) * kSnapshotSlots;
constexpr size_t kBudgetSlotBytes = sizeof(BudgetSlot);
constexpr size_t kBudgetLimit32Offset = offsetof(BudgetSlot, limit32);
static_assert(kBudgetLimit32Offset % 4 == 0, "limit32 must be 4-byte aligned for JS views");
constexpr size_t kBudgetFlagsOffset = offsetof(BudgetSlot, flags);
static_assert(kBudgetFlagsOffset % 4 == 0, "flags must be 4-byte aligned for JS views");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "32-bit atomics must be lock-free");

// What one environment (JS thread) holds. The owning thread writes it; any
// thread may read it for statistics. JS writes the doubles directly.
//
// `peak` is the highest value of the budget's counter that a reservation of
// this environment produced. Every new high of a counter is produced by one
// reservation, so the budget's peak is the largest of the slot's own `peak`
// (raised by native reservations and by environments that have settled) and
// the live ledgers' peaks. Keeping it here lets JS record a new high with a
// plain store instead of a compare-exchange loop on a shared word.
//
// A handle may instead own a *cell*: a held counter of its own, for bytes
// that only that handle may release (a LimitedAllocator's). What the
// environment holds on a slot is then `held[slot]` plus its cells on that
// slot. A cell is bound to one open handle: closing the handle gives back
// what the cell holds and frees it, so a slot whose last handle closes has
// no cells left.
//
// Leases (narrow budgets opened with `lease`): `lease[slot]` is a share of
// the budget's counter that this environment took ahead of need and has not
// handed to any reservation yet. The counter counts it; a reservation of
// this environment takes from it with a compare-exchange on this word alone,
// so threads on one budget do not contend on the counter's cache line. Any
// thread may take a lease back (an exchange to 0, under the registry mutex:
// budget_reclaim_leases); the owner only ever changes it with atomic
// operations. `pending[slot]` is written by the owner alone: bytes the
// counter counts that are, for the few instructions between two atomic
// operations, neither held nor in the lease (a refill on its way into the
// lease, or a give-back on its way out of it). Teardown gives back held +
// lease + pending, which is exactly what the environment added to the
// counter at any point where V8 can stop the thread.
constexpr int kMaxCells = 4096;
constexpr int kNoCell = -1;

struct alignas(64) Ledger {
  std::atomic<double> held[kMaxBudgets];
  std::atomic<double> successes[kMaxBudgets];
  std::atomic<double> failures[kMaxBudgets];
  std::atomic<double> peak[kMaxBudgets];
  std::atomic<double> cells[kMaxCells];  // held by the handle that owns the cell
  std::atomic<double> pending[kMaxBudgets];
  // On cache lines of its own (the struct is 64-byte aligned), so that other
  // environments' words never share a line with this one's.
  alignas(64) std::atomic<uint32_t> lease[kMaxBudgets];
  uint32_t opens[kMaxBudgets];  // handles this environment has open per slot
  int32_t cell_slot[kMaxCells];  // slot + 1 of the cell's handle; 0 when free
  int cells_used;                // cells in use
  int cell_hint;                 // where the search for a free cell starts
};

// The part of a Ledger that JS views: as one Float64Array, held, successes,
// failures and peak, kMaxBudgets doubles each, then kMaxCells cells, then
// pending (kMaxBudgets doubles); as a Uint32Array, the lease words.
constexpr size_t kLedgerArrays = 4;
constexpr size_t kLedgerDoubles = kLedgerArrays * kMaxBudgets + kMaxCells + kMaxBudgets;
constexpr size_t kLedgerPendingOffset = sizeof(double) * (kLedgerArrays * kMaxBudgets + kMaxCells);
constexpr size_t kLedgerLeaseOffset = offsetof(Ledger, lease);
constexpr size_t kLedgerViewBytes = kLedgerLeaseOffset + sizeof(std::atomic<uint32_t>) * kMaxBudgets;
static_assert(offsetof(Ledger, held) == 0 && offsetof(Ledger, cells) == kLedgerPendingOffset - sizeof(double) * kMaxCells &&
                  offsetof(Ledger, pending) == kLedgerPendingOffset,
              "JS views held, successes, failures, peak, the cells and pending as one array");
static_assert(kLedgerLeaseOffset % 64 == 0 && sizeof(std::atomic<uint32_t>) == 4,
              "JS views the lease words as a Uint32Array");
static_assert(std::atomic<double>::is_always_lock_free && sizeof(std::atomic<double>) == sizeof(double),
              "JS writes ledger doubles directly");

enum BudgetError : int {
  kBudgetOk = 0,
  kBudgetOverLimit = 1,       // reservation would exceed the limit
  kBudgetExceedsHeld = 2,     // release of more than this environment holds
  kBudgetNotFound = 3,        // no budget of that name and no limit to create it
  kBudgetLimitMismatch = 4,   // opened by name with a different limit
  kBudgetTooMany = 5,         // all kMaxBudgets slots in use
  kBudgetClosed = 6,          // slot not open in this environment
  kBudgetBelowUsage = 7,      // new limit is below what is reserved now
  kBudgetWidthChange = 8,     // new limit crosses the 32-bit boundary
  kBudgetBadSize = 9,         // size above 2^53 - 1
  kBudgetTooManyCells = 10,   // all kMaxCells cells of the environment in use
};

struct BudgetStats {
  uint64_t used = 0, peak = 0, limit = 0;
  uint64_t successes = 0, failures = 0;
  uint64_t leased = 0;  // counted by the counter but held by no reservation
  uint32_t open_handles = 0;
  bool narrow = false;
  std::string name;
};

SharedRegion& region();

// Environment lifecycle.
Ledger* ledger_attach();
// Releases every byte the environment still holds, folds its counts into the
// budgets' totals, closes its handles and frees the ledger.
void ledger_detach(Ledger* ledger);

// Open-or-create. With has_limit false, only an existing budget is opened.
// An empty name creates a private budget that no other open can find.
// With `cell_out`, the handle also gets a cell of its own (see Ledger), or
// nothing is opened (kBudgetTooManyCells).
// With `lease`, a narrow budget is marked as leasing (kBudgetLeasing); a wide
// one keeps its single counter.
int budget_open(Ledger* ledger, const std::string& name, bool has_limit, uint64_t limit,
                int* slot_out, int* cell_out = nullptr, bool lease = false);
// Closes a handle; `cell` is the handle's cell (kNoCell for none), whose
// bytes are given back now.
int budget_close(Ledger* ledger, int slot, int cell = kNoCell);
// Reserve and release count against `cell` when one is given, else against
// the environment's `held[slot]`; a release is limited to what that holds.
int budget_reserve(Ledger* ledger, int slot, uint64_t bytes, int cell = kNoCell);
int budget_release(Ledger* ledger, int slot, uint64_t bytes, int cell = kNoCell);
// What `cell` holds, or with kNoCell what the environment holds on the slot
// (its cells included).
int budget_held(Ledger* ledger, int slot, int cell, double* out);
// Lowering takes every environment's lease back before it compares usage.
int budget_set_limit(Ledger* ledger, int slot, uint64_t limit);
// Takes back every environment's lease on the slot (this one's included) and
// gives it to the counter; `out` (optional) gets the bytes taken back.
int budget_reclaim_leases(Ledger* ledger, int slot, uint64_t* out);
// Bytes reserved now: the counter less the leases (exact when no reservation
// is under way; the counter itself when the budget is not leasing).
int budget_used(Ledger* ledger, int slot, uint64_t* out);
int budget_stats(Ledger* ledger, int slot, BudgetStats* out);
// The budget's peak, process-wide (see Ledger::peak).
int budget_peak(Ledger* ledger, int slot, uint64_t* out);
// Number of budgets in use (for tests and diagnostics).
int budget_count();

// ---- sampler ----------------------------------------------------------------

constexpr double kDefaultIntervalMs = 10;
constexpr double kMinIntervalMs = 1;
constexpr double kMaxIntervalMs = 60000;

// Figures that (almost) never change -- the number of CPUs online -- are
// read when the sampler starts and then at most every kStaticRefreshMs,
// not every interval: reading them costs an open, a read and a close each.
// The cgroup's memory limit and CPU quota are not sampled at all (only the
// usage, from a kept-open file); readCgroup() reads them fresh on demand.
constexpr double kStaticRefreshMs = 5000;

// Whether static figures last read at `last_ms` (NaN: never) are due again
// at `now_ms`. A clock that moved backwards also makes them due.
inline bool static_refresh_due(double last_ms, double now_ms) {
  return !(now_ms - last_ms < kStaticRefreshMs) || now_ms < last_ms;
}

// The host's CPU times (/proc/stat on Linux) are counted in clock ticks of
// 10 ms (USER_HZ) and feed a load over a one-second window, so reading them
// every sample at short intervals adds cost and no information: the
// sampler reads them at most every kSystemCpuSpacingMs (a failed read is
// retried at the next sample), and between reads the snapshot keeps the
// figures of the last read, timestamped by kSnapSysCpuMs. Reading the file
// is the largest part of an idle sample's own cost.
constexpr double kSystemCpuSpacingMs = 100;

// Whether host CPU figures last read at `last_ms` (NaN: never, or the last
// read failed) are due again at `now_ms`. A clock that moved backwards also
// makes them due.
inline bool system_cpu_due(double last_ms, double now_ms) {
  return !(now_ms - last_ms < kSystemCpuSpacingMs) || now_ms < last_ms;
}

// The sampler runs on a grid of absolute deadlines: the sample after the one
// due at `due_ns` is due one interval later, however long that sample took.
// When the thread wakes so late that this deadline has passed (a stall), the
// missed samples are skipped rather than taken in a burst: the next deadline
// is the first point of the same grid at or after `now_ns`.
inline int64_t next_deadline_ns(int64_t due_ns, int64_t now_ns, int64_t interval_ns) {
  if (interval_ns < 1) interval_ns = 1;
  int64_t next = due_ns + interval_ns;
  if (next >= now_ns) return next;
  int64_t behind = now_ns - next;
  return next + ((behind + interval_ns - 1) / interval_ns) * interval_ns;
}

// The first acquire starts the sampler thread (after one synchronous sample,
// so the snapshot is valid on return); the last release stops and joins it.
void sampler_acquire();
void sampler_release();
void sampler_set_interval(double ms);
// Takes one sample on the calling thread, as the sampler thread would.
void sampler_sample_now();
int sampler_users();

}  // namespace rg
