// A standalone check of ThreadPool when the system refuses threads, without Node: a plain C++
// process under an address-space limit (setrlimit) that leaves room for a few thread stacks
// only, so that starting a pool of 1000 is refused partway, deterministically. Nothing else in
// this process allocates meanwhile, which a Node process could not promise.
// test/native-resources.test.ts compiles and runs it. Prints one line per check; the exit status
// is non-zero when a check fails.
//
// Checks, in this order (glibc keeps the stacks of ended threads for reuse, so a pool that gets no
// thread at all comes first): a pool that gets no thread runs every task on the caller; a pool
// asked for 1000 threads with no cap keeps some but not all of them (half of what started) and
// runs every task exactly once; a task's exception reaches the caller after the others ran; a
// later pool starts no more than the first kept; with the default cap a pool starts the usable
// CPUs' worth less the caller.
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../kernels/threadpool.h"

namespace {

int failures = 0;

void check(bool ok, const std::string& what) {
  std::printf("%s: %s\n", ok ? "ok" : "FAILED", what.c_str());
  if (!ok) ++failures;
}

// This process's threads, from /proc/self/status.
long threadsNow() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Threads:", 0) == 0) return std::strtol(line.c_str() + 8, nullptr, 10);
  return -1;
}

// This process's mapped address space in bytes (VmSize), from /proc/self/status.
unsigned long long addressSpace() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmSize:", 0) == 0) return std::strtoull(line.c_str() + 7, nullptr, 10) * 1024;
  return 0;
}

// Runs `tasks` tasks and checks each ran exactly once.
bool runsEveryTaskOnce(mlp::ThreadPool& pool, std::size_t tasks, bool pinned = false) {
  std::vector<std::atomic<int>> ran(tasks);
  for (auto& r : ran) r.store(0);
  pool.run(tasks, [&](std::size_t t) { ran[t].fetch_add(1); }, pinned);
  for (auto& r : ran)
    if (r.load() != 1) return false;
  return true;
}

// Pinned runs: task 0 runs on the calling thread, each thread takes one contiguous range of the
// tasks (at most running() of them), and every task lands on the same thread in a second run.
bool pinsTasks(mlp::ThreadPool& pool, std::size_t tasks) {
  std::vector<std::thread::id> first(tasks), second(tasks);
  pool.run(tasks, [&](std::size_t t) { first[t] = std::this_thread::get_id(); }, true);
  pool.run(tasks, [&](std::size_t t) { second[t] = std::this_thread::get_id(); }, true);
  if (first != second || first[0] != std::this_thread::get_id()) return false;
  std::vector<std::thread::id> seen{first[0]};
  for (std::size_t t = 1; t < tasks; ++t) {
    if (first[t] == first[t - 1]) continue;
    if (std::find(seen.begin(), seen.end(), first[t]) != seen.end()) return false;
    seen.push_back(first[t]);
  }
  return seen.size() <= pool.running();
}

// Touches `bytes` of this thread's stack now, so that its growth does not need address space
// after the limit is set.
__attribute__((noinline)) void growStack(std::size_t bytes) {
  volatile char buffer[1 << 16];
  std::memset(const_cast<char*>(buffer), 1, sizeof buffer);
  if (bytes > sizeof buffer) growStack(bytes - sizeof buffer);
}

// Sets an address-space limit with room for about `stacks` more default thread stacks than this
// process maps now; false (after saying why) if it cannot.
bool limitAddressSpace(unsigned stacks) {
  pthread_attr_t attr;
  std::size_t stack = 8 << 20;
  if (pthread_getattr_default_np(&attr) == 0) {
    pthread_attr_getstacksize(&attr, &stack);
    pthread_attr_destroy(&attr);
  }
  growStack(1 << 20);
  const unsigned long long limit = addressSpace() + stacks * (stack + (1 << 20)) + (16 << 20);
  const rlimit rl{limit, limit};
  if (setrlimit(RLIMIT_AS, &rl) != 0) {
    std::printf("FAILED: setrlimit(RLIMIT_AS): %s\n", std::strerror(errno));
    return false;
  }
  std::printf("address-space limit %llu MiB (room for about %u thread stacks of %zu KiB)\n", limit >> 20, stacks,
              stack >> 10);
  return true;
}

