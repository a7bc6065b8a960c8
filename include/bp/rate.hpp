// bp/rate.hpp: rate limiting (throttling), both buckets in one include.
//
//   bp::token_bucket  refills `rate` tokens per second up to `burst`: allows bursts, caps the
//                     average (Guava RateLimiter, golang.org/x/time/rate, tower's RateLimit).
//   bp::leaky_bucket  lets units out at a constant `rate`, never two closer than 1/rate: smooth
//                     outflow, queue of at most `capacity` units (nginx limit_req, shapers).
//   bp::token_bucket_options, bp::leaky_bucket_options  the same arguments, for designated
//                     initializers.
//   bp::reservation   the answer of reserve(n): how long to wait before acting, cancellable
//                     (x/time/rate's Reservation).
//   bp::manual_clock, bp::clock_ref  (bp/clock.hpp) the injectable clock: both
//                     buckets read std::chrono::steady_clock unless given a bp::manual_clock.
//
// Rate limiting is a policy, backpressure is feedback: a bucket caps a producer at a
// fixed rate whatever the consumer could take; a bounded bp::channel, bp::semaphore or
// bp::concurrency_limiter slows it to what the consumer does take. Use a bucket to protect a
// service from abuse or to honour a quota; use backpressure inside a pipeline.
//
// Example (examples/rate_limit.cpp):
//
//   bp::token_bucket bucket(100.0, 10);          // 100 per second, bursts of 10
//   if (!bucket.try_acquire()) return reject();  // never waits: a clock read and a CAS
//   if (!bucket.acquire(4)) return;              // parks until 4 tokens are there
//   auto r = bucket.reserve();                   // or: when may I go?
//   std::this_thread::sleep_for(r.delay());
//
//   bp::manual_clock clock;                      // tests: time moves when told to
//   bp::leaky_bucket smooth(10.0, 5, clock);     // one unit per 100 ms
//   clock.advance(100ms);
#pragma once

#include "clock.hpp"         // IWYU pragma: export
#include "leaky_bucket.hpp"  // IWYU pragma: export
#include "reservation.hpp"   // IWYU pragma: export
#include "token_bucket.hpp"  // IWYU pragma: export
