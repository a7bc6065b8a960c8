// bp-test-timeout: 300
// Conservation stress for bp::channel: P producers x C consumers, every policy, small capacities.
// Each item is (producer, sequence). At the end every item sent is in exactly one place:
// received by a consumer, evicted to the drop handler, or back with its producer (dropped,
// rejected). Nothing duplicated, nothing lost, per-producer order kept at every consumer, and
// size() never above capacity as seen by a watcher thread.
#include <bp/channel.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using bp::overflow;
using bp::status;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int items_per_producer = 15000;  // sanitizers slow each op 5-20x
#else
constexpr int items_per_producer = 60000;
#endif
constexpr int producers = 4;
constexpr int consumers = 4;

struct item {
  std::uint32_t producer;
  std::uint32_t seq;
};

enum class fate : std::uint8_t { none, received, evicted, dropped, rejected };

struct params {
  overflow policy;
  std::size_t capacity;
  bool batched = false;  // send_n / recv_many instead of single operations
};

std::string name_of(const ::testing::TestParamInfo<params>& info) {
  return std::string(bp::to_string(info.param.policy)) + "_cap" +
         std::to_string(info.param.capacity) + (info.param.batched ? "_batched" : "");
}

class Conservation : public ::testing::TestWithParam<params> {};

INSTANTIATE_TEST_SUITE_P(
    Channel, Conservation,
    ::testing::Values(params{overflow::block, 0}, params{overflow::block, 1},
                      params{overflow::block, 8}, params{overflow::drop_newest, 1},
                      params{overflow::drop_newest, 8}, params{overflow::drop_oldest, 1},
                      params{overflow::drop_oldest, 8}, params{overflow::reject, 1},
                      params{overflow::reject, 8}, params{overflow::block, 0, true},
                      params{overflow::block, 1, true}, params{overflow::block, 16, true},
                      params{overflow::drop_newest, 16, true},
                      params{overflow::drop_oldest, 16, true}, params{overflow::reject, 16, true}),
    name_of);

TEST_P(Conservation, EveryItemExactlyOnceInOrder) {
  bp::test::watchdog dog(240s, "conservation stress");
  const auto [policy, capacity, batched] = GetParam();
  const int per_producer = capacity == 0 ? items_per_producer / 10 : items_per_producer;

  // fates[p][s] is written by exactly one thread, once; checked after all joins.
  std::vector<std::vector<fate>> fates(producers, std::vector<fate>(per_producer, fate::none));
  std::atomic<long> duplicates{0};
  auto mark = [&](item it, fate f) {
    auto& slot = fates[it.producer][it.seq];
    if (slot != fate::none) ++duplicates;
    slot = f;
  };
  std::mutex evicted_mutex;  // the drop handler may run on several producer threads at once
  bp::channel<item> ch(capacity, policy, [&](item&& it) {
    std::lock_guard lock(evicted_mutex);
    mark(it, fate::evicted);
  });

  std::atomic<bool> failed{false};
  std::atomic<long> sends_counted{0};  // answers other than closed/timeout
  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      auto settle = [&](int s, status r) {  // the answer for value s (not ok)
        switch (r) {
          case status::dropped:
            fates[p][s] = fate::dropped;
            return true;
          case status::full:
            fates[p][s] = fate::rejected;
            return true;
          default:
            failed = true;
            return false;  // closed/timeout must not happen here
        }
      };
      if (!batched) {
        for (int s = 0; s < per_producer; ++s) {
          item it{static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(s)};
          const status r = ch.send_for(it, 30s);
          if (r != status::ok && !settle(s, r)) return;
          ++sends_counted;
        }
        return;
      }
      std::vector<item> all(per_producer);
      for (int s = 0; s < per_producer; ++s)
        all[s] = {static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(s)};
      std::size_t next = 0, batch = 1;
      while (next < all.size()) {
        batch = batch % 13 + 1;  // 2..13, 1.. : varied batch sizes
        std::span<item> chunk(all.data() + next, std::min(batch, all.size() - next));
        const auto r = ch.send_n_for(chunk, 30s);
        next += r.count;
        sends_counted += static_cast<long>(r.count);
        if (r.answer == status::ok) continue;
        if (!settle(static_cast<int>(next), r.answer)) return;
        ++sends_counted;
        ++next;
      }
    });
  }

  std::atomic<long> order_violations{0};
  std::vector<std::vector<item>> received(consumers);
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      std::vector<long> last(producers, -1);
      auto take = [&](const item& v) {
        if (static_cast<long>(v.seq) <= last[v.producer]) ++order_violations;
        last[v.producer] = v.seq;
        received[c].push_back(v);
      };
      std::vector<item> buf;
      for (;;) {
        if (batched) {
          buf.clear();
          if (ch.recv_many_for(buf, 1 + c * 5, 30s) == 0) {
            if (!ch.is_closed()) failed = true;  // timed out: something is stuck
            return;
          }
          for (const auto& v : buf) take(v);
          continue;
        }
        auto v = ch.recv_for(30s);
        if (!v) {
          if (!ch.is_closed()) failed = true;  // timed out: something is stuck
          return;
        }
        take(*v);
      }
    });
  }

  std::atomic<bool> stop_watch{false};
  std::atomic<long> size_violations{0};
  std::thread watcher([&] {
    while (!stop_watch) {
      if (ch.size() > capacity) ++size_violations;
      std::this_thread::yield();
    }
  });

  for (int p = 0; p < producers; ++p) threads[p].join();
  ch.close();
  for (int c = 0; c < consumers; ++c) threads[producers + c].join();
  stop_watch = true;
  watcher.join();

  ASSERT_FALSE(failed) << "a send or receive timed out or answered closed early";
  for (auto& r : received)
    for (auto it : r) mark(it, fate::received);

  EXPECT_EQ(duplicates, 0);
  EXPECT_EQ(order_violations, 0);
  EXPECT_EQ(size_violations, 0);
  long counts[5] = {};
  for (auto& per : fates)
    for (fate f : per) ++counts[static_cast<int>(f)];
  EXPECT_EQ(counts[static_cast<int>(fate::none)], 0) << "items lost";

  const auto st = ch.stats();
  EXPECT_EQ(st.received, static_cast<std::uint64_t>(counts[static_cast<int>(fate::received)]));
  EXPECT_EQ(st.evicted, static_cast<std::uint64_t>(counts[static_cast<int>(fate::evicted)]));
  EXPECT_EQ(st.dropped, static_cast<std::uint64_t>(counts[static_cast<int>(fate::dropped)]));
  EXPECT_EQ(st.rejected, static_cast<std::uint64_t>(counts[static_cast<int>(fate::rejected)]));
  EXPECT_EQ(st.sent, st.received + ch.size() + st.evicted);
  EXPECT_EQ(st.sent + st.dropped + st.rejected, static_cast<std::uint64_t>(sends_counted.load()));
  EXPECT_EQ(st.received + st.dropped + st.evicted + st.rejected,
            static_cast<std::uint64_t>(producers) * per_producer);
  EXPECT_LE(st.high_watermark, capacity);
  if (policy == overflow::block) {
    EXPECT_EQ(st.received, static_cast<std::uint64_t>(producers) * per_producer);
  }
}

