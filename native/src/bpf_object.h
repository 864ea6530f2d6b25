// One libbpf object: open -> configure -> load -> attach/detach -> read maps.
// Mechanisms only; which programs to load and how to read rows is TypeScript's
// business.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>

#include <map>
#include <string>

namespace flowtel {

class BpfObject : public Napi::ObjectWrap<BpfObject> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit BpfObject(const Napi::CallbackInfo &info);
  ~BpfObject() override;

 private:
  // Before load.
  void SetGlobal(const Napi::CallbackInfo &info);
  void SetProgramAutoload(const Napi::CallbackInfo &info);
  void SetMapAutocreate(const Napi::CallbackInfo &info);
  void SetMapMaxEntries(const Napi::CallbackInfo &info);
  void ReuseMapFd(const Napi::CallbackInfo &info);
  void Load(const Napi::CallbackInfo &info);
  // After load.
  Napi::Value Attach(const Napi::CallbackInfo &info);
  Napi::Value AttachCgroup(const Napi::CallbackInfo &info);
  void Detach(const Napi::CallbackInfo &info);
  // BPF iterators: attach once (a link), then each read runs the program over every element anew.
  Napi::Value AttachIter(const Napi::CallbackInfo &info);
  Napi::Value ReadIter(const Napi::CallbackInfo &info);
  Napi::Value MapInfo(const Napi::CallbackInfo &info);
  Napi::Value MapReadAll(const Napi::CallbackInfo &info);
  Napi::Value MapReadEach(const Napi::CallbackInfo &info);
  Napi::Value MapDeleteKeys(const Napi::CallbackInfo &info);
  void MapUpdate(const Napi::CallbackInfo &info);
  // BTF of the object itself.
  Napi::Value ObjectEnum(const Napi::CallbackInfo &info);
  Napi::Value ObjectStructLayout(const Napi::CallbackInfo &info);
  Napi::Value ProgramNames(const Napi::CallbackInfo &info);
  Napi::Value MapNames(const Napi::CallbackInfo &info);
  Napi::Value ProgramRecursionMisses(const Napi::CallbackInfo &info);
  Napi::Value ProgramTestRun(const Napi::CallbackInfo &info);
  void Close(const Napi::CallbackInfo &info);

  struct bpf_object *Object(Napi::Env env) const;
  struct bpf_map *FindMap(Napi::Env env, const std::string &name) const;
  struct bpf_program *FindProgram(Napi::Env env, const std::string &name) const;
  // The fd of a loaded program (throws, naming it, if it was left out of the load).
  int LoadedProgramFd(Napi::Env env, const std::string &name, const std::string &subject) const;
  Napi::Value RegisterLink(Napi::Env env, struct bpf_link *link, const std::string &subject);
  void DestroyAll();

  std::string path_;
  struct bpf_object *obj_ = nullptr;
  bool loaded_ = false;
  std::map<uint32_t, struct bpf_link *> links_;
  uint32_t next_link_id_ = 1;
};

}  // namespace flowtel
