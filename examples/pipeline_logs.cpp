// A log pipeline with bp::pipeline: generate -> parse -> enrich (4 workers, ordered) ->
// batch(1000, 50 ms) -> a sink that counts, as a log shipper would (read, parse, add context,
// write in bulk). Prints throughput, the per-stage report with its bottleneck, and the peak
// resident memory (VmHWM from /proc/self/status): memory is bounded by the links, not by the
// input, so 100 MB and 1 GB of input peak at the same RSS.
//
//   pipeline_logs --quick            a few MB, checks the counts (what ctest runs)
//   pipeline_logs --mb 100           100 MB of generated log lines
//   pipeline_logs --mb 1000          1 GB: the same peak RSS as 100 MB, within +-10 %
//   pipeline_logs --mb 100 --no-timing
//                                    the same without the per-stage clocks (their overhead)
//
// The input is generated on the fly by the source (the same lines for a given size), so the
// input's own size never sits in memory: only what the pipeline holds does.
#include <bp/pipeline.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

// One line: "2026-12-07T04:17:27.123Z level=INFO svc=api-3 user=u48213 latency_ms=42
// path=/v1/items/987 msg=request served", about 110 bytes.
class log_generator {
 public:
  explicit log_generator(std::uint64_t bytes) : budget_(bytes) {}

  std::optional<std::string> operator()() {
    if (produced_ >= budget_) return std::nullopt;
    static constexpr const char* levels[] = {"DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR"};
    static constexpr const char* paths[] = {"/v1/items/", "/v1/users/", "/v2/orders/", "/healthz",
                                            "/v1/search?q="};
    const std::uint64_t r = next();
    char buf[256];
    const int n = std::snprintf(
        buf, sizeof buf,
        "2026-12-07T%02u:%02u:%02u.%03uZ level=%s svc=api-%u user=u%u latency_ms=%u path=%s%u "
        "msg=request served",
        static_cast<unsigned>(line_ / 3600000 % 24), static_cast<unsigned>(line_ / 60000 % 60),
        static_cast<unsigned>(line_ / 1000 % 60), static_cast<unsigned>(line_ % 1000),
        levels[r % 6], static_cast<unsigned>(r >> 8) % 8, static_cast<unsigned>(r >> 16) % 100000,
        static_cast<unsigned>(r >> 40) % 500, paths[(r >> 4) % 5],
        static_cast<unsigned>(r >> 24) % 10000);
    ++line_;
    produced_ += static_cast<std::uint64_t>(n) + 1;  // with its newline
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::uint64_t next() noexcept {  // xorshift64*: the same lines for the same size
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    return state_ * 2685821657736338717ull;
  }
  std::uint64_t budget_;
  std::uint64_t produced_ = 0;
  std::uint64_t line_ = 0;
  std::uint64_t state_ = 0x9e3779b97f4a7c15ull;
};

struct record {
  std::string timestamp;
  std::string level;
  std::string service;
  std::string user;
  unsigned latency_ms = 0;
  std::string path;
  std::size_t bytes = 0;  // of the raw line
  // Added by enrich:
  std::string region;
  bool slow = false;
  std::uint64_t fingerprint = 0;
};

std::string_view field(std::string_view line, std::string_view key) {
  const auto at = line.find(key);
  if (at == std::string_view::npos) return {};
  const auto start = at + key.size();
  const auto end = line.find(' ', start);
  return line.substr(start, end == std::string_view::npos ? line.size() - start : end - start);
}

record parse(std::string&& line) {
  const std::string_view v(line);
  record r;
  r.timestamp = std::string(v.substr(0, v.find(' ')));
  r.level = std::string(field(v, "level="));
  r.service = std::string(field(v, "svc="));
  r.user = std::string(field(v, "user="));
  r.latency_ms = static_cast<unsigned>(
      std::strtoul(std::string(field(v, "latency_ms=")).c_str(), nullptr, 10));
  r.path = std::string(field(v, "path="));
  r.bytes = line.size() + 1;
  return r;
}

// Some CPU work per record, as a geo lookup or a fingerprint would cost: the stage worth
// running on several workers.
record enrich(record&& r) {
  std::uint64_t h = 1469598103934665603ull;  // FNV-1a over user and path, a few rounds
  for (int round = 0; round < 64; ++round) {
    for (char c : r.user) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    for (char c : r.path) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
  }
  static constexpr const char* regions[] = {"eu-west", "us-east", "us-west", "ap-south"};
  r.region = regions[h % 4];
  r.slow = r.latency_ms > 400;
  r.fingerprint = h;
  return r;
}

// A field of /proc/self/status in KiB: VmHWM (peak resident set) or VmRSS (now).
long status_kib(const char* field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(status, line))
    if (line.compare(0, n, field) == 0) return std::strtol(line.c_str() + n, nullptr, 10);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  bool timing = true;
  double mb = 100;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      mb = 4;
    } else if (std::strcmp(argv[i], "--mb") == 0 && i + 1 < argc) {
      mb = std::atof(argv[++i]);
    } else if (std::strcmp(argv[i], "--no-timing") == 0) {
      timing = false;
    } else {
      std::fprintf(stderr, "usage: %s [--quick] [--mb N] [--no-timing]\n", argv[0]);
      return 2;
    }
  }
  const auto input_bytes = static_cast<std::uint64_t>(mb * 1e6);

  std::uint64_t lines = 0, bytes = 0, batches = 0, slow = 0, errors = 0;
  auto p =
      bp::pipeline::from(log_generator(input_bytes),
                         {.link = {.capacity = 256}, .name = "generate", .timing = timing})
          .map(parse, {.link = {.capacity = 256}, .name = "parse"})
          .map(enrich,
               {.parallelism = 4, .ordered = true, .link = {.capacity = 256}, .name = "enrich"})
          .batch(1000, 50ms, {.link = {.capacity = 1}, .name = "batch"})
          .sink(
              [&](std::vector<record>&& batch) {  // one bulk write per batch
                ++batches;
                lines += batch.size();
                for (const auto& r : batch) {
                  bytes += r.bytes;
                  slow += r.slow ? 1 : 0;
                  errors += r.level == "ERROR" ? 1 : 0;
                }
              },
              {.name = "write"});

  const long rss_before = status_kib("VmRSS:");  // the process before any item flows
  const auto t0 = std::chrono::steady_clock::now();
  p.run();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const auto report = p.report();
  std::printf("%.0f MB of log lines: %llu lines in %llu batches, %.2f s: %.0f lines/s, %.1f MB/s\n",
              static_cast<double>(bytes) / 1e6, static_cast<unsigned long long>(lines),
              static_cast<unsigned long long>(batches), secs, static_cast<double>(lines) / secs,
              static_cast<double>(bytes) / 1e6 / secs);
  std::printf("slow requests %llu, errors %llu; timing %s\n", static_cast<unsigned long long>(slow),
              static_cast<unsigned long long>(errors), timing ? "on" : "off");
  std::printf("%s", report.to_string().c_str());
  const long peak = status_kib("VmHWM:");
  std::printf("peak RSS (VmHWM): %.1f MiB, %.1f MiB above the RSS before the run\n",
              static_cast<double>(peak) / 1024.0, static_cast<double>(peak - rss_before) / 1024.0);

  // Checked in every run: every generated line arrived, in batches of at most 1000.
  const bool ok = lines == report.stages[0].items_out && bytes >= input_bytes &&
                  batches * 1000 >= lines && lines > 0;
  if (!ok) std::printf("FAILED: counts do not add up\n");
  return ok ? 0 : 1;
}
