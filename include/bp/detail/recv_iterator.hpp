// Internal: the input iterator behind every `for (T v : source)` loop of the library (channel,
// its receivers, budgeted_channel, bp::rs::to_iterable, bp::nats::receiver): it calls the
// source's `Next` member (recv(), next()) until that returns std::nullopt. end() is
// std::default_sentinel.
#pragma once

#include <cstddef>
#include <iterator>
#include <optional>

namespace bp::detail {

template <class T, class Source, auto Next>
class recv_iterator {
 public:
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using iterator_concept = std::input_iterator_tag;

  recv_iterator() = default;
  explicit recv_iterator(Source* source) : source_(source) { ++*this; }

  T& operator*() const { return *cur_; }
  T* operator->() const { return &*cur_; }
  recv_iterator& operator++() {
    cur_ = (source_->*Next)();
    return *this;
  }
  void operator++(int) { ++*this; }
  friend bool operator==(const recv_iterator& it, std::default_sentinel_t) { return !it.cur_; }

 private:
  Source* source_ = nullptr;
  mutable std::optional<T> cur_;
};

}  // namespace bp::detail