// Close races with blocked and running senders/receivers: every thread returns, every value is
// accounted (delivered or still with its sender), nothing after `closed` is enqueued.
TEST(ChannelStress, CloseRacesWithTraffic) {
  bp::test::watchdog dog(120s, "close race");
  for (int round = 0; round < 50; ++round) {
    for (std::size_t capacity : {0u, 1u, 4u}) {
      bp::channel<int> ch(capacity);
      std::atomic<long> accepted{0}, delivered{0};
      std::vector<std::thread> ts;
      for (int p = 0; p < 3; ++p)
        ts.emplace_back([&] {
          for (int i = 0;; ++i) {
            const status r = ch.send_for(i, 30s);
            if (r == status::closed) return;
            ASSERT_EQ(r, status::ok);
            ++accepted;
          }
        });
      for (int c = 0; c < 3; ++c)
        ts.emplace_back([&] {
          while (ch.recv_for(30s)) ++delivered;
          ASSERT_TRUE(ch.is_closed());
        });
      std::this_thread::sleep_for(std::chrono::microseconds(200 + 100 * round));
      ch.close();
      for (auto& t : ts) t.join();
      EXPECT_EQ(accepted.load(), delivered.load()) << "capacity " << capacity;
      EXPECT_EQ(ch.size(), 0u);
      EXPECT_EQ(ch.stats().sent, static_cast<std::uint64_t>(accepted.load()));
    }
  }
}

// Producers reserve 1..4 slots, fill some and give the rest back, while consumers receive:
// every value sent through a permit arrives exactly once, in order per producer, the counters
// balance, and receivers never stall behind a given-back slot.
TEST(ChannelStress, ReservationsConserveAndNeverStall) {
  bp::test::watchdog dog(120s, "reservations");
  constexpr int per_producer = items_per_producer / 4;
  bp::channel<item> ch(8);
  std::atomic<bool> failed{false};
  std::vector<std::thread> ts;
  for (int p = 0; p < 3; ++p)
    ts.emplace_back([&, p] {
      int s = 0, round = 0;
      while (s < per_producer) {
        const std::size_t want = 1 + (round++ % 4);
        auto permit = ch.reserve_for(want, 30s);
        if (!permit) {
          failed = true;
          return;
        }
        const std::size_t use = std::min<std::size_t>(round % 3 == 0 ? want / 2 : want,
                                                      static_cast<std::size_t>(per_producer - s));
        for (std::size_t i = 0; i < use; ++i)
          permit.send(item{static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(s++)});
      }  // unused slots given back here
    });
  std::atomic<long> received{0}, order_violations{0};
  for (int c = 0; c < 2; ++c)
    ts.emplace_back([&] {
      std::vector<long> last(3, -1);
      while (auto v = ch.recv_for(30s)) {
        if (static_cast<long>(v->seq) <= last[v->producer]) ++order_violations;
        last[v->producer] = v->seq;
        ++received;
      }
      if (!ch.is_closed()) failed = true;
    });
  for (int p = 0; p < 3; ++p) ts[p].join();
  ch.close();
  for (std::size_t i = 3; i < ts.size(); ++i) ts[i].join();
  ASSERT_FALSE(failed);
  EXPECT_EQ(received, 3 * per_producer);
  EXPECT_EQ(order_violations, 0);
  const auto st = ch.stats();
  EXPECT_EQ(st.sent, static_cast<std::uint64_t>(3 * per_producer));
  EXPECT_EQ(st.received, st.sent);
  EXPECT_EQ(ch.size(), 0u);
}

