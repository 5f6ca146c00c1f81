#include "libcalls.h"

#include <pthread.h>

#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

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
  flops_by_precision_[call.precision.empty() ? std::string("unknown") : call.precision] += call.flops;
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
  const uint64_t id = it->second.id;
  auto old = by_correlation_.find(correlation_id);
  if (old != by_correlation_.end()) {
    // A correlation id seen again (CUPTI ids wrap after 2^32 launches): the older binding is dead.
    bound_order_.erase(old->second.order);
    by_correlation_.erase(old);
    ++stats_.dropped;
  }
  while (by_correlation_.size() >= max_bound_) evict_oldest_locked();
  bound_order_.push_back(correlation_id);
  by_correlation_.emplace(correlation_id, Bound{std::move(it->second), std::prev(bound_order_.end())});
  pending_by_thread_.erase(it);
  ++stats_.bound;
  return id;
}

void LibCallRegistry::evict_oldest_locked() {
  if (bound_order_.empty()) return;
  by_correlation_.erase(bound_order_.front());
  bound_order_.pop_front();
  ++stats_.dropped;
}

void LibCallRegistry::set_max_bound(size_t max_bound) {
  std::lock_guard<std::mutex> lock(mu_);
  max_bound_ = max_bound < 1 ? 1 : max_bound;
  while (by_correlation_.size() > max_bound_) evict_oldest_locked();
}

size_t LibCallRegistry::max_bound() const {
  std::lock_guard<std::mutex> lock(mu_);
  return max_bound_;
}

std::optional<LibCall> LibCallRegistry::take(uint32_t correlation_id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = by_correlation_.find(correlation_id);
  if (it == by_correlation_.end()) return std::nullopt;
  LibCall c = std::move(it->second.call);
  bound_order_.erase(it->second.order);
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

std::unordered_map<std::string, double> LibCallRegistry::recorded_flops_by_precision() const {
  std::lock_guard<std::mutex> lock(mu_);
  return flops_by_precision_;
}

void LibCallRegistry::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  flops_by_precision_.clear();
  pending_by_thread_.clear();
  by_correlation_.clear();
  bound_order_.clear();
  stats_ = Stats{};
}


// =====================================================================================================================
// Log parsers. Formats learnt from public logs (sources in tests/test_gpu_libcalls.py next to each fixture):
//
// cuBLASLt trace line (CUBLASLT_LOG_LEVEL=2; the logger callback gets the function name and the text after the
// "[time][cublasLt][pid][Trace][fn] " prefix; a log file carries the whole line):
//   A=0X.. Adesc=[type=R_16F rows=32 cols=16 ld=32] B=0X.. Bdesc=[...] C=0X.. Cdesc=[...] D=0X.. Ddesc=[...]
//   computeDesc=[computeType=COMPUTE_32F scaleType=R_32F transa=OP_T ...] algo=[algoId=21 tile=...] ... stream=0X0
// A transpose that is not printed is OP_N. Batched layouts: how a layout with CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT prints
// was NOT confirmed from a real log; cuBLASLt's own error text calls the attribute "batchCount", so the parser accepts
// batchCount= / batch_count= inside a layout bracket (Ddesc first, then Adesc, Bdesc) and defaults to 1.
// =====================================================================================================================

