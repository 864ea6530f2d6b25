#include "bpf_object.h"

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <vector>

#include "btf_query.h"
#include "errors.h"

namespace flowtel {
namespace {

std::string StringArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsString())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a string");
  return info[i].As<Napi::String>();
}

uint32_t UintArg(const Napi::CallbackInfo &info, size_t i, const char *what) {
  if (info.Length() <= i || !info[i].IsNumber())
    throw Napi::TypeError::New(info.Env(), std::string(what) + " must be a number");
  double v = info[i].As<Napi::Number>().DoubleValue();
  if (v < 0 || v > 4294967295.0 || v != static_cast<uint32_t>(v))
    throw Napi::RangeError::New(info.Env(), std::string(what) + " must be an unsigned 32-bit integer");
  return static_cast<uint32_t>(v);
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  if (info.Length() <= i || !info[i].IsBuffer()) throw Napi::TypeError::New(info.Env(), usage);
  return info[i].As<Napi::Buffer<uint8_t>>();
}

bool IsPerCpu(enum bpf_map_type type) {
  return type == BPF_MAP_TYPE_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_ARRAY ||
         type == BPF_MAP_TYPE_LRU_PERCPU_HASH || type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

// Bytes one value occupies in a lookup result: per-CPU values are laid out
// per possible CPU, each rounded up to 8 bytes.
size_t ValueStride(Napi::Env env, const struct bpf_map *map) {
  size_t size = bpf_map__value_size(map);
  if (!IsPerCpu(bpf_map__type(map))) return size;
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) ThrowErrno(env, "possible CPUs", "count", cpus);
  return ((size + 7) / 8) * 8 * static_cast<size_t>(cpus);
}

}  // namespace

Napi::Function BpfObject::Define(Napi::Env env) {
  return DefineClass(
      env, "BpfObject",
      {
          InstanceMethod("setGlobal", &BpfObject::SetGlobal),
          InstanceMethod("setProgramAutoload", &BpfObject::SetProgramAutoload),
          InstanceMethod("setMapAutocreate", &BpfObject::SetMapAutocreate),
          InstanceMethod("setMapMaxEntries", &BpfObject::SetMapMaxEntries),
          InstanceMethod("reuseMapFd", &BpfObject::ReuseMapFd),
          InstanceMethod("load", &BpfObject::Load),
          InstanceMethod("attach", &BpfObject::Attach),
          InstanceMethod("attachCgroup", &BpfObject::AttachCgroup),
          InstanceMethod("detach", &BpfObject::Detach),
          InstanceMethod("attachIter", &BpfObject::AttachIter),
          InstanceMethod("readIter", &BpfObject::ReadIter),
          InstanceMethod("mapInfo", &BpfObject::MapInfo),
          InstanceMethod("mapReadAll", &BpfObject::MapReadAll),
          InstanceMethod("mapReadEach", &BpfObject::MapReadEach),
          InstanceMethod("mapDeleteKeys", &BpfObject::MapDeleteKeys),
          InstanceMethod("mapUpdate", &BpfObject::MapUpdate),
          InstanceMethod("objectEnum", &BpfObject::ObjectEnum),
          InstanceMethod("structLayout", &BpfObject::ObjectStructLayout),
          InstanceMethod("programNames", &BpfObject::ProgramNames),
          InstanceMethod("mapNames", &BpfObject::MapNames),
          InstanceMethod("programRecursionMisses", &BpfObject::ProgramRecursionMisses),
          InstanceMethod("programTestRun", &BpfObject::ProgramTestRun),
          InstanceMethod("close", &BpfObject::Close),
      });
}

BpfObject::BpfObject(const Napi::CallbackInfo &info) : Napi::ObjectWrap<BpfObject>(info) {
  path_ = StringArg(info, 0, "object path");
  ClearLibbpfLog();
  struct bpf_object *obj = bpf_object__open_file(path_.c_str(), nullptr);
  int err = libbpf_get_error(obj);
  if (obj == nullptr || err != 0) ThrowErrno(info.Env(), path_, "open", err != 0 ? err : errno);
  obj_ = obj;
}

