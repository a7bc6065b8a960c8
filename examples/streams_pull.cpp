// A slow consumer pulling from a fast generator: the generator runs only when the consumer has
// asked for more, so however fast it could produce, at most `prefetch` items exist at a time.
// Memory stays flat; no item is lost; nobody blocks a producer thread (there is none).
//
//   ./streams_pull           2000 items, 200 us of "work" each
//   ./streams_pull --quick   200 items (what ctest runs)
#include <bp/streams.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

// A "frame" of 64 KiB: holding 10'000 of them would take 640 MiB.
struct frame {
  std::int64_t seq;
  std::vector<char> payload;
};

std::atomic<std::int64_t> live_frames{0};  // generated and not yet consumed
std::atomic<std::int64_t> peak_frames{0};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "--quick") == 0;
  const std::int64_t items = quick ? 200 : 2000;
  constexpr std::size_t prefetch = 8;

  // The fast source: produces a frame whenever it is called, which is only on demand.
  auto frames = bp::rs::generate([seq = std::int64_t{0}, items]() mutable -> std::optional<frame> {
    if (seq == items) return std::nullopt;
    const auto live = live_frames.fetch_add(1) + 1;
    for (auto peak = peak_frames.load();
         live > peak && !peak_frames.compare_exchange_weak(peak, live);) {
    }
    return frame{seq++, std::vector<char>(64 * 1024, 'x')};
  });

  // A few stages: checksum each frame, keep every other one.
  auto pipeline = frames | bp::rs::map([](frame f) {
                    f.payload[0] = static_cast<char>(f.seq);
                    return f;
                  }) |
                  bp::rs::filter([](const frame& f) {
                    if (f.seq % 2 == 0) return true;
                    live_frames.fetch_sub(1);  // dropped here: no longer alive
                    return false;
                  });

  // The slow consumer: 200 us per frame, pulling `prefetch` ahead, refilling at 75%.
  std::int64_t consumed = 0, expected_seq = 0;
  for (frame& f : bp::rs::to_iterable(pipeline, prefetch)) {
    if (f.seq != expected_seq) {
      std::fprintf(stderr, "out of order: got %lld, expected %lld\n", static_cast<long long>(f.seq),
                   static_cast<long long>(expected_seq));
      return 1;
    }
    expected_seq += 2;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    ++consumed;
    live_frames.fetch_sub(1);
  }

  std::printf("consumed %lld frames of 64 KiB; at most %lld alive at once (prefetch %zu)\n",
              static_cast<long long>(consumed), static_cast<long long>(peak_frames.load()),
              prefetch);
  // prefetch in the iterator + one being built or filtered + one in the consumer's hands
  const bool flat = peak_frames.load() <= static_cast<std::int64_t>(prefetch) + 2;
  const bool complete = consumed == items / 2;
  if (!flat) std::fprintf(stderr, "memory was not flat\n");
  if (!complete) std::fprintf(stderr, "missing frames\n");
  return flat && complete ? 0 : 1;
}
