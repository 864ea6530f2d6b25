// Drains a BPF ring buffer on a native thread and hands batches of records to
// JavaScript through a thread-safe function with a bounded queue. When the JS
// side falls behind, whole batches are dropped and counted, never blocked on:
// a blocked consumer would make the kernel side lose events instead, silently.
#pragma once
#include <bpf/libbpf.h>
#include <napi.h>

#include <atomic>
#include <thread>
#include <vector>

namespace flowtel {

class RingBufferConsumer : public Napi::ObjectWrap<RingBufferConsumer> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit RingBufferConsumer(const Napi::CallbackInfo &info);
  ~RingBufferConsumer() override;

 private:
  struct Batch {
    std::vector<uint8_t> bytes;
    uint32_t records = 0;
  };

  Napi::Value Stats(const Napi::CallbackInfo &info);
  void Stop(const Napi::CallbackInfo &info);

  static int OnRecord(void *ctx, void *data, size_t size);
  void PollLoop();
  void Flush();
  void Shutdown();

  int map_fd_ = -1;  // our own dup of the map fd
  struct ring_buffer *ring_ = nullptr;
  Napi::ThreadSafeFunction deliver_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  bool running_ = false;
  int poll_timeout_ms_ = 100;
  size_t max_batch_bytes_ = 256 * 1024;
  Batch current_;
  std::atomic<uint64_t> delivered_records_{0};
  std::atomic<uint64_t> dropped_records_{0};
  std::atomic<uint64_t> delivered_batches_{0};
  std::atomic<uint64_t> poll_errors_{0};
  std::atomic<int> last_poll_error_{0};
};

}  // namespace flowtel
