// The usage examples of bp/memory_budget.hpp, bp/budgeted_channel.hpp and
// bp/watermark_buffer.hpp, compiled and run (the headers' comments are copies of these lines):
//   1. a connection reserves bytes for a chunk, waiting at most 100 ms (Kafka's max.block.ms);
//   2. two channels share one budget: a send that does not fit times out, a receive gives the
//      bytes back;
//   3. a Node-style producer pauses on `false` and resumes on 'drain'.
// Exits non-zero if any step does not behave as documented. Takes (and ignores) --quick.
#include <bp/budgeted_channel.hpp>
#include <bp/memory_budget.hpp>
#include <bp/watermark_buffer.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <string>
#include <thread>
#include <utility>

using namespace std::chrono_literals;

namespace {

int failures = 0;
void check(bool ok, const char* what) {
  std::printf("%-60s %s\n", what, ok ? "ok" : "FAILED");
  if (!ok) ++failures;
}

void reserve_for_a_chunk() {
  struct entry {
    std::string chunk;
    bp::memory_permit bytes;
  };
  std::deque<entry> queue;

  bp::memory_budget budget(64 << 10);  // 64 KiB for the whole process
  auto conn = budget.open_stream();    // one per connection
  for (int i = 0; i < 5; ++i) {
    std::string chunk(16 << 10, 'x');
    auto bytes = conn.reserve_for(chunk.size(), 20ms);  // waits while the budget is spent
    if (!bytes) {                                       // timeout or closed: not buffered
      check(i == 4 && bytes.status() == bp::status::timeout && chunk.size() == (16 << 10),
            "5th 16 KiB chunk times out, chunk still ours");
      break;
    }
    queue.push_back({std::move(chunk), std::move(bytes)});  // bytes come back when it dies
  }
  check(budget.in_use() == (64 << 10), "4 chunks hold the whole 64 KiB budget");
  queue.pop_front();
  check(budget.in_use() == (48 << 10), "popping a chunk gives its bytes back");
}

void channels_sharing_a_budget() {
  bp::memory_budget budget(64 << 10);  // shared by every channel
  bp::budgeted_channel<std::string> orders(budget, {.capacity = 1024});
  bp::budgeted_channel<std::string> audit(budget,
                                          {.capacity = 1024, .policy = bp::overflow::drop_oldest});
  check(orders.send(std::string(40 << 10, 'o')) == bp::status::ok, "order of 40 KiB sent");
  check(audit.send(std::string(20 << 10, 'a')) == bp::status::ok, "audit record of 20 KiB sent");
  std::string msg(8 << 10, 'm');
  check(orders.send_for(std::move(msg), 10ms) == bp::status::timeout && !msg.empty(),
        "8 KiB more does not fit: timeout, message kept");
  check(audit.send(std::string(10 << 10, 'b')) == bp::status::ok && audit.stats().evicted == 1,
        "drop_oldest makes room by evicting its own oldest");
  auto m = orders.recv();  // bytes go back per receive
  check(m && m->size() == (40 << 10) && budget.in_use() == (10 << 10), "receive gives 40 KiB back");
}

void node_style_producer() {
  bp::watermark_buffer<std::string> buf({.high_watermark = 64 << 10, .low_watermark = 16 << 10});
  int pauses = 0;
  std::atomic<bool> paused_once{false};
  std::thread producer([&] {
    for (int i = 0; i < 64; ++i) {
      if (!buf.write(std::string(4 << 10, 'c'))) {  // like `if (!ws.write(c))` in Node
        ++pauses;
        paused_once = true;
        paused_once.notify_one();
        (void)buf.wait_drain_for(1s);  // resume on 'drain'
      }
    }
    buf.close();
  });
  paused_once.wait(false);  // a consumer that starts late: the producer must have paused
  std::size_t bytes = 0;
  while (auto c = buf.read()) bytes += c->size();
  producer.join();
  check(bytes == 64 * (4 << 10), "every chunk arrives");
  check(pauses >= 1 && buf.stats().peak_bytes <= (64 << 10), "producer paused at the high mark");
}

}  // namespace

int main() {
  reserve_for_a_chunk();
  channels_sharing_a_budget();
  node_style_producer();
  return failures == 0 ? 0 : 1;
}
