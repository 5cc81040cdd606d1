#pragma once
// latency_histogram: round-trip times for coronet_bench, recorded in nanoseconds into
// log-linear buckets (the HDR histogram layout): exact below 2,048 ns, then 1,024 buckets per
// power of two. A bucket is at most 1 µs wide up to about 1 ms, and at most 0.1% of its value
// beyond, so percentiles keep microsecond resolution where loopback latencies live without
// storing every sample. Recording is a shift, a count-leading-zeros and an increment.
//
// One histogram per client thread, merged when the run ends; not thread-safe itself.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace coronet_bench {

class latency_histogram {
 public:
  /// Values at or above this (about 18 minutes) are counted in the last bucket.
  static constexpr std::uint64_t max_trackable_ns = (std::uint64_t{1} << 40) - 1;

  latency_histogram() : counts_(bucket_of(max_trackable_ns) + 1, 0) {}

  void record(std::uint64_t ns) noexcept {
    ns = std::min(ns, max_trackable_ns);
    ++counts_[bucket_of(ns)];
    ++count_;
    sum_ += ns;
    max_ = std::max(max_, ns);
  }

  void merge(const latency_histogram& other) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max_ns() const noexcept { return max_; }
  double mean_ns() const noexcept {
    return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
  }

  /// The value below which a fraction `q` (0 < q <= 1) of the samples lie: the upper end of
  /// the bucket holding the sample of that rank, never above the largest sample. 0 when empty.
  std::uint64_t percentile_ns(double q) const noexcept {
    if (count_ == 0) return 0;
    const double wanted = q * static_cast<double>(count_);
    auto rank = static_cast<std::uint64_t>(wanted);
    if (static_cast<double>(rank) < wanted) ++rank;  // ceil, without <cmath>
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(bucket_upper(i), max_);
    }
    return max_;
  }

  /// The bucket a value falls in; public so the layout can be tested.
  static std::size_t bucket_of(std::uint64_t ns) noexcept {
    if (ns < 2 * sub_buckets) return static_cast<std::size_t>(ns);
    const int shift =
        static_cast<int>(std::bit_width(ns)) - 1 - sub_bucket_bits;  // ns >> shift in [1024, 2048)
    return (static_cast<std::size_t>(shift) << sub_bucket_bits) +
           static_cast<std::size_t>(ns >> shift);
  }

  /// The largest value bucket `index` holds.
  static std::uint64_t bucket_upper(std::size_t index) noexcept {
    if (index < 2 * sub_buckets) return index;
    const auto shift = static_cast<int>(index >> sub_bucket_bits) - 1;
    const std::uint64_t low = (index - (static_cast<std::size_t>(shift) << sub_bucket_bits))
                              << shift;
    return low + (std::uint64_t{1} << shift) - 1;
  }

 private:
  static constexpr int sub_bucket_bits = 10;
  static constexpr std::uint64_t sub_buckets = std::uint64_t{1} << sub_bucket_bits;

  std::vector<std::uint64_t> counts_;
  std::uint64_t count_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace coronet_bench
