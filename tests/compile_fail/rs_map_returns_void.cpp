// A map whose function returns nothing.
// bp-expect-error: bp::rs::map\(f\): f must return the new element
#include <bp/streams.hpp>

int main() {
  auto p = bp::rs::range(0, 10) | bp::rs::map([](std::int64_t) {});
  (void)p;
}