namespace {

using sv = std::string_view;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\0'; }

// Value of "key=" inside s where the key starts a token (start, or after a space, '[' or ';'); up to whitespace, ']'
// or ';'. Empty when absent.
sv kv(sv s, sv key) {
  size_t pos = 0;
  while ((pos = s.find(key, pos)) != sv::npos) {
    if (pos == 0 || is_space(s[pos - 1]) || s[pos - 1] == '[' || s[pos - 1] == ';') {
      size_t b = pos + key.size(), e = b;
      while (e < s.size() && !is_space(s[e]) && s[e] != ']' && s[e] != ';') ++e;
      return s.substr(b, e - b);
    }
    pos += key.size();
  }
  return {};
}

// Contents of "name=[...]" (flat brackets), empty when absent.
sv bracket(sv s, sv name_eq_bracket) {
  size_t pos = 0;
  while ((pos = s.find(name_eq_bracket, pos)) != sv::npos) {
    if (pos == 0 || is_space(s[pos - 1])) {
      size_t b = pos + name_eq_bracket.size();
      size_t e = s.find(']', b);
      if (e == sv::npos) return {};
      return s.substr(b, e - b);
    }
    pos += name_eq_bracket.size();
  }
  return {};
}

bool to_i64(sv t, int64_t* out) {
  if (t.empty() || t.size() > 19) return false;
  int64_t v = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *out = v;
  return true;
}

// "0X7EB04D0", "0x0", "(nil)" -> value; false when not a number.
bool to_u64_hex(sv t, uint64_t* out) {
  if (t == "(nil)" || t == "NULL") { *out = 0; return true; }
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t.remove_prefix(2);
  if (t.empty() || t.size() > 16) return false;
  uint64_t v = 0;
  for (char c : t) {
    int d;
    if (c >= '0' && c <= '9') d = c - '0';
    else if (c >= 'a' && c <= 'f') d = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F') d = c - 'A' + 10;
    else return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

struct Layout {
  std::string type;
  int64_t rows = 0, cols = 0, batch = 0;  // batch 0: not printed
  std::string stride;
};

bool parse_layout(sv desc, Layout* l) {
  if (desc.empty()) return false;
  l->type = std::string(kv(desc, "type="));
  if (l->type.empty() || !to_i64(kv(desc, "rows="), &l->rows) || !to_i64(kv(desc, "cols="), &l->cols)) return false;
  for (sv key : {sv("batchCount="), sv("batch_count="), sv("batchcount=")}) {
    if (to_i64(kv(desc, key), &l->batch)) break;
  }
  for (sv key : {sv("stridedBatchOffset="), sv("strided_batch_offset=")}) {
    sv v = kv(desc, key);
    if (!v.empty()) { l->stride = std::string(v); break; }
  }
  return true;
}

bool ends_with(sv s, sv suffix) { return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix; }

// Rank of a precision class by width (higher = more precise = lower peak): a mixed-input GEMM runs at the rate of its
// wider input (an FP16 x FP8 GEMM up-converts the FP8 operand).
int width_rank(const std::string& p) {
  if (p == "fp64") return 6;
  if (p == "fp32") return 5;
  if (p == "tf32") return 4;
  if (p == "fp16" || p == "bf16") return 3;
  if (p == "fp8") return 2;
  if (p == "int8" || p == "fp4") return 1;
  return 0;
}

// Precision class of one operand type under a compute type. cudaDataType names as cuBLASLt prints them (R_ real,
// C_ complex). Mapping:
//   R_64F / C_64F                                  -> fp64 (DMMA or FP64 pipe)
//   R_32F / C_32F with COMPUTE_32F_FAST_TF32       -> tf32 (inputs rounded to TF32 on tensor cores)
//   R_32F / C_32F with COMPUTE_32F_FAST_16BF       -> bf16 (inputs down-converted to BF16)
//   R_32F / C_32F with COMPUTE_32F_FAST_16F        -> fp16 (inputs down-converted to FP16)
//   R_32F / C_32F otherwise (COMPUTE_32F, _PEDANTIC, emulated modes) -> fp32
//   R_16F -> fp16, R_16BF -> bf16, R_8F_E4M3 / R_8F_E5M2 -> fp8, R_8I -> int8, R_4F_E2M1 -> fp4
std::string operand_precision(const std::string& t, const std::string& compute) {
  if (t == "R_64F" || t == "C_64F") return "fp64";
  if (t == "R_32F" || t == "C_32F") {
    if (compute.find("FAST_TF32") != std::string::npos) return "tf32";
    if (compute.find("FAST_16BF") != std::string::npos) return "bf16";
    if (compute.find("FAST_16F") != std::string::npos) return "fp16";
    return "fp32";
  }
  if (t == "R_16F" || t == "C_16F") return "fp16";
  if (t == "R_16BF" || t == "C_16BF") return "bf16";
  if (t.rfind("R_8F_", 0) == 0) return "fp8";
  if (t == "R_8I" || t == "R_8U") return "int8";
  if (t.rfind("R_4F_", 0) == 0) return "fp4";
  return "";
}

}  // namespace

std::string cublaslt_precision(const std::string& a_type, const std::string& b_type, const std::string& compute_type) {
  std::string a = operand_precision(a_type, compute_type), b = operand_precision(b_type, compute_type);
  if (a.empty()) return b;
  if (b.empty()) return a;
  return width_rank(b) > width_rank(a) ? b : a;
}

std::optional<LibCall> parse_cublaslt_log(const char* function_name, const char* message, ParseStatus* status) {
  if (status) *status = ParseStatus::kNotCompute;
  if (message == nullptr) return std::nullopt;
  sv msg(message);
  sv fn = function_name ? sv(function_name) : sv();
  if (fn.empty()) {  // whole log-file line: take the name from "[Trace][cublasLtMatmul] "
    size_t t = msg.find("[Trace][");
    if (t == sv::npos) return std::nullopt;
    size_t b = t + 8, e = msg.find(']', b);
    if (e == sv::npos) return std::nullopt;
    fn = msg.substr(b, e - b);
  }
  // Early reject: only the matmul entry points (cublasLtMatmul and the typed cublasLt<XYZ>Matmul that legacy cuBLAS
  // GEMMs reach) launch GEMM kernels; descriptor, heuristic and preference calls end in other words.
  if (!ends_with(fn, "Matmul")) return std::nullopt;
  // At the API level (CUBLASLT_LOG_LEVEL=5) the same call is also logged with descriptor pointers ("Adesc=0X55...")
  // instead of their contents; only the trace-level form carries shapes, so the pointer form is not a failure.
  if (msg.find("Adesc=0X") != sv::npos || msg.find("Adesc=0x") != sv::npos) return std::nullopt;
  if (status) *status = ParseStatus::kMalformed;
  Layout a, b, d;
  if (!parse_layout(bracket(msg, "Adesc=["), &a) || !parse_layout(bracket(msg, "Ddesc=["), &d)) return std::nullopt;
  const bool have_b = parse_layout(bracket(msg, "Bdesc=["), &b);
  Layout c;
  const bool have_c = parse_layout(bracket(msg, "Cdesc=["), &c);
  sv compute = bracket(msg, "computeDesc=[");
  if (compute.empty()) return std::nullopt;

  LibCall call;
  call.library = "cublasLt";
  call.op = "matmul";
  sv ta = kv(compute, "transa="), tb = kv(compute, "transb=");
  call.trans_a = ta == "OP_T" || ta == "OP_C";
  call.trans_b = tb == "OP_T" || tb == "OP_C";
  call.m = d.rows;
  call.n = d.cols;
  call.k = call.trans_a ? a.rows : a.cols;
  call.batch = d.batch > 0 ? d.batch : (a.batch > 0 ? a.batch : (have_b && b.batch > 0 ? b.batch : 1));
  if (call.m <= 0 || call.n <= 0 || call.k <= 0 || call.batch <= 0) return std::nullopt;
  call.a_type = a.type;
  call.b_type = have_b ? b.type : "";
  call.c_type = have_c ? c.type : "";
  call.d_type = d.type;
  call.compute_type = std::string(kv(compute, "computeType="));
  uint64_t stream = 0;
  if (to_u64_hex(kv(msg, "stream="), &stream)) call.stream = stream;
  call.precision = cublaslt_precision(call.a_type, call.b_type, call.compute_type);
  // 2 FLOPs per real multiply-accumulate; a complex MAC is 4 real multiplies and 4 adds (8 FLOPs).
  const bool complex = call.a_type.rfind("C_", 0) == 0;
  call.flops = (complex ? 8.0 : 2.0) * static_cast<double>(call.m) * static_cast<double>(call.n) *
               static_cast<double>(call.k) * static_cast<double>(call.batch);

  std::string detail = "fn=" + std::string(fn);
  sv algo = bracket(msg, "algo=[");
  sv algo_id = kv(algo, "algoId="), tile = kv(algo, "tile=");
  if (!algo_id.empty()) detail += " algoId=" + std::string(algo_id);
  if (!tile.empty()) detail += " tile=" + std::string(tile);
  sv epilogue = kv(compute, "epilogue=");
  if (!epilogue.empty()) detail += " epilogue=" + std::string(epilogue);
  if (!d.stride.empty() || !a.stride.empty()) detail += " strided_batch";
  if (complex) detail += " complex";
  // Consistency checks against the other operands; a mismatch means the layout was not what this parser assumes.
  const int64_t m_from_a = call.trans_a ? a.cols : a.rows;
  if (m_from_a != call.m) detail += " m_mismatch_a=" + std::to_string(m_from_a);
  if (have_b) {
    const int64_t k_from_b = call.trans_b ? b.cols : b.rows;
    if (k_from_b != call.k) detail += " k_mismatch_b=" + std::to_string(k_from_b);
  }
  call.detail = std::move(detail);
  if (status) *status = ParseStatus::kParsed;
  return call;
}

// =====================================================================================================================
// cuDNN API log entries (CUDNN_LOGLEVEL_DBG=3, or the callback at CUDNN_SEV_INFO). Legacy convolution calls print
// every descriptor field, e.g. (cuDNN 8, from a public PyTorch log; cuDNN 9 prints the same block without the
// "I!"/"i!" prefixes):
//   I! CuDNN (v8005) function cudnnConvolutionForward() called:
//   i!     handle: type=cudnnHandle_t; streamId=(nil) (defaultStream);
//   i!     xDesc: type=cudnnTensorDescriptor_t:
//   i!         dataType: type=cudnnDataType_t; val=CUDNN_DATA_HALF (2);
//   i!         dimA: type=int; val=[32,896,1,832];
//   i!     wDesc: type=cudnnFilterDescriptor_t:
//   i!         dimA: type=int; val=[1792,896,1,19];
//   i!     convDesc: type=cudnnConvolutionDescriptor_t:
//   i!         padA: type=int; val=[0,9];   strideA: ...   dilationA: ...   groupCount: ...
// Dims are logical (N,C,[D,]H,W for tensors, K,C/groups,[T,]R,S for filters) whatever the memory format.
//
// Limitation: the cuDNN 9 graph (backend) API, which PyTorch uses for convolutions by default, logs
// cudnnBackendExecute with an execution-plan pointer only; the shapes live in earlier cudnnBackendSetAttribute calls
// on a chain of descriptors (plan -> engine config -> engine -> operation graph -> conv op -> tensors). No real log of
// that chain was found to learn its format from, so graph-API convolutions are NOT parsed: the hooks count
// cudnnBackendExecute calls separately (cudnn_backend_executes) so a report can say how many went unattributed.
// =====================================================================================================================

namespace {

struct ConvDescs {
  std::vector<int64_t> x, w, y, pad, stride, dilation;
  int64_t groups = 0;
  std::string x_type, w_type, y_type, compute_type, math_type;
  uint64_t stream = 0;
  bool have_stream = false;
};

bool parse_int_list(sv v, std::vector<int64_t>* out) {
  if (v.size() < 2 || v.front() != '[' || v.back() != ']') return false;
  v = v.substr(1, v.size() - 2);
  out->clear();
  while (!v.empty()) {
    size_t comma = v.find(',');
    sv item = v.substr(0, comma);
    while (!item.empty() && is_space(item.front())) item.remove_prefix(1);
    while (!item.empty() && is_space(item.back())) item.remove_suffix(1);
    int64_t x;
    if (!to_i64(item, &x)) return false;
    out->push_back(x);
    if (comma == sv::npos) break;
    v.remove_prefix(comma + 1);
  }
  return !out->empty();
}

// "val=..." of a "key: type=...; val=VALUE;" line, without a trailing " (2)" enum number.
sv line_val(sv line) {
  size_t p = line.find("val=");
  if (p == sv::npos) return {};
  sv v = line.substr(p + 4);
  size_t e = v.find(';');
  if (e != sv::npos) v = v.substr(0, e);
  size_t sp = v.find(' ');
  if (sp != sv::npos && v.front() != '[') v = v.substr(0, sp);
  return v;
}

std::string conv_precision(const std::string& data_type, const std::string& math_type) {
  if (data_type == "CUDNN_DATA_HALF") return "fp16";
  if (data_type == "CUDNN_DATA_BFLOAT16") return "bf16";
  if (data_type == "CUDNN_DATA_DOUBLE") return "fp64";
  if (data_type.rfind("CUDNN_DATA_FP8", 0) == 0) return "fp8";
  if (data_type.rfind("CUDNN_DATA_INT8", 0) == 0 || data_type == "CUDNN_DATA_UINT8") return "int8";
  // Approximation: FP32 convolutions may run on TF32 tensor cores (sm_80+) unless the math type forbids it; PyTorch
  // sets CUDNN_FMA_MATH when torch.backends.cudnn.allow_tf32 is False.
  if (data_type == "CUDNN_DATA_FLOAT") return math_type == "CUDNN_FMA_MATH" ? "fp32" : "tf32";
  return "";
}

}  // namespace

std::optional<LibCall> parse_cudnn_log(const std::string& message, ParseStatus* status) {
  if (status) *status = ParseStatus::kNotCompute;
  // Early reject without splitting: the entry must name one of the convolution compute entry points.
  static const std::pair<const char*, const char*> kOps[] = {
      {"function cudnnConvolutionForward()", "conv_fwd"},
      {"function cudnnConvolutionBiasActivationForward()", "conv_fwd"},
      {"function cudnnConvolutionBackwardData()", "conv_bwd_data"},
      {"function cudnnConvolutionBackwardFilter()", "conv_bwd_filter"},
  };
  const char* op = nullptr;
  std::string fn;
  for (const auto& [needle, name] : kOps) {
    size_t p = message.find(needle);
    if (p != std::string::npos) {
      op = name;
      fn = std::string(needle + 9, std::strlen(needle) - 11);
      break;
    }
  }
  if (op == nullptr) return std::nullopt;
  if (status) *status = ParseStatus::kMalformed;
  const std::string op_s(op);
  // Which descriptor carries the input, filter and output in each entry point's signature.
  const char* in_desc = op_s == "conv_bwd_data" ? "dxDesc" : "xDesc";
  const char* w_desc = op_s == "conv_bwd_filter" ? "dwDesc" : "wDesc";
  const char* out_desc = op_s == "conv_fwd" ? "yDesc" : "dyDesc";

  ConvDescs c;
  std::string section;
  size_t section_indent = 0;
  sv all(message);
  while (!all.empty()) {
    size_t e = 0;
    while (e < all.size() && all[e] != '\n' && all[e] != '\0') ++e;
    sv line = all.substr(0, e);
    all.remove_prefix(e < all.size() ? e + 1 : e);
    if (line.size() >= 2 && line[1] == '!' ) line.remove_prefix(2);  // "I!", "i!", "W!", "E!"
    size_t indent = 0;
    while (indent < line.size() && (line[indent] == ' ' || line[indent] == '\t')) ++indent;
    line.remove_prefix(indent);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == sv::npos) continue;
    sv key = line.substr(0, colon);
    if (!section.empty() && indent <= section_indent) section.clear();
    if (ends_with(line, "_t:") && line.find("Descriptor_t") != sv::npos) {  // "xDesc: type=cudnnTensorDescriptor_t:"
      section = std::string(key);
      section_indent = indent;
      continue;
    }
    sv val = line_val(line);
    if (section.empty()) {
      if (key == "handle" || ends_with(line, ".") || key.find("Process") != sv::npos) {
        for (sv k : {sv("streamId="), sv("StreamId=")}) {
          sv s = kv(line, k);
          if (!s.empty() && !c.have_stream && to_u64_hex(s, &c.stream)) c.have_stream = true;
        }
      }
      continue;
    }
    if (section == in_desc) {
      if (key == "dimA") parse_int_list(val, &c.x);
      else if (key == "dataType") c.x_type = std::string(val);
    } else if (section == w_desc) {
      if (key == "dimA") parse_int_list(val, &c.w);
      else if (key == "dataType") c.w_type = std::string(val);
    } else if (section == out_desc) {
      if (key == "dimA") parse_int_list(val, &c.y);
      else if (key == "dataType") c.y_type = std::string(val);
    } else if (section == "convDesc") {
      if (key == "padA") parse_int_list(val, &c.pad);
      else if (key == "strideA") parse_int_list(val, &c.stride);
      else if (key == "dilationA") parse_int_list(val, &c.dilation);
      else if (key == "groupCount") to_i64(val, &c.groups);
      else if (key == "dataType") c.compute_type = std::string(val);
      else if (key == "mathType") c.math_type = std::string(val);
    }
  }

  const size_t nd = c.x.size();
  if ((nd != 4 && nd != 5) || c.w.size() != nd) return std::nullopt;
  const size_t ns = nd - 2;  // spatial dims
  const int64_t batch_n = c.x[0], chans = c.x[1], out_k = c.w[0], chans_per_group = c.w[1];
  if (batch_n <= 0 || chans <= 0 || out_k <= 0 || chans_per_group <= 0) return std::nullopt;
  int64_t groups = c.groups;
  if (groups <= 0) {  // groupCount not printed: the filter's C is C/groups
    if (chans % chans_per_group != 0) return std::nullopt;
    groups = chans / chans_per_group;
  }
  std::string detail = "fn=" + fn;
  if (chans / groups != chans_per_group) detail += " groups_mismatch";
  auto at = [](const std::vector<int64_t>& v, size_t i, int64_t dflt) { return i < v.size() ? v[i] : dflt; };
  std::vector<int64_t> out(ns);
  int64_t out_prod = 1, filt_prod = 1;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t in = c.x[2 + i], f = c.w[2 + i];
    const int64_t p = at(c.pad, i, 0), s = at(c.stride, i, 1), d = at(c.dilation, i, 1);
    if (s <= 0 || d <= 0 || f <= 0) return std::nullopt;
    const int64_t span = in + 2 * p - d * (f - 1) - 1;
    out[i] = span < 0 ? 0 : span / s + 1;  // cuDNN's output-size formula (floor division)
    if (c.y.size() == nd && c.y[2 + i] != out[i]) {
      detail += " out_dim_from_log";
      out[i] = c.y[2 + i];  // the library's own output size wins over the recomputed one
    }
    out_prod *= out[i];
    filt_prod *= f;
  }
  LibCall call;
  call.library = "cudnn";
  call.op = op_s;
  // Implicit-GEMM view of the forward convolution, used for all three ops: M = N*P*Q, N = K/groups,
  // K = (C/groups)*R*S, batch = groups, so 2*m*n*k*batch is the formula below.
  call.m = batch_n * out_prod;
  call.n = out_k / groups;
  call.k = chans_per_group * filt_prod;
  call.batch = groups;
  // FLOPs = 2 * N * K * P * Q * (C/groups) * R * S (3-D: * O and * T): one multiply-add per output element per filter
  // tap, the same count for forward, backward-data and backward-filter. Approximations: taps that land on zero padding
  // are counted; FFT/Winograd algorithms execute fewer multiplies than this direct-convolution count.
  call.flops = 2.0 * static_cast<double>(batch_n) * static_cast<double>(out_k) * static_cast<double>(out_prod) *
               static_cast<double>(chans_per_group) * static_cast<double>(filt_prod);
  call.a_type = c.x_type;
  call.b_type = c.w_type;
  call.c_type = c.y_type;
  call.d_type = c.y_type;
  call.compute_type = c.compute_type;
  call.stream = c.stream;
  call.precision = conv_precision(c.x_type.empty() ? c.w_type : c.x_type, c.math_type);
  auto join = [](const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) s += (i ? "x" : "") + std::to_string(v[i]);
    return s;
  };
  detail += " x=" + join(c.x) + " w=" + join(c.w) + " out=" + join(out) + " groups=" + std::to_string(groups);
  if (!c.pad.empty()) detail += " pad=" + join(c.pad);
  if (!c.stride.empty()) detail += " stride=" + join(c.stride);
  if (!c.dilation.empty()) detail += " dilation=" + join(c.dilation);
  if (!c.math_type.empty()) detail += " math=" + c.math_type;
  call.detail = std::move(detail);
  if (status) *status = ParseStatus::kParsed;
  return call;
}

}  // namespace pyprof::cuda