// Lossy senders beside reservations: drop_oldest must never wait for a reserved oldest slot
// (it refuses the new value instead), and every value still ends in exactly one place.
TEST(ChannelStress, DropOldestBesideReservationsConservesAndNeverWaits) {
  bp::test::watchdog dog(120s, "drop_oldest beside reservations");
  constexpr int per_producer = items_per_producer / 4;
  std::vector<std::vector<fate>> fates(3, std::vector<fate>(per_producer, fate::none));
  std::mutex evicted_m;
  bp::channel<item> ch(4, overflow::drop_oldest, [&](item&& v) {
    std::lock_guard lock(evicted_m);
    fates[v.producer][v.seq] = fate::evicted;
  });
  std::vector<std::thread> ts;
  for (int p = 0; p < 2; ++p)  // lossy senders that never wait
    ts.emplace_back([&, p] {
      for (int s = 0; s < per_producer; ++s) {
        const item v{static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(s)};
        const status a = (s % 2) ? ch.try_send(v) : ch.send(v);
        if (a == status::dropped)
          fates[p][s] = fate::dropped;
        else
          ASSERT_EQ(a, status::ok);
      }
    });
  ts.emplace_back([&] {  // a reserver that sometimes holds its slots a while, or gives them back
    int s = 0, round = 0;
    while (s < per_producer) {
      auto permit = ch.reserve_for(1 + round % 2, 30s);
      ASSERT_TRUE(permit);
      if (++round % 5 == 0) std::this_thread::sleep_for(50us);
      if (round % 7 == 0) continue;  // given back unused
      while (permit.remaining() != 0 && s < per_producer)
        permit.send(item{2, static_cast<std::uint32_t>(s++)});
    }
  });
  std::mutex got_m;
  std::vector<item> got;
  std::vector<std::thread> cs;
  for (int c = 0; c < 2; ++c)
    cs.emplace_back([&] {
      std::vector<item> batch;
      while (ch.recv_many_for(batch, 3, 30s) != 0) {
      }
      std::lock_guard lock(got_m);
      got.insert(got.end(), batch.begin(), batch.end());
    });
  for (auto& t : ts) t.join();
  ch.close();
  for (auto& t : cs) t.join();
  for (const item& v : got) {
    ASSERT_EQ(fates[v.producer][v.seq], fate::none) << "delivered twice or also evicted/dropped";
    fates[v.producer][v.seq] = fate::received;
  }
  for (int p = 0; p < 3; ++p)
    for (int s = 0; s < per_producer; ++s)
      ASSERT_NE(fates[p][s], fate::none) << "lost: producer " << p << " seq " << s;
  const auto st = ch.stats();
  EXPECT_EQ(st.sent, st.received + st.evicted);
  EXPECT_EQ(st.received, got.size());
  EXPECT_LE(st.high_watermark, ch.capacity());
}

// Ownership-based closing under load: producers hold sender copies and simply finish.
TEST(ChannelStress, LastSenderClosesUnderLoad) {
  bp::test::watchdog dog(120s, "sender ownership");
  auto [tx, rx] = bp::make_channel<std::uint64_t>(4);
  std::vector<std::thread> ts;
  constexpr std::uint64_t n = 5000;
  for (std::uint64_t p = 0; p < 4; ++p)
    ts.emplace_back([tx = tx, p] {
      for (std::uint64_t i = 0; i < n; ++i) ASSERT_EQ(tx.send_for(p * n + i, 30s), status::ok);
    });
  tx.reset();
  std::atomic<std::uint64_t> sum{0}, count{0};
  for (int c = 0; c < 3; ++c)
    ts.emplace_back([rx = rx, &sum, &count] {
      for (auto v : rx) sum += v, ++count;
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(count, 4 * n);
  EXPECT_EQ(sum, (4 * n) * (4 * n - 1) / 2);
}

}  // namespace
