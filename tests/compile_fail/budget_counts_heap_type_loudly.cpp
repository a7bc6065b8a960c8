// A budgeted channel of a type that owns heap data, without a size function: the budget could
// only count sizeof(T), and the compiler says so (a deprecation warning, an error under -Werror).
// bp-expect-error: may own heap data a memory budget cannot see
#include <bp/budgeted_channel.hpp>

#include <string>

struct message {
  std::string body;
  int id = 0;
};

int main() {
  bp::memory_budget budget(1 << 20);
  bp::budgeted_channel<message> ch(budget, 8);
  return ch.capacity() == 8 ? 0 : 1;
}