void defaultCap() {
  const long before = threadsNow();
  const unsigned cpus = mlp::usableCpus();
  mlp::ThreadPool pool(1000);
  const long started = threadsNow() - before;
  check(started == static_cast<long>(cpus) - 1 && pool.running() == cpus && pool.threads() == 1000,
        "with the default cap a 1000-thread pool starts " + std::to_string(started) + " threads (" +
            std::to_string(cpus) + " usable CPUs), threads() stays 1000");
  check(runsEveryTaskOnce(pool, 4000), "it runs each of 4000 tasks once");
  check(runsEveryTaskOnce(pool, 4000, true) && pinsTasks(pool, 4000) && pinsTasks(pool, 3),
        "pinned, it runs each task once, in one contiguous range per thread, on the same thread every time");
}

void noRoom() {
  if (!limitAddressSpace(8)) return void(++failures);
  // Hold the address space up to the limit. Everything the check needs meanwhile is allocated first.
  std::vector<void*> held;
  held.reserve(1 << 16);
  std::vector<std::atomic<int>> ran(100);
  for (auto& r : ran) r.store(0);
  for (std::size_t chunk = 64 << 20; chunk >= 4096; chunk /= 2)
    while (held.size() < held.capacity()) {
      void* p = std::malloc(chunk);
      if (!p) break;
      held.push_back(p);
    }
  unsigned running = 0;
  {
    mlp::ThreadPool pool(1000, 999);
    running = pool.running();
    pool.run(ran.size(), [&](std::size_t t) { ran[t].fetch_add(1); });
    pool.run(ran.size(), [&](std::size_t t) { ran[t].fetch_add(1); }, true);
  }
  for (void* p : held) std::free(p);
  bool once = true;
  for (auto& r : ran) once = once && r.load() == 2;
  check(running == 1, "with no room left a 1000-thread pool runs with " + std::to_string(running - 1) +
                          " threads besides the caller");
  check(once, "it runs each of 100 tasks once, on the caller, claimed and pinned");
}

void refusedPartway() {
  const long before = threadsNow();
  if (!limitAddressSpace(16)) return void(++failures);
  unsigned kept = 0;
  {
    mlp::ThreadPool pool(1000, 999);  // no CPU cap: the limit refuses threads partway
    kept = pool.running() - 1;
    check(kept >= 2 && kept < 999 && pool.threads() == 1000,
          "under the limit a 1000-thread pool with no CPU cap keeps " + std::to_string(kept) +
              " of 999 threads, threads() stays 1000");
    check(threadsNow() - before == static_cast<long>(kept), "the threads it let go have ended");
    check(runsEveryTaskOnce(pool, 4000), "it runs each of 4000 tasks once");
    bool rethrown = false;
    std::atomic<int> others{0};
    try {
      pool.run(64, [&](std::size_t t) {
        if (t == 5) throw std::runtime_error("task 5");
        others.fetch_add(1);
      });
    } catch (const std::runtime_error& e) {
      rethrown = std::strcmp(e.what(), "task 5") == 0;
    }
    check(rethrown && others.load() == 63, "a task's exception reaches the caller after the other 63 tasks ran");
    check(runsEveryTaskOnce(pool, 4000, true) && pinsTasks(pool, 4000),
          "pinned, it runs each of 4000 tasks once, one contiguous range per running thread");
    rethrown = false;
    others = 0;
    try {
      pool.run(
          64,
          [&](std::size_t t) {
            if (t == 63) throw std::runtime_error("task 63");
            others.fetch_add(1);
          },
          true);
    } catch (const std::runtime_error& e) {
      rethrown = std::strcmp(e.what(), "task 63") == 0;
    }
    check(rethrown && others.load() == 63, "pinned, a task's exception reaches the caller after the other 63 ran");
  }
  mlp::ThreadPool pool(1000, 999);
  check(pool.running() - 1 <= kept, "a later pool starts " + std::to_string(pool.running() - 1) +
                                        " threads, no more than the first kept (" + std::to_string(kept) + ")");
  check(runsEveryTaskOnce(pool, 1000), "it runs each of 1000 tasks once");
}

