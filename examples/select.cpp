// bp::select over three channels with a timeout: orders and quotes arrive on their own
// channels, a shutdown request on a third; the loop handles whichever is ready first, notices
// closed channels, and does housekeeping when nothing comes for 50 ms. The second half does the
// same from a coroutine with bp::async_select and a stop token.
#include <bp/select.hpp>
#include <bp/task.hpp>

#include <chrono>
#include <cstdio>
#include <stop_token>
#include <string>
#include <thread>

using namespace std::chrono_literals;

int main() {
  bp::channel<int> orders(16), quotes(16);
  // Unbuffered, as Go's `make(chan string)`: a send waits until the select takes the command.
  bp::channel<std::string> control(0);

  std::thread feed([&] {
    for (int i = 1; i <= 20; ++i) {
      (void)orders.send(i);
      if (i % 2 == 0) (void)quotes.send(100 + i);
    }
    orders.close();
    std::this_thread::sleep_for(120ms);  // a quiet spell: the loop times out twice
    (void)control.send("stop");
  });

  int order = 0, quote = 0;
  std::string command;
  int orders_seen = 0, quotes_seen = 0, idle = 0;
  bool orders_open = true;
  for (bool running = true; running;) {
    // A closed channel's case stays ready, so a case that answered `closed` is left out.
    const auto r =
        orders_open
            ? bp::select_for(50ms, bp::recv_case(orders, order), bp::recv_case(quotes, quote),
                             bp::recv_case(control, command))
            : bp::select_for(50ms, bp::recv_case(quotes, quote), bp::recv_case(control, command));
    const std::size_t which =
        orders_open ? r.index : (r.index == bp::select_none ? r.index : r.index + 1);
    switch (which) {
      case 0:
        if (r.answer == bp::status::closed)
          orders_open = false;
        else
          ++orders_seen;
        break;
      case 1:
        ++quotes_seen;
        break;
      case 2:
        running = command != "stop";
        break;
      default:  // r.answer == bp::status::timeout: nothing for 50 ms
        ++idle;
        break;
    }
  }
  feed.join();
  std::printf("orders=%d quotes=%d idle spells=%d\n", orders_seen, quotes_seen, idle);

  // The same from a coroutine: no thread waits; the stop token cancels the select.
  std::stop_source stop;
  auto watch = [](bp::channel<int>& a, bp::channel<int>& b, std::stop_token t) -> bp::task<int> {
    int x = 0, got = 0;
    for (;;) {
      const auto r = co_await bp::async_select(t, bp::recv_case(a, x), bp::recv_case(b, x));
      if (r.answer != bp::status::ok) co_return got;  // cancelled (or a channel closed)
      ++got;
    }
  };
  bp::channel<int> a(4), b(4);
  (void)a.send(1);
  (void)b.send(2);
  std::thread stopper([&] {
    std::this_thread::sleep_for(20ms);
    stop.request_stop();
  });
  const int got = bp::sync_wait(watch(a, b, stop.get_token()));
  stopper.join();
  std::printf("async select took %d values, then was cancelled\n", got);
  return orders_seen == 20 && quotes_seen == 10 && idle >= 1 && got == 2 ? 0 : 1;
}
