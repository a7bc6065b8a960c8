// bp::prometheus from an installed bp: a registry's snapshot as Prometheus text.
#include <bp/prometheus/exporter.hpp>

#include <cstdio>
#include <string>

int main() {
  bp::channel<int> ch(4);
  bp::metrics::registry reg;
  auto r = reg.add("orders", ch);
  (void)ch.send(1);
  const std::string text = bp::prometheus::to_text(reg.snapshot());
  const bool ok = text.find("bp_channel_sent_total{channel=\"orders\"} 1") != std::string::npos;
  std::printf("consumer_prometheus: %s\n", ok ? "ok" : text.c_str());
  return ok ? 0 : 1;
}
