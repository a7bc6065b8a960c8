// The Signal strategy: the consumer pulls with request(n) through bp::rs (Reactive Streams).
// Built only when the library has bp/streams.hpp (see apps/console/CMakeLists.txt).
//
// The producers are paced threads of their own, so their side is a small publisher written
// here against the bp::rs interfaces: an item is emitted only against outstanding demand, and
// a producer without demand waits ("producer waits: no demand"). The consumer side is the
// library's bp::rs::to_channel: a subscription_channel that requests its capacity at first,
// then refills demand as the consumer takes items, so that no more than `capacity` items are
// ever requested and not yet taken.
#include <bp/streams.hpp>

#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <stop_token>

#include "strategy.hpp"

namespace bp::console {
namespace {

class demand_publisher final : public rs::publisher<item>, public rs::subscription {
 public:
  explicit demand_publisher(strategy_hooks hooks) : hooks_(std::move(hooks)) {}

  // --- publisher: unicast, one subscriber for the life of the strategy
  void subscribe(std::shared_ptr<rs::subscriber<item>> s) override {
    if (!s) throw std::invalid_argument("demand_publisher::subscribe: subscriber is null");
    {
      std::lock_guard lock(m_);
      if (sub_) throw std::logic_error("demand_publisher: one subscriber only");
      sub_ = s;
    }
    // The subscription is this object; it lives as long as the strategy that owns it, and the
    // subscriber drops it on cancel/complete (a non-owning alias keeps rule 3.13 simple).
    s->on_subscribe(std::shared_ptr<rs::subscription>(std::shared_ptr<void>{}, this));
  }

  // --- subscription: called from the consumer's thread
  void request(std::int64_t n) override {
    if (n <= 0) {  // rule 3.9
      std::shared_ptr<rs::subscriber<item>> s;
      {
        std::lock_guard lock(m_);
        cancelled_ = true;
        s = sub_;
      }
      cv_.notify_all();
      if (s)
        s->on_error(
            std::make_exception_ptr(std::invalid_argument("request(n): n must be > 0 (rule 3.9)")));
      return;
    }
    std::int64_t outstanding = 0;
    {
      std::lock_guard lock(m_);
      if (cancelled_) return;
      demand_ = demand_ > rs::unbounded - n ? rs::unbounded : demand_ + n;
      outstanding = demand_;
    }
    cv_.notify_all();
    if (hooks_.on_request) hooks_.on_request(n, outstanding);
  }

  void cancel() override {
    {
      std::lock_guard lock(m_);
      cancelled_ = true;
    }
    cv_.notify_all();
  }

  // --- the producers' side
  offer_result offer(item&& it, producer_context& ctx) {
    {
      std::unique_lock lock(m_);
      if (demand_ == 0 && !cancelled_) {
        lock.unlock();
        ctx.begin_wait(wait_reason::no_demand);
        lock.lock();
        // request(n), cancel() or a stop request wakes it at once.
        const bool woken =
            cv_.wait(lock, ctx.stop_token(), [&] { return demand_ != 0 || cancelled_; });
        lock.unlock();
        ctx.end_wait();
        if (!woken) return offer_result::stopped;
        lock.lock();
      }
      if (cancelled_ || demand_ == 0) return offer_result::stopped;
      if (demand_ != rs::unbounded) --demand_;
    }
    // Signals to the subscriber are serial (rule 1.3) even with several producers.
    std::lock_guard emit(emit_m_);
    std::shared_ptr<rs::subscriber<item>> s;
    {
      std::lock_guard lock(m_);
      if (cancelled_) return offer_result::stopped;
      s = sub_;
    }
    s->on_next(std::move(it));
    return offer_result::accepted;
  }

 private:
  strategy_hooks hooks_;
  std::mutex m_;
  std::condition_variable_any cv_;
  std::mutex emit_m_;
  std::shared_ptr<rs::subscriber<item>> sub_;
  std::int64_t demand_ = 0;
  bool cancelled_ = false;
};

class signal_strategy final : public strategy {
 public:
  signal_strategy(std::size_t capacity, strategy_hooks hooks)
      : pub_(std::make_shared<demand_publisher>(std::move(hooks))),
        ch_(rs::to_channel(rs::publisher_ptr<item>(pub_), capacity)) {}

  ~signal_strategy() override { close(); }

  strategy_kind kind() const noexcept override { return strategy_kind::signal; }
  offer_result offer(item&& it, producer_context& ctx) override {
    return pub_->offer(std::move(it), ctx);
  }
  std::optional<item> take(const std::stop_token& stop) override { return ch_.recv(stop); }
  std::size_t depth() const noexcept override { return ch_.size(); }
  std::size_t capacity() const noexcept override { return ch_.capacity(); }
  void close() noexcept override {
    pub_->cancel();
    ch_.cancel();
  }

 private:
  std::shared_ptr<demand_publisher> pub_;
  rs::subscription_channel<item> ch_;
};

}  // namespace

std::unique_ptr<strategy> make_signal_strategy(const settings& s, strategy_hooks hooks) {
  return std::make_unique<signal_strategy>(s.capacity, std::move(hooks));
}

}  // namespace bp::console
