// One RAII holder for the CUPTI profiler host object (cupti_profiler_host.h), shared by the Range Profiler's
// HostConfig (range_profiler.h) and the PM sampler (pm_sampler.h): Initialize in the constructor, Deinitialize exactly
// once in the destructor, movable, never copied.
//
// The constructor does not throw: each owner turns a failed Initialize into its own error kind (an unknown chip is a
// ValueError for the Range Profiler's host queries, a status string for the PM sampler), so the holder only reports
// the failure.
#pragma once
#include <cupti_profiler_host.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "check.h"

namespace pyprof::cuda {

class ProfilerHost {
 public:
  // `availability` (a live device's counter-availability image, may be empty) is kept here because CUPTI keeps a
  // pointer to it for the object's life.
  ProfilerHost(CUpti_ProfilerType type, std::string chip, std::vector<uint8_t> availability = {})
      : chip_(std::move(chip)), availability_(std::move(availability)) {
    CUpti_Profiler_Host_Initialize_Params p{CUpti_Profiler_Host_Initialize_Params_STRUCT_SIZE};
    p.profilerType = type;
    p.pChipName = chip_.c_str();
    p.pCounterAvailabilityImage = availability_.empty() ? nullptr : availability_.data();
    failure_ = PYPROF_CUPTI_FAILURE(cuptiProfilerHostInitialize(&p));
    if (!failure_) object_ = p.pHostObject;
  }
  ~ProfilerHost() { reset(); }
  ProfilerHost(const ProfilerHost&) = delete;
  ProfilerHost& operator=(const ProfilerHost&) = delete;
  ProfilerHost(ProfilerHost&& o) noexcept
      : chip_(std::move(o.chip_)), availability_(std::move(o.availability_)),
        object_(std::exchange(o.object_, nullptr)), failure_(std::move(o.failure_)) {}
  ProfilerHost& operator=(ProfilerHost&& o) noexcept {
    if (this != &o) {
      reset();
      chip_ = std::move(o.chip_);
      availability_ = std::move(o.availability_);
      object_ = std::exchange(o.object_, nullptr);
      failure_ = std::move(o.failure_);
    }
    return *this;
  }

  // The failed Initialize, if it failed (then get() is nullptr).
  const std::optional<CallFailure>& failure() const { return failure_; }
  CUpti_Profiler_Host_Object* get() const { return object_; }
  const std::string& chip() const { return chip_; }

  // Deinitializes now (idempotent). A failure here has no remedy and is not reported: the object is gone either way.
  void reset() noexcept {
    if (object_ == nullptr) return;
    CUpti_Profiler_Host_Deinitialize_Params p{CUpti_Profiler_Host_Deinitialize_Params_STRUCT_SIZE};
    p.pHostObject = object_;
    object_ = nullptr;
    (void)cuptiProfilerHostDeinitialize(&p);
  }

 private:
  std::string chip_;
  std::vector<uint8_t> availability_;
  CUpti_Profiler_Host_Object* object_ = nullptr;
  std::optional<CallFailure> failure_;
};

}  // namespace pyprof::cuda
