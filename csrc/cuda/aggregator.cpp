#include "aggregator.h"

#include <algorithm>
#include <functional>
#include <optional>
#include <utility>

#include "libcalls.h"

namespace pyprof::cuda {

namespace {

uint64_t duration_ns(uint64_t start_ns, uint64_t end_ns) { return end_ns > start_ns ? end_ns - start_ns : 0; }

// Length of the union of half-open intervals [first, second): overlapping kernels count once.
uint64_t union_length_ns(std::vector<std::pair<uint64_t, uint64_t>>& intervals) {
  std::sort(intervals.begin(), intervals.end());
  uint64_t total = 0;
  uint64_t cur_start = 0, cur_end = 0;
  bool open = false;
  for (const auto& [s, e] : intervals) {
    if (e <= s) continue;
    if (!open) {
      cur_start = s;
      cur_end = e;
      open = true;
    } else if (s <= cur_end) {
      cur_end = std::max(cur_end, e);
    } else {
      total += cur_end - cur_start;
      cur_start = s;
      cur_end = e;
    }
  }
  if (open) total += cur_end - cur_start;
  return total;
}

}  // namespace

bool Aggregator::Key::operator==(const Key& o) const {
  return name == o.name && device == o.device && std::equal(grid, grid + 3, o.grid) &&
         std::equal(block, block + 3, o.block);
}

size_t Aggregator::KeyHash::operator()(const Key& k) const {
  size_t h = std::hash<const void*>()(k.name);
  auto mix = [&h](uint64_t v) { h ^= std::hash<uint64_t>()(v) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  mix(k.device);
  for (int i = 0; i < 3; ++i) mix(static_cast<uint32_t>(k.grid[i]));
  for (int i = 0; i < 3; ++i) mix(static_cast<uint32_t>(k.block[i]));
  return h;
}

const std::string* Aggregator::intern_locked(std::string_view s) {
  auto it = strings_.emplace(s).first;  // node-based set: the address stays valid until clear()
  return &*it;
}

void Aggregator::ingest(const RecordBatch& batch) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& r : batch.externals) add_external_locked(r);
  for (const auto& r : batch.kernels) add_kernel_locked(r);
  for (const auto& r : batch.mems) add_mem_locked(r);
}

void Aggregator::add_kernel(const KernelRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  add_kernel_locked(r);
}

void Aggregator::add_mem(const MemRecord& r) {
  std::lock_guard<std::mutex> lock(mu_);
  add_mem_locked(r);
}

void Aggregator::add_external(const ExternalCorrelation& r) {
  std::lock_guard<std::mutex> lock(mu_);
  add_external_locked(r);
}

void Aggregator::add_external_locked(const ExternalCorrelation& r) {
  ++stats_.externals;
  auto [it, inserted] = external_by_corr_.insert_or_assign(r.correlation_id, r.external_id);
  (void)it;
  if (!inserted) return;
  external_order_.push_back(r.correlation_id);
  while (external_by_corr_.size() > limits_.max_external_ids && !external_order_.empty()) {
    external_by_corr_.erase(external_order_.front());
    external_order_.pop_front();
    ++stats_.external_evicted;
  }
}

