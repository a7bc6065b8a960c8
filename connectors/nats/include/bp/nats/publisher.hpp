// bp/nats/publisher.hpp: a JetStream pull consumer as a Reactive Streams publisher (the Signal
// strategy across processes): the subscriber's request(n) becomes fetches of at most n
// messages, and the durable's MaxAckPending bounds what is delivered but not yet acknowledged.
//
//   bp::nats::publisher<T, Codec>           emits T; acknowledges each message after on_next
//                                           returns (at least once)
//   bp::nats::delivery_publisher<T, Codec>  emits bp::nats::delivery<T>; the subscriber calls
//                                           ack() / nak() / term() itself (asynchronous work)
//
// Example:
//
//   auto orders = std::make_shared<bp::nats::publisher<std::string>>(
//       bp::nats::options{.servers = {url}, .stream = "ORDERS", .subject = "orders",
//                         .capacity = 1000, .fetch_batch = 32});
//   orders->subscribe(my_subscriber);  // my_subscriber->request(32) pulls 32, and so on
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <bp/detail/deadline.hpp>
#include <bp/detail/event_count.hpp>
#include <bp/detail/wait.hpp>
#include <bp/nats/codec.hpp>
#include <bp/nats/detail/transport.hpp>
#include <bp/nats/error.hpp>
#include <bp/nats/options.hpp>
#include <bp/nats/receiver.hpp>
#include <bp/rs/interfaces.hpp>

namespace bp::nats {
namespace detail {

// One subscription: a worker thread that owns a pull subscription and signals the subscriber
// serially. request/cancel only change `demand_`/`bad_n_`/`cancelled_` (atomics) and wake the
// worker through the event count, so they are thread-safe, never re-enter the subscriber (rule
// 3.3) and return at once.
template <class Item>
class pull_subscription final : public bp::rs::subscription {
 public:
  void request(std::int64_t n) override {
    if (cancelled_.load()) return;  // rule 3.6
    if (n <= 0) {
      std::int64_t none = no_bad_request;  // the first bad request is the one reported
      (void)bad_n_.compare_exchange_strong(none, n);
    } else {
      std::int64_t d = demand_.load();
      while (!demand_.compare_exchange_weak(
          d, n >= bp::rs::unbounded - d ? bp::rs::unbounded : d + n)) {
      }
    }
    ec_.notify_all();
  }
  void cancel() override {
    cancelled_.store(true);
    ec_.notify_all();
  }

  struct wake {
    bool cancelled = false;
    bool bad_request = false;  // request(n <= 0) came: n is `n`
    std::int64_t n = 0;        // otherwise the outstanding demand
  };
  // Worker side: waits until there is demand, a bad request, or a cancel, at most `idle`;
  // n == 0 in the answer when none came.
  wake await_demand(std::chrono::milliseconds idle) {
    wake w;
    auto attempt = [&] {
      if (cancelled_.load()) {
        w = {true, false, 0};
        return true;
      }
      if (const std::int64_t bad = bad_n_.load(); bad != no_bad_request) {
        w = {false, true, bad};
        return true;
      }
      w = {false, false, demand_.load()};
      return w.n > 0;
    };
    (void)bp::detail::wait_until(ec_, bp::detail::deadline_after(idle), attempt);
    return w;
  }
  void consumed_one() {
    std::int64_t d = demand_.load();
    while (d != bp::rs::unbounded && d > 0 && !demand_.compare_exchange_weak(d, d - 1)) {
    }
  }
  bool cancelled() const { return cancelled_.load(); }
  // Set by the worker as its last step: its thread can be joined without waiting for a pull.
  void mark_finished() { finished_.store(true, std::memory_order_release); }
  bool finished() const { return finished_.load(std::memory_order_acquire); }

 private:
  // bad_n_ holds the n of the first request(n <= 0), or this value (> 0) while none came.
  static constexpr std::int64_t no_bad_request = 1;

