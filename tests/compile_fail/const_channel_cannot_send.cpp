// Sending needs a non-const channel (a sender handle's verbs are const; the channel's are not).
// bp-expect-error: send
#include <bp/channel.hpp>

int main() {
  const bp::channel<int> ch(4);
  return static_cast<int>(ch.send(1));
}
