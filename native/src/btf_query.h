// Read-only BTF queries so TypeScript never hard-codes kernel enum values or
// the layout of our own structs.
#pragma once
#include <bpf/btf.h>
#include <napi.h>

#include <string>

namespace flowtel {

// {NAME: value} of one ENUM or ENUM64 type.
Napi::Object EnumObject(Napi::Env env, const struct btf *btf, const struct btf_type *t);
// {NAME: value} for an enum (ENUM or ENUM64) named `name` in `btf`.
Napi::Object EnumValues(Napi::Env env, const struct btf *btf, const std::string &subject,
                        const std::string &name);
// {size, members: {"a.b": {offset, size}}} for struct `name`; nested structs
// are flattened with dotted names, arrays keep their total size.
Napi::Object StructLayout(Napi::Env env, const struct btf *btf, const std::string &subject,
                          const std::string &name);
// The running kernel's BTF, loaded once.
const struct btf *KernelBtf(Napi::Env env);
// Frees the cached vmlinux BTF; the next query parses it again.
void ReleaseKernelBtf();

// JS: kernelEnum(name) -> {NAME: value}
Napi::Value KernelEnum(const Napi::CallbackInfo &info);
// JS: kernelEnumWithMember(member) -> {NAME: value} of the enum holding `member`
Napi::Value KernelEnumWithMember(const Napi::CallbackInfo &info);
// JS: kernelTracepointArgs(name) -> the C types of the arguments a tp_btf
// program of tracepoint `name` gets on this kernel, or null without it
Napi::Value KernelTracepointArgs(const Napi::CallbackInfo &info);
// JS: kernelHasFunction(name) -> whether the kernel's BTF has a function
// `name` (a kfunc is callable only if it is one)
Napi::Value KernelHasFunction(const Napi::CallbackInfo &info);
// JS: kernelStructMembers(name) -> the member names of struct `name`, or null
Napi::Value KernelStructMembers(const Napi::CallbackInfo &info);

}  // namespace flowtel