BpfObject::~BpfObject() { DestroyAll(); }

void BpfObject::DestroyAll() {
  for (auto &entry : links_) bpf_link__destroy(entry.second);
  links_.clear();
  if (obj_ != nullptr) bpf_object__close(obj_);
  obj_ = nullptr;
}

struct bpf_object *BpfObject::Object(Napi::Env env) const {
  if (obj_ == nullptr) ThrowMessage(env, path_, "object is closed");
  return obj_;
}

struct bpf_map *BpfObject::FindMap(Napi::Env env, const std::string &name) const {
  struct bpf_map *map = bpf_object__find_map_by_name(Object(env), name.c_str());
  if (map == nullptr) ThrowMessage(env, path_, "no map named '" + name + "'");
  return map;
}

struct bpf_program *BpfObject::FindProgram(Napi::Env env, const std::string &name) const {
  struct bpf_program *prog = bpf_object__find_program_by_name(Object(env), name.c_str());
  if (prog == nullptr) ThrowMessage(env, path_, "no program named '" + name + "'");
  return prog;
}

// Writes a `const volatile` global: its offset and size come from the
// .rodata DATASEC in the object's BTF; the value goes into the map's initial
// image, which libbpf freezes at load.
void BpfObject::SetGlobal(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "global name");
  Napi::Buffer<uint8_t> value = BufferArg(info, 1, "setGlobal(name, value): value must be a Buffer");
  if (loaded_) ThrowMessage(env, path_ + ": global " + name, "cannot set after load");
  const struct btf *btf = bpf_object__btf(Object(env));
  if (btf == nullptr) ThrowMessage(env, path_, "object has no BTF");
  int sec_id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
  if (sec_id < 0) ThrowMessage(env, path_, "object has no .rodata section (no const volatile globals)");
  const struct btf_type *sec = btf__type_by_id(btf, sec_id);
  const struct btf_var_secinfo *var = btf_var_secinfos(sec);
  for (__u16 i = 0; i < btf_vlen(sec); i++, var++) {
    const struct btf_type *var_type = btf__type_by_id(btf, var->type);
    if (name != btf__name_by_offset(btf, var_type->name_off)) continue;
    if (var->size != value.Length())
      ThrowMessage(env, path_ + ": global " + name,
                   "value is " + std::to_string(value.Length()) + " bytes, the variable is " +
                       std::to_string(var->size));
    // libbpf 1.1 hands out the image read-only: patch a copy and set it back.
    struct bpf_map *rodata = FindMap(env, ".rodata");
    size_t image_size = 0;
    const void *image = bpf_map__initial_value(rodata, &image_size);
    if (image == nullptr || var->offset + var->size > image_size)
      ThrowMessage(env, path_ + ": global " + name, ".rodata image is missing or too small");
    std::vector<uint8_t> patched(static_cast<const uint8_t *>(image),
                                 static_cast<const uint8_t *>(image) + image_size);
    memcpy(patched.data() + var->offset, value.Data(), var->size);
    int err = bpf_map__set_initial_value(rodata, patched.data(), patched.size());
    if (err != 0) ThrowErrno(env, path_ + ": global " + name, "set .rodata image", err);
    return;
  }
  ThrowMessage(env, path_, "no const volatile global named '" + name + "'");
}

void BpfObject::SetProgramAutoload(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "program name");
  bool enabled = info.Length() > 1 && info[1].ToBoolean();
  int err = bpf_program__set_autoload(FindProgram(info.Env(), name), enabled);
  if (err != 0) ThrowErrno(info.Env(), path_ + ": program " + name, "set autoload", err);
}

void BpfObject::SetMapAutocreate(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "map name");
  bool enabled = info.Length() > 1 && info[1].ToBoolean();
  int err = bpf_map__set_autocreate(FindMap(info.Env(), name), enabled);
  if (err != 0) ThrowErrno(info.Env(), path_ + ": map " + name, "set autocreate", err);
}

