// Test doubles for the Reactive Streams conformance suite (after the TCK's
// ManualSubscriberWithSubscriptionSupport and ManualPublisher): a probe subscriber that records
// every signal and flags every protocol violation it can see, and a manual publisher whose
// subscription records request/cancel while the test drives the signals.
#pragma once

#include <bp/streams.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace bp::rs::test {

using namespace std::chrono_literals;
inline constexpr auto wait_limit = 5s;  // every wait is bounded: no test can hang

template <class T>
class probe : public subscriber<T>, public std::enable_shared_from_this<probe<T>> {
 public:
  // Hooks run inside the signal, after it was recorded.
  std::function<void(probe&)> on_subscribe_hook;
  std::function<void(probe&, const T&)> on_next_hook;
  std::int64_t initial_request = 0;  // requested from on_subscribe when there is no hook

  void on_subscribe(std::shared_ptr<subscription> s) override {
    guard g(*this);
    {
      std::lock_guard lock(m_);
      if (subscribes_++ > 0) violation("on_subscribe twice (rule 2.12)");
      if (items_.size() || terminals_) violation("on_subscribe after other signals (rule 1.9)");
      sub_ = std::move(s);
    }
    cv_.notify_all();
    if (on_subscribe_hook)
      on_subscribe_hook(*this);
    else if (initial_request > 0)
      request(initial_request);
  }
  void on_next(T v) override {
    guard g(*this);
    {
      std::lock_guard lock(m_);
      if (!subscribes_) violation("on_next before on_subscribe (rule 1.9)");
      if (terminals_) violation("on_next after a terminal signal (rule 1.7)");
      if (static_cast<std::int64_t>(items_.size()) >= requested_)
        violation("more on_next than requested (rule 1.1)");
      items_.push_back(v);
    }
    cv_.notify_all();
    if (on_next_hook) on_next_hook(*this, v);
  }
  void on_error(std::exception_ptr e) override {
    guard g(*this);
    {
      std::lock_guard lock(m_);
      if (!subscribes_) violation("on_error before on_subscribe (rule 1.9)");
      if (terminals_++) violation("second terminal signal (rule 1.7)");
      error_ = std::move(e);
    }
    cv_.notify_all();
  }
  void on_complete() override {
    guard g(*this);
    {
      std::lock_guard lock(m_);
      if (!subscribes_) violation("on_complete before on_subscribe (rule 1.9)");
      if (terminals_++) violation("second terminal signal (rule 1.7)");
      completed_ = true;
    }
    cv_.notify_all();
  }

  // --- driving the subscription (from any thread) ---
  void request(std::int64_t n) {
    auto s = sub();
    if (n > 0) {
      std::lock_guard lock(m_);
      requested_ = detail::add_cap(requested_, n);
    }
    if (s) s->request(n);
  }
  void cancel() {
    if (auto s = sub()) s->cancel();
  }
  // Drops our reference to the subscription (as a subscriber does once done).
  void forget_subscription() {
    std::lock_guard lock(m_);
    sub_.reset();
  }
  std::shared_ptr<subscription> sub() {
    std::lock_guard lock(m_);
    return sub_;
  }

  // --- waiting (bounded) ---
  bool await_subscribed(std::chrono::milliseconds t = wait_limit) {
    return wait(t, [&] { return subscribes_ > 0; });
  }
  bool await_items(std::size_t n, std::chrono::milliseconds t = wait_limit) {
    return wait(t, [&] { return items_.size() >= n; });
  }
  bool await_terminal(std::chrono::milliseconds t = wait_limit) {
    return wait(t, [&] { return terminals_ > 0; });
  }
  bool await_complete(std::chrono::milliseconds t = wait_limit) {
    return await_terminal(t) && completed();
  }
  // Expects an on_error whose exception is an E.
  template <class E>
  bool await_error_of(std::chrono::milliseconds t = wait_limit) {
    if (!await_terminal(t)) return false;
    auto e = error();
    if (!e) return false;
    try {
      std::rethrow_exception(e);
    } catch (const E&) {
      return true;
    } catch (...) {
      return false;
    }
  }

