#include "perf_counters.h"

#include <asm/unistd.h>
#include <cpuid.h>
#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace pyprof::cpu {
namespace {

long perf_open(perf_event_attr* attr, pid_t tid) {
  return syscall(__NR_perf_event_open, attr, tid, -1 /*any cpu*/, -1 /*no group*/, 0);
}

std::string paranoid_level() {
  std::ifstream f("/proc/sys/kernel/perf_event_paranoid");
  std::string s;
  if (f >> s) return s;
  return "unknown";
}

std::string explain_errno(int err) {
  switch (err) {
    case ENOENT:
    case EOPNOTSUPP:
      return std::string("perf_event_open: ") + std::strerror(err) +
             ": this CPU/VM exposes no PMU for these events (typical of virtual machines); "
             "FLOPs fall back to the analytic count";
    case EACCES:
    case EPERM:
      return std::string("perf_event_open: ") + std::strerror(err) + ": kernel.perf_event_paranoid=" + paranoid_level() +
             "; allow it with `sysctl -w kernel.perf_event_paranoid=1` (or run with CAP_PERFMON); "
             "FLOPs fall back to the analytic count";
    default:
      return std::string("perf_event_open: ") + std::strerror(err) + "; FLOPs fall back to the analytic count";
  }
}

std::vector<pid_t> process_threads() {
  std::vector<pid_t> tids;
  if (DIR* d = opendir("/proc/self/task")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] == '.') continue;
      tids.push_back(static_cast<pid_t>(std::atol(e->d_name)));
    }
    closedir(d);
  }
  if (tids.empty()) tids.push_back(0);
  return tids;
}

perf_event_attr make_attr(uint64_t config) {
  perf_event_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.size = sizeof(attr);
  attr.type = PERF_TYPE_RAW;
  attr.config = config;
  attr.disabled = 0;
  attr.inherit = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
  return attr;
}

}  // namespace

std::string cpu_vendor() {
  unsigned a, b, c, d;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return "unknown";
  char v[13];
  std::memcpy(v, &b, 4);
  std::memcpy(v + 4, &d, 4);
  std::memcpy(v + 8, &c, 4);
  v[12] = 0;
  const std::string s(v);
  if (s == "GenuineIntel") return "intel";
  if (s == "AuthenticAMD" || s == "HygonGenuine") return "amd";
  return "unknown";
}

std::vector<FpEvent> fp_events(const std::string& vendor) {
  if (vendor == "intel") {
    // FP_ARITH_INST_RETIRED (event 0xC7), Skylake and later; FMA instructions increment the count by 2.
    return {
        {"FP_ARITH_INST_RETIRED.SCALAR_DOUBLE", 0xC7 | (0x01 << 8), 1, "fp64"},
        {"FP_ARITH_INST_RETIRED.SCALAR_SINGLE", 0xC7 | (0x02 << 8), 1, "fp32"},
        {"FP_ARITH_INST_RETIRED.128B_PACKED_DOUBLE", 0xC7 | (0x04 << 8), 2, "fp64"},
        {"FP_ARITH_INST_RETIRED.128B_PACKED_SINGLE", 0xC7 | (0x08 << 8), 4, "fp32"},
        {"FP_ARITH_INST_RETIRED.256B_PACKED_DOUBLE", 0xC7 | (0x10 << 8), 4, "fp64"},
        {"FP_ARITH_INST_RETIRED.256B_PACKED_SINGLE", 0xC7 | (0x20 << 8), 8, "fp32"},
        {"FP_ARITH_INST_RETIRED.512B_PACKED_DOUBLE", 0xC7 | (0x40 << 8), 8, "fp64"},
        {"FP_ARITH_INST_RETIRED.512B_PACKED_SINGLE", 0xC7 | (0x80 << 8), 16, "fp32"},
    };
  }
  if (vendor == "amd") {
    // RETIRED_SSE_AVX_FLOPS (PMCx003, all unit masks): counts FLOPs directly, both precisions together.
    // Zen can retire more than 15 per cycle, which needs the kernel's merged-counter support to count fully.
    return {{"RETIRED_SSE_AVX_FLOPS.ALL", 0x03 | (0xFF << 8), 1, "mixed"}};
  }
  return {};
}

std::map<std::string, double> flops_from_counts(const std::string& vendor,
                                                const std::map<std::string, uint64_t>& counts) {
  const auto events = fp_events(vendor);
  std::map<std::string, double> out{{"fp32", 0.0}, {"fp64", 0.0}, {"mixed", 0.0}, {"total", 0.0}};
  for (const auto& [name, count] : counts) {
    const FpEvent* ev = nullptr;
    for (const auto& e : events)
      if (e.name == name) ev = &e;
    if (!ev) throw std::invalid_argument("unknown " + vendor + " FP event '" + name + "'");
    const double flops = static_cast<double>(count) * ev->lanes;
    out[ev->precision] += flops;
    out["total"] += flops;
  }
  return out;
}

CounterProbe FpCounters::probe() {
  CounterProbe p;
  p.vendor = cpu_vendor();
  const auto events = fp_events(p.vendor);
  if (events.empty()) {
    p.reason = "no floating-point PMU events known for CPU vendor '" + p.vendor + "'; FLOPs fall back to the analytic count";
    return p;
  }
  for (const auto& e : events) {
    perf_event_attr attr = make_attr(e.config);
    attr.inherit = 0;
    long fd = perf_open(&attr, 0);
    if (fd < 0) {
      p.reason = explain_errno(errno);
      p.events.clear();
      return p;
    }
    close(static_cast<int>(fd));
    p.events.push_back(e.name);
  }
  p.available = true;
  return p;
}

FpCounters::~FpCounters() { stop(); }

bool FpCounters::start() {
  stop();
  vendor_ = cpu_vendor();
  events_ = fp_events(vendor_);
  if (events_.empty()) {
    reason_ = "no floating-point PMU events known for CPU vendor '" + vendor_ + "'";
    return false;
  }
  const auto tids = process_threads();
  for (const auto& e : events_) {
    std::vector<int> fds;
    for (pid_t tid : tids) {
      perf_event_attr attr = make_attr(e.config);
      long fd = perf_open(&attr, tid);
      if (fd < 0) {
        if (errno == ESRCH) continue;  // the thread ended between listing and opening
        reason_ = explain_errno(errno);
        for (int f : fds) close(f);
        stop();
        return false;
      }
      fds.push_back(static_cast<int>(fd));
    }
    fds_.push_back(std::move(fds));
  }
  reason_.clear();
  return true;
}

std::map<std::string, uint64_t> FpCounters::read() const {
  std::map<std::string, uint64_t> out;
  for (size_t i = 0; i < fds_.size(); ++i) {
    double total = 0;
    for (int fd : fds_[i]) {
      uint64_t buf[3] = {0, 0, 0};  // value, time_enabled, time_running
      if (::read(fd, buf, sizeof(buf)) != sizeof(buf)) continue;
      const double scale = buf[2] ? static_cast<double>(buf[1]) / static_cast<double>(buf[2]) : 0.0;
      total += static_cast<double>(buf[0]) * scale;
    }
    out[events_[i].name] = static_cast<uint64_t>(total + 0.5);
  }
  return out;
}

void FpCounters::stop() {
  for (auto& fds : fds_)
    for (int fd : fds) close(fd);
  fds_.clear();
}

}  // namespace pyprof::cpu