void BpfObject::SetMapMaxEntries(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "map name");
  uint32_t entries = UintArg(info, 1, "max entries");
  int err = bpf_map__set_max_entries(FindMap(info.Env(), name), entries);
  if (err != 0) ThrowErrno(info.Env(), path_ + ": map " + name, "set max entries", err);
}

// Makes this object use an existing map (shared ring buffer, shared counters).
void BpfObject::ReuseMapFd(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "map name");
  uint32_t fd = UintArg(info, 1, "map fd");
  ClearLibbpfLog();
  int err = bpf_map__reuse_fd(FindMap(info.Env(), name), static_cast<int>(fd));
  if (err != 0) ThrowErrno(info.Env(), path_ + ": map " + name, "reuse fd", err);
}

void BpfObject::Load(const Napi::CallbackInfo &info) {
  ClearLibbpfLog();
  int err = bpf_object__load(Object(info.Env()));
  if (err != 0) ThrowErrno(info.Env(), path_, "load", err);
  loaded_ = true;
}

Napi::Value BpfObject::RegisterLink(Napi::Env env, struct bpf_link *link, const std::string &subject) {
  int err = libbpf_get_error(link);
  if (link == nullptr || err != 0) ThrowErrno(env, subject, "attach", err != 0 ? err : errno);
  uint32_t id = next_link_id_++;
  links_[id] = link;
  return Napi::Number::New(env, id);
}

// Attaches by the program's section (tracepoint/, tp_btf/, raw_tp/).
Napi::Value BpfObject::Attach(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "program name");
  struct bpf_program *prog = FindProgram(info.Env(), name);
  ClearLibbpfLog();
  std::string subject = path_ + ": program " + name + " (" + bpf_program__section_name(prog) + ")";
  return RegisterLink(info.Env(), bpf_program__attach(prog), subject);
}

Napi::Value BpfObject::AttachCgroup(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "program name");
  std::string cgroup = StringArg(info, 1, "cgroup path");
  struct bpf_program *prog = FindProgram(info.Env(), name);
  std::string subject = path_ + ": program " + name + " on cgroup " + cgroup;
  int fd = open(cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) ThrowErrno(info.Env(), subject, "open cgroup", errno);
  ClearLibbpfLog();
  struct bpf_link *link = bpf_program__attach_cgroup(prog, fd);
  int saved = errno;
  close(fd);
  errno = saved;
  return RegisterLink(info.Env(), link, subject);
}

void BpfObject::Detach(const Napi::CallbackInfo &info) {
  uint32_t id = UintArg(info, 0, "link id");
  auto it = links_.find(id);
  if (it == links_.end()) ThrowMessage(info.Env(), path_, "no link with id " + std::to_string(id));
  int err = bpf_link__destroy(it->second);
  links_.erase(it);
  if (err != 0) ThrowErrno(info.Env(), path_ + ": link " + std::to_string(id), "detach", err);
}

static Napi::Buffer<uint8_t> HandOver(Napi::Env env, std::vector<uint8_t> bytes, size_t size);

// An iterator program (SEC("iter/...")); with a map name, over that map's elements (iter/bpf_map_elem,
// iter/bpf_sk_storage_map).
Napi::Value BpfObject::AttachIter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "program name");
  struct bpf_program *prog = FindProgram(env, name);
  std::string subject = path_ + ": iterator " + name;
  union bpf_iter_link_info link_info;
  std::memset(&link_info, 0, sizeof(link_info));
  DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts);
  if (info.Length() > 1 && !info[1].IsUndefined()) {
    std::string map_name = StringArg(info, 1, "map name");
    subject += " over map " + map_name;
    int map_fd = bpf_map__fd(FindMap(env, map_name));
    if (map_fd < 0) ThrowErrno(env, subject, "map fd", map_fd);
    link_info.map.map_fd = static_cast<uint32_t>(map_fd);
    opts.link_info = &link_info;
    opts.link_info_len = sizeof(link_info);
  }
  ClearLibbpfLog();
  return RegisterLink(env, bpf_program__attach_iter(prog, &opts), subject);
}