  // --- observations ---
  std::vector<T> items() {
    std::lock_guard lock(m_);
    return items_;
  }
  std::size_t count() {
    std::lock_guard lock(m_);
    return items_.size();
  }
  bool completed() {
    std::lock_guard lock(m_);
    return completed_;
  }
  std::exception_ptr error() {
    std::lock_guard lock(m_);
    return error_;
  }
  int terminals() {
    std::lock_guard lock(m_);
    return terminals_;
  }
  std::string violations() {
    std::lock_guard lock(m_);
    return violations_;
  }
  int max_depth() const { return max_depth_.load(); }

 private:
  struct guard {  // detects overlapping (rule 1.3) and nested (rule 3.3) signals
    explicit guard(probe& p) : p_(p) {
      const int d = p_.depth_.fetch_add(1) + 1;
      int m = p_.max_depth_.load();
      while (d > m && !p_.max_depth_.compare_exchange_weak(m, d)) {
      }
    }
    ~guard() { p_.depth_.fetch_sub(1); }
    probe& p_;
  };

  void violation(const std::string& what) {  // with m_ held
    if (violations_.size() < 1000) violations_ += what + "; ";
  }

  template <class Pred>
  bool wait(std::chrono::milliseconds t, Pred pred) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, t, pred);
  }

  std::mutex m_;
  std::condition_variable cv_;
  std::shared_ptr<subscription> sub_;
  std::vector<T> items_;
  std::int64_t requested_ = 0;
  int subscribes_ = 0;
  int terminals_ = 0;
  bool completed_ = false;
  std::exception_ptr error_;
  std::string violations_;
  std::atomic<int> depth_{0};
  std::atomic<int> max_depth_{0};
};

// A subscription whose requests and cancels are recorded; the test signals by hand.
class recording_subscription : public subscription {
 public:
  void request(std::int64_t n) override {
    std::lock_guard lock(m_);
    requests_.push_back(n);
    if (n > 0) total_ = detail::add_cap(total_, n);
    cv_.notify_all();
  }
  void cancel() override {
    std::lock_guard lock(m_);
    ++cancels_;
    cv_.notify_all();
  }
  std::int64_t total() {
    std::lock_guard lock(m_);
    return total_;
  }
  std::vector<std::int64_t> requests() {
    std::lock_guard lock(m_);
    return requests_;
  }
  int cancels() {
    std::lock_guard lock(m_);
    return cancels_;
  }
  bool await_total(std::int64_t n, std::chrono::milliseconds t = wait_limit) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, t, [&] { return total_ >= n; });
  }
  bool await_cancel(std::chrono::milliseconds t = wait_limit) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, t, [&] { return cancels_ > 0; });
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<std::int64_t> requests_;
  std::int64_t total_ = 0;
  int cancels_ = 0;
};

// A publisher that hands each subscriber a recording_subscription and keeps the subscriber so
// the test can signal it.
template <class T>
class manual_publisher : public publisher<T> {
 public:
  void subscribe(std::shared_ptr<subscriber<T>> s) override {
    if (!s) throw std::invalid_argument("manual_publisher: null subscriber");
    auto sub = std::make_shared<recording_subscription>();
    {
      std::lock_guard lock(m_);
      down_ = s;
      sub_ = sub;
    }
    s->on_subscribe(sub);
  }
  std::shared_ptr<subscriber<T>> downstream() {
    std::lock_guard lock(m_);
    return down_;
  }
  std::shared_ptr<recording_subscription> subscription() {
    std::lock_guard lock(m_);
    return sub_;
  }
  void release() {
    std::lock_guard lock(m_);
    down_.reset();
  }

 private:
  std::mutex m_;
  std::shared_ptr<subscriber<T>> down_;
  std::shared_ptr<recording_subscription> sub_;
};

}  // namespace bp::rs::test
