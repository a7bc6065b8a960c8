// bp-fuzz-sources: apps/console/src/http_parser.cpp
//
// Fuzz target: bp-console's HTTP request parser (apps/console/src/http_parser.hpp). The input is
// six bytes of settings then a byte stream sent on one connection:
//   byte 0..4  the limits, small enough for short inputs to reach them: request line
//              16 + 4*b0, header line 8 + 4*b1, b2 % 24 fields, header block 16*b3, body 4*b4
//   byte 5     the seed of the split points
//   the rest   the bytes, parsed as pipelined requests until the first error
// Checks:
//   - splitting the bytes at random points changes nothing: the same requests, the same error;
//   - every limit holds for what is accepted, and the parser never holds more than a line and
//     a body;
//   - a complete request, written out again, parses back to the same request.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../../apps/console/src/http_parser.hpp"

namespace {

using bp::console::http_limits;
using bp::console::http_parser;
using bp::console::http_request;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "http_parser_fuzz: %s\n", what);
  std::abort();
}
#define CHECK(cond)           \
  do {                        \
    if (!(cond)) fail(#cond); \
  } while (0)

struct outcome {
  std::vector<http_request> requests;
  http_parser::state last = http_parser::state::need_more;
  int status = 0;
  std::string error;
};

bool same(const http_request& a, const http_request& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.query == b.query &&
         a.version_minor == b.version_minor && a.headers == b.headers && a.body == b.body &&
         a.keep_alive == b.keep_alive;
}

void check_limits(const http_parser& p, const http_limits& lim) {
  const std::size_t line = std::max(lim.max_request_line, lim.max_header_line) + 2;
  CHECK(p.buffered() <= line + lim.max_body_bytes);
}

void check_request(const http_request& r, const http_limits& lim) {
  CHECK(!r.method.empty());
  CHECK(!r.target.empty() && r.target[0] == '/');
  CHECK(r.method.size() + r.target.size() + 10 <= lim.max_request_line);
  CHECK(r.version_minor == 0 || r.version_minor == 1);
  CHECK(r.headers.size() <= lim.max_header_fields);
  std::size_t block = 0;
  for (const auto& [name, value] : r.headers) {
    CHECK(!name.empty());
    CHECK(name.size() + 1 + value.size() <= lim.max_header_line);
    block += name.size() + 1 + value.size() + 2;
    CHECK(name != "transfer-encoding");
  }
  CHECK(block <= lim.max_header_bytes);
  CHECK(r.body.size() <= lim.max_body_bytes);
}

// Parses `bytes` as requests on one connection, fed in pieces of `next_piece()` bytes.
template <class Pieces>
outcome parse_all(std::string_view bytes, const http_limits& lim, Pieces next_piece) {
  outcome out;
  http_parser p(lim);
  std::string pending;  // what the parser has not taken yet (as a server keeps it)
  std::size_t at = 0;
  for (;;) {
    if (pending.empty()) {
      if (at == bytes.size()) break;
      const std::size_t n = std::min(next_piece(), bytes.size() - at);
      pending.assign(bytes.substr(at, n));
      at += n;
    }
    const std::size_t used = p.feed(pending);
    CHECK(used <= pending.size());
    pending.erase(0, used);
    check_limits(p, lim);
    if (p.current() == http_parser::state::failed) {
      CHECK(p.error_status() >= 400 && p.error_status() <= 505);
      CHECK(!p.error().empty());
      out.last = p.current();
      out.status = p.error_status();
      out.error = p.error();
      return out;
    }
    if (p.current() == http_parser::state::done) {
      check_request(p.request(), lim);
      out.requests.push_back(p.request());
      p.reset();
      CHECK(!p.started());
      continue;
    }
    CHECK(pending.empty());  // need_more: everything offered was taken
  }
  out.last = p.current();
  return out;
}

std::string write_out(const http_request& r) {
  std::string s = r.method + " " + r.target + " HTTP/1." + std::to_string(r.version_minor) + "\r\n";
  for (const auto& [name, value] : r.headers) s += name + ": " + value + "\r\n";
  return s + "\r\n" + r.body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 6) return 0;
  http_limits lim;
  lim.max_request_line = 16 + 4 * std::size_t{data[0]};
  lim.max_header_line = 8 + 4 * std::size_t{data[1]};
  lim.max_header_fields = data[2] % 24;
  lim.max_header_bytes = 16 * std::size_t{data[3]};
  lim.max_body_bytes = 4 * std::size_t{data[4]};
  std::uint32_t rng = data[5] * 2654435761u + 1;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 6, size - 6);

  const outcome whole = parse_all(bytes, lim, [] { return SIZE_MAX; });
  const outcome split = parse_all(bytes, lim, [&] {
    rng = rng * 1664525u + 1013904223u;
    return std::size_t{1} + (rng >> 24) % 17;
  });
  CHECK(whole.requests.size() == split.requests.size());
  for (std::size_t i = 0; i < whole.requests.size(); ++i)
    CHECK(same(whole.requests[i], split.requests[i]));
  CHECK(whole.last == split.last);
  CHECK(whole.status == split.status);
  CHECK(whole.error == split.error);

  // Written out again ("name: value" may be one byte longer per line than what was sent), each
  // request parses back to itself.
  for (const http_request& r : whole.requests) {
    http_limits roomy = lim;
    roomy.max_header_line += 1;
    roomy.max_header_bytes += r.headers.size();
    const std::string text = write_out(r);
    http_parser p(roomy);
    CHECK(p.feed(text) == text.size());
    CHECK(p.current() == http_parser::state::done);
    CHECK(same(p.request(), r));
  }
  return 0;
}
