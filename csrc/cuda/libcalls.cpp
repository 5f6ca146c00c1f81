#include "libcalls.h"

#include <pthread.h>

namespace pyprof::cuda {

uint64_t current_thread_id() { return static_cast<uint64_t>(pthread_self()); }

LibCallRegistry& libcall_registry() {
  static LibCallRegistry* r = new LibCallRegistry();  // never destroyed: CUPTI callbacks may fire during exit
  return *r;
}

uint64_t LibCallRegistry::record(LibCall call) {
  std::lock_guard<std::mutex> lock(mu_);
  call.id = next_id_++;
  ++stats_.calls;
  auto it = pending_by_thread_.find(call.thread_id);
  if (it != pending_by_thread_.end()) {
    ++stats_.unbound;  // the previous call on this thread launched nothing we saw
    it->second = std::move(call);
    return it->second.id;
  }
  const uint64_t id = call.id;
  pending_by_thread_.emplace(call.thread_id, std::move(call));
  return id;
}

uint64_t LibCallRegistry::bind_launch(uint64_t thread_id, uint64_t stream, uint32_t correlation_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_by_thread_.find(thread_id);
  if (it == pending_by_thread_.end()) return 0;
  if (it->second.stream != 0 && stream != 0 && it->second.stream != stream) return 0;
  if (by_correlation_.size() >= kMaxBound) {
    ++stats_.dropped;
    by_correlation_.erase(by_correlation_.begin());
  }
  const uint64_t id = it->second.id;
  by_correlation_[correlation_id] = std::move(it->second);
  pending_by_thread_.erase(it);
  ++stats_.bound;
  return id;
}

std::optional<LibCall> LibCallRegistry::take(uint32_t correlation_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_correlation_.find(correlation_id);
  if (it == by_correlation_.end()) return std::nullopt;
  LibCall c = std::move(it->second);
  by_correlation_.erase(it);
  return c;
}

LibCallRegistry::Stats LibCallRegistry::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.pending = pending_by_thread_.size();
  s.waiting = by_correlation_.size();
  return s;
}

void LibCallRegistry::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  pending_by_thread_.clear();
  by_correlation_.clear();
  stats_ = Stats{};
}

}  // namespace pyprof::cuda