  // seq_cst: each is the change the worker's wait re-checks after registering on ec_.
  std::atomic<std::int64_t> demand_{0};
  std::atomic<std::int64_t> bad_n_{no_bad_request};
  std::atomic<bool> cancelled_{false};
  std::atomic<bool> finished_{false};
  alignas(bp::detail::cache_line) bp::detail::event_count ec_;
};

// The publisher core shared by publisher<T> (AutoAck: on_next, then ack) and
// delivery_publisher<T> (on_next(delivery<T>), the subscriber answers).
template <class T, class Codec, class Item, bool AutoAck>
class pull_publisher : public bp::rs::publisher<Item> {
 public:
  explicit pull_publisher(options o) : options_(std::move(o)) {}
  pull_publisher(const pull_publisher&) = delete;
  pull_publisher& operator=(const pull_publisher&) = delete;

  // Cancels every subscription still running and waits for its worker (at most about
  // options.fetch_wait, the length of one pull).
  ~pull_publisher() override {
    std::vector<std::shared_ptr<pull_subscription<Item>>> subs;
    {
      std::lock_guard lock(mu_);
      subs = subscriptions_;
    }
    for (auto& s : subs) s->cancel();
    for (auto& t : workers_) {
      // The last owner may be a subscriber releasing us from inside a signal, on a worker.
      if (t.get_id() == std::this_thread::get_id()) {
        t.detach();
      } else {
        t.join();
      }
    }
  }

  void subscribe(std::shared_ptr<bp::rs::subscriber<Item>> s) override {
    if (!s) throw std::invalid_argument("bp::nats::publisher::subscribe: subscriber is null");
    auto sub = std::make_shared<pull_subscription<Item>>();
    std::lock_guard lock(mu_);
    reap_finished();
    subscriptions_.push_back(sub);
    workers_.emplace_back([opts = options_, s = std::move(s), sub]() mutable {
      run(opts, s, sub);
      s.reset();  // the subscriber goes before the thread says it is done
      sub->mark_finished();
    });
  }

 private:
  // Joins the workers whose subscriptions ended (with `mu_` held): a thread's stack stays mapped
  // until it is joined, so a long-lived publisher would otherwise hold one per subscription it
  // ever had. A finished worker has returned from run(), so the join does not wait for a pull.
  void reap_finished() {
    for (std::size_t i = 0; i < workers_.size();) {
      if (subscriptions_[i]->finished()) {
        workers_[i].join();
        workers_.erase(workers_.begin() + static_cast<std::ptrdiff_t>(i));
        subscriptions_.erase(subscriptions_.begin() + static_cast<std::ptrdiff_t>(i));
      } else {
        ++i;
      }
    }
  }

  static void run(const options& o, const std::shared_ptr<bp::rs::subscriber<Item>>& s,
                  const std::shared_ptr<pull_subscription<Item>>& sub) {
    s->on_subscribe(sub);
    std::unique_ptr<byte_receiver> rx;
    try {
      rx = std::make_unique<byte_receiver>(o);
    } catch (...) {
      if (!sub->cancelled()) s->on_error(std::current_exception());
      return;
    }
    // Without demand the worker still watches for the end of stream (rules 1.4-1.6: on_complete
    // needs no demand): at once after the demand ran out, then after 2, 4, 8 ... ms (the last
    // acknowledgement may still be on its way to the server), at most once per fetch_wait.
    std::chrono::milliseconds idle = o.fetch_wait;
    for (;;) {
      const auto w = sub->await_demand(idle);
      if (w.cancelled) return;  // drop the subscriber (rule 3.13)
      if (w.bad_request) {
        sub->cancel();
        s->on_error(std::make_exception_ptr(std::invalid_argument(
            "bp::nats::publisher: request(n) needs n > 0 (rule 3.9), got " + std::to_string(w.n))));
        return;
      }
      if (w.n == 0) {
        idle = std::min(std::max(idle * 2, std::chrono::milliseconds(2)), o.fetch_wait);
        bool end = false;
        try {
          end = rx->peek_end(clock::now() + o.fetch_wait);
        } catch (...) {
          if (!sub->cancelled()) s->on_error(std::current_exception());
          return;
        }
        if (end) {
          if (!sub->cancelled()) s->on_complete();
          return;
        }
        continue;
      }
      const int batch = static_cast<int>(std::min<std::int64_t>(w.n, o.fetch_batch));
      std::optional<raw_delivery> raw;
      try {
        raw = rx->recv(true, clock::now() + o.fetch_wait, batch);
      } catch (...) {
        if (!sub->cancelled()) s->on_error(std::current_exception());
        return;
      }
      if (!raw) {
        if (rx->end_seen()) {
          if (!sub->cancelled()) s->on_complete();
          return;
        }
        continue;  // nothing yet: check for cancel, then pull again
      }
      if (sub->cancelled()) return;  // not acknowledged: delivered again after ack_wait
      std::optional<T> value;
      try {
        value.emplace(Codec::decode(raw->data()));
      } catch (...) {
        raw->term();
        s->on_error(std::current_exception());
        return;
      }
      rx->count_received();
      sub->consumed_one();
      idle = std::chrono::milliseconds(0);
      try {
        if constexpr (AutoAck) {
          s->on_next(std::move(*value));
          raw->ack(false);  // after on_next returned: at least once
        } else {
          s->on_next(delivery<T>(std::move(*value), std::move(*raw)));
        }
      } catch (...) {
        // A subscriber must not throw (rule 2.13): treat it as cancelled; the message is
        // delivered again.
        if (raw && !raw->settled()) raw->nak(std::chrono::milliseconds(0));
        sub->cancel();
        return;
      }
    }
  }

