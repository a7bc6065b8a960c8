#include "bp/prometheus/exporter.hpp"

#include <prometheus/text_serializer.h>

#include <cstddef>
#include <limits>
#include <utility>

namespace bp::prometheus {

namespace {

::prometheus::MetricType type_of(metrics::metric_type t) noexcept {
  switch (t) {
    case metrics::metric_type::counter:
      return ::prometheus::MetricType::Counter;
    case metrics::metric_type::gauge:
      return ::prometheus::MetricType::Gauge;
    case metrics::metric_type::histogram:
      return ::prometheus::MetricType::Histogram;
  }
  return ::prometheus::MetricType::Untyped;
}

::prometheus::ClientMetric metric_of(metrics::metric_type t, const metrics::sample& s) {
  ::prometheus::ClientMetric m;
  m.label.reserve(s.labels.size());
  for (const auto& l : s.labels) m.label.push_back({l.name, l.value});
  switch (t) {
    case metrics::metric_type::counter:
      m.counter.value = s.value;
      break;
    case metrics::metric_type::gauge:
      m.gauge.value = s.value;
      break;
    case metrics::metric_type::histogram: {
      const auto& h = s.histogram;
      m.histogram.sample_count = h.count;
      m.histogram.sample_sum = h.sum;
      // prometheus-cpp writes the +Inf bucket from the last entry: add it, equal to the count.
      m.histogram.bucket.reserve(h.upper_bounds.size() + 1);
      for (std::size_t i = 0; i < h.upper_bounds.size(); ++i)
        m.histogram.bucket.push_back({h.cumulative[i], h.upper_bounds[i]});
      m.histogram.bucket.push_back({h.count, std::numeric_limits<double>::infinity()});
      break;
    }
  }
  return m;
}

}  // namespace

std::vector<::prometheus::MetricFamily> to_families(const metrics::snapshot& s) {
  std::vector<::prometheus::MetricFamily> out;
  out.reserve(s.families.size());
  for (const auto& f : s.families) {
    ::prometheus::MetricFamily pf;
    pf.name = f.name;
    pf.help = f.help;
    pf.type = type_of(f.type);
    pf.metric.reserve(f.samples.size());
    for (const auto& smp : f.samples) pf.metric.push_back(metric_of(f.type, smp));
    out.push_back(std::move(pf));
  }
  return out;
}

std::string to_text(const metrics::snapshot& s) {
  return ::prometheus::TextSerializer().Serialize(to_families(s));
}

std::vector<::prometheus::MetricFamily> collectable::Collect() const {
  return to_families(reg_.snapshot());
}

}  // namespace bp::prometheus
