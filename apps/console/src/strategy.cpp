#include "strategy.hpp"

#include <bp/channel.hpp>
#include <bp/rate.hpp>
#include <bp/unbounded_channel.hpp>

#include <atomic>
#include <stdexcept>
#include <string>

namespace bp::console {
namespace {

// The producer context of the offer() running on this thread: drop_oldest evicts on the
// sending thread, inside bp::channel::send, and reports the eviction through it.
thread_local producer_context* current_producer = nullptr;

struct current_producer_scope {
  explicit current_producer_scope(producer_context& c) noexcept { current_producer = &c; }
  ~current_producer_scope() { current_producer = nullptr; }
  current_producer_scope(const current_producer_scope&) = delete;
  current_producer_scope& operator=(const current_producer_scope&) = delete;
};

// Sends under the block policy: at once when there is room, else the producer waits for a free
// slot until the channel closes or `stop` is stopped (an unsent value stays in `it`).
offer_result send_blocking(channel<item>& ch, item&& it, producer_context& ctx,
                           const std::stop_token& stop) {
  status st = ch.try_send(std::move(it));
  if (st == status::ok) return offer_result::accepted;
  if (st == status::closed) return offer_result::stopped;
  ctx.begin_wait(wait_reason::buffer_full);
  st = ch.send(std::move(it), stop);
  ctx.end_wait();
  return st == status::ok ? offer_result::accepted : offer_result::stopped;
}

overflow to_overflow(strategy_kind k) {
  switch (k) {
    case strategy_kind::block:
      return overflow::block;
    case strategy_kind::drop_newest:
      return overflow::drop_newest;
    case strategy_kind::drop_oldest:
      return overflow::drop_oldest;
    case strategy_kind::reject:
      return overflow::reject;
    default:
      throw std::invalid_argument("strategy " + std::string(to_string(k)) +
                                  " is not a bp::overflow policy");
  }
}

// block, drop_newest, drop_oldest, reject: bp::channel with the matching overflow policy.
class channel_strategy final : public strategy {
 public:
  channel_strategy(strategy_kind k, std::size_t capacity)
      : kind_(k), ch_(capacity, to_overflow(k), [](item&& old) {
          if (current_producer) current_producer->evicted(std::move(old));
        }) {}

  strategy_kind kind() const noexcept override { return kind_; }

  offer_result offer(item&& it, producer_context& ctx) override {
    current_producer_scope scope(ctx);
    const std::stop_token stop = ctx.stop_token();
    if (kind_ != strategy_kind::block) {
      switch (ch_.send(std::move(it), stop)) {  // never parks under these policies
        case status::ok:
          return offer_result::accepted;
        case status::dropped:
          return offer_result::dropped;
        case status::full:
          return offer_result::rejected;
        default:
          return offer_result::stopped;
      }
    }
    return send_blocking(ch_, std::move(it), ctx, stop);
  }

  std::optional<item> take(const std::stop_token& stop) override { return ch_.recv(stop); }
  std::size_t depth() const noexcept override { return ch_.size(); }
  std::size_t capacity() const noexcept override { return ch_.capacity(); }
  void close() noexcept override { ch_.close(); }

  std::vector<metrics::registration> register_metrics(metrics::registry& reg,
                                                      const std::string& name) const override {
    std::vector<metrics::registration> r;
    r.push_back(reg.add(name, ch_));
    return r;
  }

 private:
  strategy_kind kind_;
  channel<item> ch_;
};

// No backpressure: bp::unbounded_channel takes everything; the console sheds on top of it at its
// safety cap (in bytes), so that the demo cannot take the machine down. The bytes are reserved
// before the send and given back by take(), so the cap holds exactly under any number of
// producers.
class unbounded_strategy final : public strategy {
 public:
  unbounded_strategy(std::size_t cap_bytes, std::size_t payload_bytes)
      : cap_bytes_(cap_bytes), item_bytes_(sizeof(item) + payload_bytes) {}

  strategy_kind kind() const noexcept override { return strategy_kind::unbounded; }

  offer_result offer(item&& it, producer_context&) override {
    if (ch_.is_closed()) return offer_result::stopped;
    const std::size_t bytes = it.footprint();
    std::size_t held = bytes_.load(std::memory_order_relaxed);
    do {
      if (held + bytes > cap_bytes_) return offer_result::capped;
    } while (!bytes_.compare_exchange_weak(held, held + bytes, std::memory_order_relaxed));
    if (ch_.send(std::move(it)) == status::ok) return offer_result::accepted;
    bytes_.fetch_sub(bytes, std::memory_order_relaxed);  // closed: the item was not taken
    return offer_result::stopped;
  }