void Aggregator::add_kernel_locked(const KernelRecord& r) {
  ++stats_.kernels;
  // The library call bound to this launch (libcalls.h), taken before anything else: a record that is not aggregated
  // (no timestamps) must still release its binding, or the registry fills with calls nobody will take.
  // A launch that ran several kernels (a graph) hands its call to the first kernel record that arrives; the others
  // count as uncounted time.
  std::optional<LibCall> call;
  if (r.correlation_id != 0) call = libcall_registry().take(r.correlation_id);
  if (r.start_ns == 0 && r.end_ns == 0) {
    ++stats_.no_timestamp;
    if (call) ++stats_.library_calls_untimed;
    return;
  }
  const uint64_t dur = duration_ns(r.start_ns, r.end_ns);
  const std::string* name = intern_locked(r.name);
  devices_.insert(r.device_id);

  double lib_flops = 0;
  const std::string* precision = nullptr;
  if (call) {
    lib_flops = call->flops;
    precision = intern_locked(call->precision.empty() ? std::string_view("unknown") : call->precision);
    ++stats_.library_kernels;
  }

  Key key{name, r.device_id, {r.grid_x, r.grid_y, r.grid_z}, {r.block_x, r.block_y, r.block_z}};
  Row* row = nullptr;
  auto it = rows_.find(key);
  if (it != rows_.end()) {
    row = &it->second;
  } else if (rows_.size() < limits_.max_kernel_keys) {
    row = &rows_[key];
  } else {
    row = &other_row_;
    ++stats_.keys_overflowed;
  }
  ++row->count;
  row->total_ns += dur;
  row->max_ns = std::max(row->max_ns, dur);
  if (precision != nullptr) {
    row->library_flops += lib_flops;
    row->library_ns += dur;
    ++row->library_calls;
    if (row->precision.empty()) {
      row->precision = *precision;
    } else if (row->precision != *precision) {
      row->precision = "mixed";
    }
  }

  if (pending_locked() >= limits_.max_pending_records) {
    ++stats_.pending_dropped;
    return;
  }
  uint64_t external_id = 0;
  if (auto e = external_by_corr_.find(r.correlation_id); e != external_by_corr_.end()) external_id = e->second;
  PendingKernel p{name, r, external_id, lib_flops, precision};
  p.rec.name = std::string_view();  // the caller's view may dangle after this call
  pending_kernels_.push_back(p);
}

void Aggregator::add_mem_locked(const MemRecord& r) {
  if (r.kind == MemKind::kMemcpy) {
    ++stats_.memcpys;
  } else {
    ++stats_.memsets;
  }
  if (r.start_ns == 0 && r.end_ns == 0) {
    ++stats_.no_timestamp;
    return;
  }
  devices_.insert(r.device_id);
  if (pending_locked() >= limits_.max_pending_records) {
    ++stats_.pending_dropped;
    return;
  }
  pending_mems_.push_back(r);
}

