// A small persistent thread pool. Work is split into tasks whose boundaries depend only on the
// problem size, never on which thread runs them, so results do not depend on the thread count.
//
// A training step runs two short parallel passes per minibatch (a few milliseconds each), so
// waiting threads first spin on atomics (a pass usually follows within microseconds) and only
// then block on a condition variable: for 50 microseconds by default, longer while the owner
// says that more passes follow at once (setSpin), since a blocked thread has to be woken
// through the kernel.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "fpenv.h"

#if defined(__linux__)
#include <sched.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLP_SPIN_PAUSE() _mm_pause()
#else
#define MLP_SPIN_PAUSE() std::this_thread::yield()
#endif

namespace mlp {

// The CPUs this process may run on (its affinity mask on Linux, which taskset and cpusets narrow),
// at least 1.
inline unsigned usableCpus() {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0) return static_cast<unsigned>(CPU_COUNT(&set));
#endif
  const unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? n : 1;
}

class ThreadPool {
 public:
  // Asks for `threads` threads in all, the caller's included, and starts at most `maxWorkers`
  // besides the caller: by default one fewer than the CPUs the process may use. More threads than
  // CPUs would only take turns on this compute-bound work, and each costs a stack's worth of
  // address space: a thousand would exhaust a memory limit that leaves room for the rest of the
  // process, where anything (a stack growing, an allocation) may then fail.
  // When the system refuses a thread (a thread or address-space limit: std::system_error, or
  // std::bad_alloc) the pool does not fail: it lets half of the threads already started finish,
  // so that the buffers the work needs next and other threads of the process still find room,
  // and runs with the rest, down to none (every task on the calling thread). threads() still
  // reports the number asked for, so the tasks, and with them every result, stay the same; only
  // fewer threads run them. After such a refusal, later pools of the process start at most as
  // many threads as this one kept (at least one), so that they do not each exhaust the limit
  // again, however briefly.
  explicit ThreadPool(unsigned threads, std::size_t maxWorkers = usableCpus() - 1) : threads_(threads < 1 ? 1 : threads) {
    const std::size_t wanted =
        std::min<std::size_t>({threads_ - 1, maxWorkers, ceiling().load(std::memory_order_relaxed)});
    try {
      workers_.reserve(wanted);
      for (std::size_t i = 0; i < wanted; ++i) workers_.emplace_back([this, i] { workerLoop(i); });
    } catch (const std::exception&) {
      // emplace_back left workers_ as it was; the threads in it are running.
      const std::size_t keep = workers_.size() / 2;
      retireFrom(keep);
      std::size_t old = ceiling().load(std::memory_order_relaxed);
      const std::size_t bound = std::max<std::size_t>(keep, 1);
      while (bound < old && !ceiling().compare_exchange_weak(old, bound, std::memory_order_relaxed)) {
      }
    }
  }
  ~ThreadPool() { retireFrom(0); }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The number of threads asked for: tasks are split by it, whatever number actually started.
  unsigned threads() const { return threads_; }
  // The threads that actually run tasks, the caller's included (at most threads()).
  unsigned running() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // How long a waiting thread spins before it blocks, from now on (a thread spinning already
  // sees the change at its next check). The owner raises it while passes follow back to back
  // and lowers it when they stop, so that idle workers do not hold a core.
  static constexpr std::chrono::microseconds kDefaultSpin{50};
  void setSpin(std::chrono::microseconds spin) { spinMicros_.store(spin.count(), std::memory_order_relaxed); }

