#include "http_parser.hpp"

#include <algorithm>

namespace bp::console {

namespace {

bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(),
                                   [](char c) { return is_tchar(static_cast<unsigned char>(c)); });
}

// A field value's bytes: visible characters, obs-text, space and tab (no CR, LF, NUL, DEL).
bool is_field_byte(unsigned char c) {
  return c == '\t' || (c >= 0x20 && c != 0x7f);
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
}

std::string lowered(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = lower(c);
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether the comma-separated list `value` holds `token` (case-insensitive).
bool list_has(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    const auto comma = value.find(',');
    const std::string_view item = trim_ows(value.substr(0, comma));
    if (item.size() == token.size() &&
        std::equal(item.begin(), item.end(), token.begin(),
                   [](char a, char b) { return lower(a) == lower(b); }))
      return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

std::string percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() + 0 && i + 2 <= s.size() - 1 + 0) {
      const int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi >= 0 && lo >= 0) {
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
        continue;
      }
    }
    out += (plus_is_space && s[i] == '+') ? ' ' : s[i];
  }
  return out;
}

const std::string* http_request::header(std::string_view lower_name) const {
  for (const auto& [k, v] : headers)
    if (k == lower_name) return &v;
  return nullptr;
}

const std::string* http_request::param(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return &v;
  return nullptr;
}

void http_parser::reset() {
  st_ = state::need_more;
  started_ = in_body_ = have_request_line_ = false;
  if (line_.capacity() > 1024) line_ = std::string();
  line_.clear();
  field_bytes_ = body_left_ = 0;
  req_ = http_request{};
  err_status_ = 0;
  err_.clear();
}

void http_parser::fail(int status, std::string why) {
  st_ = state::failed;
  err_status_ = status;
  err_ = std::move(why);
}

std::size_t http_parser::feed(std::string_view in) {
  std::size_t used = 0;
  while (used < in.size() && st_ == state::need_more) {
    started_ = true;
    const std::string_view rest = in.substr(used);
    if (in_body_) {
      const std::size_t n = std::min(body_left_, rest.size());
      req_.body.append(rest.data(), n);
      used += n;
      body_left_ -= n;
      if (body_left_ == 0) st_ = state::done;
      continue;
    }
    const auto nl = rest.find('\n');
    const bool complete = nl != std::string_view::npos;
    const std::size_t take = complete ? nl + 1 : rest.size();
    // Never hold more than the longest line allowed and its CRLF: a longer one fails here. A
    // field line may be as long as the header line limit and what is left of the block (its
    // CRLF counted, as the block counts it), so whatever the pieces the bytes arrive in, a line
    // too long for both fails on the same limit.
    const std::size_t block_room =
        lim_.max_header_bytes > field_bytes_ + 2 ? lim_.max_header_bytes - field_bytes_ - 2 : 0;
    const std::size_t longest =
        have_request_line_ ? std::min(lim_.max_header_line, block_room) : lim_.max_request_line;
    if (line_.size() + take > longest + 2) {
      check_limits(longest + 1);
      return used;
    }
    line_.append(rest.data(), take);
    used += take;
    if (complete) line_.pop_back();  // '\n'
    if (complete && !line_.empty() && line_.back() == '\r') line_.pop_back();
    // While the line is incomplete, a last CR may be the start of its terminator.
    const std::size_t len =
        line_.size() - (!complete && !line_.empty() && line_.back() == '\r' ? 1 : 0);
    if (!check_limits(len)) return used;
    if (!complete) break;
    if (have_request_line_ && !line_.empty()) field_bytes_ += line_.size() + 2;
    line_done();
    line_.clear();
  }
  return used;
}

