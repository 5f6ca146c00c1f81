// Records in CUPTI's own layout (cupti_activity.h), for the tracer's real decoder on a CPU (STYLE.md habit 4).
// Kernel names are interned for the process: the record carries a pointer to them, as CUPTI's do.
#pragma once
#include <cstdint>
#include <string>

namespace pyprof::cuda::testing {

std::string make_kernel_record_bytes(const std::string& name, uint64_t start_ns, uint64_t end_ns, uint32_t device_id,
                                     uint32_t context_id, uint32_t stream_id, const int32_t grid[3],
                                     const int32_t block[3], uint32_t correlation_id, uint32_t graph_id,
                                     uint64_t graph_node_id, bool concurrent);
std::string make_memcpy_record_bytes(uint64_t bytes, uint64_t start_ns, uint64_t end_ns, uint8_t copy_kind,
                                     uint32_t device_id, uint32_t context_id, uint32_t stream_id,
                                     uint32_t correlation_id);
std::string make_memset_record_bytes(uint64_t bytes, uint64_t start_ns, uint64_t end_ns, uint32_t value,
                                     uint32_t device_id, uint32_t context_id, uint32_t stream_id,
                                     uint32_t correlation_id);
std::string make_external_correlation_record_bytes(uint32_t correlation_id, uint64_t external_id,
                                                   uint32_t external_kind);

}  // namespace pyprof::cuda::testing
