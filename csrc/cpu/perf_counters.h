// Executed floating-point work from the CPU's PMU through perf_event_open.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pyprof::cpu {

struct FpEvent {
  std::string name;   // e.g. "FP_ARITH_INST_RETIRED.256B_PACKED_SINGLE"
  uint64_t config;    // raw PERF_TYPE_RAW config (event | umask << 8)
  int lanes;          // FLOPs per counted unit (FMA is already counted twice by these events)
  std::string precision;  // "fp32", "fp64", or "mixed" (AMD counts both in one event)
};

struct CounterProbe {
  bool available = false;
  std::string vendor;          // "intel", "amd", or "unknown"
  std::string reason;          // why not available, with the fix where there is one
  std::vector<std::string> events;
};

// The events pyprof programs for a vendor ("intel" or "amd"); empty for others.
std::vector<FpEvent> fp_events(const std::string& vendor);

// Test seam: raw counts per event name -> FLOPs by precision ("fp32", "fp64", "mixed", "total").
// Throws std::invalid_argument for an event name that is not one of the vendor's.
std::map<std::string, double> flops_from_counts(const std::string& vendor, const std::map<std::string, uint64_t>& counts);

std::string cpu_vendor();

// Opens one counter per event for every thread of this process (inherit=1 covers threads created later).
class FpCounters {
 public:
  FpCounters() = default;
  ~FpCounters();
  FpCounters(const FpCounters&) = delete;
  FpCounters& operator=(const FpCounters&) = delete;

  static CounterProbe probe();
  // Returns false (and sets reason) when the PMU is not usable; never throws for a missing PMU.
  bool start();
  // Counts since start(), scaled for multiplexing (time_enabled / time_running).
  std::map<std::string, uint64_t> read() const;
  void stop();
  const std::string& reason() const { return reason_; }
  const std::string& vendor() const { return vendor_; }
  bool running() const { return !fds_.empty(); }

 private:
  std::string vendor_;
  std::string reason_;
  std::vector<FpEvent> events_;
  std::vector<std::vector<int>> fds_;  // [event][thread]
};

}  // namespace pyprof::cpu
