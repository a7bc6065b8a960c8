// The README's quick start as two coroutines on one thread: a producer that suspends while 8
// items are buffered, and a consumer that suspends while none are. No thread blocks; the
// hand-overs resume the other side inline, on the only thread there is.
#include <bp/channel.hpp>
#include <bp/task.hpp>

#include <cstdio>

bp::task<void> producer(bp::channel<int>& ch) {
  for (int i = 0; i < 100; ++i) {
    if (co_await ch.async_send(int{i}) != bp::status::ok) co_return;  // suspends while full
  }
  ch.close();  // the consumer drains what is buffered, then its loop ends
}

bp::task<long> consumer(bp::channel<int>& ch) {
  long sum = 0;
  while (auto v = co_await ch.async_recv()) sum += *v;  // suspends while empty
  co_return sum;
}

int main() {
  bp::channel<int> ch(8);
  auto [ignored, sum] = bp::sync_wait(bp::when_all(producer(ch), consumer(ch)));
  (void)ignored;
  const auto s = ch.stats();
  std::printf("sum=%ld sent=%llu received=%llu producer suspensions=%llu\n", sum,
              static_cast<unsigned long long>(s.sent), static_cast<unsigned long long>(s.received),
              static_cast<unsigned long long>(s.send_waits));
  return sum == 4950 && s.received == 100 ? 0 : 1;
}