bool http_parser::check_limits(std::size_t len) {
  if (!have_request_line_) {
    if (len <= lim_.max_request_line) return true;
    fail(414, "request line too long (limit " + std::to_string(lim_.max_request_line) + " bytes)");
    return false;
  }
  if (len > lim_.max_header_line) {
    fail(431, "header line too long (limit " + std::to_string(lim_.max_header_line) + " bytes)");
    return false;
  }
  // A field line counts with its CRLF (field_bytes_ adds it once the line is complete); the
  // empty line that ends the head is not a field.
  if (len > 0 && field_bytes_ + len + 2 > lim_.max_header_bytes) {
    fail(431, "header block too large (limit " + std::to_string(lim_.max_header_bytes) + " bytes)");
    return false;
  }
  return true;
}

void http_parser::line_done() {
  if (line_.find('\r') != std::string::npos || line_.find('\0') != std::string::npos)
    return fail(400, "bad request: stray CR or NUL in a line");
  if (!have_request_line_) {
    if (line_.empty()) return;  // empty lines before a request are ignored (RFC 9112, 2.2)
    have_request_line_ = true;
    return request_line();
  }
  if (line_.empty()) return finish_head();
  header_field();
}

void http_parser::request_line() {
  const std::string_view l = line_;
  const auto sp1 = l.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : l.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || l.find(' ', sp2 + 1) != std::string_view::npos)
    return fail(400, "bad request: malformed request line");
  const std::string_view method = l.substr(0, sp1);
  const std::string_view target = l.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = l.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "bad request: malformed method");
  if (target.empty() || target.front() != '/')
    return fail(400, "bad request: the target must be a path starting with /");
  for (char c : target)
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
      return fail(400, "bad request: malformed request target");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
    return fail(400, "bad request: malformed HTTP version");
  if (version[5] != '1' || version[7] > '1')
    return fail(505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)");
  req_.method = method;
  req_.target = target;
  req_.version_minor = version[7] - '0';
  const auto q = target.find('?');
  req_.path = percent_decode(target.substr(0, q), false);
  if (q == std::string_view::npos) return;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    if (!item.empty()) {
      const auto eq = item.find('=');
      req_.query.emplace_back(
          percent_decode(item.substr(0, eq), true),
          eq == std::string_view::npos ? std::string() : percent_decode(item.substr(eq + 1), true));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
}

void http_parser::header_field() {
  if (req_.headers.size() >= lim_.max_header_fields)
    return fail(431,
                "too many header fields (limit " + std::to_string(lim_.max_header_fields) + ")");
  const std::string_view l = line_;
  if (l.front() == ' ' || l.front() == '\t')
    return fail(400, "bad request: folded header lines are not supported");
  const auto colon = l.find(':');
  if (colon == std::string_view::npos || !is_token(l.substr(0, colon)))
    return fail(400, "bad request: malformed header field");
  const std::string_view value = trim_ows(l.substr(colon + 1));
  for (char c : value)
    if (!is_field_byte(static_cast<unsigned char>(c)))
      return fail(400, "bad request: control character in a header value");
  req_.headers.emplace_back(lowered(l.substr(0, colon)), std::string(value));
}

void http_parser::finish_head() {
  std::optional<std::size_t> length;
  bool connection_close = false, connection_keep_alive = false;
  for (const auto& [name, value] : req_.headers) {
    if (name == "transfer-encoding")
      return fail(411, "length required: send the body with a Content-Length (no chunked bodies)");
    if (name == "content-length") {
      if (value.empty() || value.size() > 18 ||
          value.find_first_not_of("0123456789") != std::string::npos)
        return fail(400, "bad request: malformed Content-Length");
      const std::size_t n = std::stoull(value);
      if (length && *length != n) return fail(400, "bad request: conflicting Content-Length");
      length = n;
    }
    if (name == "connection") {
      connection_close = connection_close || list_has(value, "close");
      connection_keep_alive = connection_keep_alive || list_has(value, "keep-alive");
    }
  }
  req_.keep_alive = !connection_close && (req_.version_minor >= 1 || connection_keep_alive);
  if (length && *length > lim_.max_body_bytes) return fail(413, "request body too large");
  body_left_ = length.value_or(0);
  if (body_left_ == 0) {
    st_ = state::done;
    return;
  }
  in_body_ = true;
  req_.body.reserve(body_left_);
}

}  // namespace bp::console
