// Which CUPTI counter client holds each device's counter hardware in this process.
//
// The Range Profiler and PM sampling both program the device's performance monitors. CUPTI's headers
// (cupti_range_profiler.h, cupti_pmsampling.h, CUDA 13.0) document neither running both on one device at once nor
// what the second one would read, so pyprof refuses the second with a message naming the first and the fix, instead
// of reporting numbers nobody has checked. Pure C++ (no CUPTI call): tested on a CPU.
#pragma once
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

namespace pyprof::cuda {

enum class CounterUser { kRangeProfiler, kPmSampling };

inline const char* counter_user_name(CounterUser u) {
  return u == CounterUser::kRangeProfiler ? "the Range Profiler (GPU counters: pyprof.profile(counters=...))"
                                          : "PM sampling (pyprof's GPU pipe-activity sampler)";
}

// A held claim on one device's counters; released when destroyed. Movable, not copyable.
class CounterClaim {
 public:
  // The claim, or nullopt with *refusal set to a message naming the holder and the fix.
  static std::optional<CounterClaim> acquire(int device, CounterUser who, std::string* refusal) {
    std::lock_guard<std::mutex> lock(mu());
    auto it = holders().find(device);
    if (it != holders().end()) {
      if (refusal != nullptr) {
        *refusal = std::string(counter_user_name(who)) + " cannot start on device " + std::to_string(device) +
                   ": " + counter_user_name(it->second) +
                   " holds its counters in this process, and CUPTI does not document the two together on one "
                   "device; stop (close) it first, or use one of the two [status=counters_in_use]";
      }
      return std::nullopt;
    }
    holders().emplace(device, who);
    return CounterClaim(device);
  }
  // The holder of `device`'s counters, if any.
  static std::optional<CounterUser> holder(int device) {
    std::lock_guard<std::mutex> lock(mu());
    auto it = holders().find(device);
    if (it == holders().end()) return std::nullopt;
    return it->second;
  }

  CounterClaim(CounterClaim&& o) noexcept : device_(std::exchange(o.device_, -1)) {}
  CounterClaim& operator=(CounterClaim&& o) noexcept {
    if (this != &o) {
      release();
      device_ = std::exchange(o.device_, -1);
    }
    return *this;
  }
  CounterClaim(const CounterClaim&) = delete;
  CounterClaim& operator=(const CounterClaim&) = delete;
  ~CounterClaim() { release(); }
  int device() const { return device_; }

 private:
  explicit CounterClaim(int device) : device_(device) {}
  void release() noexcept {
    if (device_ < 0) return;
    std::lock_guard<std::mutex> lock(mu());
    holders().erase(device_);
    device_ = -1;
  }
  // Leaked on purpose: claims may be released during interpreter exit, after static destructors ran.
  static std::mutex& mu() {
    static auto* m = new std::mutex();
    return *m;
  }
  static std::map<int, CounterUser>& holders() {
    static auto* h = new std::map<int, CounterUser>();
    return *h;
  }

  int device_ = -1;
};

}  // namespace pyprof::cuda
