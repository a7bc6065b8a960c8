// Internal: the awaiters of bp::channel's async verbs (co_await ch.async_send(v), ...). Each
// lives in the awaiting coroutine's frame and allocates nothing. A buffered channel's awaiter
// waits on the channel's event counts with the same attempt as the blocking verb
// (detail/async_op.hpp); a capacity-0 channel's awaiter queues a hand-off node, as a thread
// does, and waits for it to be served.
#pragma once

#include <algorithm>
#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <utility>
#include <vector>

#include "../status.hpp"
#include "async_op.hpp"
#include "deadline.hpp"
#include "rendezvous.hpp"
#include "waiter_queue.hpp"

namespace bp::detail {

// What the send and receive awaiters share: the rendezvous node and the wait on it.
template <class Channel>
class channel_op_base {
 protected:
  using T = typename Channel::value_type;
  using rv_node = typename rendezvous<T>::node;

  explicit channel_op_base(Channel& ch) noexcept : ch_(&ch) {}

  Channel* ch_;
  rv_node node_;  // used by capacity-0 channels only
};

// co_await ch.async_send(value[, options]): the blocking send's answers (ok | dropped | full |
// closed), or `cancelled`. Only a full `block` channel (or a capacity-0 channel with no receiver)
// suspends; every other answer is given at once. The value is moved from only on `ok`.
template <class Channel>
class channel_send_op : private channel_op_base<Channel>,
                        public async_op<channel_send_op<Channel>> {
  using base = channel_op_base<Channel>;
  using op = async_op<channel_send_op<Channel>>;
  using T = typename base::T;
  friend op;

 public:
  channel_send_op(Channel& ch, T& value, async_options opts,
                  clock::time_point deadline = forever()) noexcept
      : base(ch), op(ch.not_full_, std::move(opts)), value_(&value) {
    this->set_deadline(deadline);
  }

  bool await_ready() {
    Channel& ch = *this->ch_;
    if (ch.capacity() == 0) {
      switch (ch.rendezvous_.start_send(this->node_, *value_, ch.send_waits_)) {
        case rendezvous<T>::outcome::done:
          answer_ = status::ok;
          return true;
        case rendezvous<T>::outcome::closed:
          answer_ = status::closed;
          return true;
        default:
          this->wait_on(this->node_.ready);
          return false;
      }
    }
    if (ch.policy_ != overflow::block) {  // never waits: the policy answers now
      answer_ = ch.send_impl(*value_, true, forever());
      return true;
    }
    if (attempt()) return true;
    if (ch.pass_tombstones() && attempt()) return true;
    ch.send_waits_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }

  status await_resume() {
    if (this->ch_->capacity() == 0 && !answer_) {
      switch (this->ch_->rendezvous_.finish(this->node_)) {
        case rendezvous<T>::outcome::done:
          return status::ok;
        case rendezvous<T>::outcome::closed:
          return status::closed;
        default:  // never served: the value is untouched
          return this->timed_out() ? status::timeout : status::cancelled;
      }
    }
    if (this->cancelled()) return status::cancelled;
    return this->timed_out() ? status::timeout : *answer_;
  }

 private:
  bool attempt() {
    if (this->ch_->capacity() == 0)
      return waiter_queue<typename base::rv_node>::is_served(this->node_);
    return static_cast<bool>(answer_ = this->ch_->push_once(*value_));
  }
  bool settled() {
    if (this->ch_->capacity() == 0) return true;
    return this->ch_->ring_.settled_full() && !this->ch_->pass_tombstones();
  }

  T* value_;
  std::optional<status> answer_;
};

// co_await ch.async_recv(): std::optional<T>, std::nullopt once closed and drained (or
// cancelled); with `T& out`: ok | closed | cancelled, the value moved into `out` on ok.
template <class Channel, bool AnswerStatus>
class channel_recv_op : private channel_op_base<Channel>,
                        public async_op<channel_recv_op<Channel, AnswerStatus>> {
  using base = channel_op_base<Channel>;
  using op = async_op<channel_recv_op<Channel, AnswerStatus>>;
  using T = typename base::T;
  friend op;

 public:
  channel_recv_op(Channel& ch, T* out, async_options opts,
                  clock::time_point deadline = forever()) noexcept
      : base(ch), op(ch.not_empty_, std::move(opts)), out_(out) {
    this->set_deadline(deadline);
  }

  bool await_ready() {
    Channel& ch = *this->ch_;
    if (ch.capacity() == 0) {
      switch (ch.rendezvous_.start_recv(this->node_, value_)) {
        case rendezvous<T>::outcome::done:
        case rendezvous<T>::outcome::closed:
          ended_ = !value_;
          return true;
        default:
          queued_ = true;
          this->wait_on(this->node_.ready);
          return false;
      }
    }
    return attempt();
  }

  auto await_resume() {
    Channel& ch = *this->ch_;
    status answer = status::ok;
    // A queued node is settled under the rendezvous' mutex even when its value has arrived:
    // the sender that served it may still be notifying the node's event count, and locking
    // the mutex waits for it to be done before the node (in this frame) goes away.
    if (queued_) {
      switch (ch.rendezvous_.finish(this->node_)) {
        case rendezvous<T>::outcome::done:
          break;
        case rendezvous<T>::outcome::closed:
          answer = status::closed;
          break;
        default:
          answer = this->timed_out() ? status::timeout : status::cancelled;
          break;
      }
    } else if (!value_) {
      answer = ended_              ? status::closed
               : this->cancelled() ? status::cancelled
               : this->timed_out() ? status::timeout
                                   : status::closed;
    }
    if constexpr (AnswerStatus) {
      if (value_) *out_ = std::move(*value_);
      return answer;
    } else {
      return std::move(value_);
    }
  }

 private:
  bool attempt() {
    Channel& ch = *this->ch_;
    if (ch.capacity() == 0) return waiter_queue<typename base::rv_node>::is_served(this->node_);
    if ((value_ = ch.pop_one())) return true;
    return ended_ = ch.ring_.closed_and_drained();
  }
  bool settled() { return this->ch_->capacity() == 0 || this->ch_->ring_.settled_empty(); }

  T* out_;
  std::optional<T> value_;
  bool ended_ = false;
  bool queued_ = false;  // capacity 0: our node went into the rendezvous' queue
};

// co_await ch.async_recv_many(out, max[, options]): as recv_many. What is buffered is taken at
// once; otherwise it waits for one value as async_recv does, then takes what came behind it.
template <class Channel>
class channel_recv_many_op {
  using T = typename Channel::value_type;
  using first_op = channel_recv_op<Channel, false>;

