// A registry reads what it registered until the handle goes: a temporary would be read after it
// is gone, so registering one does not compile.
// bp-expect-error: deleted (member )?function
#include <bp/metrics.hpp>

int main() {
  bp::metrics::registry reg;
  auto r = reg.add("gone", bp::semaphore(1));
}
