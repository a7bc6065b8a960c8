// A map whose function does not take the publisher's element type.
// bp-expect-error: bp::rs::map\(f\): f must be callable with the publisher's element type T
#include <bp/streams.hpp>

#include <string>

int main() {
  auto p = bp::rs::range(0, 10) | bp::rs::map([](const std::string& s) { return s.size(); });
  (void)p;
}
