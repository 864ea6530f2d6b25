#include "btf_query.h"

#include <bpf/libbpf.h>

#include <cerrno>

#include "errors.h"

namespace flowtel {
namespace {

int FindType(const struct btf *btf, const std::string &name, __u32 kind) {
  return btf__find_by_name_kind(btf, name.c_str(), kind);
}

void AddMembers(Napi::Env env, const struct btf *btf, const std::string &subject, __u32 type_id,
                const std::string &prefix, __u32 base_offset, Napi::Object &members) {
  const struct btf_type *t = btf__type_by_id(btf, type_id);
  const struct btf_member *m = btf_members(t);
  for (__u16 i = 0; i < btf_vlen(t); i++, m++) {
    if (btf_member_bitfield_size(t, i) != 0)
      ThrowMessage(env, subject, "bitfield members are not supported in shared structs");
    std::string member_name = btf__name_by_offset(btf, m->name_off);
    __u32 offset = base_offset + btf_member_bit_offset(t, i) / 8;
    __s32 resolved = btf__resolve_type(btf, m->type);
    if (resolved < 0) ThrowErrno(env, subject, "resolve type of member " + member_name, resolved);
    const struct btf_type *mt = btf__type_by_id(btf, resolved);
    std::string full = prefix.empty() ? member_name : prefix + "." + member_name;
    if ((btf_is_struct(mt) || btf_is_union(mt)) && !member_name.empty()) {
      AddMembers(env, btf, subject, resolved, full, offset, members);
      continue;
    }
    __s64 size = btf__resolve_size(btf, m->type);
    if (size < 0) ThrowErrno(env, subject, "resolve size of member " + full, static_cast<int>(size));
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("offset", Napi::Number::New(env, offset));
    entry.Set("size", Napi::Number::New(env, static_cast<double>(size)));
    members.Set(full, entry);
  }
}

// A C spelling of a type for messages: "struct sock *", "int", "enum sk_rst_reason".
std::string DescribeType(const struct btf *btf, __u32 id, int depth = 0) {
  if (id == 0) return "void";
  if (depth > 8) return "?";
  const struct btf_type *t = btf__type_by_id(btf, id);
  if (t == nullptr) return "?";
  std::string name = btf__name_by_offset(btf, t->name_off);
  switch (btf_kind(t)) {
    case BTF_KIND_PTR:
      return DescribeType(btf, t->type, depth + 1) + " *";
    case BTF_KIND_CONST:
    case BTF_KIND_VOLATILE:
    case BTF_KIND_RESTRICT:
    case BTF_KIND_TYPE_TAG:
      return DescribeType(btf, t->type, depth + 1);
    case BTF_KIND_STRUCT:
      return "struct " + name;
    case BTF_KIND_UNION:
      return "union " + name;
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
      return "enum " + name;
    default:
      return name.empty() ? "?" : name;
  }
}

std::string StringArgument(const Napi::CallbackInfo &info, const char *usage) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), usage);
  return info[0].As<Napi::String>();
}

}  // namespace

Napi::Object EnumValues(Napi::Env env, const struct btf *btf, const std::string &subject,
                        const std::string &name) {
  int id = FindType(btf, name, BTF_KIND_ENUM);
  if (id < 0) id = FindType(btf, name, BTF_KIND_ENUM64);
  if (id < 0) ThrowMessage(env, subject, "BTF has no enum named '" + name + "'");
  return EnumObject(env, btf, btf__type_by_id(btf, id));
}

// Name -> value of an ENUM or ENUM64 type, honouring the signedness flag.
Napi::Object EnumObject(Napi::Env env, const struct btf *btf, const struct btf_type *t) {
  Napi::Object out = Napi::Object::New(env);
  if (btf_is_enum(t)) {
    const struct btf_enum *e = btf_enum(t);
    for (__u16 i = 0; i < btf_vlen(t); i++, e++) {
      double value = btf_kflag(t) ? static_cast<double>(e->val)
                                  : static_cast<double>(static_cast<__u32>(e->val));
      out.Set(btf__name_by_offset(btf, e->name_off), Napi::Number::New(env, value));
    }
  } else {
    const struct btf_enum64 *e = btf_enum64(t);
    for (__u16 i = 0; i < btf_vlen(t); i++, e++)
      out.Set(btf__name_by_offset(btf, e->name_off),
              Napi::Number::New(env, static_cast<double>(btf_enum64_value(e))));
  }
  return out;
}

Napi::Object StructLayout(Napi::Env env, const struct btf *btf, const std::string &subject,
                          const std::string &name) {
  int id = FindType(btf, name, BTF_KIND_STRUCT);
  if (id < 0) ThrowMessage(env, subject, "BTF has no struct named '" + name + "'");
  Napi::Object members = Napi::Object::New(env);
  AddMembers(env, btf, subject, id, "", 0, members);
  Napi::Object out = Napi::Object::New(env);
  out.Set("size", Napi::Number::New(env, btf__type_by_id(btf, id)->size));
  out.Set("members", members);
  return out;
}

