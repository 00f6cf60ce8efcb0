// Machine-wide byte budgets: one counter shared by every process of the same
// user that opens the same name, kept in a small file in a memory-backed
// directory (/dev/shm) that each process maps.
//
// The file holds a header (limit, used, peak, counts, a lock word) and a
// table of process entries, each what one process holds. A process holds an
// open-file-description lock (F_OFD_SETLK) on the first byte of its entry
// for as long as it has the budget open; the kernel drops it when the
// process ends, however it ends (exit, SIGKILL, the OOM killer). So an entry
// whose byte is not locked has no live holder, whatever pid namespace,
// hidden /proc or pid reuse is involved, and a live holder's entry is never
// taken for a dead one's.
//
// Every change to the counter happens under the lock word and updates the
// process's entry and the counter together; `used` is therefore always the
// sum of the entries. The lock word holds its holder's token (entry index +
// 1): a locker that finds the token's entry unlocked takes the lock over and
// recomputes `used` from the entries, which repairs an update the holder
// died in the middle of. Nothing the file holds is handed to the C library,
// and an access past the end of a file shortened under the mapping is caught
// (SIGBUS), so a damaged file makes calls fail with an error, never crash.
// What a dead process held is given back by whoever next opens the budget,
// by a reservation that would otherwise be refused, and by the periodic
// check (machine_reclaim_all).
//
// Supported on Linux (open-file-description locks); elsewhere machine_open
// answers kMachineUnsupported. Nothing here includes a Node header.
#pragma once

#include <cstdint>
#include <string>

namespace rg {

enum MachineError : int {
  kMachineOk = 0,
  kMachineOverLimit = 1,     // the reservation would pass the limit
  kMachineExceedsHeld = 2,   // release of more than the caller holds
  kMachineNotFound = 3,      // no budget of that name and no limit to create it
  kMachineLimitMismatch = 4, // opened with a limit other than the budget's
  kMachineFull = 5,          // every process entry is taken by a live process
  kMachineClosed = 6,        // the handle is not open
  kMachineBelowUsage = 7,    // new limit below what is reserved now
  kMachineBadName = 8,       // a name that is not a plain file name
  kMachineForeign = 9,       // the file belongs to another user, is not private
                             // to its owner, or is not a regular file
  kMachineCorrupt = 10,      // wrong magic, version, size or contents
  kMachineUnsupported = 11,  // not available on this platform
  kMachineIo = 12,           // the directory or file could not be used (errno)
  kMachineLockTimeout = 13,  // the lock stayed taken for kMachineLockTimeoutMs
  kMachineLost = 14,         // this process's entry was taken from it
};

// How many processes one budget's file holds at once.
constexpr int kMachineMaxProcesses = 256;
// A reservation that would be refused first gives back what dead processes
// held, at most once per this many milliseconds across all processes; so a
// dead process's bytes are available to the next reservation that needs them
// at most this long after the process ended.
constexpr int64_t kMachineReclaimSpacingMs = 1;
// How long a lock is waited for before the budget is reported unusable.
constexpr int64_t kMachineLockTimeoutMs = 2000;

struct MachineStats {
  uint64_t used = 0, peak = 0, limit = 0;
  uint64_t successes = 0, failures = 0;
  uint64_t reclaimed_bytes = 0;      // bytes given back for dead processes
  uint64_t reclaimed_processes = 0;  // dead processes whose entries were freed
  uint32_t holders = 0;              // processes with the budget open
  uint64_t process_held = 0;         // bytes this process holds
};

struct MachineMapping;  // one per budget file per process

// The file's name in `dir` for budget `name`: "rg-<uid>-<name>.budget". A
// name must be 1 to 100 characters of A-Z a-z 0-9 . _ - and not start with
// a dot.
bool machine_name_valid(const std::string& name);

// Opens (with has_limit, creates) the budget `name` in directory `dir`.
// On success *out is this process's mapping, shared by every open in the
// process (each open takes a reference). On kMachineIo, *sys_errno says why.
// On kMachineLimitMismatch, *existing_limit is the budget's limit.
int machine_open(const std::string& dir, const std::string& name, bool has_limit, uint64_t limit,
                 MachineMapping** out, int* sys_errno, uint64_t* existing_limit);
// Drops a reference. The last one frees this process's entry (giving back
// anything it still holds) and, when no process has the budget open any
// more, removes the file.
void machine_unref(MachineMapping* m);

// Reserve and release count in this process's entry. Callers keep track of
// who in the process holds what; a release is limited to the entry.
int machine_reserve(MachineMapping* m, uint64_t bytes, uint64_t* used_after);
int machine_release(MachineMapping* m, uint64_t bytes, uint64_t* used_after);
// For a release that could not be made (the lock stayed taken): the
// periodic check (machine_reclaim_all) gives the bytes back.
void machine_defer_release(MachineMapping* m, uint64_t bytes);
int machine_set_limit(MachineMapping* m, uint64_t limit);
int machine_stats(MachineMapping* m, MachineStats* out);
// Read without the lock.
uint64_t machine_used(const MachineMapping* m);
uint64_t machine_limit(const MachineMapping* m);
// Whether the mapping was found stale (its file removed, replaced or
// shortened, or its entry taken), was shortened under it, or no longer holds
// a budget's header; its operations fail with kMachineLost. Call it after
// reading a figure without the lock, to know whether the figure stands.
bool machine_lost(const MachineMapping* m);
// Gives back what dead processes held; *reclaimed counts the processes.
int machine_reclaim(MachineMapping* m, int* reclaimed);
// The periodic check, for every budget this process has open: marks stale
// mappings, gives back deferred releases and what dead processes held. It
// never waits for a lock a live process holds.
void machine_reclaim_all();
// The directory used when none is given: /dev/shm where it exists.
std::string machine_default_dir();

}  // namespace rg