  std::optional<item> take(const std::stop_token& stop) override {
    auto it = ch_.recv(stop);
    if (it) bytes_.fetch_sub(it->footprint(), std::memory_order_relaxed);
    return it;
  }

  std::size_t depth() const noexcept override { return ch_.size(); }
  // The cap in items, so that the fill level reads "share of the safety cap".
  std::size_t capacity() const noexcept override { return cap_bytes_ / item_bytes_; }

  void close() noexcept override { ch_.close(); }

  std::vector<metrics::registration> register_metrics(metrics::registry& reg,
                                                      const std::string& name) const override {
    std::vector<metrics::registration> r;
    r.push_back(reg.add(name, ch_));
    return r;
  }

 private:
  const std::size_t cap_bytes_;
  const std::size_t item_bytes_;
  std::atomic<std::size_t> bytes_{0};  // footprint of the items taken and not yet received
  unbounded_channel<item> ch_;
};

// Throttle: a bp::token_bucket in front of the producer, then a bounded bp::channel with the
// block policy behind it. Rate-limiting is a policy fixed in advance, not feedback from the
// consumer: a token rate above the consumer's still fills the buffer, and the producer then
// waits on the channel as under `block`.
class throttle_strategy final : public strategy {
 public:
  throttle_strategy(double rate, std::size_t burst, std::size_t capacity)
      : bucket_(rate, burst), ch_(capacity, overflow::block) {}

  strategy_kind kind() const noexcept override { return strategy_kind::throttle; }

  offer_result offer(item&& it, producer_context& ctx) override {
    const std::stop_token stop = ctx.stop_token();
    if (!bucket_.try_acquire()) {
      ctx.begin_wait(wait_reason::no_token);
      // Parks until the token is due; closing the bucket or a stop request wakes it at once.
      const bool granted = bucket_.acquire(1, stop) == status::ok;
      ctx.end_wait();
      if (!granted) return offer_result::stopped;
    }
    return send_blocking(ch_, std::move(it), ctx, stop);
  }

  std::optional<item> take(const std::stop_token& stop) override { return ch_.recv(stop); }
  std::size_t depth() const noexcept override { return ch_.size(); }
  std::size_t capacity() const noexcept override { return ch_.capacity(); }
  void close() noexcept override {
    bucket_.close();
    ch_.close();
  }

  std::vector<metrics::registration> register_metrics(metrics::registry& reg,
                                                      const std::string& name) const override {
    std::vector<metrics::registration> r;
    r.push_back(reg.add(name, bucket_));
    r.push_back(reg.add(name, ch_));
    return r;
  }

 private:
  token_bucket bucket_;
  channel<item> ch_;
};

}  // namespace

bool is_available(strategy_kind k) noexcept {
  switch (k) {
    case strategy_kind::signal:
#ifdef BP_CONSOLE_HAVE_STREAMS
      return true;
#else
      return false;  // coming: bp/streams.hpp is not in the library yet
#endif
    default:
      return true;
  }
}

std::unique_ptr<strategy> make_strategy(const settings& s, strategy_hooks hooks) {
  if (!is_available(s.strategy))
    throw std::invalid_argument("strategy " + std::string(to_string(s.strategy)) +
                                " is not available in this build (coming)");
  switch (s.strategy) {
    case strategy_kind::block:
    case strategy_kind::drop_newest:
    case strategy_kind::drop_oldest:
    case strategy_kind::reject:
      return std::make_unique<channel_strategy>(s.strategy, s.capacity);
    case strategy_kind::unbounded:
      return std::make_unique<unbounded_strategy>(s.unbounded_cap_bytes, s.payload_bytes);
    case strategy_kind::throttle:
      return std::make_unique<throttle_strategy>(
          s.throttle_rate > 0 ? s.throttle_rate : s.consumer_rate, s.throttle_burst, s.capacity);
    case strategy_kind::signal:
#ifdef BP_CONSOLE_HAVE_STREAMS
      return make_signal_strategy(s, std::move(hooks));
#else
      break;
#endif
  }
  throw std::invalid_argument("strategy " + std::string(to_string(s.strategy)) +
                              " is not available in this build (coming)");
}

}  // namespace bp::console
