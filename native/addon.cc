// The only file that knows about Node: exposes the core (native/core) to JS.
//
// Per-environment state (one per JS thread: the main thread and each worker)
// lives in the Addon instance. Its teardown runs from an environment cleanup
// hook and from the instance-data finalizer, whichever comes first; the
// second call is a no-op. Teardown gives back every budget byte the
// environment still holds and releases its use of the sampler thread, so a
// worker that exits, crashes or is terminated leaks nothing.
//
// Argument checks here are a last line of defence so that nothing JS passes
// can crash the process; the friendly validation happens in TypeScript.
#include <napi.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/machine.h"
#include "core/platform.h"
#include "core/shared.h"

namespace {

Napi::Error TypeErr(Napi::Env env, const char* message) {
  Napi::Error err = Napi::TypeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_INVALID_ARG_TYPE"));
  return err;
}

Napi::Error RangeErr(Napi::Env env, const char* message) {
  Napi::Error err = Napi::RangeError::New(env, message);
  err.Set("code", Napi::String::New(env, "ERR_OUT_OF_RANGE"));
  return err;
}

// A byte count: a finite, non-negative integer no larger than 2^53 - 1.
uint64_t ArgBytes(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) throw TypeErr(info.Env(), what);
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v > static_cast<double>(rg::kMaxSafeInteger) || std::floor(v) != v) {
    throw RangeErr(info.Env(), what);
  }
  return static_cast<uint64_t>(v);
}

int ArgSlot(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw TypeErr(info.Env(), "budget slot must be a number");
  double v = info[0].As<Napi::Number>().DoubleValue();
  if (!(v >= 0) || v >= rg::kMaxBudgets || std::floor(v) != v) {
    throw RangeErr(info.Env(), "budget slot out of range");
  }
  return static_cast<int>(v);
}

