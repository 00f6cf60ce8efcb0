// The floor under the sampler thread's cost: a thread that wakes at the
// sampler's interval exactly as the sampler does (std::condition_variable
// wait_until to absolute steady_clock deadlines, see run() in
// native/core/shared.cc) and does no work between waits. Its own CPU time
// over the span is what waking alone costs on this machine.
//
//   wake-floor <intervalMs> <seconds>   prints one JSON line, in the shape of
//                                       workers/sampler-cost.js's
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <thread>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: wake-floor <intervalMs> <seconds>\n");
    return 2;
  }
  const double interval_ms = std::atof(argv[1]);
  const double seconds = std::atof(argv[2]);
  if (!(interval_ms > 0) || !(seconds > 0)) {
    std::fprintf(stderr, "wake-floor: interval and seconds must be positive numbers\n");
    return 2;
  }
  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  long wakes = 0;
  double cpu_ns = 0, span_ms = 0;
  std::thread thread([&] {
    const auto interval = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double, std::milli>(interval_ms));
    std::unique_lock<std::mutex> lock(mu);
    auto due = Clock::now();
    const auto start = due;
    timespec c0;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    while (!stop) {
      due += interval;
      if (!cv.wait_until(lock, due, [&] { return stop; })) ++wakes;
    }
    timespec c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    cpu_ns = (c1.tv_sec - c0.tv_sec) * 1e9 + (c1.tv_nsec - c0.tv_nsec);
    span_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  thread.join();
  if (wakes == 0) {
    std::printf("{\"error\":\"the thread never woke\"}\n");
    return 1;
  }
  std::printf("{\"intervalMs\":%g,\"samples\":%ld,\"cpuNs\":%.0f,\"cpuNsPerSample\":%.1f,\"coreFraction\":%.6f,\"realPeriodMs\":%.4f}\n",
              interval_ms, wakes, cpu_ns, cpu_ns / wakes, cpu_ns / (span_ms * 1e6), span_ms / wakes);
  return 0;
}