// Runs an attached iterator once: everything its program wrote (bpf_seq_write, bpf_seq_printf), in one Buffer.
Napi::Value BpfObject::ReadIter(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  uint32_t id = UintArg(info, 0, "link id");
  auto it = links_.find(id);
  if (it == links_.end()) ThrowMessage(env, path_, "no link with id " + std::to_string(id));
  std::string subject = path_ + ": iterator link " + std::to_string(id);
  int link_fd = bpf_link__fd(it->second);
  if (link_fd < 0) ThrowErrno(env, subject, "link fd", link_fd);
  int fd = bpf_iter_create(link_fd);
  if (fd < 0) ThrowErrno(env, subject, "create", errno);
  std::vector<uint8_t> out;
  uint8_t chunk[65536];
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int saved = errno;
      close(fd);
      ThrowErrno(env, subject, "read", saved);
    }
    if (n == 0) break;
    out.insert(out.end(), chunk, chunk + n);
  }
  if (close(fd) != 0) ThrowErrno(env, subject, "close", errno);
  size_t size = out.size();
  return HandOver(env, std::move(out), size);
}

Napi::Value BpfObject::MapInfo(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "map name");
  struct bpf_map *map = FindMap(env, name);
  Napi::Object out = Napi::Object::New(env);
  out.Set("name", name);
  out.Set("fd", Napi::Number::New(env, bpf_map__fd(map)));
  out.Set("type", Napi::Number::New(env, bpf_map__type(map)));
  out.Set("keySize", Napi::Number::New(env, bpf_map__key_size(map)));
  out.Set("valueSize", Napi::Number::New(env, bpf_map__value_size(map)));
  out.Set("maxEntries", Napi::Number::New(env, bpf_map__max_entries(map)));
  out.Set("perCpu", Napi::Boolean::New(env, IsPerCpu(bpf_map__type(map))));
  out.Set("valueStride", Napi::Number::New(env, static_cast<double>(ValueStride(env, map))));
  return out;
}

// Gives JS a Buffer over the vector's memory without copying it (a map of
// 100,000 flows is megabytes per collection); the Buffer's finalizer frees it.
static Napi::Buffer<uint8_t> HandOver(Napi::Env env, std::vector<uint8_t> bytes, size_t size) {
  if (size == 0) return Napi::Buffer<uint8_t>::New(env, 0);
  auto *owned = new std::vector<uint8_t>(std::move(bytes));
  return Napi::Buffer<uint8_t>::New(env, owned->data(), size,
                                    [](Napi::Env, uint8_t *, std::vector<uint8_t> *v) { delete v; }, owned);
}

// The kernel's ENOTSUPP (not in userspace errno.h): what BPF_MAP_LOOKUP_BATCH
// answers for a map type without batch operations (per-CPU arrays before 5.13).
constexpr int kKernelEnotsupp = 524;

// Walks a map with BPF_MAP_LOOKUP_BATCH, into memory the caller provides.
// Hash maps return whole buckets only, so a batch can come back short of the
// rows asked for (that is not the end: only ENOENT is), and a bucket with more
// rows than asked for is refused with ENOSPC (then it asks for more at once).
// A map type the kernel has no batch operations for is walked key by key.
class BatchWalk {
 public:
  BatchWalk(Napi::Env env, const struct bpf_map *map, const std::string &subject)
      : env_(env), subject_(subject), fd_(bpf_map__fd(map)), key_size_(bpf_map__key_size(map)),
        stride_(ValueStride(env, map)), capacity_(bpf_map__max_entries(map)),
        chunk_(std::min<size_t>(capacity_, 256)),
        // The batch cursor is opaque; a key-sized (at least 8 bytes) buffer fits every map type.
        cursor_in_(std::max<size_t>(key_size_, 8)), cursor_out_(cursor_in_.size()) {
    if (fd_ < 0) ThrowMessage(env, subject, "map is not loaded");
  }