WindowSummary Aggregator::close_window(uint64_t start_ns, uint64_t end_ns, bool keep_records) {
  std::lock_guard<std::mutex> lock(mu_);
  WindowSummary w;
  w.start_ns = start_ns;
  w.end_ns = end_ns;
  w.has_records = keep_records;
  const uint64_t window_ns = duration_ns(start_ns, end_ns);

  std::unordered_map<uint32_t, std::vector<std::pair<uint64_t, uint64_t>>> intervals;
  std::vector<PendingKernel> later_kernels;
  for (const auto& p : pending_kernels_) {
    const KernelRecord& r = p.rec;
    if (r.start_ns < start_ns) {
      ++w.discarded_before_start;
      continue;
    }
    if (r.start_ns >= end_ns) {
      later_kernels.push_back(p);
      continue;
    }
    const uint64_t dur = duration_ns(r.start_ns, r.end_ns);
    ++w.kernel_count;
    w.kernel_ns += dur;
    // Busy time is clipped at the window's end so that idle = window - busy never goes negative; the tail of a
    // kernel that runs past end_ns is not counted in the next window either (it started in this one).
    intervals[r.device_id].emplace_back(r.start_ns, std::min(r.end_ns, end_ns));
    if (p.precision != nullptr) {
      w.library_flops[*p.precision] += p.library_flops;
      ++w.library_kernel_count;
    } else {
      w.uncounted_kernel_ns += dur;
    }
    if (keep_records) {
      if (w.records.size() >= limits_.max_window_records) {
        ++w.records_truncated;
      } else {
        KernelDetail d;
        d.name = *p.name;
        d.device_id = r.device_id;
        d.context_id = r.context_id;
        d.stream_id = r.stream_id;
        d.grid[0] = r.grid_x, d.grid[1] = r.grid_y, d.grid[2] = r.grid_z;
        d.block[0] = r.block_x, d.block[1] = r.block_y, d.block[2] = r.block_z;
        d.start_ns = r.start_ns;
        d.end_ns = r.end_ns;
        d.correlation_id = r.correlation_id;
        d.graph_id = r.graph_id;
        d.graph_node_id = r.graph_node_id;
        d.external_id = p.external_id;
        d.library_flops = p.library_flops;
        if (p.precision != nullptr) d.precision = *p.precision;
        w.records.push_back(std::move(d));
      }
    }
  }
  pending_kernels_.swap(later_kernels);

  std::vector<MemRecord> later_mems;
  for (const auto& r : pending_mems_) {
    if (r.start_ns < start_ns) {
      ++w.discarded_before_start;
      continue;
    }
    if (r.start_ns >= end_ns) {
      later_mems.push_back(r);
      continue;
    }
    const uint64_t dur = duration_ns(r.start_ns, r.end_ns);
    if (r.kind == MemKind::kMemcpy) {
      ++w.memcpy_count;
      w.memcpy_bytes += r.bytes;
      w.memcpy_ns += dur;
    } else {
      ++w.memset_count;
      w.memset_bytes += r.bytes;
      w.memset_ns += dur;
    }
  }
  pending_mems_.swap(later_mems);
  stats_.outside_windows += w.discarded_before_start;

  for (uint32_t dev : devices_) {
    auto it = intervals.find(dev);
    const uint64_t busy = it == intervals.end() ? 0 : union_length_ns(it->second);
    w.busy_ns[dev] = busy;
    w.idle_ns[dev] = window_ns > busy ? window_ns - busy : 0;
  }
  return w;
}

std::vector<KernelTableRow> Aggregator::kernel_table(int top_n) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto to_row = [](const std::string& name, int64_t device, const int32_t* grid, const int32_t* block, const Row& r) {
    KernelTableRow t;
    t.name = name;
    t.device = device;
    std::copy(grid, grid + 3, t.grid);
    std::copy(block, block + 3, t.block);
    t.count = r.count;
    t.total_ns = r.total_ns;
    t.max_ns = r.max_ns;
    t.library_flops = r.library_flops;
    t.library_ns = r.library_ns;
    t.library_calls = r.library_calls;
    t.precision = r.precision;
    return t;
  };
  std::vector<KernelTableRow> out;
  out.reserve(rows_.size() + 1);
  for (const auto& [k, r] : rows_) out.push_back(to_row(*k.name, k.device, k.grid, k.block, r));
  if (other_row_.count > 0) {
    const int32_t zero[3] = {0, 0, 0};
    out.push_back(to_row(kOtherKernels, -1, zero, zero, other_row_));
  }
  std::sort(out.begin(), out.end(), [](const KernelTableRow& a, const KernelTableRow& b) {
    if (a.total_ns != b.total_ns) return a.total_ns > b.total_ns;
    if (a.name != b.name) return a.name < b.name;
    return a.device < b.device;
  });
  if (top_n > 0 && out.size() > static_cast<size_t>(top_n)) out.resize(static_cast<size_t>(top_n));
  return out;
}

Aggregator::Stats Aggregator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = pending_locked();
  s.keys = rows_.size();
  return s;
}

void Aggregator::set_limits(const Limits& limits) {
  std::lock_guard<std::mutex> lock(mu_);
  limits_ = limits;
}

Aggregator::Limits Aggregator::limits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return limits_;
}

void Aggregator::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_ = Stats{};
  rows_.clear();
  other_row_ = Row{};
  pending_kernels_.clear();
  pending_mems_.clear();
  external_by_corr_.clear();
  external_order_.clear();
  devices_.clear();
  strings_.clear();  // after everything that points into it
}

}  // namespace pyprof::cuda
