// A mutex for short critical sections: spins briefly on contention before sleeping.
//
// The class locks guard sections of tens of nanoseconds. A plain std::mutex puts a contending
// thread to sleep at once (a futex syscall and a wake-up for both sides), which costs far more
// than the section; spinning first lets it acquire the lock as soon as the holder leaves. After
// kSpins attempts it falls back to blocking, so oversubscribed threads (more than cores) don't
// burn CPU. Satisfies Lockable (std::lock_guard, std::unique_lock).
#pragma once

#include <atomic>
#include <mutex>

namespace zspool {

class SpinThenBlockMutex {
 public:
  static constexpr int kSpins = 100;

  void lock() {
    for (int i = 0; i < kSpins; ++i) {
      if (!busy_.load(std::memory_order_relaxed) && mutex_.try_lock()) {
        busy_.store(true, std::memory_order_relaxed);
        return;
      }
      pause();
    }
    mutex_.lock();
    busy_.store(true, std::memory_order_relaxed);
  }
  bool try_lock() {
    if (!mutex_.try_lock()) return false;
    busy_.store(true, std::memory_order_relaxed);
    return true;
  }
  void unlock() {
    busy_.store(false, std::memory_order_relaxed);
    mutex_.unlock();
  }

 private:
  static void pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
  }
  std::mutex mutex_;
  std::atomic<bool> busy_{false};  // a hint only: lets spinners wait without bouncing the line
};

}  // namespace zspool
