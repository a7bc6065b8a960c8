// scn_unbounded: a mutex + std::deque queue with no bound, for the memory scenario.
#include "driver.hpp"
#include "mutex_queue.hpp"

int main(int argc, char** argv) {
  return bench::run<bench::unbounded_queue>("unbounded", argc, argv);
}
