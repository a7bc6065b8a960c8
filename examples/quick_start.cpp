// The README's quick start: a fast producer and a slower consumer through a bounded channel.
// The producer waits whenever 8 items are buffered: memory stays flat, nothing is lost.
#include <bp/channel.hpp>

#include <cstdio>
#include <thread>

int main() {
  auto [tx, rx] = bp::make_channel<int>(8);  // capacity 8, overflow::block

  std::thread producer([tx = std::move(tx)] {
    for (int i = 0; i < 100; ++i) {
      if (tx.send(i) != bp::status::ok) return;  // waits while the buffer is full
    }
  });  // the last sender is destroyed here: the channel closes, receivers drain

  long sum = 0;
  for (int v : rx) sum += v;  // receives until closed and drained
  producer.join();

  const auto s = rx.stats();
  std::printf("sum=%ld sent=%llu received=%llu producer waits=%llu high watermark=%zu\n", sum,
              static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
              static_cast<unsigned long long>(s.send_waits), s.high_watermark);
  return sum == 4950 && s.received == 100 ? 0 : 1;
}
