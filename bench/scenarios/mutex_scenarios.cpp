// scn_mutex: the mutex + condition variable bounded queue baseline (mutex_queue.hpp).
#include "driver.hpp"
#include "mutex_queue.hpp"

int main(int argc, char** argv) {
  return bench::run<bench::mutex_queue>("mutex", argc, argv);
}