  options options_;
  std::mutex mu_;
  std::vector<std::shared_ptr<pull_subscription<Item>>> subscriptions_;
  std::vector<std::thread> workers_;
};

}  // namespace detail

// A durable pull consumer as a bp::rs::publisher<T>. Each subscribe() opens its own pull
// subscription on the durable named in the options (several subscribers share the work queue).
//
// Demand: the subscriber's request(n) is the credit; the publisher fetches at most
// min(outstanding demand, options.fetch_batch) messages per pull, so it never holds more than
// was requested; options.max_ack_pending bounds delivered-but-unacknowledged messages on the
// server side as well. request(unbounded) pulls batches of fetch_batch forever.
//
// Acknowledgement: each message is acknowledged right after on_next returns: a subscriber that
// crashes in on_next (or a process killed there) gets the message again after ack_wait, so
// processing is at least once. For asynchronous processing use delivery_publisher<T>.
//
// Completion and errors: on_complete after a sender's close() marker, once every message sent
// before it is acknowledged (so after a crash the redelivered messages come first), whether or
// not demand is outstanding (rules 1.4-1.6: without demand the worker checks for the end right
// after the last on_next, then backing off to once per fetch_wait, with a consumer-info request
// and, when only the marker is left, a look at the stream's last message); on_error with
// bp::nats::error for an unreachable server or a missing stream (after on_subscribe), with the
// codec's exception for an undecodable message (which is terminated), with
// std::invalid_argument for request(n <= 0).
//
// Thread safety: request and cancel from any thread; signals come serially from one worker
// thread per subscription. Cancelling stops the worker within options.fetch_wait; the worker
// of a subscription that ended (cancelled, completed, failed) is joined by the next
// subscribe(), so a long-lived publisher holds threads only for its live subscriptions; the
// publisher's destructor cancels and joins every worker.
template <class T, class Codec = default_codec<T>>
requires codec_for<Codec, T>
class publisher final : public detail::pull_publisher<T, Codec, T, true> {
 public:
  using detail::pull_publisher<T, Codec, T, true>::pull_publisher;
};

// As publisher<T>, but emits bp::nats::delivery<T>: the subscriber acknowledges (ack), asks for
// redelivery (nak) or drops a poison message (term) whenever its work is done, also from
// another thread. A delivery destroyed without an answer comes back after ack_wait.
template <class T, class Codec = default_codec<T>>
requires codec_for<Codec, T>
class delivery_publisher final : public detail::pull_publisher<T, Codec, delivery<T>, false> {
 public:
  using detail::pull_publisher<T, Codec, delivery<T>, false>::pull_publisher;
};

}  // namespace bp::nats
