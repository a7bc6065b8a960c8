// http_parser.hpp: an incremental, strict HTTP/1.1 request parser. Pure: bytes in, a request or
// an error out; no sockets, no clocks, no allocation beyond the limits below. The server feeds it
// whatever each read() returned; the fuzz target feeds it random splits of random bytes.
//
// What it accepts (RFC 9112, minus what this server has no use for):
//   request line   METHOD SP origin-form-target SP HTTP/1.0|HTTP/1.1, CRLF (a bare LF is
//                  tolerated); empty lines before it are skipped
//   header fields  token ":" OWS value OWS; no obsolete line folding, no control characters
//   body           Content-Length only (a Transfer-Encoding is refused with 411: a request
//                  body here is a small JSON object, its length is always known)
// Every limit is checked as the bytes arrive, so an over-long line or header block is refused
// without waiting for its end, and the parser never holds more than the limits allow.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bp::console {

struct http_limits {
  std::size_t max_request_line = 8 * 1024;   // 414 beyond
  std::size_t max_header_line = 8 * 1024;    // 431 beyond
  std::size_t max_header_fields = 100;       // 431 beyond
  std::size_t max_header_bytes = 32 * 1024;  // the field lines together (not the request line)
  std::size_t max_body_bytes = 16 * 1024;    // 413 beyond
};

struct http_request {
  std::string method;                                        // as sent (methods are case-sensitive)
  std::string target;                                        // as sent: path and query
  std::string path;                                          // the target's path, percent-decoded
  std::vector<std::pair<std::string, std::string>> query;    // decoded, in order
  int version_minor = 1;                                     // HTTP/1.<minor>
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased, in order
  std::string body;
  bool keep_alive = true;  // the client wants the connection kept (version and Connection)

  // The first header of that (lower-case) name, or nullptr.
  [[nodiscard]] const std::string* header(std::string_view lower_name) const;
  // The first query parameter of that name, or nullptr.
  [[nodiscard]] const std::string* param(std::string_view name) const;
};

class http_parser {
 public:
  enum class state { need_more, done, failed };

  explicit http_parser(http_limits limits = {}) : lim_(limits) {}

  // Consumes bytes of `in` from its start; answers how many were used (all of them unless a
  // request completed or the input was refused: the rest belongs to the next request).
  std::size_t feed(std::string_view in);

  [[nodiscard]] state current() const noexcept { return st_; }
  // Whether any byte of the current request has arrived (its deadline runs from then).
  [[nodiscard]] bool started() const noexcept { return started_; }
  // The request, once current() == done.
  [[nodiscard]] http_request& request() noexcept { return req_; }
  // Once current() == failed: the status to answer (400, 411, 413, 414, 431, 505) and why.
  [[nodiscard]] int error_status() const noexcept { return err_status_; }
  [[nodiscard]] const std::string& error() const noexcept { return err_; }

  // Ready for the next request on the same connection (keeps no memory beyond a small buffer).
  void reset();

  // Bytes the parser holds now (for the server's memory accounting).
  [[nodiscard]] std::size_t buffered() const noexcept { return line_.size() + req_.body.size(); }

 private:
  void fail(int status, std::string why);
  bool check_limits(std::size_t line_length);  // false when it failed
  void line_done();  // line_ holds a complete line, without its terminator
  void request_line();
  void header_field();
  void finish_head();

  http_limits lim_;
  state st_ = state::need_more;
  bool started_ = false;
  bool in_body_ = false;
  bool have_request_line_ = false;
  std::string line_;             // the line being received
  std::size_t field_bytes_ = 0;  // field lines so far, with their terminators
  std::size_t body_left_ = 0;
  http_request req_;
  int err_status_ = 0;
  std::string err_;
};

// Percent-decodes `s` ('+' as a space too when `plus_is_space`); malformed escapes are kept as
// they are.
std::string percent_decode(std::string_view s, bool plus_is_space);

}  // namespace bp::console
