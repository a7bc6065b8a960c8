// A filter whose predicate cannot take the element.
// bp-expect-error: bp::rs::filter\(pred\): pred must be callable as bool\(const T&\)
#include <bp/streams.hpp>

#include <vector>

int main() {
  auto p = bp::rs::range(0, 10) | bp::rs::filter([](std::vector<int>& v) { return v.empty(); });
  (void)p;
}
