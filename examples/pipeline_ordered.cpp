// Ordered parallel output with bp::pipeline: the header's example, compiled. A CPU-bound,
// image-like stage (rendering Mandelbrot rows, each row a different cost) runs on 4 workers,
// yet the rows reach the sink in order, as a writer of an image file needs them: results are
// numbered as they are taken and reordered in a bounded window before the next link (TBB's
// serial_in_order), so memory stays flat however tall the image.
//
//   pipeline_ordered --quick       a small image (what ctest runs)
//   pipeline_ordered [--rows N]    a taller one; compares against one worker
#include <bp/pipeline.hpp>

#include <chrono>
#include <complex>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ranges>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct row {
  int y = 0;
  std::vector<std::uint8_t> pixels;
  [[nodiscard]] bool empty() const { return pixels.empty(); }
};

constexpr int width = 1024;

// The CPU-bound stage: escape-time iterations per pixel; rows through the set cost far more
// than rows outside it, so parallel workers finish out of order.
row render_row(int y, int rows) {
  row r{y, std::vector<std::uint8_t>(width)};
  const double ci = -1.2 + 2.4 * y / rows;
  for (int x = 0; x < width; ++x) {
    const std::complex<double> c(-2.0 + 3.0 * x / width, ci);
    std::complex<double> z = 0;
    int i = 0;
    while (i < 255 && std::norm(z) <= 4.0) {
      z = z * z + c;
      ++i;
    }
    r.pixels[static_cast<std::size_t>(x)] = static_cast<std::uint8_t>(i);
  }
  return r;
}

struct result {
  double seconds = 0;
  bool in_order = true;
  std::uint64_t checksum = 0;
  bp::pipeline_report report;
};

result render(int rows, std::size_t workers) {
  result res;
  int expected = 0;
  auto render = [rows](int y) { return render_row(y, rows); };
  auto write = [&](std::vector<row>&& b) {  // an image writer: rows must come in order
    for (const row& r : b) {
      if (r.y != expected) res.in_order = false;
      expected = r.y + 1;
      for (auto p : r.pixels) res.checksum = res.checksum * 31 + p;
    }
  };
  const auto t0 = std::chrono::steady_clock::now();
  // The example of bp/pipeline.hpp:
  auto p = bp::pipeline::from(std::views::iota(0, rows))
               .map(render, {.parallelism = workers, .ordered = true, .link = {.capacity = 256}})
               .filter([](const row& r) { return !r.empty(); })
               .batch(16, 50ms)
               .sink(write);
  p.run();
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.report = p.report();
  if (expected != rows) res.in_order = false;
  return res;
}

}  // namespace

int main(int argc, char** argv) {
  int rows = 768;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      rows = 96;
    } else if (std::strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
      rows = std::atoi(argv[++i]);
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--rows N]\n", argv[0]);
      return 2;
    }
  }
  const result one = render(rows, 1);
  const result four = render(rows, 4);
  std::printf("%d rows of %d pixels: 1 worker %.3f s, 4 workers %.3f s (x%.2f on %u CPUs)\n", rows,
              width, one.seconds, four.seconds, one.seconds / four.seconds,
              std::thread::hardware_concurrency());
  std::printf("%s", four.report.to_string().c_str());
  const bool ok = one.in_order && four.in_order && one.checksum == four.checksum;
  std::printf("rows in order: %s, same image with 1 and 4 workers: %s\n",
              four.in_order ? "yes" : "NO", one.checksum == four.checksum ? "yes" : "NO");
  return ok ? 0 : 1;
}