// An optional cell index (argument i): undefined for none.
int ArgCell(const Napi::CallbackInfo& info, size_t i) {
  if (info.Length() <= i || info[i].IsUndefined()) return rg::kNoCell;
  if (!info[i].IsNumber()) throw TypeErr(info.Env(), "budget cell must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (!(v >= rg::kNoCell) || v >= rg::kMaxCells || std::floor(v) != v) {
    throw RangeErr(info.Env(), "budget cell out of range");
  }
  return static_cast<int>(v);
}

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) : env_(env) {
    ledger_ = rg::ledger_attach();
    if (ledger_ == nullptr) throw Napi::Error::New(env, "resource-guard: out of memory");
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    DefineAddon(exports, {
        InstanceMethod("layout", &Addon::Layout),
        InstanceMethod("sharedRegion", &Addon::SharedRegion),
        InstanceMethod("ledgerBuffer", &Addon::LedgerBuffer),
        InstanceMethod("startSampler", &Addon::StartSampler),
        InstanceMethod("stopSampler", &Addon::StopSampler),
        InstanceMethod("setSamplerInterval", &Addon::SetSamplerInterval),
        InstanceMethod("sampleNow", &Addon::SampleNow),
        InstanceMethod("copySnapshot", &Addon::CopySnapshot),
        InstanceMethod("samplerUsers", &Addon::SamplerUsers),
        InstanceMethod("readRss", &Addon::ReadRss),
        InstanceMethod("readPeakRss", &Addon::ReadPeakRss),
        InstanceMethod("readProcessCpu", &Addon::ReadProcessCpu),
        InstanceMethod("readSystemCpu", &Addon::ReadSystemCpu),
        InstanceMethod("cpuCount", &Addon::CpuCount),
        InstanceMethod("readSystemMemory", &Addon::ReadSystemMemory),
        InstanceMethod("readCgroup", &Addon::ReadCgroup),
        InstanceMethod("readPsi", &Addon::ReadPsi),
        InstanceMethod("readDisk", &Addon::ReadDisk),
        InstanceMethod("diskOpen", &Addon::DiskOpen),
        InstanceMethod("diskRead", &Addon::DiskRead),
        InstanceMethod("diskClose", &Addon::DiskClose),
        InstanceMethod("monotonicMs", &Addon::MonotonicMs),
        InstanceMethod("budgetOpen", &Addon::BudgetOpen),
        InstanceMethod("budgetClose", &Addon::BudgetClose),
        InstanceMethod("budgetReserve", &Addon::BudgetReserve),
        InstanceMethod("budgetRelease", &Addon::BudgetRelease),
        InstanceMethod("budgetSetLimit", &Addon::BudgetSetLimit),
        InstanceMethod("budgetStats", &Addon::BudgetStats),
        InstanceMethod("budgetPeak", &Addon::BudgetPeak),
        InstanceMethod("budgetHeld", &Addon::BudgetHeld),
        InstanceMethod("budgetCount", &Addon::BudgetCount),
        InstanceMethod("budgetReclaimLeases", &Addon::BudgetReclaimLeases),
        InstanceMethod("budgetUsed", &Addon::BudgetUsed),
        InstanceMethod("machineOpen", &Addon::MachineOpen),
        InstanceMethod("machineClose", &Addon::MachineClose),
        InstanceMethod("machineReserve", &Addon::MachineReserve),
        InstanceMethod("machineRelease", &Addon::MachineRelease),
        InstanceMethod("machineSetLimit", &Addon::MachineSetLimit),
        InstanceMethod("machineStats", &Addon::MachineStats),
        InstanceMethod("machineUsed", &Addon::MachineUsed),
        InstanceMethod("machineLimit", &Addon::MachineLimit),
        InstanceMethod("machineHeld", &Addon::MachineHeld),
        InstanceMethod("machineReclaim", &Addon::MachineReclaim),
        InstanceMethod("machineDefaultDir", &Addon::MachineDefaultDir),
        InstanceMethod("machineErrno", &Addon::MachineErrno),
        InstanceMethod("machineExistingLimit", &Addon::MachineExistingLimit),
    });
  }

  ~Addon() { Teardown(); }

 private:
  static void CleanupHook(void* self) { static_cast<Addon*>(self)->Teardown(); }

  void Teardown() {
    if (torn_down_) return;
    torn_down_ = true;
    // Safe whether or not the hook has run (or is running now).
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    while (sampler_holds_ > 0) {
      --sampler_holds_;
      rg::sampler_release();
    }
    rg::ledger_detach(ledger_);
    ledger_ = nullptr;
    for (size_t i = 0; i < machines_.size(); ++i) {
      if (machines_[i].map != nullptr) CloseMachine(i);
    }
    machines_.clear();
    for (const Disk& d : disks_) {
      if (d.fd >= 0) rg::disk_close(d.fd);
    }
    disks_.clear();
  }

  // Disk handles are per environment: an index into disks_, -1 once closed.
  int ArgDisk(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw TypeErr(info.Env(), "disk handle must be a number");
    double v = info[0].As<Napi::Number>().DoubleValue();
    if (!(v >= 0) || v >= static_cast<double>(disks_.size()) || std::floor(v) != v || disks_[static_cast<size_t>(v)].fd < 0) {
      throw RangeErr(info.Env(), "disk handle is not open");
    }
    return static_cast<int>(v);
  }

  // diskOpen(path) -> handle (>= 0) or -errno.
  Napi::Value DiskOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw TypeErr(env, "path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    if (path.find('\0') != std::string::npos) return Napi::Number::New(env, -ENOENT);
    Disk d;
    int err = rg::disk_open(path.c_str(), &d.fd);
    if (err != 0) return Napi::Number::New(env, -err);
    // Remembered once, so that each checked read costs one stat of the path.
    err = rg::disk_identity(d.fd, &d.id);
    if (err != 0) {
      rg::disk_close(d.fd);
      return Napi::Number::New(env, -err);
    }
    for (size_t i = 0; i < disks_.size(); ++i) {
      if (disks_[i].fd < 0) {
        disks_[i] = d;
        return Napi::Number::New(env, static_cast<double>(i));
      }
    }
    disks_.push_back(d);
    return Napi::Number::New(env, static_cast<double>(disks_.size() - 1));
  }

  // diskRead(handle, Float64Array[3], path?) -> 0, errno, or -1. With a
  // path it first checks that the kept directory is still the one the path
  // names (rg::disk_check): -1 means it was removed or replaced (the caller
  // reopens), a positive errno that the path cannot be looked up; in both
  // cases `out` is left as it was.
  Napi::Value DiskRead(const Napi::CallbackInfo& info) {
    int h = ArgDisk(info);
    double* out = ArgOut(info, 1, 3);
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      char buf[1024];
      std::vector<char> heap;
      const char* path = nullptr;
      if (!ArgPath(info, 2, &heap, buf, &path)) return Napi::Number::New(info.Env(), ENOENT);
      int check = rg::disk_check(path, disks_[static_cast<size_t>(h)].id);
      if (check == rg::kDiskReplaced) return Napi::Number::New(info.Env(), -1);
      if (check != 0 && check != ENOSYS) return Napi::Number::New(info.Env(), check);
    }
    rg::DiskInfo d;
    int err = rg::read_disk_handle(disks_[static_cast<size_t>(h)].fd, &d);
    if (err == 0) {
      out[0] = static_cast<double>(d.total);
      out[1] = static_cast<double>(d.free);
      out[2] = static_cast<double>(d.available);
    }
    return Napi::Number::New(info.Env(), err);
  }

  Napi::Value DiskClose(const Napi::CallbackInfo& info) {
    int h = ArgDisk(info);
    rg::disk_close(disks_[static_cast<size_t>(h)].fd);
    disks_[static_cast<size_t>(h)].fd = -1;
    return info.Env().Undefined();
  }

  Napi::Value Layout(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("snapshotSlots", rg::kSnapshotSlots);
    o.Set("snapshotFieldCount", static_cast<int>(rg::kSnapshotFieldCount));
    o.Set("budgetsOffset", static_cast<double>(rg::kRegionBudgetsOffset));
    o.Set("budgetSlotBytes", static_cast<double>(rg::kBudgetSlotBytes));
    o.Set("budgetLimit32Offset", static_cast<double>(rg::kBudgetLimit32Offset));
    o.Set("budgetFlagsOffset", static_cast<double>(rg::kBudgetFlagsOffset));
    o.Set("ledgerDoubles", static_cast<double>(rg::kLedgerDoubles));
    o.Set("ledgerPendingOffset", static_cast<double>(rg::kLedgerPendingOffset));
    o.Set("ledgerLeaseOffset", static_cast<double>(rg::kLedgerLeaseOffset));
    o.Set("ledgerBytes", static_cast<double>(rg::kLedgerViewBytes));
    o.Set("maxCells", static_cast<double>(rg::kMaxCells));
    o.Set("maxBudgets", rg::kMaxBudgets);
    o.Set("regionBytes", static_cast<double>(sizeof(rg::SharedRegion)));
    o.Set("flagActive", static_cast<double>(rg::kBudgetActive));
    o.Set("flagNarrow", static_cast<double>(rg::kBudgetNarrow));
    o.Set("flagLeasing", static_cast<double>(rg::kBudgetLeasing));
    o.Set("platform", rg::platform_name());
    return o;
  }

  // Wraps process-wide memory for this environment. Returns null where the
  // runtime refuses external buffers (Electron's V8 sandbox); JS then falls
  // back to copying calls.
  Napi::Value External(Napi::Env env, void* data, size_t bytes) {
    napi_value result;
    napi_status status = napi_create_external_arraybuffer(env, data, bytes, nullptr, nullptr, &result);
    if (status != napi_ok) {
      // Clear any pending exception left by the refusal.
      bool pending = false;
      if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      return env.Null();
    }
    return Napi::Value(env, result);
  }

  Napi::Value SharedRegion(const Napi::CallbackInfo& info) {
    if (std::getenv("RESOURCE_GUARD_NO_EXTERNAL_BUFFERS") != nullptr) return info.Env().Null();
    return External(info.Env(), &rg::region(), sizeof(rg::SharedRegion));
  }

  Napi::Value LedgerBuffer(const Napi::CallbackInfo& info) {
    if (std::getenv("RESOURCE_GUARD_NO_EXTERNAL_BUFFERS") != nullptr) return info.Env().Null();
    // held, successes, failures and peak (four arrays of doubles, back to
    // back), then the cells and pending; then the lease words.
    return External(info.Env(), ledger_, rg::kLedgerViewBytes);
  }

  Napi::Value StartSampler(const Napi::CallbackInfo& info) {
    // Each call is one hold (JS keeps one per owner: the application's and
    // each guard's); the environment's teardown gives back what is left.
    rg::sampler_acquire();
    ++sampler_holds_;
    return info.Env().Undefined();
  }

  Napi::Value StopSampler(const Napi::CallbackInfo& info) {
    if (sampler_holds_ > 0) {
      --sampler_holds_;
      rg::sampler_release();
    }
    return info.Env().Undefined();
  }

  Napi::Value SetSamplerInterval(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw TypeErr(info.Env(), "interval must be a number");
    double ms = info[0].As<Napi::Number>().DoubleValue();
    if (!(ms >= rg::kMinIntervalMs && ms <= rg::kMaxIntervalMs)) {
      throw RangeErr(info.Env(), "interval out of range");
    }
    rg::sampler_set_interval(ms);
    return info.Env().Undefined();
  }

  Napi::Value SampleNow(const Napi::CallbackInfo& info) {
    rg::sampler_sample_now();
    return info.Env().Undefined();
  }

  // Copies a consistent snapshot into a Float64Array (fallback path).
  Napi::Value CopySnapshot(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) {
      throw TypeErr(info.Env(), "expected a Float64Array");
    }
    Napi::Float64Array out = info[0].As<Napi::Float64Array>();
    size_t n = std::min<size_t>(out.ElementLength(), rg::kSnapshotSlots);
    auto& snap = rg::region().snapshot;
    // The sampler holds the sequence odd only for a few stores; if it was
    // descheduled mid-write, yield to it rather than spin.
    for (int attempt = 0;; ++attempt) {
      double seq = snap[rg::kSnapSeq].load(std::memory_order_acquire);
      if (static_cast<uint64_t>(seq) % 2 == 0) {
        for (size_t i = 0; i < n; ++i) out[i] = snap[i].load(std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_acquire);
        if (snap[rg::kSnapSeq].load(std::memory_order_relaxed) == seq) break;
      }
      if (attempt % 16 == 15) std::this_thread::yield();
    }
    return info.Env().Undefined();
  }

  Napi::Value SamplerUsers(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), rg::sampler_users());
  }

  // Fresh reads return the value, or -errno on failure, so a hot caller pays
  // for no object allocation.
  Napi::Value ReadRss(const Napi::CallbackInfo& info) {
    uint64_t v = 0;
    int err = rg::read_rss(&v);
    return Napi::Number::New(info.Env(), err ? -static_cast<double>(err) : static_cast<double>(v));
  }

  Napi::Value ReadPeakRss(const Napi::CallbackInfo& info) {
    uint64_t v = 0;
    int err = rg::read_peak_rss(&v);
    return Napi::Number::New(info.Env(), err ? -static_cast<double>(err) : static_cast<double>(v));
  }

  // The data of a Float64Array argument with at least min_len elements. One
  // napi_get_typedarray_info call: these reads are hot, and each wrapper
  // accessor of node-addon-api would make its own.
  static double* ArgOut(const Napi::CallbackInfo& info, size_t i, size_t min_len) {
    napi_env env = info.Env();
    if (info.Length() > i) {
      napi_value v = info[i];
      bool typed = false;
      napi_typedarray_type type;
      size_t length = 0;
      void* data = nullptr;
      if (napi_is_typedarray(env, v, &typed) == napi_ok && typed &&
          napi_get_typedarray_info(env, v, &type, &length, &data, nullptr, nullptr) == napi_ok &&
          type == napi_float64_array && length >= min_len && data != nullptr) {
        return static_cast<double*>(data);
      }
    }
    throw TypeErr(info.Env(), "expected a Float64Array large enough for the result");
  }

  // A path argument, NUL-terminated, in `buf` with one N-API call when it
  // fits (the common case), else through a std::string. Returns false when it
  // contains a NUL byte (no such path can exist).
  static bool ArgPath(const Napi::CallbackInfo& info, size_t i, std::vector<char>* heap, char (&buf)[1024],
                      const char** out) {
    if (info.Length() <= i || !info[i].IsString()) throw TypeErr(info.Env(), "path must be a string");
    size_t copied = 0;
    if (napi_get_value_string_utf8(info.Env(), info[i], buf, sizeof buf, &copied) == napi_ok &&
        copied + 4 < sizeof buf) {  // a multi-byte character may have been cut short of the end
      *out = buf;
      return memchr(buf, '\0', copied) == nullptr;
    }
    std::string path = info[i].As<Napi::String>().Utf8Value();
    heap->assign(path.c_str(), path.c_str() + path.size() + 1);
    *out = heap->data();
    return path.find('\0') == std::string::npos;
  }

  Napi::Value ReadProcessCpu(const Napi::CallbackInfo& info) {
    double* out = ArgOut(info, 0, 2);
    rg::CpuTimes t;
    int err = rg::read_process_cpu(&t);
    if (err == 0) {
      out[0] = static_cast<double>(t.user_us);
      out[1] = static_cast<double>(t.system_us);
    }
    return Napi::Number::New(info.Env(), err);
  }

  Napi::Value ReadSystemCpu(const Napi::CallbackInfo& info) {
    double* out = ArgOut(info, 0, 2);
    rg::SystemCpu t;
    int err = rg::read_system_cpu(&t);
    if (err == 0) {
      out[0] = static_cast<double>(t.busy_us);
      out[1] = static_cast<double>(t.idle_us);
    }
    return Napi::Number::New(info.Env(), err);
  }

  Napi::Value CpuCount(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), rg::cpu_count()); }

  Napi::Value ReadSystemMemory(const Napi::CallbackInfo& info) {
    double* out = ArgOut(info, 0, 2);
    rg::SystemMemory m;
    int err = rg::read_system_memory(&m);
    if (err == 0) {
      out[0] = static_cast<double>(m.total);
      out[1] = static_cast<double>(m.available);
    }
    return Napi::Number::New(info.Env(), err);
  }

  Napi::Value ReadCgroup(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    rg::CgroupInfo c;
    int err = rg::read_cgroup(&c);
    Napi::Object o = Napi::Object::New(env);
    o.Set("errno", err);
    o.Set("version", c.version);
    o.Set("memoryLimit", c.has_memory_limit ? Napi::Value(Napi::Number::New(env, static_cast<double>(c.memory_limit))) : env.Null());
    o.Set("memoryUsage", c.has_memory_usage ? Napi::Value(Napi::Number::New(env, static_cast<double>(c.memory_usage))) : env.Null());
    o.Set("cpuQuota", c.has_cpu_quota ? Napi::Value(Napi::Number::New(env, c.cpu_quota)) : env.Null());
    return o;
  }

  Napi::Value ReadPsi(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw TypeErr(env, "resource must be 'memory', 'cpu' or 'io'");
    std::string which = info[0].As<Napi::String>().Utf8Value();
    rg::PsiResource r;
    if (which == "memory") r = rg::PsiResource::memory;
    else if (which == "cpu") r = rg::PsiResource::cpu;
    else if (which == "io") r = rg::PsiResource::io;
    else throw TypeErr(env, "resource must be 'memory', 'cpu' or 'io'");
    rg::PsiInfo p;
    int err = rg::read_psi(r, &p);
    if (err != 0) return Napi::Number::New(env, err);
    Napi::Object o = Napi::Object::New(env);
    Napi::Object some = Napi::Object::New(env);
    some.Set("avg10", p.some_avg10);
    some.Set("avg60", p.some_avg60);
    some.Set("avg300", p.some_avg300);
    some.Set("totalUs", static_cast<double>(p.some_total_us));
    o.Set("some", some);
    if (p.has_full) {
      Napi::Object full = Napi::Object::New(env);
      full.Set("avg10", p.full_avg10);
      full.Set("avg60", p.full_avg60);
      full.Set("avg300", p.full_avg300);
      full.Set("totalUs", static_cast<double>(p.full_total_us));
      o.Set("full", full);
    } else {
      o.Set("full", env.Null());
    }
    return o;
  }

  // readDisk(path, Float64Array[3]) -> 0 or errno (ENOENT, ENOTDIR, ...).
  Napi::Value ReadDisk(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    char buf[1024];
    std::vector<char> heap;
    const char* path = nullptr;
    bool valid = ArgPath(info, 0, &heap, buf, &path);
    double* out = ArgOut(info, 1, 3);
    if (!valid) return Napi::Number::New(env, ENOENT);
    rg::DiskInfo d;
    int err = rg::read_disk(path, &d);
    if (err == 0) {
      out[0] = static_cast<double>(d.total);
      out[1] = static_cast<double>(d.free);
      out[2] = static_cast<double>(d.available);
    }
    return Napi::Number::New(env, err);
  }

  Napi::Value MonotonicMs(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(rg::monotonic_ns()) / 1e6);
  }

  // budgetOpen(name, limit | undefined, withCell?, lease?) -> slot (>= 0) or
  // -BudgetError. With a cell: slot + kMaxBudgets * (cell + 1).
  Napi::Value BudgetOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) throw TypeErr(env, "budget name must be a string");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    bool has_limit = info.Length() > 1 && !info[1].IsUndefined();
    uint64_t limit = has_limit ? ArgBytes(info, 1, "limit must be an integer from 0 to 2^53 - 1") : 0;
    bool with_cell = info.Length() > 2 && info[2].ToBoolean().Value();
    int slot = -1;
    int cell = rg::kNoCell;
    bool lease = info.Length() > 3 && info[3].ToBoolean().Value();
    int err = rg::budget_open(ledger_, name, has_limit, limit, &slot, with_cell ? &cell : nullptr, lease);
    if (err != 0) return Napi::Number::New(env, -err);
    return Napi::Number::New(env, static_cast<double>(slot) + static_cast<double>(rg::kMaxBudgets) * (cell + 1));
  }

  // budgetClose(slot, cell?) -> BudgetError
  Napi::Value BudgetClose(const Napi::CallbackInfo& info) {
    int slot = ArgSlot(info);
    return Napi::Number::New(info.Env(), rg::budget_close(ledger_, slot, ArgCell(info, 1)));
  }

  // budgetReserve(slot, bytes, cell?) -> BudgetError
  Napi::Value BudgetReserve(const Napi::CallbackInfo& info) {
    int slot = ArgSlot(info);
    uint64_t bytes = ArgBytes(info, 1, "bytes must be an integer from 0 to 2^53 - 1");
    return Napi::Number::New(info.Env(), rg::budget_reserve(ledger_, slot, bytes, ArgCell(info, 2)));
  }

  // budgetRelease(slot, bytes, cell?) -> BudgetError
  Napi::Value BudgetRelease(const Napi::CallbackInfo& info) {
    int slot = ArgSlot(info);
    uint64_t bytes = ArgBytes(info, 1, "bytes must be an integer from 0 to 2^53 - 1");
    return Napi::Number::New(info.Env(), rg::budget_release(ledger_, slot, bytes, ArgCell(info, 2)));
  }

  // budgetHeld(slot, cell?) -> bytes held, or a negative error code.
  Napi::Value BudgetHeld(const Napi::CallbackInfo& info) {
    int slot = ArgSlot(info);
    double held = 0;
    int err = rg::budget_held(ledger_, slot, ArgCell(info, 1), &held);
    return Napi::Number::New(info.Env(), err != 0 ? -static_cast<double>(err) : held);
  }

  Napi::Value BudgetSetLimit(const Napi::CallbackInfo& info) {
    int slot = ArgSlot(info);
    uint64_t limit = ArgBytes(info, 1, "limit must be an integer from 0 to 2^53 - 1");
    return Napi::Number::New(info.Env(), rg::budget_set_limit(ledger_, slot, limit));
  }

  Napi::Value BudgetStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    rg::BudgetStats s;
    int err = rg::budget_stats(ledger_, ArgSlot(info), &s);
    if (err != 0) return Napi::Number::New(env, err);
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", s.name);
    o.Set("used", static_cast<double>(s.used));
    o.Set("peak", static_cast<double>(s.peak));
    o.Set("limit", static_cast<double>(s.limit));
    o.Set("successes", static_cast<double>(s.successes));
    o.Set("failures", static_cast<double>(s.failures));
    o.Set("leased", static_cast<double>(s.leased));
    o.Set("openHandles", static_cast<double>(s.open_handles));
    o.Set("narrow", s.narrow);
    return o;
  }

  // The process-wide peak, or a negative error code.
  Napi::Value BudgetPeak(const Napi::CallbackInfo& info) {
    uint64_t peak = 0;
    int err = rg::budget_peak(ledger_, ArgSlot(info), &peak);
    return Napi::Number::New(info.Env(), err != 0 ? -static_cast<double>(err) : static_cast<double>(peak));
  }

  // budgetReclaimLeases(slot) -> bytes taken back from every environment's
  // lease, or a negative error code.
  Napi::Value BudgetReclaimLeases(const Napi::CallbackInfo& info) {
    uint64_t got = 0;
    int err = rg::budget_reclaim_leases(ledger_, ArgSlot(info), &got);
    return Napi::Number::New(info.Env(), err != 0 ? -static_cast<double>(err) : static_cast<double>(got));
  }

  // budgetUsed(slot) -> bytes reserved (the counter less the leases), or a
  // negative error code.
  Napi::Value BudgetUsed(const Napi::CallbackInfo& info) {
    uint64_t used = 0;
    int err = rg::budget_used(ledger_, ArgSlot(info), &used);
    return Napi::Number::New(info.Env(), err != 0 ? -static_cast<double>(err) : static_cast<double>(used));
  }

  Napi::Value BudgetCount(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), rg::budget_count());
  }

  // ---- machine-wide budgets ----------------------------------------------
  //
  // A handle is an index into machines_. Bytes belong to the environment
  // that reserved them, as with process budgets: a plain handle counts in
  // what the environment holds on that budget (machine_held_), an owned
  // handle (an allocator's) in its own count. Closing the environment's last
  // plain handle, or an owned handle, gives its bytes back; so does the
  // environment's teardown, for every handle still open.
  struct Machine {
    rg::MachineMapping* map = nullptr;
    bool owned = false;
    double held = 0;  // an owned handle's bytes
  };
  struct MachineShare {
    double held = 0;   // what this environment's plain handles hold
    uint32_t opens = 0;
  };

  size_t ArgMachine(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw TypeErr(info.Env(), "machine budget handle must be a number");
    double v = info[0].As<Napi::Number>().DoubleValue();
    if (!(v >= 0) || v >= static_cast<double>(machines_.size()) || std::floor(v) != v ||
        machines_[static_cast<size_t>(v)].map == nullptr) {
      throw RangeErr(info.Env(), "machine budget handle is not open");
    }
    return static_cast<size_t>(v);
  }

  double& MachineHeldRef(size_t h) {
    Machine& m = machines_[h];
    return m.owned ? m.held : machine_share_[m.map].held;
  }

  // Gives back what the handle's count holds when the handle is the last
  // one using it, then drops the mapping.
  void CloseMachine(size_t h) {
    Machine& m = machines_[h];
    double give_back = 0;
    if (m.owned) {
      give_back = m.held;
    } else {
      MachineShare& share = machine_share_[m.map];
      if (--share.opens == 0) {
        give_back = share.held;
        machine_share_.erase(m.map);
      }
    }
    if (give_back > 0) {
      uint64_t after = 0;
      // When the lock stays taken, the periodic check gives the bytes back
      // (or closing the process's last handle does, with its whole entry).
      if (rg::machine_release(m.map, static_cast<uint64_t>(give_back), &after) != rg::kMachineOk) {
        rg::machine_defer_release(m.map, static_cast<uint64_t>(give_back));
      }
    }
    rg::machine_unref(m.map);
    m = Machine();
  }

  // machineOpen(dir, name, limit | undefined, owned?) -> handle (>= 0) or
  // -MachineError; after kMachineIo, machineOpen.errno holds the cause.
  Napi::Value MachineOpen(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
      throw TypeErr(env, "machine budget directory and name must be strings");
    }
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    std::string name = info[1].As<Napi::String>().Utf8Value();
    bool has_limit = info.Length() > 2 && !info[2].IsUndefined();
    uint64_t limit = has_limit ? ArgBytes(info, 2, "limit must be an integer from 0 to 2^53 - 1") : 0;
    bool owned = info.Length() > 3 && info[3].ToBoolean().Value();
    rg::MachineMapping* map = nullptr;
    int sys = 0;
    uint64_t existing = 0;
    int err = rg::machine_open(dir, name, has_limit, limit, &map, &sys, &existing);
    machine_errno_ = sys;
    machine_existing_limit_ = static_cast<double>(existing);
    if (err != rg::kMachineOk) return Napi::Number::New(env, -err);
    size_t h = machines_.size();
    for (size_t i = 0; i < machines_.size(); ++i) {
      if (machines_[i].map == nullptr) {
        h = i;
        break;
      }
    }
    if (h == machines_.size()) machines_.emplace_back();
    machines_[h].map = map;
    machines_[h].owned = owned;
    machines_[h].held = 0;
    if (!owned) ++machine_share_[map].opens;
    return Napi::Number::New(env, static_cast<double>(h));
  }

  Napi::Value MachineClose(const Napi::CallbackInfo& info) {
    CloseMachine(ArgMachine(info));
    return info.Env().Undefined();
  }

  // machineReserve(h, bytes) -> the usage after (>= 0) or -MachineError.
  Napi::Value MachineReserve(const Napi::CallbackInfo& info) {
    size_t h = ArgMachine(info);
    uint64_t bytes = ArgBytes(info, 1, "bytes must be an integer from 0 to 2^53 - 1");
    uint64_t after = 0;
    int err = rg::machine_reserve(machines_[h].map, bytes, &after);
    if (err != rg::kMachineOk) return Napi::Number::New(info.Env(), -err);
    MachineHeldRef(h) += static_cast<double>(bytes);
    return Napi::Number::New(info.Env(), static_cast<double>(after));
  }

  // machineRelease(h, bytes) -> the usage after (>= 0) or -MachineError;
  // at most what the handle's count holds.
  Napi::Value MachineRelease(const Napi::CallbackInfo& info) {
    size_t h = ArgMachine(info);
    uint64_t bytes = ArgBytes(info, 1, "bytes must be an integer from 0 to 2^53 - 1");
    double& held = MachineHeldRef(h);
    if (static_cast<double>(bytes) > held) return Napi::Number::New(info.Env(), -rg::kMachineExceedsHeld);
    uint64_t after = 0;
    int err = rg::machine_release(machines_[h].map, bytes, &after);
    if (err != rg::kMachineOk) return Napi::Number::New(info.Env(), -err);
    held -= static_cast<double>(bytes);
    return Napi::Number::New(info.Env(), static_cast<double>(after));
  }

  Napi::Value MachineSetLimit(const Napi::CallbackInfo& info) {
    size_t h = ArgMachine(info);
    uint64_t limit = ArgBytes(info, 1, "limit must be an integer from 0 to 2^53 - 1");
    return Napi::Number::New(info.Env(), rg::machine_set_limit(machines_[h].map, limit));
  }

  Napi::Value MachineStats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    size_t h = ArgMachine(info);
    rg::MachineStats s;
    int err = rg::machine_stats(machines_[h].map, &s);
    if (err != rg::kMachineOk) return Napi::Number::New(env, err);
    Napi::Object o = Napi::Object::New(env);
    o.Set("used", static_cast<double>(s.used));
    o.Set("peak", static_cast<double>(s.peak));
    o.Set("limit", static_cast<double>(s.limit));
    o.Set("successes", static_cast<double>(s.successes));
    o.Set("failures", static_cast<double>(s.failures));
    o.Set("holders", static_cast<double>(s.holders));
    o.Set("reclaimedBytes", static_cast<double>(s.reclaimed_bytes));
    o.Set("reclaimedProcesses", static_cast<double>(s.reclaimed_processes));
    o.Set("processHeld", static_cast<double>(s.process_held));
    return o;
  }

  // machineUsed(h), machineLimit(h): read without the lock; -kMachineLost
  // once the mapping was found stale, shortened under us, or not a budget's.
  Napi::Value MachineUsed(const Napi::CallbackInfo& info) {
    rg::MachineMapping* map = machines_[ArgMachine(info)].map;
    // The figure first: a read that faults on a shortened file reads zeros,
    // and machine_lost() then says so.
    uint64_t v = rg::machine_used(map);
    if (rg::machine_lost(map)) return Napi::Number::New(info.Env(), -rg::kMachineLost);
    return Napi::Number::New(info.Env(), static_cast<double>(v));
  }

  Napi::Value MachineLimit(const Napi::CallbackInfo& info) {
    rg::MachineMapping* map = machines_[ArgMachine(info)].map;
    // The figure first: a read that faults on a shortened file reads zeros,
    // and machine_lost() then says so.
    uint64_t v = rg::machine_limit(map);
    if (rg::machine_lost(map)) return Napi::Number::New(info.Env(), -rg::kMachineLost);
    return Napi::Number::New(info.Env(), static_cast<double>(v));
  }

  // machineHeld(h): what the thread holds on the budget, as `held` of a
  // process budget means it: for a plain handle, the environment's plain
  // count and its allocators' counts on the same file; for an owned handle
  // (an allocator's), its own count.
  Napi::Value MachineHeld(const Napi::CallbackInfo& info) {
    const Machine& m = machines_[ArgMachine(info)];
    if (m.owned) return Napi::Number::New(info.Env(), m.held);
    double sum = machine_share_[m.map].held;
    for (const Machine& o : machines_) {
      if (o.owned && o.map == m.map) sum += o.held;
    }
    return Napi::Number::New(info.Env(), sum);
  }

  // machineReclaim(h?) -> dead processes reclaimed on that budget, or
  // -MachineError; without a handle, every budget of the process (-> 0).
  Napi::Value MachineReclaim(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || info[0].IsUndefined()) {
      rg::machine_reclaim_all();
      return Napi::Number::New(info.Env(), 0);
    }
    size_t h = ArgMachine(info);
    int n = 0;
    int err = rg::machine_reclaim(machines_[h].map, &n);
    return Napi::Number::New(info.Env(), err != rg::kMachineOk ? -err : n);
  }

  Napi::Value MachineDefaultDir(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), rg::machine_default_dir());
  }

  Napi::Value MachineErrno(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), machine_errno_);
  }

  // The budget's limit after machineOpen answered a limit mismatch.
  Napi::Value MachineExistingLimit(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), machine_existing_limit_);
  }

  std::vector<Machine> machines_;
  std::unordered_map<rg::MachineMapping*, MachineShare> machine_share_;
  int machine_errno_ = 0;
  double machine_existing_limit_ = 0;

  Napi::Env env_;
  rg::Ledger* ledger_ = nullptr;
  int sampler_holds_ = 0;  // this environment's holds on the sampler
  bool torn_down_ = false;
  // A kept-open directory and the identity it had when opened.
  struct Disk {
    intptr_t fd = -1;
    rg::DiskId id;
  };
  std::vector<Disk> disks_;
};

}  // namespace

NODE_API_ADDON(Addon)