 public:
  channel_recv_many_op(Channel& ch, std::vector<T>& out, std::size_t max,
                       async_options opts) noexcept
      : ch_(&ch), out_(&out), max_(max), first_(ch, nullptr, std::move(opts)) {}
  channel_recv_many_op(const channel_recv_many_op&) = delete;
  channel_recv_many_op& operator=(const channel_recv_many_op&) = delete;

  bool await_ready() {
    if (max_ == 0) return done(0);
    Channel& ch = *ch_;
    // Grown before anything is taken: the push_backs below then cannot throw with values held.
    const std::size_t most = std::min(max_, ch.capacity() + 1);
    if (out_->capacity() - out_->size() < most) out_->reserve(out_->size() + most);
    auto sink = std::back_inserter(*out_);
    if (ch.capacity() != 0)
      if (const std::size_t k = ch.pop_many(sink, max_)) return done(k);
    return first_.await_ready();
  }
  auto await_suspend(std::coroutine_handle<> h) noexcept { return first_.await_suspend(h); }
  std::size_t await_resume() {
    if (taken_) return *taken_;
    std::optional<T> first = first_.await_resume();
    if (!first) return 0;
    out_->push_back(std::move(*first));
    if (ch_->capacity() == 0 || max_ == 1) return 1;
    auto sink = std::back_inserter(*out_);
    return 1 + ch_->pop_many(sink, max_ - 1);
  }

 private:
  bool done(std::size_t k) noexcept {
    taken_ = k;
    return true;
  }

  Channel* ch_;
  std::vector<T>* out_;
  std::size_t max_;
  std::optional<std::size_t> taken_;
  first_op first_;
};

// The state of one awaited reserve (attempt_awaiter): the blocking reserve's attempt and its
// statistics (a wait is counted, and timed, once the first attempt failed).
template <class Channel>
class channel_reserve_wait {
 public:
  channel_reserve_wait(Channel& ch, std::size_t n) noexcept : ch_(&ch), n_(n) {}

  bool attempt() noexcept {
    if ((answer_ = ch_->reserve_once(n_, ticket_))) return true;
    if (!waited_) {
      waited_ = true;
      start_ = clock::now();
      ch_->send_waits_.fetch_add(1, std::memory_order_relaxed);
    }
    return false;
  }
  bool settled() noexcept { return ch_->reserve_settled(n_); }

  auto result(bool cancelled, bool timed_out) noexcept {
    if (waited_) ch_->send_wait_.record(clock::now() - start_);
    status a = status::ok;
    if (answer_) {
      a = *answer_;
    } else if (cancelled) {
      a = status::cancelled;
    } else {
      (void)timed_out;
      ch_->timeouts_.fetch_add(1, std::memory_order_relaxed);
      a = status::timeout;
    }
    return ch_->make_permit(n_, ticket_, a);
  }

 private:
  Channel* ch_;
  std::size_t n_;
  std::uint64_t ticket_ = 0;
  std::optional<status> answer_;
  bool waited_ = false;
  clock::time_point start_{};
};

}  // namespace bp::detail
