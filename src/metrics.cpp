#include "coronet/metrics.hpp"

#include <spdlog/fmt/fmt.h>

#include <iterator>
#include <map>
#include <new>
#include <string_view>
#include <utility>

#include "coronet/detail/observer.hpp"
#include "coronet/suspended_operation.hpp"

namespace coronet {

namespace detail {

void wait_record::begin(thread_observer& observer, wait_side side, wait_kind kind, int fd,
                        coronet::source_location where) noexcept {
  const auto s = static_cast<std::size_t>(side);
  where_[s] = where;
  since_[s] = coarse_now();
  kind_[s] = kind;
  fd_ = fd;
  if (next != nullptr) return;
  wait_link& head = observer.waiting;
  prev = head.prev;
  next = &head;
  head.prev->next = this;
  head.prev = this;
}

wait_ref wait_slot::begin_observed(thread_observer& observer, wait_side side, wait_kind kind,
                                   int fd, coronet::source_location where) noexcept {
  if (record_ == nullptr) {
    record_ = new (std::nothrow) wait_record;
    if (record_ == nullptr) return {};  // out of memory: this wait goes unrecorded
  }
  record_->begin(observer, side, kind, fd, where);
  record_->add_ref();
  return wait_ref(record_, side);
}

void wait_ref::end_wait() noexcept {
  record_->end(side_);
  std::exchange(record_, nullptr)->release();
}

void count_error(thread_observer& observer, const std::error_code& ec) noexcept {
  if (ec == std::errc::timed_out) {
    observer.timeouts.add(1);
  } else if (ec == std::errc::connection_reset || ec == std::errc::broken_pipe) {
    observer.resets.add(1);
  }
}

}  // namespace detail

namespace {

// The text of one exposition. A counter family is named without `_total` in OpenMetrics'
// `# TYPE` and `# HELP` lines and with it in Prometheus' 0.0.4; its samples have it in both.
class exposition {
 public:
  explicit exposition(metrics_format format) : format_(format) {}

  template <class Value>
  void counter(std::string_view name, std::string_view help, Value value) {
    family(name, "counter", help);
    fmt::format_to(std::back_inserter(out_), "coronet_{}_total {}\n", name, value);
  }

  template <class Value>
  void gauge(std::string_view name, std::string_view help, Value value) {
    family(name, "gauge", help);
    fmt::format_to(std::back_inserter(out_), "coronet_{} {}\n", name, value);
  }

  // A family with one sample per thread, labelled `thread`.
  template <class Get>
  void per_thread(std::string_view name, std::string_view type, std::string_view help,
                  const std::vector<metrics_counters>& threads, Get get) {
    family(name, type, help);
    const char* suffix = type == "counter" ? "_total" : "";
    for (std::size_t k = 0; k < threads.size(); ++k) {
      fmt::format_to(std::back_inserter(out_), "coronet_{}{}{{thread=\"{}\"}} {}\n", name, suffix,
                     k, get(threads[k]));
    }
  }

  void family(std::string_view name, std::string_view type, std::string_view help) {
    const bool total = type == "counter" && format_ == metrics_format::prometheus;
    const auto shown = fmt::format("coronet_{}{}", name, total ? "_total" : "");
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", shown, help, shown,
                   type);
  }

  void raw(std::string_view text) { out_ += text; }
  std::string take() { return std::move(out_); }

 private:
  metrics_format format_;
  std::string out_;
};

}  // namespace

std::string format_metrics(const metrics_snapshot& snapshot, metrics_format format,
                           const suspended_report* waits, const std::string& extra) {
  exposition out(format);
  const auto& t = snapshot.total;
  out.gauge("observing", "1 when the runtime keeps these counters, 0 when they stay 0.",
            snapshot.observing ? 1 : 0);
  out.gauge("threads", "Runtime threads, one io_context each.", snapshot.threads.size());
  out.counter("connections_accepted", "Connections the servers accepted.", t.connections_accepted);
  out.counter("connections_closed", "Server connections whose handler has ended.",
              t.connections_closed);
  out.gauge("connections_open", "Server connections open now.", t.connections_open);
  out.counter("connections_refused",
              "Incoming connections lost before a handler ran (aborted while queued, or a "
              "handler that threw at once).",
              t.connections_refused);
  out.counter("accept_exhausted",
              "accept() failures for want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, "
              "ENOMEM).",
              t.accept_exhausted);
  out.counter("received_bytes", "Bytes received by every socket operation (TLS: decrypted).",
              t.bytes_received);
  out.counter("sent_bytes", "Bytes sent by every socket operation (TLS: before encryption).",
              t.bytes_sent);
  out.counter("received_messages", "Receive operations that returned bytes or a datagram.",
              t.messages_received);
  out.counter("sent_messages", "Send operations that sent bytes or a datagram.", t.messages_sent);
  out.counter("timeouts", "Operations that ended with timed_out.", t.timeouts);
  out.counter("resets", "Operations that ended with connection_reset or broken_pipe.", t.resets);
  out.gauge("accept_queue_high_water",
            "The most connections seen queued in a TCP listener's backlog after an accept.",
            t.accept_queue_high_water);
  out.gauge("handover_queue_high_water",
            "The most accepted connections seen handed to one thread and not started yet.",
            t.handover_queue_high_water);
  out.per_thread("thread_cpu_seconds", "counter", "CPU time each runtime thread has used.",
                 snapshot.threads, [](const auto& c) { return c.cpu_seconds; });
  out.per_thread("thread_connections_open", "gauge", "Server connections open on each thread.",
                 snapshot.threads, [](const auto& c) { return c.connections_open; });
  out.per_thread("thread_received_messages", "counter", "Receive operations on each thread.",
                 snapshot.threads, [](const auto& c) { return c.messages_received; });
  out.per_thread("thread_sent_messages", "counter", "Send operations on each thread.",
                 snapshot.threads, [](const auto& c) { return c.messages_sent; });
  if (waits != nullptr) {
    std::map<std::string, std::size_t> by_kind;
    for (const auto& kind :
         {"accept", "connect", "handshake", "recv", "send", "readable", "shutdown", "timer"}) {
      by_kind[kind] = 0;
    }
    for (const auto& op : waits->operations) ++by_kind[op.kind];
    out.family("suspended_operations", "gauge", "Operations coroutines wait on now, by kind.");
    for (const auto& [kind, n] : by_kind) {
      out.raw(fmt::format("coronet_suspended_operations{{kind=\"{}\"}} {}\n", kind, n));
    }
    out.gauge("unanswered_threads",
              "Threads that did not list their waits in time (busy in one handler).",
              waits->unanswered.size());
  }
  out.raw(extra);
  if (format == metrics_format::openmetrics) out.raw("# EOF\n");
  return out.take();
}

const char* content_type(metrics_format format) noexcept {
  return format == metrics_format::openmetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

}  // namespace coronet
