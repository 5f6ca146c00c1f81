// Records in CUPTI's layout for the decoder's test seam (moved out of activity.cpp: no test code in the tracer).
#include "cuda/testing/records.h"

#include <cupti.h>

#include <cstring>
#include <mutex>
#include <unordered_set>

namespace pyprof::cuda::testing {

namespace {

const char* intern_test_name(const std::string& name) {
  static std::mutex mu;
  static auto* names = new std::unordered_set<std::string>();  // alive for the process, like CUPTI's own names
  std::lock_guard<std::mutex> lock(mu);
  return names->insert(name).first->c_str();
}

template <typename R>
std::string record_bytes(const R& r) {
  static_assert(sizeof(R) % 8 == 0, "CUPTI records are 8-byte aligned and padded");
  return std::string(reinterpret_cast<const char*>(&r), sizeof(R));
}

}  // namespace

std::string make_kernel_record_bytes(const std::string& name, uint64_t start_ns, uint64_t end_ns, uint32_t device_id,
                                     uint32_t context_id, uint32_t stream_id, const int32_t grid[3],
                                     const int32_t block[3], uint32_t correlation_id, uint32_t graph_id,
                                     uint64_t graph_node_id, bool concurrent) {
  CUpti_ActivityKernel10 r;
  std::memset(&r, 0, sizeof r);
  r.kind = concurrent ? CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL : CUPTI_ACTIVITY_KIND_KERNEL;
  r.start = start_ns;
  r.end = end_ns;
  r.completed = end_ns;
  r.deviceId = device_id;
  r.contextId = context_id;
  r.streamId = stream_id;
  r.gridX = grid[0], r.gridY = grid[1], r.gridZ = grid[2];
  r.blockX = block[0], r.blockY = block[1], r.blockZ = block[2];
  r.correlationId = correlation_id;
  r.name = intern_test_name(name);
  r.graphId = graph_id;
  r.graphNodeId = graph_node_id;
  r.launchType = CUPTI_ACTIVITY_LAUNCH_TYPE_REGULAR;
  return record_bytes(r);
}

std::string make_memcpy_record_bytes(uint64_t bytes, uint64_t start_ns, uint64_t end_ns, uint8_t copy_kind,
                                     uint32_t device_id, uint32_t context_id, uint32_t stream_id,
                                     uint32_t correlation_id) {
  CUpti_ActivityMemcpy6 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMCPY;
  r.copyKind = copy_kind;
  r.bytes = bytes;
  r.start = start_ns;
  r.end = end_ns;
  r.deviceId = device_id;
  r.contextId = context_id;
  r.streamId = stream_id;
  r.correlationId = correlation_id;
  r.copyCount = 1;
  return record_bytes(r);
}

std::string make_memset_record_bytes(uint64_t bytes, uint64_t start_ns, uint64_t end_ns, uint32_t value,
                                     uint32_t device_id, uint32_t context_id, uint32_t stream_id,
                                     uint32_t correlation_id) {
  CUpti_ActivityMemset4 r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_MEMSET;
  r.value = value;
  r.bytes = bytes;
  r.start = start_ns;
  r.end = end_ns;
  r.deviceId = device_id;
  r.contextId = context_id;
  r.streamId = stream_id;
  r.correlationId = correlation_id;
  return record_bytes(r);
}

std::string make_external_correlation_record_bytes(uint32_t correlation_id, uint64_t external_id,
                                                   uint32_t external_kind) {
  CUpti_ActivityExternalCorrelation r;
  std::memset(&r, 0, sizeof r);
  r.kind = CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION;
  r.externalKind = static_cast<CUpti_ExternalCorrelationKind>(external_kind);
  r.externalId = external_id;
  r.correlationId = correlation_id;
  return record_bytes(r);
}

}  // namespace pyprof::cuda::testing
