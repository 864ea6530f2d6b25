// flowtel_bpf: the minimal libbpf binding. See DESIGN §4.
#include <bpf/libbpf.h>
#include <malloc.h>
#include <napi.h>

#include "bpf_object.h"
#include "btf_query.h"
#include "errors.h"
#include "ring_buffer_consumer.h"

namespace flowtel {

Napi::Value PossibleCpus(const Napi::CallbackInfo &info) {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) ThrowErrno(info.Env(), "possible CPUs", "count", n);
  return Napi::Number::New(info.Env(), n);
}

// Returns start-up memory to the OS: the vmlinux BTF cached for enum queries,
// and what libbpf freed after parsing the kernel's BTF (megabytes) for each
// object it loaded, which glibc otherwise keeps in its arena: together about
// 14 MB of idle RSS.
// malloc_trim reports only whether it released anything, so there is no
// error to check.
Napi::Value ReleaseFreedMemory(const Napi::CallbackInfo &info) {
  ReleaseKernelBtf();
  return Napi::Boolean::New(info.Env(), malloc_trim(0) == 1);
}

// Bytes of the C heap in use (all arenas, mmapped chunks included), not what
// the arenas hold: a leak shows here, fragmentation does not. mallinfo2
// cannot fail.
Napi::Value NativeHeapInUse(const Napi::CallbackInfo &info) {
  struct mallinfo2 m = mallinfo2();
  return Napi::Number::New(info.Env(), static_cast<double>(m.uordblks + m.hblkhd));
}

}  // namespace flowtel

static Napi::Object InitFlowtelBpf(Napi::Env env, Napi::Object exports) {
  using flowtel::BpfObject;
  using flowtel::RingBufferConsumer;
  flowtel::InstallLibbpfLogger();
  exports.Set("BpfObject", BpfObject::Define(env));
  exports.Set("RingBufferConsumer", RingBufferConsumer::Define(env));
  exports.Set("kernelEnum", Napi::Function::New(env, flowtel::KernelEnum));
  exports.Set("kernelEnumWithMember", Napi::Function::New(env, flowtel::KernelEnumWithMember));
  exports.Set("kernelTracepointArgs", Napi::Function::New(env, flowtel::KernelTracepointArgs));
  exports.Set("kernelHasFunction", Napi::Function::New(env, flowtel::KernelHasFunction));
  exports.Set("kernelStructMembers", Napi::Function::New(env, flowtel::KernelStructMembers));
  exports.Set("possibleCpus", Napi::Function::New(env, flowtel::PossibleCpus));
  exports.Set("releaseFreedMemory", Napi::Function::New(env, flowtel::ReleaseFreedMemory));
  exports.Set("nativeHeapInUse", Napi::Function::New(env, flowtel::NativeHeapInUse));
  exports.Set("libbpfVersion", Napi::String::New(env, libbpf_version_string()));
  return exports;
}

NODE_API_MODULE(flowtel_bpf, InitFlowtelBpf)
