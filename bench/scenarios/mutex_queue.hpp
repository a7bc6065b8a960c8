// bench/scenarios/mutex_queue.hpp: the baselines every user could write in a few minutes.
//   mutex_queue      bounded: a std::mutex, two condition variables and a ring (the API of
//                    bp::channel's block policy: send waits while full, recv while empty).
//   unbounded_queue  a std::mutex, one condition variable and a std::deque: send never waits,
//                    so memory grows with whatever the consumer has not taken yet.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <vector>

namespace bench {

class mutex_queue {
 public:
  static constexpr bool has_close = true;
  static constexpr bool spsc_only = false;
  explicit mutex_queue(std::size_t capacity) : ring_(capacity) {}

  void send(std::uint64_t v) {
    std::unique_lock lock(m_);
    not_full_.wait(lock, [&] { return size_ < ring_.size() || closed_; });
    if (closed_) return;
    ring_[(head_ + size_++) % ring_.size()] = v;
    lock.unlock();
    not_empty_.notify_one();
  }
  bool recv(std::uint64_t& v) {
    std::unique_lock lock(m_);
    not_empty_.wait(lock, [&] { return size_ > 0 || closed_; });
    return pop(v, lock);
  }
  bool try_recv(std::uint64_t& v) {
    std::unique_lock lock(m_);
    return pop(v, lock);
  }
  void close() {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    not_full_.notify_all();
    not_empty_.notify_all();
  }

 private:
  bool pop(std::uint64_t& v, std::unique_lock<std::mutex>& lock) {
    if (size_ == 0) return false;
    v = ring_[head_];
    head_ = (head_ + 1) % ring_.size();
    --size_;
    lock.unlock();
    not_full_.notify_one();
    return true;
  }

  std::mutex m_;
  std::condition_variable not_full_, not_empty_;
  std::vector<std::uint64_t> ring_;
  std::size_t head_ = 0, size_ = 0;
  bool closed_ = false;
};

class unbounded_queue {
 public:
  static constexpr bool has_close = true;
  static constexpr bool spsc_only = false;
  explicit unbounded_queue(std::size_t /*capacity: ignored, that is the point*/) {}

  void send(std::uint64_t v) {
    {
      std::lock_guard lock(m_);
      q_.push_back(v);
    }
    not_empty_.notify_one();
  }
  bool recv(std::uint64_t& v) {
    std::unique_lock lock(m_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    return pop(v);
  }
  bool try_recv(std::uint64_t& v) {
    std::lock_guard lock(m_);
    return pop(v);
  }
  void close() {
    {
      std::lock_guard lock(m_);
      closed_ = true;
    }
    not_empty_.notify_all();
  }

 private:
  bool pop(std::uint64_t& v) {
    if (q_.empty()) return false;
    v = q_.front();
    q_.pop_front();
    return true;
  }

  std::mutex m_;
  std::condition_variable not_empty_;
  std::deque<std::uint64_t> q_;
  bool closed_ = false;
};

}  // namespace bench
