// The memory budget scenario: 500 streams with a 1 MiB high watermark each, first without and
// then with a 64 MiB global bp::memory_budget. Prints the peak buffered bytes against the budget
// and the throughput of both runs; fails (exit 1) if the budgeted peak exceeds the budget, a
// chunk is lost or reordered, or the budgeted throughput falls below 80% of the unbudgeted one.
//
// Usage: memory_budget [--quick] [--streams N] [--budget-mib M] [--chunks-per-stream K]
//   --quick  a short run (used by the tests): fewer chunks per stream, no throughput verdict
#include <cstdio>
#include <cstdlib>
#include <string>

#include "q2_scenario.hpp"

namespace {

double mib(double bytes) {
  return bytes / (1024.0 * 1024.0);
}

void print(const char* name, const q2::result& r, std::size_t budget) {
  std::printf("%-12s peak buffered %8.1f MiB", name, mib(static_cast<double>(r.peak_buffered)));
  if (budget) {
    std::printf("  (budget %.0f MiB, budget peak %.1f MiB, %llu waits)", mib(double(budget)),
                mib(static_cast<double>(r.budget_peak)),
                static_cast<unsigned long long>(r.budget.waits));
  }
  std::printf("\n%-12s %llu chunks in %.3f s = %.0f MiB/s, %llu pauses, %llu drains\n", "",
              static_cast<unsigned long long>(r.chunks), r.seconds, mib(r.bytes_per_second()),
              static_cast<unsigned long long>(r.pauses), static_cast<unsigned long long>(r.drains));
}

}  // namespace

int main(int argc, char** argv) {
  q2::config cfg;
  cfg.chunks_per_stream = 256;  // 4 MiB per stream: the start-up fill is amortised
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
      cfg.chunks_per_stream = 72;  // just past one high watermark's worth (64 chunks)
    } else if (a == "--streams" && i + 1 < argc) {
      cfg.streams = static_cast<std::size_t>(std::atol(argv[++i]));
    } else if (a == "--budget-mib" && i + 1 < argc) {
      cfg.budget = static_cast<std::size_t>(std::atol(argv[++i])) << 20;
    } else if (a == "--chunks-per-stream" && i + 1 < argc) {
      cfg.chunks_per_stream = static_cast<std::size_t>(std::atol(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--quick] [--streams N] [--budget-mib M] [--chunks-per-stream K]\n",
                   argv[0]);
      return 2;
    }
  }
  if (cfg.streams == 0 || cfg.budget == 0 || cfg.chunks_per_stream == 0) {
    std::fprintf(stderr,
                 "error: --streams, --budget-mib and --chunks-per-stream must be positive\n");
    return 2;
  }

  std::printf("%zu streams x %.0f MiB high watermark = %.0f MiB of buffers; chunks of %zu KiB\n\n",
              cfg.streams, mib(double(cfg.high_watermark)),
              mib(double(cfg.streams * cfg.high_watermark)), cfg.chunk_bytes >> 10);

  const std::size_t budget = cfg.budget;
  auto unbudgeted_cfg = cfg;
  unbudgeted_cfg.budget = 0;
  const auto unbudgeted = q2::run(unbudgeted_cfg);
  print("no budget", unbudgeted, 0);
  const auto budgeted = q2::run(cfg);
  print("budgeted", budgeted, budget);

  bool ok = unbudgeted.ok && budgeted.ok;
  if (!unbudgeted.ok) std::fprintf(stderr, "unbudgeted run failed: %s\n", unbudgeted.error.c_str());
  if (!budgeted.ok) std::fprintf(stderr, "budgeted run failed: %s\n", budgeted.error.c_str());
  const double ratio = budgeted.bytes_per_second() / unbudgeted.bytes_per_second();
  std::printf("\npeak %.1f MiB vs budget %.0f MiB: %s; throughput %.0f%% of the unbudgeted run\n",
              mib(double(budgeted.budget_peak)), mib(double(budget)),
              budgeted.budget_peak <= budget ? "within" : "EXCEEDED", 100 * ratio);
  if (budgeted.budget_peak > budget) ok = false;
  if (!quick && ratio < 0.8) {
    std::fprintf(stderr, "throughput below 80%% of the unbudgeted run\n");
    ok = false;
  }
  return ok ? 0 : 1;
}