// This process's CPU time (all threads) in milliseconds.
double cpuMs() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e3 + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e3;
}

// CPU time the process uses while this thread sleeps `ms` milliseconds.
double cpuWhileSleeping(int ms) {
  const double before = cpuMs();
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return cpuMs() - before;
}

// setSpin: runs work whether waiting threads block at once or spin long, and a worker that is
// spinning stops soon after the spin is lowered again (it does not hold a core while idle).
void spinSettings() {
  mlp::ThreadPool pool(2);
  pool.setSpin(std::chrono::microseconds(0));
  bool once = true;
  for (int i = 0; i < 200; ++i) once = runsEveryTaskOnce(pool, 8, i % 2 == 1) && once;
  check(once, "with no spin (every wait blocks) 200 runs each run every task once");
  pool.setSpin(std::chrono::seconds(10));
  for (int i = 0; i < 200; ++i) once = runsEveryTaskOnce(pool, 8, i % 2 == 1) && once;
  check(once, "with a long spin 200 runs each run every task once");
  if (pool.running() < 2) {
    std::printf("(one CPU: no worker to watch spinning)\n");
    pool.setSpin(mlp::ThreadPool::kDefaultSpin);
    return;
  }
  const double spinning = cpuWhileSleeping(200);
  pool.setSpin(mlp::ThreadPool::kDefaultSpin);
  const double idle = cpuWhileSleeping(200);
  check(spinning > 50 && idle < 20,
        "an idle worker used " + std::to_string(static_cast<int>(spinning)) +
            " ms of CPU in 200 ms while the spin was long (> 50 expected) and " +
            std::to_string(static_cast<int>(idle)) + " ms after it was lowered (< 20 expected)");
  check(runsEveryTaskOnce(pool, 8), "then it runs every task once");
}

// Pinned runs with fewer tasks than threads (some threads have none) between runs with a task for
// every thread (whose threads take them without the lock), back to back: every task runs once,
// also when a thread with no task of one run is still on its way as the next one starts.
void pinnedMixes() {
  mlp::ThreadPool pool(8, 7);  // 7 workers whatever the CPUs: more threads than cores take turns
  // No spin: every waiting worker blocks, and one woken late is the case at stake. (Before the
  // lock-free path was limited to runs with a task for every thread, this crashed or hung within
  // 30000 pairs on 2 cores.)
  pool.setSpin(std::chrono::microseconds(0));
  bool once = true;
  for (int i = 0; i < 30000 && once; ++i)
    once = runsEveryTaskOnce(pool, 1 + i % 3, true) && runsEveryTaskOnce(pool, 8 + i % 5, true);
  check(once, "30000 pairs of pinned runs, 1-3 tasks then 8-12 tasks on 8 threads, each run every task once");
  check(pinsTasks(pool, 3) && pinsTasks(pool, 12), "and pins them");
}

// Runs a scenario in a child process of its own (its own limit, no stacks of ended threads kept
// for reuse, the pools' process-wide ceiling fresh); true if it passed.
bool inChild(const char* name, void (*scenario)()) {
  std::printf("-- %s\n", name);
  std::fflush(stdout);
  const pid_t pid = fork();
  if (pid == 0) {
    scenario();
    std::fflush(stdout);
    _exit(failures == 0 ? 0 : 1);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) {
    std::printf("FAILED: could not run the scenario in a child process\n");
    return false;
  }
  if (WIFSIGNALED(status)) std::printf("FAILED: the scenario ended on signal %d\n", WTERMSIG(status));
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

int main() {
  bool ok = inChild("the default cap", defaultCap);
  ok = inChild("no room for any thread", noRoom) && ok;
  ok = inChild("threads refused partway", refusedPartway) && ok;
  ok = inChild("spin settings", spinSettings) && ok;
  ok = inChild("pinned runs with and without a task for every thread", pinnedMixes) && ok;
  std::printf("%s\n", ok ? "pool check: all passed" : "pool check: FAILED");
  return ok ? 0 : 1;
}
