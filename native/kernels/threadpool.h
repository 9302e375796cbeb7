// A small persistent thread pool. Work is split into tasks whose boundaries depend only on the
// problem size, never on which thread runs them, so results do not depend on the thread count.
//
// A training step runs two short parallel passes per minibatch (a few milliseconds each), so
// waiting threads first spin briefly on atomics (a pass usually follows within microseconds)
// and only then block on a condition variable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MLP_SPIN_PAUSE() _mm_pause()
#else
#define MLP_SPIN_PAUSE() std::this_thread::yield()
#endif

namespace mlp {

class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads) {
    for (unsigned i = 1; i < threads; ++i) workers_.emplace_back([this] { workerLoop(); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      quit_.store(true, std::memory_order_release);
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  unsigned threads() const { return static_cast<unsigned>(workers_.size()) + 1; }

  // Runs fn(task) for every task in [0, tasks); the calling thread works too. Returns when all are
  // done. Tasks are coarse (a few per thread), so claiming them under the lock costs nothing measurable.
  void run(std::size_t tasks, const std::function<void(std::size_t)>& fn) {
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
      pending_.store(tasks, std::memory_order_relaxed);
      gen = generation_.load(std::memory_order_relaxed) + 1;
      generation_.store(gen, std::memory_order_release);
    }
    wake_.notify_all();
    work(gen);
    if (!spinUntil([this] { return pending_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return pending_.load(std::memory_order_relaxed) == 0; });
    }
  }

 private:
  // Spins for a short while until pred() holds; false if it did not.
  template <typename Pred>
  static bool spinUntil(Pred pred) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    for (unsigned i = 0;; ++i) {
      if (pred()) return true;
      MLP_SPIN_PAUSE();
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return false;
    }
  }

  void work(unsigned long gen) {
    for (;;) {
      std::size_t t;
      const std::function<void(std::size_t)>* job;
      {
        std::lock_guard<std::mutex> lock(mutex_);
        if (generation_.load(std::memory_order_relaxed) != gen || next_ >= tasks_) return;
        t = next_++;
        job = job_;
      }
      (*job)(t);
      std::lock_guard<std::mutex> lock(mutex_);
      if (pending_.fetch_sub(1, std::memory_order_release) == 1) done_.notify_all();
    }
  }

  void workerLoop() {
    unsigned long seen = 0;
    for (;;) {
      const auto fresh = [&] {
        return quit_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
      };
      if (!spinUntil(fresh)) {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, fresh);
      }
      if (quit_.load(std::memory_order_acquire)) return;
      seen = generation_.load(std::memory_order_acquire);
      work(seen);
    }
  }

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t tasks_ = 0;  // tasks_, next_ and job_ change under the mutex
  std::size_t next_ = 0;
  std::atomic<std::size_t> pending_{0};  // changes under the mutex; read without it while spinning
  std::atomic<unsigned long> generation_{0};
  std::atomic<bool> quit_{false};
};

}  // namespace mlp