  size_t key_size() const { return key_size_; }
  size_t stride() const { return stride_; }
  size_t capacity() const { return capacity_; }

  // Reads up to `room` rows to keys/values; returns how many. It stops early
  // when the next bucket needs more room than is left; done() says whether
  // the end of the map was reached.
  size_t Read(uint8_t *keys, uint8_t *values, size_t room) {
    if (by_key_) return ReadByKey(keys, values, room);
    size_t total = 0;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    while (!done_ && total < room) {
      size_t want = std::min(chunk_, room - total);
      __u32 count = static_cast<__u32>(want);
      int err = bpf_map_lookup_batch(fd_, first_ ? nullptr : cursor_in_.data(), cursor_out_.data(),
                                     keys + total * key_size_, values + total * stride_, &count, &opts);
      int saved = errno;
      if (err != 0 && saved == ENOSPC && count == 0) {
        if (want < chunk_ || chunk_ >= capacity_) break;  // the room left is what is short
        chunk_ = std::min(capacity_, chunk_ * 2);
        continue;
      }
      if (err != 0 && saved == kKernelEnotsupp && first_ && total == 0) {
        by_key_ = true;
        return ReadByKey(keys, values, room);
      }
      total += count;
      if (err != 0) {
        if (saved != ENOENT) ThrowErrno(env_, subject_, "lookup batch", saved);
        done_ = true;
        break;
      }
      std::swap(cursor_in_, cursor_out_);
      first_ = false;
    }
    return total;
  }

  bool done() const { return done_; }

 private:
  // One BPF_MAP_GET_NEXT_KEY and one BPF_MAP_LOOKUP_ELEM per row (a per-CPU
  // lookup fills the same round_up(value_size, 8) * possible CPUs as a batch).
  // Only map types without batch lookup come here, which on the kernels we
  // support are arrays: their keys are never deleted. (A hash map's walk would
  // start over after a key deleted under it.)
  size_t ReadByKey(uint8_t *keys, uint8_t *values, size_t room) {
    size_t total = 0;
    while (!done_ && total < room) {
      uint8_t *key = keys + total * key_size_;
      if (bpf_map_get_next_key(fd_, first_ ? nullptr : cursor_in_.data(), key) != 0) {
        if (errno != ENOENT) ThrowErrno(env_, subject_, "get next key", errno);
        done_ = true;
        break;
      }
      first_ = false;
      std::memcpy(cursor_in_.data(), key, key_size_);
      if (bpf_map_lookup_elem(fd_, key, values + total * stride_) != 0) {
        if (errno == ENOENT) continue;
        ThrowErrno(env_, subject_, "lookup", errno);
      }
      total++;
    }
    return total;
  }

  Napi::Env env_;
  const std::string &subject_;
  int fd_;
  size_t key_size_, stride_, capacity_, chunk_;
  std::vector<uint8_t> cursor_in_, cursor_out_;
  bool first_ = true;
  bool done_ = false;
  bool by_key_ = false;
};

// Reads every entry into two new Buffers: keys packed at keySize, values at
// valueStride. Entries stay in the map (running totals). The Buffers grow
// with what the map holds, not with its capacity: a 4,096-row histogram map
// with ten rows must not cost megabytes per collection.
Napi::Value BpfObject::MapReadAll(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "map name");
  struct bpf_map *map = FindMap(env, name);
  std::string subject = path_ + ": map " + name;
  BatchWalk walk(env, map, subject);
  size_t key_size = walk.key_size(), stride = walk.stride(), capacity = walk.capacity();
  std::vector<uint8_t> keys, values;
  size_t total = 0;
  size_t room = std::min<size_t>(capacity, 256);
  while (!walk.done()) {
    keys.resize(room * key_size);
    values.resize(room * stride);
    size_t count = walk.Read(keys.data() + total * key_size, values.data() + total * stride, room - total);
    total += count;
    if (walk.done() || total >= capacity) break;  // a full map holds no more rows
    if (count == 0 && room >= capacity) ThrowMessage(env, subject, "lookup batch made no progress with room for every row");
    room = std::min(capacity, room * 2);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("count", Napi::Number::New(env, static_cast<double>(total)));
  out.Set("keys", HandOver(env, std::move(keys), total * key_size));
  out.Set("values", HandOver(env, std::move(values), total * stride));
  out.Set("keySize", Napi::Number::New(env, static_cast<double>(key_size)));
  out.Set("valueStride", Napi::Number::New(env, static_cast<double>(stride)));
  return out;
}

