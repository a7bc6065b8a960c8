// bp/rs/interfaces.hpp: the four interfaces of the Reactive Streams specification, in C++.
//
//   bp::rs::subscription    the link between one publisher and one subscriber: request(n), cancel()
//   bp::rs::subscriber<T>   receives on_subscribe, then on_next* and at most one terminal signal
//   bp::rs::publisher<T>    subscribe(subscriber): a source of a possibly unbounded sequence
//   bp::rs::processor<T, R> both a subscriber of T and a publisher of R (a stage in a pipeline)
//   bp::rs::unbounded       INT64_MAX: request(unbounded) means "send everything" (rule 3.17)
//
// The protocol is `on_subscribe on_next* (on_error | on_complete)?`, and a publisher sends at
// most as many on_next as were requested (rule 1.1). Where the Java specification throws
// NullPointerException or IllegalArgumentException, this mapping answers as follows:
//   publisher::subscribe(nullptr)   throws std::invalid_argument (there is nobody to signal)
//   subscription::request(n <= 0)   signals on_error(std::invalid_argument) (rule 3.9)
//
// Example (examples/streams_pull.cpp):
//
//   auto pipeline = bp::rs::range(0, 1000) | bp::rs::map([](std::int64_t v) { return v * v; })
//                                          | bp::rs::filter([](std::int64_t v) { return v % 3; });
//   for (std::int64_t v : bp::rs::to_iterable(pipeline, 32)) consume(v);  // 32 in flight at most
#pragma once

#include <cstdint>
#include <exception>
#include <limits>
#include <memory>

namespace bp::rs {

// Demand of INT64_MAX or more is "effectively unbounded" (rule 3.17): no further accounting.
inline constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();

// One subscriber's link to one publisher (rules 3.1-3.17).
//
// Thread safety: request and cancel may be called from any thread, also concurrently with each
// other and with signals in flight (as Reactor and RxJava allow, beyond the specification's
// "serially" requirement of rule 2.7). Both return promptly (rules 3.4, 3.5) and never throw
// (rules 3.15, 3.16).
//
// Re-entrancy: request may deliver on_next synchronously (rule 3.10), but a request made from
// inside on_next returns at once and the outer delivery loop continues (rule 3.3): the stack
// depth is bounded whatever the subscriber does.
//
// Cancellation: cancel is idempotent (rule 3.7); afterwards request is a no-op (rule 3.6), the
// publisher stops signalling eventually (rule 3.12) and drops its reference to the subscriber
// (rule 3.13).
struct subscription {
  // n > 0 elements more; saturating at `unbounded`. n <= 0 signals on_error(invalid_argument).
  virtual void request(std::int64_t n) = 0;
  virtual void cancel() = 0;
  virtual ~subscription() = default;
};

// The receiving end. Signals are serial (rule 1.3: never two at once, each happens-before the
// next), on_subscribe comes first and at most once (rules 1.9, 2.12), nothing follows on_error
// or on_complete (rule 1.7).
//
// Errors: implementations must not throw from these methods (rule 2.13); a subscriber that
// fails cancels its subscription and handles the failure itself.
template <class T>
struct subscriber {
  virtual void on_subscribe(std::shared_ptr<subscription> s) = 0;
  virtual void on_next(T value) = 0;
  virtual void on_error(std::exception_ptr e) = 0;
  virtual void on_complete() = 0;
  virtual ~subscriber() = default;
};

// A source. Every publisher of this library is cold and unicast per subscription: each
// subscribe starts an independent sequence for that subscriber (rule 1.11).
//
// Errors: subscribe(nullptr) throws std::invalid_argument (rule 1.9); any other failure is
// signalled to the subscriber after on_subscribe.
template <class T>
struct publisher {
  virtual void subscribe(std::shared_ptr<subscriber<T>> s) = 0;
  virtual ~publisher() = default;
};

// A processing stage: obeys the subscriber rules upstream and the publisher rules downstream.
template <class T, class R>
struct processor : subscriber<T>, publisher<R> {};

// Shorthand for the shared handles everything in bp::rs passes around.
template <class T>
using publisher_ptr = std::shared_ptr<publisher<T>>;

namespace detail {
template <class T>
T publisher_element(const publisher<T>*);  // never defined: names T for any publisher type
}  // namespace detail

// P is publisher<T> or a class derived from it (so shared_ptr<my_publisher> works everywhere a
// publisher_ptr<T> does).
template <class P>
concept publisher_type = requires(P* p) {
  detail::publisher_element(p);
};

// The element type T of a publisher type P.
template <publisher_type P>
using element_t = decltype(detail::publisher_element(static_cast<P*>(nullptr)));

}  // namespace bp::rs
