// bp/prometheus/exporter.hpp: bp's statistics for a Prometheus server, through prometheus-cpp.
//
//   bp::prometheus::to_families  a bp::metrics::snapshot as prometheus-cpp metric families
//                                (counters, gauges, histograms in seconds, one label per
//                                primitive: bp_channel_sent_total{channel="orders"}).
//   bp::prometheus::to_text      the same in Prometheus's text exposition format, for a
//                                /metrics route of a server of your own.
//   bp::prometheus::collectable  a prometheus::Collectable over a bp::metrics::registry: hand
//                                it to prometheus-cpp's Exposer (prometheus-cpp-pull) and every
//                                scrape reads a fresh snapshot.
//
// Example:
//
//   bp::metrics::registry reg;
//   auto r = reg.add("orders", orders);               // a bp::channel
//   auto c = std::make_shared<bp::prometheus::collectable>(reg);
//   prometheus::Exposer exposer{"127.0.0.1:9464"};    // prometheus-cpp-pull
//   exposer.RegisterCollectable(c);                   // GET /metrics; held weakly: keep c
//
// The names and what they count: docs/metrics.md.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <string>
#include <vector>

#include <bp/metrics.hpp>

namespace bp::prometheus {

[[nodiscard]] std::vector<::prometheus::MetricFamily> to_families(const metrics::snapshot& s);

[[nodiscard]] std::string to_text(const metrics::snapshot& s);

// Reads `reg` on every Collect(). The registry must outlive this object.
//
// Thread safety: Collect() may run on any thread, concurrently (the registry serializes).
class collectable final : public ::prometheus::Collectable {
 public:
  explicit collectable(const metrics::registry& reg) noexcept : reg_(reg) {}
  [[nodiscard]] std::vector<::prometheus::MetricFamily> Collect() const override;

 private:
  const metrics::registry& reg_;
};

}  // namespace bp::prometheus