// Walks the whole map through the caller's keys and values Buffers, calling
// onBatch(count) after each fill; the next fill overwrites them. A table of
// 100,000 flows then needs Buffers of a few thousand rows, not of every row
// (about 9 MB at 100,000 flows on two CPUs). Returns the rows read in all.
Napi::Value BpfObject::MapReadEach(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "map name");
  const char *usage = "mapReadEach(name, keys, values, onBatch): keys and values must be Buffers, onBatch a function";
  Napi::Buffer<uint8_t> keys = BufferArg(info, 1, usage);
  Napi::Buffer<uint8_t> values = BufferArg(info, 2, usage);
  if (info.Length() < 4 || !info[3].IsFunction()) throw Napi::TypeError::New(env, usage);
  Napi::Function on_batch = info[3].As<Napi::Function>();
  std::string subject = path_ + ": map " + name;
  BatchWalk walk(env, FindMap(env, name), subject);
  size_t room = std::min(keys.Length() / walk.key_size(), values.Length() / walk.stride());
  if (room == 0) ThrowMessage(env, subject, "mapReadEach: the Buffers have no room for one row");
  double total = 0;
  while (!walk.done()) {
    size_t count = walk.Read(keys.Data(), values.Data(), room);
    if (count == 0 && !walk.done())
      ThrowMessage(env, subject, "a hash bucket holds more rows than the Buffers (" + std::to_string(room) + " rows)");
    total += static_cast<double>(count);
    // A throw in onBatch comes back here as a C++ exception (NAPI_CPP_EXCEPTIONS) and ends the walk.
    if (count > 0) on_batch.Call({Napi::Number::New(env, static_cast<double>(count))});
  }
  return Napi::Number::New(env, total);
}

// Deletes the given packed keys; keys already gone are not an error.
// Returns how many were deleted.
Napi::Value BpfObject::MapDeleteKeys(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "map name");
  Napi::Buffer<uint8_t> keys = BufferArg(info, 1, "mapDeleteKeys(name, keys): keys must be a Buffer");
  struct bpf_map *map = FindMap(env, name);
  std::string subject = path_ + ": map " + name;
  size_t key_size = bpf_map__key_size(map);
  if (keys.Length() % key_size != 0)
    ThrowMessage(env, subject, "keys buffer is not a multiple of the key size " + std::to_string(key_size));
  uint32_t deleted = 0;
  for (size_t off = 0; off < keys.Length(); off += key_size) {
    int err = bpf_map_delete_elem(bpf_map__fd(map), keys.Data() + off);
    if (err == 0) {
      deleted++;
    } else if (errno != ENOENT) {
      ThrowErrno(env, subject, "delete", errno);
    }
  }
  return Napi::Number::New(env, deleted);
}