// Parsed once for all queries of the start-up, then released (ReleaseKernelBtf).
static struct btf *vmlinux = nullptr;

void ReleaseKernelBtf() {
  btf__free(vmlinux);
  vmlinux = nullptr;
}

const struct btf *KernelBtf(Napi::Env env) {
  if (vmlinux == nullptr) {
    ClearLibbpfLog();
    struct btf *loaded = btf__load_vmlinux_btf();
    int err = libbpf_get_error(loaded);
    if (err != 0 || loaded == nullptr)
      ThrowErrno(env, "vmlinux BTF", "load", err != 0 ? err : ENOENT);
    vmlinux = loaded;
  }
  return vmlinux;
}

// Some kernel enums are anonymous (the TCP states): find them by a member.
Napi::Value KernelEnumWithMember(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "kernelEnumWithMember(member): member must be a string");
  std::string member = info[0].As<Napi::String>();
  const struct btf *btf = KernelBtf(env);
  __u32 count = btf__type_cnt(btf);
  for (__u32 id = 1; id < count; id++) {
    const struct btf_type *t = btf__type_by_id(btf, id);
    if (!btf_is_enum(t)) continue;
    const struct btf_enum *e = btf_enum(t);
    for (__u16 i = 0; i < btf_vlen(t); i++, e++) {
      if (member == btf__name_by_offset(btf, e->name_off)) return EnumObject(env, btf, t);
    }
  }
  ThrowMessage(env, "vmlinux BTF", "no enum has a member named '" + member + "'");
}

Napi::Value KernelEnum(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString())
    throw Napi::TypeError::New(env, "kernelEnum(name): name must be a string");
  return EnumValues(env, KernelBtf(env), "vmlinux BTF", info[0].As<Napi::String>());
}

// The names a struct's members are read by: those of anonymous struct and
// union members count as the struct's own, as C (and CO-RE) read them.
static void AddMemberNames(const struct btf *btf, __u32 type_id, Napi::Array &out, uint32_t &count, int depth) {
  const struct btf_type *t = btf__type_by_id(btf, type_id);
  if (t == nullptr || depth > 8 || !(btf_is_struct(t) || btf_is_union(t))) return;
  const struct btf_member *m = btf_members(t);
  for (__u16 i = 0; i < btf_vlen(t); i++, m++) {
    std::string name = btf__name_by_offset(btf, m->name_off);
    if (name.empty()) {
      __s32 resolved = btf__resolve_type(btf, m->type);
      if (resolved > 0) AddMemberNames(btf, static_cast<__u32>(resolved), out, count, depth + 1);
      continue;
    }
    out.Set(count++, name);
  }
}

// A tracepoint's BTF prototype is the typedef btf_trace_<name>: a pointer to a
// function whose first parameter is the tracepoint's private data, not an argument.
Napi::Value KernelTracepointArgs(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArgument(info, "kernelTracepointArgs(name): name must be a string");
  const struct btf *btf = KernelBtf(env);
  int id = FindType(btf, "btf_trace_" + name, BTF_KIND_TYPEDEF);
  if (id < 0) return env.Null();
  const struct btf_type *t = btf__type_by_id(btf, id);
  const struct btf_type *ptr = btf__type_by_id(btf, t->type);
  if (ptr == nullptr || !btf_is_ptr(ptr))
    ThrowMessage(env, "vmlinux BTF", "btf_trace_" + name + " is not a pointer to a function");
  const struct btf_type *proto = btf__type_by_id(btf, ptr->type);
  if (proto == nullptr || !btf_is_func_proto(proto))
    ThrowMessage(env, "vmlinux BTF", "btf_trace_" + name + " is not a pointer to a function");
  const struct btf_param *params = btf_params(proto);
  Napi::Array out = Napi::Array::New(env);
  for (__u16 i = 1; i < btf_vlen(proto); i++) out.Set(i - 1, DescribeType(btf, params[i].type));
  return out;
}

Napi::Value KernelHasFunction(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArgument(info, "kernelHasFunction(name): name must be a string");
  return Napi::Boolean::New(env, FindType(KernelBtf(env), name, BTF_KIND_FUNC) >= 0);
}

Napi::Value KernelStructMembers(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArgument(info, "kernelStructMembers(name): name must be a string");
  const struct btf *btf = KernelBtf(env);
  int id = FindType(btf, name, BTF_KIND_STRUCT);
  if (id < 0) return env.Null();
  Napi::Array out = Napi::Array::New(env);
  uint32_t count = 0;
  AddMemberNames(btf, id, out, count, 0);
  return out;
}

}  // namespace flowtel