  // Runs fn(task) for every task in [0, tasks); the calling thread works too. Returns when all are
  // done. Tasks are coarse (a few per thread), so claiming them under the lock costs little.
  // If a task throws (std::bad_alloc for a buffer, say), the other tasks still run, and the first
  // exception is rethrown here on the calling thread once every task is done.
  //
  // With `pinned`, tasks are not claimed: the threads that run take equal contiguous ranges of
  // them, the calling thread the first (task t always lands on the same thread for the same
  // number of tasks), without the lock. Two passes over the same data split alike then find it
  // in the cache of the core that wrote it, instead of fetching it from the other core's.
  void run(std::size_t tasks, const std::function<void(std::size_t)>& fn, bool pinned = false) {
    if (tasks == 0) return;
    if (workers_.empty() || tasks == 1) {
      for (std::size_t t = 0; t < tasks; ++t) fn(t);
      return;
    }
    unsigned long gen;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      tasks_ = tasks;
      next_ = 0;
      pinned_ = pinned;
      error_ = nullptr;
      failed_.store(false, std::memory_order_relaxed);
      pending_.store(tasks, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_relaxed) + 1;
      // Without the lock only when every thread has a task: a thread with none could otherwise
      // still be on its way when the run has ended and the next one is being set up.
      pinnedRun_.store(pinned && tasks >= workers_.size() + 1 ? gen : 0, std::memory_order_relaxed);
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    work(gen, 0);
    if (!spinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      // Acquire: the last task may have been counted done outside the mutex just before.
      done_.wait(lock, [this] { return pending_.load(std::memory_order_acquire) == 0; });
    }
    // (Either acquire above made every task's writes, failed_'s included, visible here.)
    if (failed_.load(std::memory_order_relaxed)) {
      std::exception_ptr error;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        error = error_;
        error_ = nullptr;
      }
      std::rethrow_exception(error);
    }
  }

 private:
  // Spins for a while (setSpin) until pred() holds; false if it did not.
  template <typename Pred>
  bool spinUntil(Pred pred) const {
    const auto start = std::chrono::steady_clock::now();
    for (unsigned i = 0;; ++i) {
      if (pred()) return true;
      MLP_SPIN_PAUSE();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() - start >
                                std::chrono::microseconds(spinMicros_.load(std::memory_order_relaxed)))
        return false;
    }
  }

  // Keeps the first exception of the run (under the mutex).
  void recordError(const std::exception_ptr& error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = error;
    failed_.store(true, std::memory_order_relaxed);
  }

  // Counts `count` tasks of the run done; the last wakes the caller if it blocked waiting (the
  // caller itself, self == 0, need not).
  void finished(std::size_t count, std::size_t self) {
    if (count == 0) return;
    if (pending_.fetch_sub(count, std::memory_order_acq_rel) == count && self != 0) {
      // Under the mutex: the caller is then either before its check of pending_ or waiting.
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_all();
    }
  }

  // Runs tasks of run number `gen` as thread `self` (0: the caller, i + 1: workers_[i]).
  void work(unsigned long gen, std::size_t self) {
    // Every thread of workers_ (and the caller) takes part in every run: none is retired while a
    // run is in progress.
    if (pinnedRun_.load(std::memory_order_acquire) == gen) {
      // A pinned run in which every thread has a task cannot end before this thread has run its
      // own, so its job and task count stay as run() set them (before publishing gen) until
      // then: no lock to take per task, so a pass starts and ends without the threads taking
      // turns on the mutex's cache line.
      const std::size_t n = workers_.size() + 1, base = tasks_ / n, extra = tasks_ % n;
      const std::size_t first = self * base + std::min(self, extra), end = first + base + (self < extra ? 1 : 0);
      const std::function<void(std::size_t)>& job = *job_;
      std::exception_ptr error;
      for (std::size_t t = first; t < end; ++t) {
        try {
          job(t);
        } catch (...) {
          if (!error) error = std::current_exception();
        }
      }
      if (error) recordError(error);
      finished(end - first, self);
      return;
    }
    std::size_t mine = 0, mineEnd = 0;  // a pinned run's tasks for this thread (fewer tasks than threads)
    bool pinned;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (generation_.load(std::memory_order_relaxed) != gen) return;
      pinned = pinned_;
      if (pinned) {
        const std::size_t n = workers_.size() + 1, base = tasks_ / n, extra = tasks_ % n;
        mine = self * base + std::min(self, extra);
        mineEnd = mine + base + (self < extra ? 1 : 0);
      }
    }
    for (;;) {
      std::size_t t;
      const std::function<void(std::size_t)>* job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (generation_.load(std::memory_order_relaxed) != gen) return;
        if (pinned) {
          if (mine >= mineEnd) return;
          t = mine++;
        } else {
          if (next_ >= tasks_) return;
          t = next_++;
        }
        job = job_;
      }
      try {
        (*job)(t);
      } catch (...) {
        recordError(std::current_exception());
      }
      finished(1, self);
    }
  }

  // The most threads (besides the caller) a pool starts: lowered when the system refuses one.
  static std::atomic<std::size_t>& ceiling() {
    static std::atomic<std::size_t> value{static_cast<std::size_t>(-1)};
    return value;
  }

  // Ends workers_[first] and those after it (no run() is in progress) and removes them.
  void retireFrom(std::size_t first) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      keep_.store(first, std::memory_order_release);
    }
    wake_.notify_all();
    for (std::size_t i = first; i < workers_.size(); ++i) workers_[i].join();
    workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(first), workers_.end());
  }

  void workerLoop(std::size_t index) {
    // For good: this thread runs nothing but the kernels (the callers set it for their part).
    const SubnormalsFlushed flushed;
    unsigned long seen = 0;
    const auto retired = [&] { return index >= keep_.load(std::memory_order_acquire); };
    for (;;) {
      const auto fresh = [&] { return retired() || generation_.load(std::memory_order_acquire) != seen; };
      if (!spinUntil(fresh)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, fresh);
      }
      if (retired()) return;
      seen = generation_.load(std::memory_order_acquire);
      work(seen, index + 1);
    }
  }

  const unsigned threads_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t tasks_ = 0;  // tasks_, next_ and job_ change under the mutex
  std::size_t next_ = 0;
  bool pinned_ = false;  // the current run's (under the mutex)
  // The current run's number if it is pinned with a task for every thread, else 0 (set with the
  // run's other fields): its threads then take their tasks without the lock.
  std::atomic<unsigned long> pinnedRun_{0};
  std::atomic<std::size_t> pending_{0};  // tasks of the current run not yet done
  std::exception_ptr error_;  // the first exception a task of the current run() threw; under the mutex
  std::atomic<bool> failed_{false};  // whether error_ is set
  std::atomic<unsigned long> generation_{0};
  std::atomic<long long> spinMicros_{kDefaultSpin.count()};
  // Workers whose index is at least this end (the destructor sets it to 0).
  std::atomic<std::size_t> keep_{static_cast<std::size_t>(-1)};
};

}  // namespace mlp
