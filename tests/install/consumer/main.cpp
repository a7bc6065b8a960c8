// The smallest user of bp::bp: a bounded channel between two threads. Built by the install
// tests against each way of getting the library (installed package, add_subdirectory,
// FetchContent, pkg-config, the Debian packages).
#include <bp/channel.hpp>

#include <cstdio>
#include <thread>

int main() {
  auto [tx, rx] = bp::make_channel<int>(4);
  std::thread producer([tx = std::move(tx)] {
    for (int i = 1; i <= 10; ++i) {
      if (tx.send(i) != bp::status::ok) return;
    }
  });
  int sum = 0;
  for (int v : rx) sum += v;
  producer.join();
  std::printf("bp consumer: sum=%d\n", sum);
  return sum == 55 ? 0 : 1;
}