// Writes one entry (key and value sized exactly as the map's). Per-CPU maps are not supported here.
void BpfObject::MapUpdate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "map name");
  const char *usage = "mapUpdate(name, key, value): key and value must be Buffers";
  Napi::Buffer<uint8_t> key = BufferArg(info, 1, usage);
  Napi::Buffer<uint8_t> value = BufferArg(info, 2, usage);
  struct bpf_map *map = FindMap(env, name);
  std::string subject = path_ + ": map " + name;
  if (IsPerCpu(bpf_map__type(map))) ThrowMessage(env, subject, "mapUpdate does not write per-CPU maps");
  if (key.Length() != bpf_map__key_size(map) || value.Length() != bpf_map__value_size(map))
    ThrowMessage(env, subject, "key/value are " + std::to_string(key.Length()) + "/" + std::to_string(value.Length()) +
                                   " bytes, the map wants " + std::to_string(bpf_map__key_size(map)) + "/" +
                                   std::to_string(bpf_map__value_size(map)));
  if (bpf_map_update_elem(bpf_map__fd(map), key.Data(), value.Data(), BPF_ANY) != 0)
    ThrowErrno(env, subject, "update", errno);
}

Napi::Value BpfObject::ObjectEnum(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "enum name");
  const struct btf *btf = bpf_object__btf(Object(info.Env()));
  if (btf == nullptr) ThrowMessage(info.Env(), path_, "object has no BTF");
  return EnumValues(info.Env(), btf, path_, name);
}

Napi::Value BpfObject::ObjectStructLayout(const Napi::CallbackInfo &info) {
  std::string name = StringArg(info, 0, "struct name");
  const struct btf *btf = bpf_object__btf(Object(info.Env()));
  if (btf == nullptr) ThrowMessage(info.Env(), path_, "object has no BTF");
  return StructLayout(info.Env(), btf, path_, name);
}

Napi::Value BpfObject::MapNames(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  struct bpf_map *map;
  uint32_t i = 0;
  bpf_object__for_each_map(map, Object(env)) out.Set(i++, bpf_map__name(map));
  return out;
}

Napi::Value BpfObject::ProgramNames(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Napi::Array out = Napi::Array::New(env);
  struct bpf_program *prog;
  uint32_t i = 0;
  bpf_object__for_each_program(prog, Object(env)) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("name", bpf_program__name(prog));
    entry.Set("section", bpf_program__section_name(prog));
    out.Set(i++, entry);
  }
  return out;
}

// The kernel's count of this program's runs it skipped because the program
// was already running on that CPU (an interrupt hit its tracepoint while it
// ran): runs our counts never see, so the agent exports them as lost.
int BpfObject::LoadedProgramFd(Napi::Env env, const std::string &name, const std::string &subject) const {
  int fd = bpf_program__fd(FindProgram(env, name));
  if (fd < 0) ThrowMessage(env, subject, "not loaded");
  return fd;
}

Napi::Value BpfObject::ProgramRecursionMisses(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "program name");
  std::string subject = path_ + ": program " + name;
  int fd = LoadedProgramFd(env, name, subject);
  struct bpf_prog_info prog_info;
  std::memset(&prog_info, 0, sizeof(prog_info));
  uint32_t length = sizeof(prog_info);
  if (bpf_obj_get_info_by_fd(fd, &prog_info, &length) != 0) ThrowErrno(env, subject, "get info", errno);
  // A kernel older than the field (5.12) returns a shorter struct: the count is not known there.
  if (length < offsetof(struct bpf_prog_info, recursion_misses) + sizeof(prog_info.recursion_misses))
    ThrowMessage(env, subject, "the kernel does not report recursion misses");
  return Napi::Number::New(env, static_cast<double>(prog_info.recursion_misses));
}

// Runs a loaded program once, now, on this CPU, with no input
// (BPF_PROG_TEST_RUN; raw_tp programs from 5.10), and returns its return value:
// a way to ask the kernel something only a BPF program can read.
Napi::Value BpfObject::ProgramTestRun(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = StringArg(info, 0, "program name");
  std::string subject = path_ + ": program " + name;
  int fd = LoadedProgramFd(env, name, subject);
  LIBBPF_OPTS(bpf_test_run_opts, opts);
  if (bpf_prog_test_run_opts(fd, &opts) != 0) ThrowErrno(env, subject, "test run", errno);
  return Napi::Number::New(env, opts.retval);
}

void BpfObject::Close(const Napi::CallbackInfo &) { DestroyAll(); }

}  // namespace flowtel
